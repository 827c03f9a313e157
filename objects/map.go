package objects

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// MapAttr is the part of union bpf_attr that BPF_MAP_CREATE reads, after the engine has
// resolved file descriptors (inner_map_fd) into objects.
type MapAttr struct {
	MapType    MapType
	KeySize    uint32
	ValueSize  uint32
	MaxEntries uint32
	MapFlags   uint32
	NumaNode   uint32
	MapName    string
	MapExtra   uint64
	// Inner is the map behind inner_map_fd (nil when the attr had none); only map-in-map
	// types use it, as the template every slot must match.
	Inner *Map
	// InnerErr is the error resolving inner_map_fd produced (EBADF, EINVAL); it is reported
	// where the kernel would report it, inside the type's map_alloc.
	InnerErr error
	// Capable tells whether the creator has CAP_SYS_ADMIN (ZERO_SEED needs it).
	Capable bool
	// NumPossibleCPUs is num_possible_cpus(): the number of slots of a per-CPU value.
	NumPossibleCPUs int
}

// mapOps is what each map type implements (the kernel's struct bpf_map_ops, reduced to the
// syscall-side operations). Key and value slices are exactly KeySize and ValueBufSize bytes;
// keyless maps (queue, stack, bloom) get a nil key.
type mapOps interface {
	lookup(key, value []byte) error
	update(key, value []byte, flags uint64) error
	delete(key []byte) error
	getNextKey(key, next []byte) error
	lookupAndDelete(key, value []byte, flags uint64) error
	// count is the number of elements present (for cur_entries and listings).
	count() int
	// free drops every reference the map holds (map-in-map slots, programs).
	free()
}

// mapType describes one map type: the kernel's map_alloc_check and map_alloc.
type mapType struct {
	// allocCheck validates attr (ops->map_alloc_check); errors are returned as is.
	allocCheck func(attr *MapAttr) error
	// allocAttrCheck holds the checks at the start of ops->map_alloc, made before the
	// kernel allocates anything (types without map_alloc_check, such as lpm_trie, bloom_filter
	// and ringbuf, check their attributes there; map-in-map resolves its inner map there).
	// NewMap runs it before charging memory, so that a bad attr gives the kernel's errno
	// rather than ENOMEM.
	allocAttrCheck func(attr *MapAttr) error
	// alloc builds the map (ops->map_alloc). It may adjust m.MaxEntries.
	alloc func(m *Map, attr *MapAttr) (mapOps, error)
	// memUsage estimates the bytes charged to the memory budget (ops->map_mem_usage).
	memUsage func(m *Map) uint64
}

var mapTypes = map[MapType]*mapType{}

func registerMapType(t MapType, mt *mapType) {
	if _, dup := mapTypes[t]; dup {
		panic("objects: map type registered twice: " + t.String())
	}
	mapTypes[t] = mt
}

// Supported reports whether the engine implements map type t.
func Supported(t MapType) bool { _, ok := mapTypes[t]; return ok }

// Map is a BPF map: its attributes, its elements and its reference counts.
type Map struct {
	Ref

	Type       MapType
	KeySize    uint32
	ValueSize  uint32
	MaxEntries uint32
	// Flags are the permanent map_flags (BPF_F_RDONLY and BPF_F_WRONLY dropped, as
	// bpf_map_flags_retain_permanent does).
	Flags     uint32
	Extra     uint64
	Name      string
	NumCPUs   int
	id        atomic.Uint32
	frozen    atomic.Bool
	ops       mapOps
	memlock   uint64
	innerMeta *Map // map-in-map: the template inner map's attributes (refcount not held)
}

// numaNoNode is NUMA_NO_NODE (-1) as a u32 numa_node.
const numaNoNode = 0xffffffff

// numaNode reports whether attr names a NUMA node (include/linux/bpf.h:bpf_map_attr_numa_node
// returns something other than NUMA_NO_NODE): BPF_F_NUMA_NODE with a numa_node other than -1.
func numaNode(attr *MapAttr) bool {
	return attr.MapFlags&FNumaNode != 0 && attr.NumaNode != numaNoNode
}

// Validate runs the checks BPF_MAP_CREATE makes before allocating, in the kernel's order
// (kernel/bpf/syscall.c:map_create, steps 2-6 of kernel-semantics.md c.1). The engine runs the
// attr-tail and permission checks around it.
func Validate(attr *MapAttr) error {
	if attr.MapType != MapTypeBloomFilter && attr.MapType != MapTypeArena && attr.MapExtra != 0 {
		return fmt.Errorf("map_extra is only for bloom_filter and arena maps: %w", unix.EINVAL)
	}
	if attr.MapFlags&FRdonly != 0 && attr.MapFlags&FWronly != 0 {
		return fmt.Errorf("BPF_F_RDONLY and BPF_F_WRONLY together: %w", unix.EINVAL)
	}
	if attr.MapFlags&FNumaNode != 0 && attr.NumaNode != 0 && attr.NumaNode != numaNoNode {
		// One NUMA node (0) is modelled; NUMA_NO_NODE (-1) means "any node", as in
		// kernel/bpf/syscall.c:map_create.
		return fmt.Errorf("numa node %d is not online: %w", attr.NumaNode, unix.EINVAL)
	}
	mt, ok := mapTypes[attr.MapType]
	if !ok {
		if _, known := mapTypeNames[attr.MapType]; known && attr.MapType != MapTypeUnspec {
			return fmt.Errorf("map type %s is not supported yet: %w", attr.MapType, unix.EOPNOTSUPP)
		}
		return fmt.Errorf("unknown map type %d: %w", uint32(attr.MapType), unix.EINVAL)
	}
	if mt.allocCheck != nil {
		if err := mt.allocCheck(attr); err != nil {
			return err
		}
	}
	return nil
}

// NewMap validates attr and builds the map (Validate, then ops->map_alloc, then the name
// check, as kernel/bpf/syscall.c:map_create orders them). The map starts with one user
// reference, for the fd the engine is about to install. charge is called with the bytes the map
// will use before anything large is allocated (and with the negated amount to give them back
// if the create fails later); an error from it (ENOMEM) aborts the create.
func NewMap(attr *MapAttr, charge func(delta int64) error) (*Map, error) {
	if err := Validate(attr); err != nil {
		return nil, err
	}
	mt := mapTypes[attr.MapType]
	if mt.allocAttrCheck != nil {
		if err := mt.allocAttrCheck(attr); err != nil {
			return nil, err
		}
	}
	ncpu := attr.NumPossibleCPUs
	if ncpu < 1 {
		ncpu = 1
	}
	m := &Map{
		Type:       attr.MapType,
		KeySize:    attr.KeySize,
		ValueSize:  attr.ValueSize,
		MaxEntries: attr.MaxEntries,
		Flags:      attr.MapFlags &^ (FRdonly | FWronly),
		Extra:      attr.MapExtra,
		NumCPUs:    ncpu,
	}
	// The charge comes before map_alloc so that a huge map fails with ENOMEM instead of
	// being allocated; the kernel charges memcg during the allocation itself.
	if mt.memUsage != nil && charge != nil {
		m.memlock = mt.memUsage(m)
		if err := charge(int64(m.memlock)); err != nil {
			return nil, err
		}
	}
	ops, err := mt.alloc(m, attr)
	if err != nil {
		if charge != nil && m.memlock != 0 {
			_ = charge(-int64(m.memlock))
		}
		return nil, err
	}
	m.ops = ops
	if err := checkObjName(attr.MapName); err != nil {
		ops.free()
		if charge != nil && m.memlock != 0 {
			_ = charge(-int64(m.memlock))
		}
		return nil, err
	}
	m.Name = attr.MapName
	m.Init()
	return m, nil
}

// checkObjName implements kernel/bpf/syscall.c:bpf_obj_name_cpy: only [A-Za-z0-9_.], at most
// 15 bytes.
func checkObjName(name string) error {
	if len(name) >= MaxNameLen {
		return fmt.Errorf("name %q longer than %d bytes: %w", name, MaxNameLen-1, unix.EINVAL)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.') {
			return fmt.Errorf("name %q: only letters, digits, '_' and '.' are allowed: %w", name, unix.EINVAL)
		}
	}
	return nil
}

// ID returns the map's id (0 until the engine assigns one).
func (m *Map) ID() uint32 { return m.id.Load() }

// SetID records the id the engine allocated.
func (m *Map) SetID(id uint32) { m.id.Store(id) }

// Frozen reports whether BPF_MAP_FREEZE has been applied.
func (m *Map) Frozen() bool { return m.frozen.Load() }

// Freeze marks the map frozen; it reports false if it already was.
func (m *Map) Freeze() bool { return m.frozen.CompareAndSwap(false, true) }

// Memlock is the number of bytes charged for the map (bpftool's memlock).
func (m *Map) Memlock() uint64 { return m.memlock }

// Len is the number of elements currently in the map.
func (m *Map) Len() int { return m.ops.count() }

// InnerMeta returns the template of a map-in-map's inner maps, or nil.
func (m *Map) InnerMeta() *Map { return m.innerMeta }

// IsPercpu reports whether values carry one slot per possible CPU.
func (m *Map) IsPercpu() bool {
	switch m.Type {
	case MapTypePercpuHash, MapTypeLRUPercpuHash, MapTypePercpuArray, MapTypePercpuCgroupStorage:
		return true
	}
	return false
}

// IsFdMap reports whether values are file descriptors in and ids out (prog_array and
// maps-of-maps).
func (m *Map) IsFdMap() bool {
	switch m.Type {
	case MapTypeProgArray, MapTypeArrayOfMaps, MapTypeHashOfMaps:
		return true
	}
	return false
}

// Keyless reports whether the map takes no key (queue, stack, bloom filter, ringbuf).
func (m *Map) Keyless() bool { return m.KeySize == 0 }

// ValueBufSize is the size of the value buffer user space passes
// (kernel/bpf/syscall.c:bpf_map_value_size): round_up(value_size, 8) * possible CPUs for per-CPU
// maps, 4 for fd maps, value_size otherwise.
func (m *Map) ValueBufSize() int {
	switch {
	case m.IsPercpu():
		return roundUp8(int(m.ValueSize)) * m.NumCPUs
	case m.IsFdMap():
		return 4
	}
	return int(m.ValueSize)
}

func roundUp8(n int) int { return (n + 7) &^ 7 }

// Lookup copies the value of key into value (len ValueBufSize). For queue and stack it peeks;
// for a bloom filter value is the input whose membership is tested.
func (m *Map) Lookup(key, value []byte) error { return m.ops.lookup(key, value) }

// Update writes key's value with the BPF_ANY/NOEXIST/EXIST flags; for queue, stack and bloom
// it pushes. Fd maps take the object through UpdateObject instead.
func (m *Map) Update(key, value []byte, flags uint64) error { return m.ops.update(key, value, flags) }

// Delete removes key.
func (m *Map) Delete(key []byte) error { return m.ops.delete(key) }

// GetNextKey writes the key following key (nil: the first key) into next.
func (m *Map) GetNextKey(key, next []byte) error { return m.ops.getNextKey(key, next) }

// LookupAndDelete copies key's value and removes it (pop for queue and stack).
func (m *Map) LookupAndDelete(key, value []byte, flags uint64) error {
	return m.ops.lookupAndDelete(key, value, flags)
}

// Release drops the references the map's elements hold; the engine calls it once, when the
// map's last reference is gone.
func (m *Map) Release() { m.ops.free() }

// Object is what every BPF object (map, program, link, BTF) offers to holders of references.
type Object interface {
	ID() uint32
	// Inc and Put take and drop a kernel-internal reference (bpf_map_inc, bpf_map_put).
	Inc()
	Put()
	// IncUser and PutUser take and drop a user reference: fds and pins hold these
	// (bpf_map_inc_with_uref, bpf_map_put_with_uref).
	IncUser()
	PutUser()
	// TryInc and TryIncUser take a reference unless the object is already dead
	// (bpf_map_inc_not_zero).
	TryInc() bool
	TryIncUser() bool
}

// Resolver turns a file descriptor into the object behind it, with one reference (Inc) that the
// caller now owns. A closed fd gives EBADF.
type Resolver func(fd uint32) (Object, error)

// objectUpdater is implemented by maps whose values are objects (prog_array, maps-of-maps):
// value holds a u32 fd, which the map resolves at the point the kernel does (after its flag and
// index checks).
type objectUpdater interface {
	updateObject(key, value []byte, flags uint64, resolve Resolver) error
}

// UpdateObject stores the object behind the fd in value (a u32) in an fd map's slot
// (kernel/bpf/arraymap.c:bpf_fd_array_map_update_elem, hashtab.c:bpf_fd_htab_map_update_elem).
func (m *Map) UpdateObject(key, value []byte, flags uint64, resolve Resolver) error {
	u, ok := m.ops.(objectUpdater)
	if !ok {
		return fmt.Errorf("map type %s holds no objects: %w", m.Type, unix.EINVAL)
	}
	return u.updateObject(key, value, flags, resolve)
}

// BucketBatcher is implemented by hash maps, whose batch lookups walk buckets
// (kernel/bpf/hashtab.c:__htab_map_lookup_and_delete_batch).
type BucketBatcher interface {
	// LookupBatch copies whole buckets starting at bucket into keys and values (count
	// elements at most) and returns how many it copied and the next bucket to visit.
	LookupBatch(bucket uint32, keys, values []byte, count int, del bool) (n int, next uint32, err error)
}

// Batcher returns the map's bucket batcher, if it has one.
func (m *Map) Batcher() (BucketBatcher, bool) {
	b, ok := m.ops.(BucketBatcher)
	return b, ok
}

// errnoOf is a small helper for type files: it wraps e with the operation's context.
func errnoOf(op string, e unix.Errno) error { return fmt.Errorf("%s: %w", op, e) }

// randomU32 is the kernel's get_random_u32, which seeds hash tables and bloom filters. It asks
// getrandom(2) directly rather than through crypto/rand, whose package initialization (the
// FIPS 140 module's self-registration) would add to the start-up of every program that
// imports this package, the CLI among them.
func randomU32() uint32 {
	var b [4]byte
	for {
		n, err := unix.Getrandom(b[:], 0)
		if err == nil && n == len(b) {
			return binary.LittleEndian.Uint32(b[:])
		}
		if err != nil && err != unix.EINTR {
			// getrandom(2) without GRND_NONBLOCK only fails on kernels before 3.17;
			// a fixed seed is still a correct (if predictable) hash seed.
			return 0x9e3779b9
		}
	}
}
