package objects

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"math/bits"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Errors on hot paths are allocated once.
var (
	errNoEnt    = fmt.Errorf("key not found: %w", unix.ENOENT)
	errExist    = fmt.Errorf("key exists (BPF_NOEXIST): %w", unix.EEXIST)
	errExistNot = fmt.Errorf("key does not exist (BPF_EXIST): %w", unix.ENOENT)
	errFull     = fmt.Errorf("map is full: %w", unix.E2BIG)
	errBadFlags = fmt.Errorf("bad update flags: %w", unix.EINVAL)
	errNoNext   = fmt.Errorf("no next key: %w", unix.ENOENT)
	errNoSpace  = fmt.Errorf("next bucket does not fit in the batch: %w", unix.ENOSPC)
	errBatchEnd = fmt.Errorf("end of map: %w", unix.ENOENT)
)

const (
	htabCreateFlags = FNoPrealloc | FNoCommonLRU | FNumaNode | accessFlagsMask | FZeroSeed
	kmallocMaxSize  = 1 << 22 // KMALLOC_MAX_SIZE on x86_64 (MAX_PAGE_ORDER 10, 4 KiB pages)
	htabElemSize    = 48      // sizeof(struct htab_elem) on x86_64, used in size checks
	pcpuMinUnitSize = 32 << 10
)

func init() {
	for _, t := range []MapType{MapTypeHash, MapTypePercpuHash, MapTypeLRUHash, MapTypeLRUPercpuHash} {
		registerMapType(t, &mapType{allocCheck: htabAllocCheck, allocAttrCheck: htabAllocAttrCheck,
			alloc: htabAlloc, memUsage: htabMemUsage})
	}
}

// flagsAccessOK is include/linux/bpf.h:bpf_map_flags_access_ok.
func flagsAccessOK(f uint32) bool { return f&(FRdonlyProg|FWronlyProg) != FRdonlyProg|FWronlyProg }

// htabAllocCheck is kernel/bpf/hashtab.c:htab_map_alloc_check.
func htabAllocCheck(attr *MapAttr) error {
	percpu := attr.MapType == MapTypePercpuHash || attr.MapType == MapTypeLRUPercpuHash
	lru := attr.MapType == MapTypeLRUHash || attr.MapType == MapTypeLRUPercpuHash
	prealloc := attr.MapFlags&FNoPrealloc == 0
	percpuLRU := attr.MapFlags&FNoCommonLRU != 0
	numa := numaNode(attr) // bpf_map_attr_numa_node(attr) != NUMA_NO_NODE
	switch {
	case attr.MapFlags&FZeroSeed != 0 && !attr.Capable:
		return fmt.Errorf("BPF_F_ZERO_SEED needs CAP_SYS_ADMIN: %w", unix.EPERM)
	case attr.MapFlags&^htabCreateFlags != 0 || !flagsAccessOK(attr.MapFlags):
		return fmt.Errorf("map_flags %#x not valid for %s: %w", attr.MapFlags, attr.MapType, unix.EINVAL)
	case !lru && percpuLRU:
		return fmt.Errorf("BPF_F_NO_COMMON_LRU is only for LRU maps: %w", unix.EINVAL)
	case lru && !prealloc:
		return fmt.Errorf("LRU maps cannot be BPF_F_NO_PREALLOC: %w", ENOTSUPP)
	case numa && (percpu || percpuLRU):
		return fmt.Errorf("BPF_F_NUMA_NODE with a per-CPU map: %w", unix.EINVAL)
	case attr.MaxEntries == 0 || attr.KeySize == 0 || attr.ValueSize == 0:
		return fmt.Errorf("key_size, value_size and max_entries must be non-zero: %w", unix.EINVAL)
	case uint64(attr.KeySize)+uint64(attr.ValueSize) >= kmallocMaxSize-htabElemSize:
		return fmt.Errorf("key_size + value_size too large: %w", unix.E2BIG)
	case percpu && roundUp8(int(attr.ValueSize)) > pcpuMinUnitSize:
		return fmt.Errorf("per-CPU value_size larger than %d: %w", pcpuMinUnitSize, unix.E2BIG)
	}
	return nil
}

// htabAllocAttrCheck is the max_entries check at the start of kernel/bpf/hashtab.c:htab_map_alloc
// (after the NO_COMMON_LRU rounding, before anything is allocated): more than 2^31 entries is
// E2BIG, whatever memory would be left.
func htabAllocAttrCheck(attr *MapAttr) error {
	m := &Map{MaxEntries: attr.MaxEntries, Flags: attr.MapFlags, NumCPUs: max(attr.NumPossibleCPUs, 1)}
	if n := htabMaxEntries(m); n > 1<<31 {
		return fmt.Errorf("max_entries %d larger than 2^31: %w", n, unix.E2BIG)
	}
	return nil
}

// htabMaxEntries applies htab_map_alloc's NO_COMMON_LRU rounding.
func htabMaxEntries(m *Map) uint32 {
	if m.Flags&FNoCommonLRU == 0 {
		return m.MaxEntries
	}
	n := uint64(m.NumCPUs)
	r := (uint64(m.MaxEntries) + n - 1) / n * n
	if r > 1<<32-1 {
		r = uint64(m.MaxEntries) / n * n
	}
	return uint32(r)
}

func htabMemUsage(m *Map) uint64 {
	max := uint64(htabMaxEntries(m))
	nb := uint64(1)
	if max > 1 {
		nb = 1 << bits.Len64(max-1)
	}
	vs := uint64(m.ValueSize)
	if m.IsPercpu() {
		vs = uint64(roundUp8(int(vs))) * uint64(m.NumCPUs)
	}
	elem := uint64(htabElemSize) + uint64(roundUp8(int(m.KeySize))) + uint64(roundUp8(int(vs)))
	return 512 + nb*8 + max*elem
}

// htab is a hash table laid out to need few bytes per element: each element is a link
// {next, hash} (8 bytes, in a links array) plus [key][value] in chunks of a flat byte arena (LRU
// maps add [lruPrev u32][lruNext u32]); buckets hold the index+1 of their first element, and
// chains are newest first, as the kernel's hlist_nulls_add_head does. Keeping the links apart
// from keys and values keeps the part a chain walk touches small (8 bytes per element), so in
// a table of millions of elements the hops to non-matching elements mostly hit the CPU cache.
// Buckets are guarded by striped sequence locks (htabLock): writers exclude each other, and
// lookups read without writing to shared memory, retrying if a writer was at work.
//
// Chain order is the kernel's, newest first, but it is restored lazily: an update of a
// present key does not move the element to the head of its bucket at once (which in a big
// table costs writes to three cache lines no lookup needed: the bucket, the element's link and
// its predecessor's, about 30 ns of a 85 ns update at 1e6 entries); it gives the element a new
// update stamp, next to its value, and orderBucket sorts a chain by stamp, newest first, before
// anything walks it in order (get_next_key, batches). Lookups do not care about order.
type htab struct {
	m        *Map
	keySize  int
	valSize  int // bytes stored per value: the user-visible buffer size
	stride   int
	valOff   int
	nBuckets uint32
	buckets  []uint32
	seed     uint32
	locks    []htabLock
	lockMask uint32

	allocMu  sync.Mutex
	elems    []byte     // [key][value](+LRU links) per element, stride bytes each
	links    []htabLink // {next, hash} per element
	nAlloc   uint32     // elements handed out from elems so far
	freeHead uint32     // free list of element indexes (+1)
	maxElems uint32
	n        atomic.Int64

	lru              bool
	strictFlags      bool   // LRU and per-CPU: BPF_F_LOCK is EINVAL
	inPlace          bool   // per-CPU and hash_of_maps: a replaced value stays where it is
	stampOff         int    // offset of an element's update stamp (0: none, inPlace maps)
	stampLimit       uint32 // a stripe's stamps are renumbered when its count reaches this
	lruHead, lruTail uint32 // most and least recently updated (+1); guarded by locks[0]

	// onRemove, when set, is called with the old value of each element that is deleted or
	// replaced, with the bucket lock held (maps-of-maps drop their inner reference there).
	onRemove func(value []byte)
}

func htabAlloc(m *Map, attr *MapAttr) (mapOps, error) {
	h, err := newHtab(m, m.ValueBufSize())
	if err != nil {
		return nil, err
	}
	return h, nil
}

// newHtab is kernel/bpf/hashtab.c:htab_map_alloc for a table storing valSize-byte values.
func newHtab(m *Map, valSize int) (*htab, error) {
	m.MaxEntries = htabMaxEntries(m)
	if m.MaxEntries > 1<<31 {
		return nil, fmt.Errorf("max_entries %d larger than 2^31: %w", m.MaxEntries, unix.E2BIG)
	}
	h := &htab{
		m:       m,
		keySize: int(m.KeySize),
		valSize: valSize,
		lru:     m.Type == MapTypeLRUHash || m.Type == MapTypeLRUPercpuHash,
	}
	h.strictFlags = h.lru || m.IsPercpu()
	h.inPlace = m.IsPercpu() || m.Type == MapTypeHashOfMaps
	h.nBuckets = 1
	if m.MaxEntries > 1 {
		h.nBuckets = 1 << bits.Len32(m.MaxEntries-1)
	}
	h.valOff = h.keySize
	h.stride = h.valOff + h.valSize
	if !h.inPlace {
		h.stampOff = h.stride
		h.stride += 4
		h.stampLimit = 1 << 31
	}
	if h.lru {
		h.stride += 8
	}
	nlocks := uint32(256)
	if h.lru {
		// LRU eviction touches two buckets; one lock keeps it simple and deadlock-free.
		nlocks = 1
	}
	if nlocks > h.nBuckets {
		nlocks = h.nBuckets
	}
	h.locks = make([]htabLock, nlocks)
	h.lockMask = nlocks - 1
	h.maxElems = m.MaxEntries
	// The elements live in one arena allocated up front (on huge pages when big, so random
	// lookups do not miss the TLB on every access; pages are only backed by memory once
	// touched). Being fixed for the table's life, the arena can be read by lock-free lookups.
	// Buckets, links and elements share one allocation, so that a big table is all on huge
	// pages but for the last partial one (each array on its own would waste up to one).
	nb, nl := uint64(h.nBuckets)*4, uint64(h.maxElems)*uint64(unsafe.Sizeof(htabLink{}))
	a := makeHugeArena(int(nb + nl + uint64(h.maxElems)*uint64(h.stride)))
	h.buckets = unsafe.Slice((*uint32)(unsafe.Pointer(&a[0])), h.nBuckets)
	if h.maxElems > 0 {
		h.links = unsafe.Slice((*htabLink)(unsafe.Pointer(&a[nb])), h.maxElems)
	}
	h.elems = a[nb+nl:]
	if m.Flags&FZeroSeed == 0 {
		h.seed = randomU32()
	}
	return h, nil
}

// htabLink is an element's chain link: the index+1 of the next element in its bucket and the
// element's hash.
type htabLink struct{ next, hash uint32 }

// link returns element i's link.
func (h *htab) link(i uint32) *htabLink { return &h.links[i] }

func (h *htab) elem(i uint32) []byte {
	o := int(i) * h.stride
	return h.elems[o : o+h.stride : o+h.stride]
}

func (h *htab) lockFor(bucket uint32) *htabLock { return &h.locks[bucket&h.lockMask] }

func getU32(b []byte) uint32    { return binary.LittleEndian.Uint32(b) }
func putU32(b []byte, v uint32) { binary.LittleEndian.PutUint32(b, v) }

// find returns the index+1 of key's element in bucket b and of its predecessor (0 if none).
// The bucket's lock must be held.
func (h *htab) find(b uint32, hash uint32, key []byte) (cur, prev uint32) {
	if len(key) == 4 {
		// The common u32 key, compared as one word.
		k := getU32(key)
		for i := h.buckets[b]; i != 0; {
			ln := &h.links[i-1]
			if ln.hash == hash && getU32(h.elems[int(i-1)*h.stride:]) == k {
				return i, prev
			}
			prev = i
			i = ln.next
		}
		return 0, 0
	}
	for i := h.buckets[b]; i != 0; {
		ln := h.link(i - 1)
		if ln.hash == hash && h.keyEqual(i, key) {
			return i, prev
		}
		prev = i
		i = ln.next
	}
	return 0, 0
}

// keyEqual reports whether element i (+1) holds key.
func (h *htab) keyEqual(i uint32, key []byte) bool {
	return bytes.Equal(h.elem(i - 1)[:h.valOff], key)
}

func (h *htab) unlink(b, cur, prev uint32) {
	next := h.link(cur - 1).next
	if prev == 0 {
		h.buckets[b] = next
	} else {
		h.link(prev - 1).next = next
	}
}

func (h *htab) linkHead(b, cur uint32) {
	h.link(cur - 1).next = h.buckets[b]
	h.buckets[b] = cur
}

// allocElem takes a free element (index+1), or returns 0 when all max_entries are in use.
func (h *htab) allocElem() uint32 {
	h.allocMu.Lock()
	defer h.allocMu.Unlock()
	if h.freeHead != 0 {
		i := h.freeHead
		h.freeHead = h.link(i - 1).next
		return i
	}
	if h.nAlloc >= h.maxElems {
		return 0
	}
	h.nAlloc++
	return h.nAlloc
}

func (h *htab) freeElem(i uint32) {
	h.allocMu.Lock()
	h.link(i - 1).next = h.freeHead
	h.freeHead = i
	h.allocMu.Unlock()
}

func (h *htab) locate(key []byte) (hash, bucket uint32) {
	hash = htabHash(key, h.seed)
	return hash, hash & (h.nBuckets - 1)
}

func (h *htab) lookup(key, value []byte) error {
	hash, b := h.locate(key)
	l := h.lockFor(b)
	if optimisticReads {
		for {
			s := l.readBegin()
			cur, ok := h.findRacy(b, hash, key)
			if ok && cur != 0 {
				copy(value, h.elem(cur - 1)[h.valOff:h.valOff+h.valSize])
			}
			if l.readValid(s) && ok {
				if cur == 0 {
					return errNoEnt
				}
				return nil
			}
		}
	}
	l.lock()
	cur, _ := h.find(b, hash, key)
	if cur == 0 {
		l.unlock()
		return errNoEnt
	}
	copy(value, h.elem(cur - 1)[h.valOff:h.valOff+h.valSize])
	l.unlock()
	return nil
}

// findRacy is find without the bucket lock, for a reader that checks the lock's sequence
// afterwards: what it reads may be torn by a concurrent writer, so a walk longer than any
// real chain gives up (ok false) rather than loop.
func (h *htab) findRacy(b uint32, hash uint32, key []byte) (cur uint32, ok bool) {
	steps := h.maxElems
	if len(key) == 4 {
		k := getU32(key)
		for i := h.buckets[b]; i != 0; {
			ln := &h.links[i-1]
			if ln.hash == hash && getU32(h.elems[int(i-1)*h.stride:]) == k {
				return i, true
			}
			if steps == 0 {
				return 0, false
			}
			steps--
			i = ln.next
		}
		return 0, true
	}
	for i := h.buckets[b]; i != 0; {
		ln := h.link(i - 1)
		if ln.hash == hash && h.keyEqual(i, key) {
			return i, true
		}
		if steps == 0 {
			return 0, false
		}
		steps--
		i = ln.next
	}
	return 0, true
}

// checkFlags is kernel/bpf/hashtab.c:check_flags.
func checkFlags(exists bool, flags uint64) error {
	if exists && flags&^FLock == NoExist {
		return errExist
	}
	if !exists && flags&^FLock == Exist {
		return errExistNot
	}
	return nil
}

// update is kernel/bpf/hashtab.c:htab_map_update_elem (and its percpu and LRU variants):
// flags are checked before capacity, a replaced element moves to the head of its bucket, and
// inserting a new key into a full map fails with E2BIG (LRU maps evict instead).
func (h *htab) update(key, value []byte, flags uint64) error {
	// htab_map_update_elem ignores BPF_F_LOCK here; the LRU and per-CPU variants do not
	// accept it (flags > BPF_EXIST: EINVAL).
	if flags&^FLock > Exist || h.strictFlags && flags > Exist {
		return errBadFlags
	}
	hash, b := h.locate(key)
	l := h.lockFor(b)
	if s := l.seq.Load(); s&1 != 0 || !l.seq.CompareAndSwap(s, s+1) { // l.lock(), inlined
		l.lockSlow()
	}
	err := h.updateLocked(b, hash, key, value, flags)
	l.unlock()
	return err
}

// updateLocked is update with bucket b's lock held.
func (h *htab) updateLocked(b, hash uint32, key, value []byte, flags uint64) error {
	cur, _ := h.find(b, hash, key)
	if err := checkFlags(cur != 0, flags); err != nil {
		return err
	}
	if cur != 0 {
		e := h.elem(cur - 1)
		if h.onRemove != nil {
			h.onRemove(e[h.valOff : h.valOff+h.valSize])
		}
		copy(e[h.valOff:h.valOff+h.valSize], value)
		// Percpu maps update in place (pcpu_copy_value), and so does hash_of_maps since
		// Linux 6.16 (hashtab.c:bpf_fd_htab_map_update_elem → htab_map_update_elem_in_place,
		// "bpf: Support atomic update for htab of maps"); the others insert a new element at
		// the head of the bucket and unlink the old one, which the new stamp stands for
		// until orderBucket moves the element.
		if !h.inPlace {
			h.stamp(b, cur)
		}
		if h.lru {
			h.lruTouch(cur)
		}
		return nil
	}
	ne := h.allocElem()
	if ne == 0 {
		if !h.lru {
			return errFull
		}
		ne = h.lruEvict()
		if ne == 0 {
			return fmt.Errorf("no free LRU node: %w", unix.ENOMEM)
		}
	}
	e := h.elem(ne - 1)
	h.link(ne - 1).hash = hash
	copy(e[:h.valOff], key)
	copy(e[h.valOff:h.valOff+h.valSize], value)
	h.linkHead(b, ne)
	if !h.inPlace {
		h.stamp(b, ne)
	}
	if h.lru {
		h.lruPushFront(ne)
	}
	h.n.Add(1)
	return nil
}

// stampOf returns element i's (+1) update stamp.
func (h *htab) stampOf(i uint32) uint32 {
	return getU32(h.elems[int(i-1)*h.stride+h.stampOff:])
}

// stamp gives element i (+1), just inserted into or updated in bucket b, the next stamp of b's
// lock stripe: the highest in its bucket. Bucket b's lock must be held.
func (h *htab) stamp(b, i uint32) {
	l := h.lockFor(b)
	if l.stamp >= h.stampLimit {
		h.restamp(b & h.lockMask)
	}
	l.stamp++
	putU32(h.elems[int(i-1)*h.stride+h.stampOff:], l.stamp)
}

// restamp renumbers the stamps of a lock stripe before its count wraps: each chain is put in
// order, then numbered from 1 at its tail, and the stripe's count restarts above the longest.
// It walks every element of the stripe, once per 2^31 updates in it. The stripe's lock must
// be held.
func (h *htab) restamp(stripe uint32) {
	top := uint32(0)
	for b := stripe; b < h.nBuckets; b += h.lockMask + 1 {
		h.orderBucket(b)
		n := h.chainLen(b)
		top = max(top, n)
		for i := h.buckets[b]; i != 0; i = h.links[i-1].next {
			putU32(h.elems[int(i-1)*h.stride+h.stampOff:], n)
			n--
		}
	}
	h.locks[stripe].stamp = top
}

func (h *htab) chainLen(b uint32) uint32 {
	n := uint32(0)
	for i := h.buckets[b]; i != 0; i = h.links[i-1].next {
		n++
	}
	return n
}

// orderBucket puts bucket b's chain in the kernel's order, newest (highest stamp) first; see
// htab. Unless updates replaced keys behind the head since the chain was last put in order,
// this only reads the stamps, which sit next to the keys the caller is about to read. Bucket
// b's lock must be held.
func (h *htab) orderBucket(b uint32) {
	if h.stampOff == 0 {
		return
	}
	first := h.buckets[b]
	if first == 0 {
		return
	}
	last := h.stampOf(first)
	i := h.links[first-1].next
	for ; i != 0; i = h.links[i-1].next {
		s := h.stampOf(i)
		if s > last {
			break
		}
		last = s
	}
	if i == 0 {
		return
	}
	// Stamps are unique within a stripe, so the order is total. Chains are short, but keys
	// chosen to collide (the hash seed can be zero) can make one as long as the map: sort in
	// O(n log n), without allocating for the usual few elements.
	var small [16]uint32
	chain := small[:0]
	for i := first; i != 0; i = h.links[i-1].next {
		chain = append(chain, i)
	}
	slices.SortFunc(chain, func(x, y uint32) int { return cmp.Compare(h.stampOf(y), h.stampOf(x)) })
	for j, i := range chain {
		next := uint32(0)
		if j+1 < len(chain) {
			next = chain[j+1]
		}
		h.links[i-1].next = next
	}
	h.buckets[b] = chain[0]
}

func (h *htab) removeLocked(b, cur, prev uint32) {
	e := h.elem(cur - 1)
	if h.onRemove != nil {
		h.onRemove(e[h.valOff : h.valOff+h.valSize])
	}
	h.unlink(b, cur, prev)
	if h.lru {
		h.lruUnlink(cur)
	}
	h.n.Add(-1)
	h.freeElem(cur)
}

func (h *htab) delete(key []byte) error {
	hash, b := h.locate(key)
	l := h.lockFor(b)
	l.lock()
	defer l.unlock()
	cur, prev := h.find(b, hash, key)
	if cur == 0 {
		return errNoEnt
	}
	h.removeLocked(b, cur, prev)
	return nil
}

// lookupAndDelete is kernel/bpf/hashtab.c:__htab_map_lookup_and_delete_elem.
func (h *htab) lookupAndDelete(key, value []byte, flags uint64) error {
	if flags&^FLock != 0 {
		return fmt.Errorf("lookup_and_delete flags %#x: %w", flags, unix.EINVAL)
	}
	hash, b := h.locate(key)
	l := h.lockFor(b)
	l.lock()
	defer l.unlock()
	cur, prev := h.find(b, hash, key)
	if cur == 0 {
		return errNoEnt
	}
	copy(value, h.elem(cur - 1)[h.valOff:h.valOff+h.valSize])
	h.removeLocked(b, cur, prev)
	return nil
}

// getNextKey is kernel/bpf/hashtab.c:htab_map_get_next_key: the next element in key's bucket,
// else the first element of a later bucket; a missing key restarts from the first element.
func (h *htab) getNextKey(key, next []byte) error {
	start := uint32(0)
	if key != nil {
		hash, b := h.locate(key)
		l := h.lockFor(b)
		l.lock()
		cur, _ := h.find(b, hash, key)
		if cur != 0 {
			h.orderBucket(b)
			if n := h.link(cur - 1).next; n != 0 {
				copy(next, h.elem(n - 1)[:h.valOff])
				l.unlock()
				return nil
			}
			start = b + 1
		}
		l.unlock()
	}
	for b := start; b < h.nBuckets; b++ {
		l := h.lockFor(b)
		l.lock()
		h.orderBucket(b)
		if first := h.buckets[b]; first != 0 {
			copy(next, h.elem(first - 1)[:h.valOff])
			l.unlock()
			return nil
		}
		l.unlock()
	}
	return errNoNext
}

func (h *htab) count() int { return int(h.n.Load()) }

func (h *htab) free() {
	if h.onRemove == nil {
		return
	}
	for b := uint32(0); b < h.nBuckets; b++ {
		for i := h.buckets[b]; i != 0; i = h.link(i - 1).next {
			e := h.elem(i - 1)
			h.onRemove(e[h.valOff : h.valOff+h.valSize])
		}
	}
}

// LookupBatch is kernel/bpf/hashtab.c:__htab_map_lookup_and_delete_batch: whole buckets are
// copied; a bucket that does not fit ends the batch (ENOSPC if nothing was copied); passing the
// last bucket ends it with ENOENT.
func (h *htab) LookupBatch(bucket uint32, keys, values []byte, count int, del bool) (int, uint32, error) {
	if bucket >= h.nBuckets {
		return 0, bucket, errBatchEnd
	}
	total := 0
	for {
		l := h.lockFor(bucket)
		l.lock()
		h.orderBucket(bucket)
		if int(h.chainLen(bucket)) > count-total {
			l.unlock()
			if total == 0 {
				return 0, bucket, errNoSpace
			}
			return total, bucket, nil
		}
		for i := h.buckets[bucket]; i != 0; {
			e := h.elem(i - 1)
			nxt := h.link(i - 1).next
			copy(keys[total*h.keySize:], e[:h.valOff])
			copy(values[total*h.valSize:], e[h.valOff:h.valOff+h.valSize])
			total++
			if del {
				h.removeLocked(bucket, i, 0)
			}
			i = nxt
		}
		l.unlock()
		bucket++
		if bucket >= h.nBuckets {
			return total, bucket, errBatchEnd
		}
	}
}

// LRU list (guarded by the single lock LRU maps use). The kernel's bpf_lru approximates LRU
// with per-CPU lists and reference bits, which makes its victim depend on scheduling; here the
// victim is always the least recently updated element. Both keep count <= max_entries and the
// newly inserted key present, which is all the kernel guarantees.

func (h *htab) lruLinks(i uint32) []byte {
	e := h.elem(i - 1)
	return e[h.stride-8:]
}

func (h *htab) lruPushFront(i uint32) {
	ln := h.lruLinks(i)
	putU32(ln, 0)
	putU32(ln[4:], h.lruHead)
	if h.lruHead != 0 {
		putU32(h.lruLinks(h.lruHead), i)
	}
	h.lruHead = i
	if h.lruTail == 0 {
		h.lruTail = i
	}
}

func (h *htab) lruUnlink(i uint32) {
	ln := h.lruLinks(i)
	p, n := getU32(ln), getU32(ln[4:])
	if p != 0 {
		putU32(h.lruLinks(p)[4:], n)
	} else {
		h.lruHead = n
	}
	if n != 0 {
		putU32(h.lruLinks(n), p)
	} else {
		h.lruTail = p
	}
}

func (h *htab) lruTouch(i uint32) {
	h.lruUnlink(i)
	h.lruPushFront(i)
}

// lruEvict removes the least recently updated element and returns its slot for reuse.
func (h *htab) lruEvict() uint32 {
	v := h.lruTail
	if v == 0 {
		return 0
	}
	e := h.elem(v - 1)
	b := h.link(v-1).hash & (h.nBuckets - 1)
	prev := uint32(0)
	for i := h.buckets[b]; i != 0 && i != v; i = h.link(i - 1).next {
		prev = i
	}
	if h.onRemove != nil {
		h.onRemove(e[h.valOff : h.valOff+h.valSize])
	}
	h.unlink(b, v, prev)
	h.lruUnlink(v)
	h.n.Add(-1)
	return v
}

// htabLock guards a stripe of buckets. It is a sequence lock (as include/linux/seqlock.h):
// the count is odd while a writer holds it. Writers exclude each other; readers that
// cannot use optimistic reads take it as writers do. An optimistic reader notes the count
// (readBegin), reads without locking, and keeps what it read only if the count has not
// moved (readValid), so lookups write no shared cache line and need no atomic
// read-modify-write: in a big table their cache misses can overlap from one call to the next.
type htabLock struct {
	seq   atomic.Uint32
	stamp uint32 // the last update stamp given in the stripe (htab.stamp); guarded by the lock
}

func (l *htabLock) lock() {
	if s := l.seq.Load(); s&1 == 0 && l.seq.CompareAndSwap(s, s+1) {
		return
	}
	l.lockSlow()
}

func (l *htabLock) lockSlow() {
	for spins := 0; ; spins++ {
		if s := l.seq.Load(); s&1 == 0 && l.seq.CompareAndSwap(s, s+1) {
			return
		}
		if spins >= 64 {
			runtime.Gosched()
		}
	}
}

func (l *htabLock) unlock() { l.seq.Add(1) }

// readBegin waits until no writer holds the lock and returns the count to pass to readValid.
func (l *htabLock) readBegin() uint32 {
	if s := l.seq.Load(); s&1 == 0 {
		return s
	}
	return l.readWait()
}

func (l *htabLock) readWait() uint32 {
	for spins := 0; ; spins++ {
		if s := l.seq.Load(); s&1 == 0 {
			return s
		}
		if spins >= 64 {
			runtime.Gosched()
		}
	}
}

// readValid reports whether no writer took the lock since readBegin returned s.
func (l *htabLock) readValid(s uint32) bool { return l.seq.Load() == s }
