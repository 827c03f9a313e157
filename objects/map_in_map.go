package objects

import (
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// BPF_MAP_TYPE_ARRAY_OF_MAPS and BPF_MAP_TYPE_HASH_OF_MAPS (kernel/bpf/map_in_map.c,
// arraymap.c:array_of_maps_map_ops, hashtab.c:htab_of_maps_map_ops).
//
// Slots hold a kernel-internal reference (Ref.Inc, refcnt, not usercnt) on their inner map,
// taken by the Resolver and dropped (Put) when the slot is overwritten or deleted or the outer
// map is freed. Lookups return the inner map's id. Inner maps are identified by their id while
// they sit in a slot, so they must have one (the engine assigns ids before handing out fds).

var (
	errInnerMissing = fmt.Errorf("map-in-map needs inner_map_fd: %w", unix.EBADF)
	errInnerNested  = fmt.Errorf("an inner map cannot itself be a map-in-map: %w", unix.EINVAL)
	errInnerMeta    = fmt.Errorf("inner map does not match the outer map's inner_map_fd template: %w", unix.EINVAL)
	errNotAMap      = fmt.Errorf("fd is not a BPF map: %w", unix.EINVAL)
	errFdMapUpdate  = fmt.Errorf("map-in-map values are map fds: %w", unix.EINVAL)
	errFdMapFlags   = fmt.Errorf("fd array updates take BPF_ANY only: %w", unix.EINVAL)
	errMetaOp       = fmt.Errorf("an inner map template has no elements: %w", unix.EINVAL)
)

func init() {
	registerMapType(MapTypeArrayOfMaps, &mapType{
		allocCheck:     fdArrayAllocCheck,
		allocAttrCheck: mapMetaAllocCheck,
		alloc:          arrayOfMapsAlloc,
		memUsage:       arrayMemUsage,
	})
	registerMapType(MapTypeHashOfMaps, &mapType{
		allocCheck: fdHtabAllocCheck,
		// htab_of_map_alloc: bpf_map_meta_alloc, then htab_map_alloc's max_entries check.
		allocAttrCheck: func(attr *MapAttr) error {
			if err := mapMetaAllocCheck(attr); err != nil {
				return err
			}
			return htabAllocAttrCheck(attr)
		},
		alloc:    hashOfMapsAlloc,
		memUsage: htabMemUsage,
	})
}

// fdHtabAllocCheck is kernel/bpf/hashtab.c:fd_htab_map_alloc_check.
func fdHtabAllocCheck(attr *MapAttr) error {
	if attr.ValueSize != 4 {
		return fmt.Errorf("%s value_size must be 4: %w", attr.MapType, unix.EINVAL)
	}
	return htabAllocCheck(attr)
}

// hasMapMetaEqual reports whether the kernel's ops for type t have map_meta_equal, without
// which a map cannot be an inner map. Of the types implemented here only prog_array lacks it
// (its owner program type is a run-time binding the verifier cannot check statically).
func hasMapMetaEqual(t MapType) bool {
	switch t {
	case MapTypeProgArray, MapTypeStructOps, MapTypeCgroupStorage, MapTypePercpuCgroupStorage:
		return false
	}
	return true
}

// mapMetaAllocCheck is the part of kernel/bpf/map_in_map.c:bpf_map_meta_alloc that can fail:
// the engine resolved inner_map_fd into attr.Inner (or attr.InnerErr: EBADF for a closed fd,
// EINVAL for an fd that is not a map); an inner map-in-map is EINVAL and a type without
// map_meta_equal ENOTSUPP.
func mapMetaAllocCheck(attr *MapAttr) error {
	switch {
	case attr.InnerErr != nil:
		return attr.InnerErr
	case attr.Inner == nil:
		return errInnerMissing
	case attr.Inner.innerMeta != nil:
		return errInnerNested
	case !hasMapMetaEqual(attr.Inner.Type):
		return fmt.Errorf("%s cannot be an inner map: %w", attr.Inner.Type, ENOTSUPP)
	}
	return nil
}

// newMapMeta is the copy kernel/bpf/map_in_map.c:bpf_map_meta_alloc makes of the template: type,
// key_size, value_size, map_flags and max_entries. It holds no reference to the template, and
// its element operations fail with EINVAL.
func newMapMeta(inner *Map) *Map {
	return &Map{
		Type:       inner.Type,
		KeySize:    inner.KeySize,
		ValueSize:  inner.ValueSize,
		MaxEntries: inner.MaxEntries,
		Flags:      inner.Flags,
		Extra:      inner.Extra,
		NumCPUs:    inner.NumCPUs,
		ops:        metaOps{},
	}
}

// metaOps backs a template copy: it has no elements.
type metaOps struct{}

func (metaOps) lookup(key, value []byte) error                        { return errMetaOp }
func (metaOps) update(key, value []byte, flags uint64) error          { return errMetaOp }
func (metaOps) delete(key []byte) error                               { return errMetaOp }
func (metaOps) getNextKey(key, next []byte) error                     { return errMetaOp }
func (metaOps) lookupAndDelete(key, value []byte, flags uint64) error { return errMetaOp }
func (metaOps) count() int                                            { return 0 }
func (metaOps) free()                                                 {}

// mapMetaEqual is the template's ops->map_meta_equal: kernel/bpf/map_in_map.c:bpf_map_meta_equal
// (type, key_size, value_size, map_flags; the BTF record is not modelled), plus, for array
// templates, kernel/bpf/arraymap.c:array_map_meta_equal (max_entries too, unless the template
// had BPF_F_INNER_MAP).
func mapMetaEqual(meta, m *Map) bool {
	if meta.Type != m.Type || meta.KeySize != m.KeySize || meta.ValueSize != m.ValueSize || meta.Flags != m.Flags {
		return false
	}
	if meta.Type == MapTypeArray && meta.Flags&FInnerMap == 0 {
		return meta.MaxEntries == m.MaxEntries
	}
	return true
}

// innerMapGet is kernel/bpf/map_in_map.c:bpf_map_fd_get_ptr: the map behind fd, with a
// reference, if it matches the template.
func innerMapGet(meta *Map, fd uint32, resolve Resolver) (*Map, error) {
	obj, err := resolve(fd)
	if err != nil {
		return nil, err
	}
	inner, ok := obj.(*Map)
	if !ok {
		obj.Put()
		return nil, errNotAMap
	}
	if !mapMetaEqual(meta, inner) {
		inner.Put()
		return nil, errInnerMeta
	}
	return inner, nil
}

// arrayOfMaps is BPF_MAP_TYPE_ARRAY_OF_MAPS: an fd array whose slots hold maps.
type arrayOfMaps struct {
	meta  *Map
	mu    sync.RWMutex
	slots []*Map
	n     int
}

// arrayOfMapsAlloc is kernel/bpf/arraymap.c:array_of_map_alloc.
func arrayOfMapsAlloc(m *Map, attr *MapAttr) (mapOps, error) {
	m.innerMeta = newMapMeta(attr.Inner)
	return &arrayOfMaps{meta: m.innerMeta, slots: make([]*Map, m.MaxEntries)}, nil
}

// lookup is kernel/bpf/arraymap.c:bpf_fd_array_map_lookup_elem with
// map_in_map.c:bpf_map_fd_sys_lookup_elem: the inner map's id; an empty or out-of-range slot
// is ENOENT.
func (a *arrayOfMaps) lookup(key, value []byte) error {
	i := arrayIndex(key)
	if i >= uint32(len(a.slots)) {
		return errNoEnt
	}
	a.mu.RLock()
	inner := a.slots[i]
	a.mu.RUnlock()
	if inner == nil {
		return errNoEnt
	}
	putU32(value, inner.ID())
	return nil
}

func (a *arrayOfMaps) update(key, value []byte, flags uint64) error { return errFdMapUpdate }

// updateObject is kernel/bpf/arraymap.c:bpf_fd_array_map_update_elem: flags must be BPF_ANY,
// then the index (E2BIG), then the fd (EBADF, EINVAL for a non-map or a meta mismatch). The
// replaced inner map loses the slot's reference.
func (a *arrayOfMaps) updateObject(key, value []byte, flags uint64, resolve Resolver) error {
	if flags != Any {
		return errFdMapFlags
	}
	i := arrayIndex(key)
	if i >= uint32(len(a.slots)) {
		return errArrayRange
	}
	inner, err := innerMapGet(a.meta, getU32(value), resolve)
	if err != nil {
		return err
	}
	a.mu.Lock()
	old := a.slots[i]
	a.slots[i] = inner
	if old == nil {
		a.n++
	}
	a.mu.Unlock()
	if old != nil {
		old.Put()
	}
	return nil
}

// delete is kernel/bpf/arraymap.c:fd_array_map_delete_elem: out of range E2BIG, empty ENOENT.
func (a *arrayOfMaps) delete(key []byte) error {
	i := arrayIndex(key)
	if i >= uint32(len(a.slots)) {
		return errArrayRange
	}
	a.mu.Lock()
	old := a.slots[i]
	a.slots[i] = nil
	if old != nil {
		a.n--
	}
	a.mu.Unlock()
	if old == nil {
		return errNoEnt
	}
	old.Put()
	return nil
}

// getNextKey is kernel/bpf/arraymap.c:array_map_get_next_key (empty slots included, as there).
func (a *arrayOfMaps) getNextKey(key, next []byte) error {
	max := uint32(len(a.slots))
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

func (a *arrayOfMaps) lookupAndDelete(key, value []byte, flags uint64) error { return errNotSupp }

func (a *arrayOfMaps) count() int {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.n
}

// free is kernel/bpf/arraymap.c:bpf_fd_array_map_clear as map_free runs it: every inner map
// loses its slot reference.
func (a *arrayOfMaps) free() {
	a.mu.Lock()
	var old []*Map
	for i, m := range a.slots {
		if m != nil {
			old = append(old, m)
			a.slots[i] = nil
		}
	}
	a.n = 0
	a.mu.Unlock()
	for _, m := range old {
		m.Put()
	}
}

// hashOfMaps is BPF_MAP_TYPE_HASH_OF_MAPS: a hash table whose values are inner map ids. refs
// tracks which map each stored id stands for and how many slots hold it; references dropped
// while a bucket lock is held are queued in pending and put once the lock is released.
type hashOfMaps struct {
	*htab
	meta    *Map
	mu      sync.Mutex // guards refs and pending; taken inside bucket locks, never around them
	refs    map[uint32]*innerRef
	pending []*Map
}

type innerRef struct {
	m *Map
	n int
}

// hashOfMapsAlloc is kernel/bpf/hashtab.c:htab_of_map_alloc.
func hashOfMapsAlloc(m *Map, attr *MapAttr) (mapOps, error) {
	m.innerMeta = newMapMeta(attr.Inner)
	h, err := newHtab(m, 4)
	if err != nil {
		return nil, err
	}
	hm := &hashOfMaps{htab: h, meta: m.innerMeta, refs: map[uint32]*innerRef{}}
	h.onRemove = hm.dropRef
	return hm, nil
}

// addRef records one more slot holding inner (whose reference the caller hands over).
func (hm *hashOfMaps) addRef(inner *Map) {
	hm.mu.Lock()
	r := hm.refs[inner.ID()]
	if r == nil {
		r = &innerRef{m: inner}
		hm.refs[inner.ID()] = r
	}
	r.n++
	hm.mu.Unlock()
}

// dropRef is htab.onRemove (kernel/bpf/hashtab.c:htab_put_fd_value): the slot's reference is
// queued for flush.
func (hm *hashOfMaps) dropRef(value []byte) {
	id := getU32(value)
	hm.mu.Lock()
	if r := hm.refs[id]; r != nil {
		r.n--
		if r.n == 0 {
			delete(hm.refs, id)
		}
		hm.pending = append(hm.pending, r.m)
	}
	hm.mu.Unlock()
}

// flush puts the references dropped under bucket locks.
func (hm *hashOfMaps) flush() {
	hm.mu.Lock()
	p := hm.pending
	hm.pending = nil
	hm.mu.Unlock()
	for _, m := range p {
		m.Put()
	}
}

func (hm *hashOfMaps) update(key, value []byte, flags uint64) error { return errFdMapUpdate }

// updateObject is kernel/bpf/hashtab.c:bpf_fd_htab_map_update_elem: the fd is resolved first
// (EBADF, EINVAL), then htab_map_update_elem applies its flags (NOEXIST: EEXIST, EXIST:
// ENOENT) and capacity (E2BIG); on failure the new reference is dropped.
func (hm *hashOfMaps) updateObject(key, value []byte, flags uint64, resolve Resolver) error {
	inner, err := innerMapGet(hm.meta, getU32(value), resolve)
	if err != nil {
		return err
	}
	hm.addRef(inner)
	var id [4]byte
	putU32(id[:], inner.ID())
	if err := hm.htab.update(key, id[:], flags); err != nil {
		hm.dropRef(id[:])
		hm.flush()
		return err
	}
	hm.flush()
	return nil
}

// delete is kernel/bpf/hashtab.c:htab_map_delete_elem; the inner map loses the slot's reference.
func (hm *hashOfMaps) delete(key []byte) error {
	err := hm.htab.delete(key)
	hm.flush()
	return err
}

// lookupAndDelete: kernel/bpf/syscall.c:map_lookup_and_delete_elem supports only the plain,
// percpu and LRU hash maps; hash_of_maps gets ENOTSUPP.
func (hm *hashOfMaps) lookupAndDelete(key, value []byte, flags uint64) error { return errNotSupp }

// LookupBatch is kernel/bpf/hashtab.c:__htab_map_lookup_and_delete_batch for hash_of_maps:
// values are inner map ids; deleted slots drop their references.
func (hm *hashOfMaps) LookupBatch(bucket uint32, keys, values []byte, count int, del bool) (int, uint32, error) {
	n, next, err := hm.htab.LookupBatch(bucket, keys, values, count, del)
	if del {
		hm.flush()
	}
	return n, next, err
}

// free is kernel/bpf/hashtab.c:htab_map_free with fd values: every inner map loses its slot
// references.
func (hm *hashOfMaps) free() {
	hm.mu.Lock()
	var puts []*Map
	for id, r := range hm.refs {
		for ; r.n > 0; r.n-- {
			puts = append(puts, r.m)
		}
		delete(hm.refs, id)
	}
	puts = append(puts, hm.pending...)
	hm.pending = nil
	hm.mu.Unlock()
	for _, m := range puts {
		m.Put()
	}
}
