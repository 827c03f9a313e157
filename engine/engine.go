// Package engine is bpffs-fuse's in-process "kernel": it answers the bpf(2) commands the way
// Linux does. An Engine owns the objects (maps now; programs, links and BTF later), their ids and
// the memory budget; a Process is one user of the engine with its credentials and fd table.
// Each bpf(2) command is one method on Process, named after enum bpf_cmd (MapCreate for
// BPF_MAP_CREATE, MapLookupElem for BPF_MAP_LOOKUP_ELEM, ...), taking a request struct or
// arguments named after the uapi fields. Errors wrap unix.Errno values with %w, so errors.Is
// finds the kernel's errno.
//
// Concurrency: every method is safe for concurrent use. Fd lookups are lock-free; a command
// racing with close(2) of its fd behaves as on Linux, where the command holds the file until it
// returns.
package engine

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/bpffs-fuse/bpffs-fuse/objects"
)

// Config sets an engine's limits.
type Config struct {
	// MemoryLimit is the budget, in bytes, charged by every map (the kernel charges memcg and,
	// before 5.11, RLIMIT_MEMLOCK). A MAP_CREATE past it fails with ENOMEM. Zero means a
	// quarter of physical memory, at least 64 MiB.
	MemoryLimit int64
	// NumPossibleCPUs is num_possible_cpus(): the number of slots in a per-CPU value. Zero
	// means the host's num_possible_cpus() (/sys/devices/system/cpu/possible), which per-CPU
	// values are sized by on Linux; runtime.NumCPU() if that cannot be read.
	NumPossibleCPUs int
}

// Engine holds BPF objects and hands them to processes.
type Engine struct {
	cfg     Config
	memUsed atomic.Int64
	maps    idr

	mountsMu sync.RWMutex
	mounts   []mount
}

// New returns an engine with the given limits.
func New(cfg Config) *Engine {
	if cfg.MemoryLimit <= 0 {
		cfg.MemoryLimit = defaultMemoryLimit()
	}
	if cfg.NumPossibleCPUs <= 0 {
		cfg.NumPossibleCPUs = hostPossibleCPUs()
	}
	return &Engine{cfg: cfg}
}

// hostPossibleCPUs is num_possible_cpus() read from /sys/devices/system/cpu/possible (a CPU
// list such as "0-3" or "0,2-5"). It can exceed runtime.NumCPU(), which counts the CPUs this
// process may run on: VMs often have more possible than online CPUs.
func hostPossibleCPUs() int {
	b, err := os.ReadFile("/sys/devices/system/cpu/possible")
	if err != nil {
		return runtime.NumCPU()
	}
	n := 0
	for _, part := range strings.Split(strings.TrimSpace(string(b)), ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		z := a
		if err == nil && isRange {
			z, err = strconv.Atoi(hi)
		}
		if err != nil || z < a {
			return runtime.NumCPU()
		}
		n += z - a + 1
	}
	if n < 1 {
		return runtime.NumCPU()
	}
	return n
}

func defaultMemoryLimit() int64 {
	const min = 64 << 20
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) != nil {
		return min
	}
	total := int64(si.Totalram) * int64(si.Unit)
	if total/4 < min {
		return min
	}
	return total / 4
}

// Config returns the engine's limits, with defaults filled in.
func (e *Engine) Config() Config { return e.cfg }

// MemoryUsed returns the bytes currently charged to the memory budget.
func (e *Engine) MemoryUsed() int64 { return e.memUsed.Load() }

// charge adds delta bytes to the budget; growing past the limit fails with ENOMEM and charges
// nothing.
func (e *Engine) charge(delta int64) error {
	if delta <= 0 {
		e.memUsed.Add(delta)
		return nil
	}
	for {
		cur := e.memUsed.Load()
		if cur+delta > e.cfg.MemoryLimit || cur+delta < cur {
			return fmt.Errorf("memory budget: %d bytes in use, %d more requested, limit %d: %w",
				cur, delta, e.cfg.MemoryLimit, unix.ENOMEM)
		}
		if e.memUsed.CompareAndSwap(cur, cur+delta) {
			return nil
		}
	}
}

// MapByID returns the live map with the given id, with a kernel-internal reference (Inc) the
// caller must Put (kernel/bpf/syscall.c:bpf_map_get_curr_or_next's lookup, without the fd).
func (e *Engine) MapByID(id uint32) (*objects.Map, bool) {
	o, ok := e.maps.getRef(id)
	if !ok {
		return nil, false
	}
	return o.(*objects.Map), true
}

// ObjectByID resolves an id as an fd map's value: a map id for maps-of-maps. The object comes
// with a reference the caller owns. It is the id-based objects.Resolver that file writes use,
// where a syscall would pass an fd.
func (e *Engine) ObjectByID(id uint32) (objects.Object, error) {
	if m, ok := e.MapByID(id); ok {
		return m, nil
	}
	return nil, fmt.Errorf("no object with id %d: %w", id, unix.EBADF)
}

// Maps calls fn for every live map in id order, each held by a reference for the duration of the
// call, until fn returns false.
func (e *Engine) Maps(fn func(*objects.Map) bool) {
	var id uint32
	for {
		next, ok := e.maps.nextID(id)
		if !ok {
			return
		}
		id = next
		o, ok := e.maps.getRef(id)
		if !ok {
			continue
		}
		cont := fn(o.(*objects.Map))
		o.Put()
		if !cont {
			return
		}
	}
}

// idr is a per-kind id space (kernel/bpf/syscall.c:bpf_map_alloc_id: idr_alloc_cyclic from 1 to
// INT_MAX). Ids are handed out in increasing order and not reused until the space wraps.
type idr struct {
	mu   sync.RWMutex
	last uint32
	objs map[uint32]objects.Object
	ids  []uint32 // live ids, sorted, for GET_NEXT_ID
}

const idMax = 1<<31 - 1 // INT_MAX, the exclusive end of idr_alloc_cyclic's range

// alloc gives obj the next free id after the last one handed out.
func (r *idr) alloc(obj objects.Object) (uint32, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.objs == nil {
		r.objs = make(map[uint32]objects.Object)
	}
	if len(r.objs) >= idMax-1 {
		return 0, fmt.Errorf("id space exhausted: %w", unix.ENOSPC)
	}
	id := r.last
	for {
		id++
		if id >= idMax {
			id = 1
		}
		if _, used := r.objs[id]; !used {
			break
		}
	}
	r.last = id
	r.objs[id] = obj
	i := sort.Search(len(r.ids), func(i int) bool { return r.ids[i] >= id })
	r.ids = append(r.ids, 0)
	copy(r.ids[i+1:], r.ids[i:])
	r.ids[i] = id
	return id, nil
}

// free removes id at once (bpf_map_free_id runs before the memory is freed).
func (r *idr) free(id uint32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.objs[id]; !ok {
		return
	}
	delete(r.objs, id)
	i := sort.Search(len(r.ids), func(i int) bool { return r.ids[i] >= id })
	if i < len(r.ids) && r.ids[i] == id {
		r.ids = append(r.ids[:i], r.ids[i+1:]...)
	}
}

// getRef returns the object with a new reference, unless it is already dying.
func (r *idr) getRef(id uint32) (objects.Object, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	o, ok := r.objs[id]
	if !ok {
		return nil, false
	}
	// The id is removed under r.mu right after refcnt reaches zero, so a present id can
	// belong to an object whose final Put is running; TryInc tells the two apart.
	if !o.TryInc() {
		return nil, false
	}
	return o, true
}

// nextID returns the smallest live id greater than start (idr_get_next).
func (r *idr) nextID(start uint32) (uint32, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	i := sort.Search(len(r.ids), func(i int) bool { return r.ids[i] > start })
	if i == len(r.ids) {
		return 0, false
	}
	return r.ids[i], true
}

// getUserRef returns the object with a new user reference, unless it is already dying
// (bpf_map_inc_not_zero with uref, as GET_FD_BY_ID takes).
func (r *idr) getUserRef(id uint32) (objects.Object, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	o, ok := r.objs[id]
	if !ok || !o.TryIncUser() {
		return nil, false
	}
	return o, true
}
