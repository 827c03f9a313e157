package text

import "github.com/bpffs-fuse/bpffs-fuse/objects"

// Shape is what the codec needs to know about a map: its type and sizes. It mirrors the fields
// of objects.Map so that the codec can be used (and tested) without a map; ShapeOf takes them
// from one.
type Shape struct {
	Type       objects.MapType
	KeySize    int
	ValueSize  int
	MaxEntries uint32
	// NumCPUs is num_possible_cpus(), the number of slots of a per-CPU value; 0 means 1.
	NumCPUs int
	// Name is the map's name, shown in the header line; it may be empty.
	Name string
}

// ShapeOf returns the shape of m.
func ShapeOf(m *objects.Map) Shape {
	return Shape{
		Type:       m.Type,
		KeySize:    int(m.KeySize),
		ValueSize:  int(m.ValueSize),
		MaxEntries: m.MaxEntries,
		NumCPUs:    m.NumCPUs,
		Name:       m.Name,
	}
}

// Percpu reports whether values carry one slot per possible CPU (objects.Map.IsPercpu).
func (s Shape) Percpu() bool {
	switch s.Type {
	case objects.MapTypePercpuHash, objects.MapTypeLRUPercpuHash, objects.MapTypePercpuArray,
		objects.MapTypePercpuCgroupStorage:
		return true
	}
	return false
}

// FdMap reports whether values are objects: file descriptors in bpf(2), ids in text
// (objects.Map.IsFdMap: prog_array, array_of_maps, hash_of_maps).
func (s Shape) FdMap() bool {
	switch s.Type {
	case objects.MapTypeProgArray, objects.MapTypeArrayOfMaps, objects.MapTypeHashOfMaps:
		return true
	}
	return false
}

// Keyless reports whether the map takes no key (queue, stack, bloom filter, ring buffers).
func (s Shape) Keyless() bool { return s.KeySize == 0 }

// CPUs returns the number of per-CPU slots of a value: NumCPUs for per-CPU maps (at least 1),
// 1 otherwise.
func (s Shape) CPUs() int {
	if !s.Percpu() || s.NumCPUs < 1 {
		return 1
	}
	return s.NumCPUs
}

// Stride is the distance between two CPUs' slots in a per-CPU value buffer:
// round_up(value_size, 8), as kernel/bpf/syscall.c:bpf_map_value_size lays them out.
func (s Shape) Stride() int { return (s.ValueSize + 7) &^ 7 }

// ValueBufSize is the size of the value buffer bpf(2) exchanges
// (kernel/bpf/syscall.c:bpf_map_value_size, objects.Map.ValueBufSize): round_up(value_size, 8)
// per possible CPU for per-CPU maps, 4 (a u32 fd or id) for fd maps, value_size otherwise.
func (s Shape) ValueBufSize() int {
	switch {
	case s.Percpu():
		return s.Stride() * s.CPUs()
	case s.FdMap():
		return 4
	}
	return s.ValueSize
}

// Listable reports whether the map's elements can be listed; when they cannot, reason says why
// (it is what the header line shows).
func (s Shape) Listable() (ok bool, reason string) {
	switch s.Type {
	case objects.MapTypeBloomFilter:
		return false, "a bloom filter only answers membership queries; add values with push VALUE"
	case objects.MapTypeRingbuf, objects.MapTypeUserRingbuf:
		return false, "a ring buffer's records are consumed through mmap, not listed"
	case objects.MapTypeArena:
		return false, "an arena is memory mapped, not keyed"
	}
	return true, ""
}

// Writable reports whether text lines can change the map; when they cannot, reason says why.
// Whether a particular operation succeeds (delete on an array, update of a frozen map) is the
// engine's to decide when the operation is applied.
func (s Shape) Writable() (ok bool, reason string) {
	switch s.Type {
	case objects.MapTypeRingbuf, objects.MapTypeUserRingbuf:
		return false, s.Type.String() + " maps cannot be written as text: records are produced through mmap"
	case objects.MapTypeArena:
		return false, "arena maps cannot be written as text: they are memory mapped"
	}
	return true, ""
}
