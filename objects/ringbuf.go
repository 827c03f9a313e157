package objects

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// BPF_MAP_TYPE_RINGBUF (kernel/bpf/ringbuf.c). Only the object and its syscall-side element
// operations exist so far; records move through mmap and epoll, which come with the data path.

const (
	ringbufCreateFlags = FNumaNode
	pageSize           = 4096
	// ringbufMetaPages is RINGBUF_NR_META_PAGES: the non-mmapable header page plus the
	// consumer and producer pages.
	ringbufMetaPages = 3
)

var errRingbufOp = fmt.Errorf("ring buffers have no elements: %w", ENOTSUPP)

func init() {
	registerMapType(MapTypeRingbuf, &mapType{allocAttrCheck: ringbufAllocCheck, alloc: ringbufAlloc, memUsage: ringbufMemUsage})
}

// ringbufAllocCheck is the attribute check of kernel/bpf/ringbuf.c:ringbuf_map_alloc: only
// BPF_F_NUMA_NODE is accepted (so even BPF_F_RDONLY and BPF_F_WRONLY are EINVAL), key and value
// sizes must be 0, and max_entries, the data size in bytes, must be a power of two and a
// multiple of the page size. The kernel's E2BIG for more than RINGBUF_MAX_DATA_SZ (about 64 GiB)
// cannot happen with a u32 max_entries on a 64-bit host.
func ringbufAllocCheck(attr *MapAttr) error {
	if attr.MapFlags&^ringbufCreateFlags != 0 {
		return fmt.Errorf("ringbuf map_flags %#x: only BPF_F_NUMA_NODE is allowed: %w", attr.MapFlags, unix.EINVAL)
	}
	if attr.KeySize != 0 || attr.ValueSize != 0 ||
		attr.MaxEntries == 0 || attr.MaxEntries&(attr.MaxEntries-1) != 0 || attr.MaxEntries%pageSize != 0 {
		return fmt.Errorf("ringbuf needs key_size 0, value_size 0 and max_entries a power of 2 and a multiple of %d: %w",
			pageSize, unix.EINVAL)
	}
	return nil
}

// ringbufMemUsage is kernel/bpf/ringbuf.c:ringbuf_map_mem_usage: the pages plus the page array
// that maps the data pages twice.
func ringbufMemUsage(m *Map) uint64 {
	dataPages := uint64(m.MaxEntries) / pageSize
	return 64 + (ringbufMetaPages+dataPages)*pageSize + (ringbufMetaPages+2*dataPages)*8
}

// ringbuf is struct bpf_ringbuf_map, without its data area for now.
type ringbuf struct {
	size uint32
}

// ringbufAlloc is kernel/bpf/ringbuf.c:ringbuf_map_alloc.
func ringbufAlloc(m *Map, attr *MapAttr) (mapOps, error) {
	return &ringbuf{size: attr.MaxEntries}, nil
}

// lookup is kernel/bpf/ringbuf.c:ringbuf_map_lookup_elem. (A non-NULL key is EINVAL earlier,
// in the syscall's key_size 0 check, which the engine makes.)
func (r *ringbuf) lookup(key, value []byte) error { return errRingbufOp }

// update is kernel/bpf/ringbuf.c:ringbuf_map_update_elem.
func (r *ringbuf) update(key, value []byte, flags uint64) error { return errRingbufOp }

// delete is kernel/bpf/ringbuf.c:ringbuf_map_delete_elem.
func (r *ringbuf) delete(key []byte) error { return errRingbufOp }

// getNextKey is kernel/bpf/ringbuf.c:ringbuf_map_get_next_key.
func (r *ringbuf) getNextKey(key, next []byte) error { return errRingbufOp }

// lookupAndDelete: kernel/bpf/syscall.c:map_lookup_and_delete_elem gives ENOTSUPP for every
// type but queue, stack and the hash maps.
func (r *ringbuf) lookupAndDelete(key, value []byte, flags uint64) error { return errNotSupp }

func (r *ringbuf) count() int { return 0 }
func (r *ringbuf) free()      {}
