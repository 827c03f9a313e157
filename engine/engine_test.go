package engine

import (
	"encoding/binary"
	"errors"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/bpffs-fuse/bpffs-fuse/objects"
)

func newProc(t *testing.T, cfg Config) (*Engine, *Process) {
	t.Helper()
	e := New(cfg)
	p := e.NewProcess(Root())
	t.Cleanup(p.Exit)
	return e, p
}

func mustCreate(t *testing.T, p *Process, a MapCreateAttr) int {
	t.Helper()
	fd, err := p.MapCreate(&a)
	if err != nil {
		t.Fatalf("MapCreate(%+v): %v", a, err)
	}
	return fd
}

func hashAttr() MapCreateAttr {
	return MapCreateAttr{MapType: objects.MapTypeHash, KeySize: 4, ValueSize: 8, MaxEntries: 16}
}

func wantErrno(t *testing.T, what string, err error, want unix.Errno) {
	t.Helper()
	if want == 0 {
		if err != nil {
			t.Fatalf("%s: %v, want success", what, err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("%s: %v, want %v (%d)", what, err, want, int(want))
	}
}

func u32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
func u64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

func TestFDLowestFreeDupCloseExit(t *testing.T) {
	e, p := newProc(t, Config{})
	a := mustCreate(t, p, hashAttr())
	b := mustCreate(t, p, hashAttr())
	c := mustCreate(t, p, hashAttr())
	if a != 0 || b != 1 || c != 2 {
		t.Fatalf("fds %d %d %d, want 0 1 2", a, b, c)
	}
	wantErrno(t, "close", p.Close(b), 0)
	wantErrno(t, "close twice", p.Close(b), unix.EBADF)
	d, err := p.Dup(a)
	wantErrno(t, "dup", err, 0)
	if d != 1 {
		t.Fatalf("dup gave fd %d, want the lowest free, 1", d)
	}
	// The map behind a and d lives while either is open.
	idA := mustInfo(t, p, a).ID
	wantErrno(t, "close a", p.Close(a), 0)
	if !alive(e, idA) {
		t.Fatal("map freed while its dup is open")
	}
	wantErrno(t, "close d", p.Close(d), 0)
	if alive(e, idA) {
		t.Fatal("map id still present after its last fd closed")
	}
	// Map b was freed when closed: its id is gone at once.
	if next, err := p.MapGetNextID(0); err != nil || next != 3 {
		t.Fatalf("GET_NEXT_ID(0) = %d, %v; want 3 (only c left)", next, err)
	}
	// Growth past the initial table.
	for i := 0; i < 40; i++ {
		mustCreate(t, p, hashAttr())
	}
	if n := p.NumFDs(); n != 41 {
		t.Fatalf("NumFDs = %d, want 41", n)
	}
	p.Exit()
	if _, err := p.MapGetNextID(0); !errors.Is(err, unix.ENOENT) {
		t.Fatalf("after Exit, GET_NEXT_ID = %v, want ENOENT: every map freed", err)
	}
	if e.MemoryUsed() != 0 {
		t.Fatalf("memory still charged after every map was freed: %d", e.MemoryUsed())
	}
	_, err = p.MapCreate(&MapCreateAttr{MapType: objects.MapTypeHash, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	wantErrno(t, "create after exit", err, unix.EBADF)
}

// alive reports whether a map with the id exists, without keeping it alive.
func alive(e *Engine, id uint32) bool {
	m, ok := e.MapByID(id)
	if ok {
		m.Put()
	}
	return ok
}

func mustInfo(t *testing.T, p *Process, fd int) MapInfo {
	t.Helper()
	info, err := p.MapGetInfoByFD(fd)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// Ids are cyclic from 1 and a failed create consumes none (kernel-semantics.md b.5).
func TestIDsCyclicNeverReusedEarly(t *testing.T) {
	_, p := newProc(t, Config{})
	fd := mustCreate(t, p, hashAttr())
	if id := mustInfo(t, p, fd).ID; id != 1 {
		t.Fatalf("first id %d, want 1", id)
	}
	p.Close(fd)
	bad := hashAttr()
	bad.MapName = "bad-name"
	_, err := p.MapCreate(&bad)
	wantErrno(t, "bad name", err, unix.EINVAL)
	fd = mustCreate(t, p, hashAttr())
	if id := mustInfo(t, p, fd).ID; id != 2 {
		t.Fatalf("id after close and a failed create %d, want 2", id)
	}
	// Wrap-around skips live ids.
	var r idr
	r.last = idMax - 2
	o := &objects.Map{}
	id1, _ := r.alloc(o)
	id2, _ := r.alloc(o)
	id3, _ := r.alloc(o)
	if id1 != idMax-1 || id2 != 1 || id3 != 2 {
		t.Fatalf("wrap-around ids %d %d %d", id1, id2, id3)
	}
	r.free(id2)
	r.last = idMax - 1
	if id, _ := r.alloc(o); id != 1 {
		t.Fatalf("after wrap, free id 1 not reused: got %d", id)
	}
	if id, _ := r.alloc(o); id != 3 {
		t.Fatalf("live id 2 must be skipped: got %d", id)
	}
}

func TestGetNextIDAndFDByID(t *testing.T) {
	_, p := newProc(t, Config{})
	var ids []uint32
	for i := 0; i < 3; i++ {
		ids = append(ids, mustInfo(t, p, mustCreate(t, p, hashAttr())).ID)
	}
	var got []uint32
	for id := uint32(0); ; {
		next, err := p.MapGetNextID(id)
		if errors.Is(err, unix.ENOENT) {
			break
		}
		wantErrno(t, "next id", err, 0)
		got = append(got, next)
		id = next
	}
	if len(got) != 3 || got[0] != ids[0] || got[2] != ids[2] {
		t.Fatalf("walk %v, want %v", got, ids)
	}
	_, err := p.MapGetNextID(idMax)
	wantErrno(t, "start INT_MAX", err, unix.EINVAL)

	for _, c := range []struct {
		id    uint32
		flags uint32
		want  unix.Errno
	}{
		{0, 0, unix.ENOENT},
		{99, 0, unix.ENOENT},
		{ids[0], objects.FRdonly | objects.FWronly, unix.EINVAL},
		{ids[0], 1, unix.EINVAL},
		{ids[0], objects.FRdonly, 0},
	} {
		_, err := p.MapGetFDByID(c.id, c.flags)
		wantErrno(t, "get fd by id", err, c.want)
	}
	// A read-only fd from GET_FD_BY_ID cannot write.
	ro, _ := p.MapGetFDByID(ids[1], objects.FRdonly)
	wantErrno(t, "update through RDONLY fd", p.MapUpdateElem(ro, u32(1), u64(1), 0), unix.EPERM)
	wo, _ := p.MapGetFDByID(ids[1], objects.FWronly)
	wantErrno(t, "update through WRONLY fd", p.MapUpdateElem(wo, u32(1), u64(1), 0), 0)
	wantErrno(t, "lookup through WRONLY fd", p.MapLookupElem(wo, u32(1), make([]byte, 8), 0), unix.EPERM)
	wantErrno(t, "get_next_key through WRONLY fd", p.MapGetNextKey(wo, nil, make([]byte, 4)), unix.EPERM)
	wantErrno(t, "lookup_and_delete through RDONLY fd", p.MapLookupAndDeleteElem(ro, u32(1), make([]byte, 8), 0), unix.EPERM)
	wantErrno(t, "freeze through RDONLY fd", p.MapFreeze(ro), unix.EPERM)
}

func TestCapabilities(t *testing.T) {
	e := New(Config{})
	root := e.NewProcess(Root())
	defer root.Exit()
	fd := mustCreate(t, root, hashAttr())
	id := mustInfo(t, root, fd).ID

	nobody := e.NewProcess(Cred{UID: 65534, GID: 65534})
	defer nobody.Exit()
	_, err := nobody.MapCreate(&MapCreateAttr{MapType: objects.MapTypeHash, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	wantErrno(t, "create without CAP_BPF", err, unix.EPERM)

	bpfOnly := e.NewProcess(Cred{UID: 1000, Caps: CapBPF})
	defer bpfOnly.Exit()
	_, err = bpfOnly.MapGetNextID(0)
	wantErrno(t, "GET_NEXT_ID without CAP_SYS_ADMIN", err, unix.EPERM)
	_, err = bpfOnly.MapGetFDByID(id, 0)
	wantErrno(t, "GET_FD_BY_ID without CAP_SYS_ADMIN", err, unix.EPERM)
	z := hashAttr()
	z.MapFlags = objects.FZeroSeed
	_, err = bpfOnly.MapCreate(&z)
	wantErrno(t, "ZERO_SEED without CAP_SYS_ADMIN", err, unix.EPERM)
	mustCreate(t, bpfOnly, hashAttr())
}

func TestMemoryBudget(t *testing.T) {
	e, p := newProc(t, Config{MemoryLimit: 1 << 20})
	big := MapCreateAttr{MapType: objects.MapTypeArray, KeySize: 4, ValueSize: 1024, MaxEntries: 4096}
	_, err := p.MapCreate(&big)
	wantErrno(t, "4 MiB array in a 1 MiB budget", err, unix.ENOMEM)
	if e.MemoryUsed() != 0 {
		t.Fatalf("failed create left %d bytes charged", e.MemoryUsed())
	}
	small := MapCreateAttr{MapType: objects.MapTypeArray, KeySize: 4, ValueSize: 1024, MaxEntries: 256}
	fd := mustCreate(t, p, small)
	used := e.MemoryUsed()
	if used <= 0 || uint64(used) != mustInfo(t, p, fd).Memlock {
		t.Fatalf("charged %d, memlock %d", used, mustInfo(t, p, fd).Memlock)
	}
	_, err = p.MapCreate(&small)
	wantErrno(t, "second 256 KiB array", err, 0)
	var fds []int
	for {
		fd, err := p.MapCreate(&small)
		if err != nil {
			wantErrno(t, "filling the budget", err, unix.ENOMEM)
			break
		}
		fds = append(fds, fd)
	}
	p.Close(fds[0])
	mustCreate(t, p, small) // the freed map's memory is back in the budget
	// The daemon survives a create of the largest possible map.
	huge := MapCreateAttr{MapType: objects.MapTypeHash, KeySize: 512, ValueSize: 1 << 20, MaxEntries: 1 << 30}
	_, err = p.MapCreate(&huge)
	if !errors.Is(err, unix.ENOMEM) && !errors.Is(err, unix.E2BIG) {
		t.Fatalf("huge create: %v, want ENOMEM or E2BIG", err)
	}
}

func TestElementOpChecks(t *testing.T) {
	_, p := newProc(t, Config{})
	h := mustCreate(t, p, hashAttr())
	q := mustCreate(t, p, MapCreateAttr{MapType: objects.MapTypeQueue, ValueSize: 4, MaxEntries: 4})
	a := mustCreate(t, p, MapCreateAttr{MapType: objects.MapTypeArray, KeySize: 4, ValueSize: 8, MaxEntries: 4})
	v8 := make([]byte, 8)
	for _, c := range []struct {
		name string
		err  error
		want unix.Errno
	}{
		{"lookup bad fd", p.MapLookupElem(99, u32(1), v8, 0), unix.EBADF},
		{"lookup negative fd", p.MapLookupElem(-1, u32(1), v8, 0), unix.EBADF},
		{"lookup flags", p.MapLookupElem(h, u32(1), v8, 1), unix.EINVAL},
		{"lookup F_LOCK without spin lock", p.MapLookupElem(h, u32(1), v8, objects.FLock), unix.EINVAL},
		{"lookup NULL key", p.MapLookupElem(h, nil, v8, 0), unix.EFAULT},
		{"lookup short key", p.MapLookupElem(h, []byte{1}, v8, 0), unix.EFAULT},
		{"lookup short value", p.MapLookupElem(h, u32(1), v8[:4], 0), unix.EFAULT},
		{"lookup missing", p.MapLookupElem(h, u32(1), v8, 0), unix.ENOENT},
		{"update flags 3", p.MapUpdateElem(h, u32(1), v8, 3), unix.EINVAL},
		{"update flags 8", p.MapUpdateElem(h, u32(1), v8, 8), unix.EINVAL},
		{"update F_LOCK", p.MapUpdateElem(h, u32(1), v8, objects.FLock), unix.EINVAL},
		{"update EXIST missing", p.MapUpdateElem(h, u32(1), v8, objects.Exist), unix.ENOENT},
		{"queue key not NULL", p.MapUpdateElem(q, u32(1), u32(1), 0), unix.EINVAL},
		{"queue push", p.MapUpdateElem(q, nil, u32(5), 0), 0},
		{"queue pop flags", p.MapLookupAndDeleteElem(q, nil, make([]byte, 4), objects.FLock), unix.EINVAL},
		{"array lookup_and_delete", p.MapLookupAndDeleteElem(a, u32(0), v8, 0), objects.ENOTSUPP},
		{"array lookup_and_delete NULL key", p.MapLookupAndDeleteElem(a, nil, v8, 0), unix.EFAULT},
		{"delete NULL key", p.MapDeleteElem(h, nil), unix.EFAULT},
		{"get_next_key keyless with key", p.MapGetNextKey(q, u32(0), nil), unix.EINVAL},
		{"get_next_key empty", p.MapGetNextKey(h, nil, make([]byte, 4)), unix.ENOENT},
		{"get_next_key short next", p.MapGetNextKey(a, nil, make([]byte, 2)), unix.EFAULT},
		{"info bad fd", errOnly(p.MapGetInfoByFD(77)), unix.EBADFD},
	} {
		t.Run(c.name, func(t *testing.T) { wantErrno(t, c.name, c.err, c.want) })
	}
	out := make([]byte, 4)
	wantErrno(t, "pop", p.MapLookupAndDeleteElem(q, nil, out, 0), 0)
	if binary.LittleEndian.Uint32(out) != 5 {
		t.Fatalf("popped %v", out)
	}
}

func errOnly[T any](_ T, err error) error { return err }

func TestFreeze(t *testing.T) {
	_, p := newProc(t, Config{})
	h := mustCreate(t, p, hashAttr())
	wantErrno(t, "update", p.MapUpdateElem(h, u32(1), u64(1), 0), 0)
	wantErrno(t, "freeze", p.MapFreeze(h), 0)
	wantErrno(t, "freeze again", p.MapFreeze(h), unix.EPERM)
	wantErrno(t, "update frozen", p.MapUpdateElem(h, u32(2), u64(1), 0), unix.EPERM)
	wantErrno(t, "delete frozen", p.MapDeleteElem(h, u32(1)), unix.EPERM)
	wantErrno(t, "lookup_and_delete frozen", p.MapLookupAndDeleteElem(h, u32(1), make([]byte, 8), 0), unix.EPERM)
	wantErrno(t, "update_batch frozen", p.MapUpdateBatch(h, &MapBatchAttr{Keys: u32(3), Values: u64(3), Count: 1}), unix.EPERM)
	wantErrno(t, "lookup frozen", p.MapLookupElem(h, u32(1), make([]byte, 8), 0), 0)
	if !mustInfo(t, p, h).Frozen {
		t.Fatal("info does not say frozen")
	}
}

// Batch semantics of kernel-semantics.md c.6, on the examples observed on Linux.
func TestBatches(t *testing.T) {
	_, p := newProc(t, Config{})
	arr := mustCreate(t, p, MapCreateAttr{MapType: objects.MapTypeArray, KeySize: 4, ValueSize: 8, MaxEntries: 5})

	// array(5), count 2: keys 0,1 (out=1) → 2,3 (out=3) → 4 + ENOENT.
	var in []byte
	var seen []uint32
	wantSeq := []struct {
		n    uint32
		errn unix.Errno
	}{{2, 0}, {2, 0}, {1, unix.ENOENT}}
	for i, w := range wantSeq {
		b := &MapBatchAttr{InBatch: in, OutBatch: make([]byte, 4), Keys: make([]byte, 8), Values: make([]byte, 16), Count: 2}
		err := p.MapLookupBatch(arr, b)
		wantErrno(t, "array lookup batch", err, w.errn)
		if b.Count != w.n {
			t.Fatalf("step %d: count %d, want %d", i, b.Count, w.n)
		}
		for k := uint32(0); k < b.Count; k++ {
			seen = append(seen, binary.LittleEndian.Uint32(b.Keys[4*k:]))
		}
		in = b.OutBatch
	}
	if len(seen) != 5 || seen[4] != 4 {
		t.Fatalf("keys %v", seen)
	}
	// Update batch stops at the first error: [1, 7] into max 5 → E2BIG, count 1.
	b := &MapBatchAttr{Keys: append(u32(1), u32(7)...), Values: append(u64(10), u64(70)...), Count: 2}
	wantErrno(t, "array update batch", p.MapUpdateBatch(arr, b), unix.E2BIG)
	if b.Count != 1 {
		t.Fatalf("count %d, want 1", b.Count)
	}
	wantErrno(t, "update batch NOEXIST elem flag", p.MapUpdateBatch(arr, &MapBatchAttr{Keys: u32(1), Values: u64(1), Count: 1, ElemFlags: objects.NoExist}), unix.EINVAL)
	wantErrno(t, "array delete batch", p.MapDeleteBatch(arr, &MapBatchAttr{Keys: u32(1), Count: 1}), objects.ENOTSUPP)
	wantErrno(t, "array lookup_and_delete batch", p.MapLookupAndDeleteBatch(arr, &MapBatchAttr{Count: 1}), objects.ENOTSUPP)
	zero := &MapBatchAttr{Count: 0}
	wantErrno(t, "count 0", p.MapLookupBatch(arr, zero), 0)

	// Hash: a full walk in small batches returns every entry once; delete batch stops at
	// the first missing key.
	h := mustCreate(t, p, MapCreateAttr{MapType: objects.MapTypeHash, KeySize: 4, ValueSize: 8, MaxEntries: 64})
	for k := uint32(0); k < 40; k++ {
		wantErrno(t, "fill", p.MapUpdateElem(h, u32(k), u64(uint64(k)*3), 0), 0)
	}
	got := map[uint32]uint64{}
	in = nil
	for {
		b := &MapBatchAttr{InBatch: in, OutBatch: make([]byte, 4), Keys: make([]byte, 4*8), Values: make([]byte, 8*8), Count: 8}
		err := p.MapLookupAndDeleteBatch(h, b)
		for k := uint32(0); k < b.Count; k++ {
			key := binary.LittleEndian.Uint32(b.Keys[4*k:])
			if _, dup := got[key]; dup {
				t.Fatalf("key %d returned twice", key)
			}
			got[key] = binary.LittleEndian.Uint64(b.Values[8*k:])
		}
		if errors.Is(err, unix.ENOENT) {
			break
		}
		wantErrno(t, "hash batch", err, 0)
		in = b.OutBatch
	}
	if len(got) != 40 || got[39] != 117 {
		t.Fatalf("walk returned %d entries", len(got))
	}
	if err := p.MapGetNextKey(h, nil, make([]byte, 4)); !errors.Is(err, unix.ENOENT) {
		t.Fatalf("lookup_and_delete batch left entries: %v", err)
	}
	wantErrno(t, "htab batch flags", p.MapLookupBatch(h, &MapBatchAttr{Count: 1, Flags: 1, OutBatch: make([]byte, 4)}), unix.EINVAL)
	for k := uint32(0); k < 3; k++ {
		p.MapUpdateElem(h, u32(k), u64(1), 0)
	}
	b = &MapBatchAttr{Keys: append(append(u32(1), u32(99)...), u32(2)...), Count: 3}
	wantErrno(t, "delete batch [1,99,2]", p.MapDeleteBatch(h, b), unix.ENOENT)
	if b.Count != 1 {
		t.Fatalf("delete batch count %d, want 1", b.Count)
	}
	q := mustCreate(t, p, MapCreateAttr{MapType: objects.MapTypeQueue, ValueSize: 4, MaxEntries: 4})
	wantErrno(t, "queue lookup batch", p.MapLookupBatch(q, &MapBatchAttr{Count: 1}), objects.ENOTSUPP)
}

// Map-in-map: an inner map lives while a slot holds it and its id goes when the slot is emptied
// (kernel-semantics.md b.1).
func TestMapInMapReferences(t *testing.T) {
	e, p := newProc(t, Config{})
	_, err := p.MapCreate(&MapCreateAttr{MapType: objects.MapTypeArrayOfMaps, KeySize: 4, ValueSize: 4, MaxEntries: 2, InnerMapFD: 42})
	wantErrno(t, "bad inner fd", err, unix.EBADF)
	inner := mustCreate(t, p, MapCreateAttr{MapType: objects.MapTypeArray, KeySize: 4, ValueSize: 8, MaxEntries: 3})
	outer := mustCreate(t, p, MapCreateAttr{MapType: objects.MapTypeArrayOfMaps, KeySize: 4, ValueSize: 4, MaxEntries: 2, InnerMapFD: uint32(inner)})
	innerID := mustInfo(t, p, inner).ID
	wantErrno(t, "slot update", p.MapUpdateElem(outer, u32(0), u32(uint32(inner)), 0), 0)
	p.Close(inner)
	if !alive(e, innerID) {
		t.Fatal("inner map freed while a slot holds it")
	}
	out := make([]byte, 4)
	wantErrno(t, "slot lookup", p.MapLookupElem(outer, u32(0), out, 0), 0)
	if binary.LittleEndian.Uint32(out) != innerID {
		t.Fatalf("slot holds id %d, want %d", binary.LittleEndian.Uint32(out), innerID)
	}
	wantErrno(t, "slot delete", p.MapDeleteElem(outer, u32(0)), 0)
	if alive(e, innerID) {
		t.Fatal("inner map id still present after its slot was emptied")
	}
	wantErrno(t, "update with a closed fd", p.MapUpdateElem(outer, u32(0), u32(uint32(inner)), 0), unix.EBADF)
}

// Many goroutines creating, using and closing maps on one process: fds stay consistent and
// every map is freed.
func TestConcurrentProcess(t *testing.T) {
	e, p := newProc(t, Config{})
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				fd, err := p.MapCreate(&MapCreateAttr{MapType: objects.MapTypeHash, KeySize: 4, ValueSize: 8, MaxEntries: 4})
				if err != nil {
					t.Error(err)
					return
				}
				if err := p.MapUpdateElem(fd, u32(uint32(i)), u64(1), 0); err != nil {
					t.Error(err)
				}
				if _, err := p.MapGetNextID(0); err != nil {
					t.Error(err)
				}
				if err := p.Close(fd); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if n := p.NumFDs(); n != 0 {
		t.Fatalf("%d fds left", n)
	}
	if _, ok := e.maps.nextID(0); ok {
		t.Fatal("maps left after every fd closed")
	}
}

// A process with stdio open gets BPF fds from 3, and fd 0 is a file that is not a map.
func TestOpenStdio(t *testing.T) {
	_, p := newProc(t, Config{})
	p.OpenStdio()
	fd := mustCreate(t, p, hashAttr())
	if fd != 3 {
		t.Fatalf("first map fd %d, want 3", fd)
	}
	_, err := p.MapCreate(&MapCreateAttr{MapType: objects.MapTypeArrayOfMaps, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	wantErrno(t, "map-in-map with inner_map_fd 0 (stdin)", err, unix.EINVAL)
	wantErrno(t, "lookup on stdin", p.MapLookupElem(0, u32(1), make([]byte, 8), 0), unix.EINVAL)
	_, err = p.MapGetInfoByFD(1)
	wantErrno(t, "info of stdout", err, unix.EINVAL)
	wantErrno(t, "close stderr", p.Close(2), 0)
	if fd := mustCreate(t, p, hashAttr()); fd != 2 {
		t.Fatalf("fd after closing stderr %d, want 2", fd)
	}
}
