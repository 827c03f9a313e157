package objects

import "sync/atomic"

// Ref is the reference count every BPF object carries (kernel/bpf/syscall.c: bpf_map_inc,
// bpf_map_put, bpf_map_inc_with_uref, bpf_map_put_uref).
//
// refcnt counts every holder: fds, pins, programs' used maps, map-in-map slots. usercnt counts
// only user-visible holders (fds and pins); when it reaches zero, OnUserRelease runs (the
// kernel's map_release_uref, which empties a prog_array). When refcnt reaches zero, OnRelease
// runs: the engine frees the id there, at once, as bpf_map_free_id does.
//
// Unlike the kernel, OnUserRelease runs synchronously, so the prog_array uref double-drop leak
// (kernel-semantics.md b.1) cannot happen here.
type Ref struct {
	refcnt  atomic.Int64
	usercnt atomic.Int64

	// OnRelease runs once, when the last reference is dropped.
	OnRelease func()
	// OnUserRelease runs each time usercnt drops to zero.
	OnUserRelease func()
}

// Init sets the count to one user reference (the creating fd).
func (r *Ref) Init() {
	r.refcnt.Store(1)
	r.usercnt.Store(1)
}

// Inc takes a kernel-internal reference (bpf_map_inc).
func (r *Ref) Inc() { r.refcnt.Add(1) }

// IncUser takes a user reference (bpf_map_inc_with_uref).
func (r *Ref) IncUser() {
	r.refcnt.Add(1)
	r.usercnt.Add(1)
}

// TryIncUser takes a user reference unless the object is already dead
// (bpf_map_inc_not_zero, used by GET_FD_BY_ID).
func (r *Ref) TryIncUser() bool {
	for {
		n := r.refcnt.Load()
		if n <= 0 {
			return false
		}
		if r.refcnt.CompareAndSwap(n, n+1) {
			r.usercnt.Add(1)
			return true
		}
	}
}

// TryInc takes a kernel-internal reference unless the object is already dead (the engine's
// lookups by id, which must not count as a user).
func (r *Ref) TryInc() bool {
	for {
		n := r.refcnt.Load()
		if n <= 0 {
			return false
		}
		if r.refcnt.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// Put drops a kernel-internal reference (bpf_map_put).
func (r *Ref) Put() {
	switch n := r.refcnt.Add(-1); {
	case n == 0:
		if r.OnRelease != nil {
			r.OnRelease()
		}
	case n < 0:
		panic("objects: reference count below zero")
	}
}

// PutUser drops a user reference (bpf_map_put_with_uref).
func (r *Ref) PutUser() {
	if r.usercnt.Add(-1) == 0 && r.OnUserRelease != nil {
		r.OnUserRelease()
	}
	r.Put()
}

// Refs returns the current reference and user counts.
func (r *Ref) Refs() (refcnt, usercnt int64) { return r.refcnt.Load(), r.usercnt.Load() }
