package objects

import (
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

const arrayCreateFlags = FNumaNode | FMmapable | accessFlagsMask | FPreserveElems | FInnerMap

var (
	errArrayRange   = fmt.Errorf("index out of range: %w", unix.E2BIG)
	errArrayNoExist = fmt.Errorf("array elements always exist (BPF_NOEXIST): %w", unix.EEXIST)
	errArrayDelete  = fmt.Errorf("array elements cannot be deleted: %w", unix.EINVAL)
	errNotSupp      = fmt.Errorf("operation not supported by this map type: %w", ENOTSUPP)
)

func init() {
	for _, t := range []MapType{MapTypeArray, MapTypePercpuArray} {
		registerMapType(t, &mapType{allocCheck: arrayAllocCheck, alloc: arrayAlloc, memUsage: arrayMemUsage})
	}
	registerMapType(MapTypeProgArray, &mapType{allocCheck: fdArrayAllocCheck, alloc: progArrayAlloc, memUsage: arrayMemUsage})
}

// arrayAllocCheck is kernel/bpf/arraymap.c:array_map_alloc_check.
func arrayAllocCheck(attr *MapAttr) error {
	percpu := attr.MapType == MapTypePercpuArray
	numa := numaNode(attr) // bpf_map_attr_numa_node(attr) != NUMA_NO_NODE
	switch {
	case attr.MaxEntries == 0 || attr.KeySize != 4 || attr.ValueSize == 0 ||
		attr.MapFlags&^arrayCreateFlags != 0 || !flagsAccessOK(attr.MapFlags) || percpu && numa:
		return fmt.Errorf("%s needs key_size 4, value_size > 0, max_entries > 0 and valid flags: %w",
			attr.MapType, unix.EINVAL)
	case attr.MapType != MapTypeArray && attr.MapFlags&(FMmapable|FInnerMap) != 0:
		return fmt.Errorf("BPF_F_MMAPABLE and BPF_F_INNER_MAP are only for array maps: %w", unix.EINVAL)
	case attr.MapType != MapTypePerfEventArray && attr.MapFlags&FPreserveElems != 0:
		return fmt.Errorf("BPF_F_PRESERVE_ELEMS is only for perf_event_array maps: %w", unix.EINVAL)
	case attr.ValueSize > 1<<31-1:
		return fmt.Errorf("value_size too large: %w", unix.E2BIG)
	case percpu && roundUp8(int(attr.ValueSize)) > pcpuMinUnitSize:
		return fmt.Errorf("per-CPU value_size larger than %d: %w", pcpuMinUnitSize, unix.E2BIG)
	}
	return nil
}

// fdArrayAllocCheck is kernel/bpf/arraymap.c:fd_array_map_alloc_check.
func fdArrayAllocCheck(attr *MapAttr) error {
	if attr.ValueSize != 4 {
		return fmt.Errorf("%s value_size must be 4: %w", attr.MapType, unix.EINVAL)
	}
	if attr.MapFlags&(FRdonlyProg|FWronlyProg) != 0 {
		return fmt.Errorf("BPF_F_RDONLY_PROG/WRONLY_PROG not supported for %s: %w", attr.MapType, unix.EINVAL)
	}
	return arrayAllocCheck(attr)
}

func arrayMemUsage(m *Map) uint64 {
	return 320 + uint64(m.MaxEntries)*uint64(roundUp8(m.ValueBufSize()))
}

// array stores max_entries zero-filled values back to back, each round_up(value_size, 8)
// bytes (per-CPU: one such slot per CPU), as kernel/bpf/arraymap.c does.
type array struct {
	m        *Map
	max      uint32
	elemSize int // stride
	valSize  int // bytes copied in and out
	data     []byte
	locks    [64]sync.RWMutex
}

// arrayAlloc is kernel/bpf/arraymap.c:array_map_alloc.
func arrayAlloc(m *Map, attr *MapAttr) (mapOps, error) {
	return newArray(m), nil
}

func newArray(m *Map) *array {
	a := &array{m: m, max: m.MaxEntries, valSize: m.ValueBufSize()}
	a.elemSize = roundUp8(a.valSize)
	a.data = make([]byte, uint64(a.max)*uint64(a.elemSize))
	return a
}

func arrayIndex(key []byte) uint32 { return getU32(key) }

func (a *array) slot(i uint32) []byte {
	o := int(i) * a.elemSize
	return a.data[o : o+a.valSize : o+a.valSize]
}

func (a *array) lookup(key, value []byte) error {
	i := arrayIndex(key)
	if i >= a.max {
		return errNoEnt
	}
	l := &a.locks[i&63]
	l.RLock()
	copy(value, a.slot(i))
	l.RUnlock()
	return nil
}

// update is kernel/bpf/arraymap.c:array_map_update_elem (bpf_percpu_array_update for per-CPU):
// flags, then the index (E2BIG), then NOEXIST (EEXIST: elements always exist).
func (a *array) update(key, value []byte, flags uint64) error {
	if flags&^FLock > Exist {
		return errBadFlags
	}
	i := arrayIndex(key)
	if i >= a.max {
		return errArrayRange
	}
	if flags&NoExist != 0 {
		return errArrayNoExist
	}
	l := &a.locks[i&63]
	l.Lock()
	copy(a.slot(i), value)
	l.Unlock()
	return nil
}

func (a *array) delete(key []byte) error { return errArrayDelete }

func (a *array) lookupAndDelete(key, value []byte, flags uint64) error { return errNotSupp }

// getNextKey is kernel/bpf/arraymap.c:array_map_get_next_key.
func (a *array) getNextKey(key, next []byte) error {
	if key == nil || arrayIndex(key) >= a.max {
		putU32(next, 0)
		return nil
	}
	i := arrayIndex(key)
	if i == a.max-1 {
		return errNoNext
	}
	putU32(next, i+1)
	return nil
}

func (a *array) count() int { return int(a.max) }
func (a *array) free()      {}

// progArray is BPF_MAP_TYPE_PROG_ARRAY (kernel/bpf/arraymap.c, prog_array_map_ops): slots hold
// programs; lookups return program ids.
type progArray struct {
	m     *Map
	mu    sync.RWMutex
	slots []Object
	n     int
}

// ProgObject is implemented by programs; prog_array slots accept only these.
type ProgObject interface {
	Object
	// ProgArrayOwner returns what kernel/bpf/core.c:__bpf_prog_map_compatible compares (the
	// program type, jited, ...); the engine records and checks it.
	ProgArrayOwner() any
}

func progArrayAlloc(m *Map, attr *MapAttr) (mapOps, error) {
	p := &progArray{m: m, slots: make([]Object, m.MaxEntries)}
	// kernel/bpf/arraymap.c:prog_array_map_clear runs when the last user reference goes.
	m.OnUserRelease = p.clear
	return p, nil
}

func (p *progArray) lookup(key, value []byte) error {
	i := arrayIndex(key)
	if i >= uint32(len(p.slots)) {
		return errNoEnt
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.slots[i] == nil {
		return errNoEnt
	}
	putU32(value, p.slots[i].ID())
	return nil
}

func (p *progArray) update(key, value []byte, flags uint64) error {
	return fmt.Errorf("prog_array values are program fds: %w", unix.EINVAL)
}

// updateObject is kernel/bpf/arraymap.c:bpf_fd_array_map_update_elem with
// prog_fd_array_get_ptr: flags must be ANY, then the index, then the fd must be a program.
func (p *progArray) updateObject(key, value []byte, flags uint64, resolve Resolver) error {
	if flags != Any {
		return fmt.Errorf("prog_array updates take BPF_ANY only: %w", unix.EINVAL)
	}
	i := arrayIndex(key)
	if i >= uint32(len(p.slots)) {
		return errArrayRange
	}
	obj, err := resolve(getU32(value))
	if err != nil {
		return err
	}
	prog, ok := obj.(ProgObject)
	if !ok {
		obj.Put()
		return fmt.Errorf("fd %d is not a BPF program: %w", getU32(value), unix.EINVAL)
	}
	p.mu.Lock()
	old := p.slots[i]
	p.slots[i] = prog
	if old == nil {
		p.n++
	}
	p.mu.Unlock()
	if old != nil {
		old.Put()
	}
	return nil
}

// delete is kernel/bpf/arraymap.c:fd_array_map_delete_elem: out of range E2BIG, empty ENOENT.
func (p *progArray) delete(key []byte) error {
	i := arrayIndex(key)
	if i >= uint32(len(p.slots)) {
		return errArrayRange
	}
	p.mu.Lock()
	old := p.slots[i]
	p.slots[i] = nil
	if old != nil {
		p.n--
	}
	p.mu.Unlock()
	if old == nil {
		return errNoEnt
	}
	old.Put()
	return nil
}

func (p *progArray) lookupAndDelete(key, value []byte, flags uint64) error { return errNotSupp }

func (p *progArray) getNextKey(key, next []byte) error {
	max := uint32(len(p.slots))
	if key == nil || arrayIndex(key) >= max {
		putU32(next, 0)
		return nil
	}
	i := arrayIndex(key)
	if i == max-1 {
		return errNoNext
	}
	putU32(next, i+1)
	return nil
}

func (p *progArray) count() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.n
}

func (p *progArray) clear() {
	p.mu.Lock()
	old := make([]Object, 0, p.n)
	for i, o := range p.slots {
		if o != nil {
			old = append(old, o)
			p.slots[i] = nil
		}
	}
	p.n = 0
	p.mu.Unlock()
	for _, o := range old {
		o.Put()
	}
}

func (p *progArray) free() { p.clear() }
