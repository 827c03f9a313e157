package objects

import (
	"fmt"
	"testing"

	"golang.org/x/sys/unix"
)

// TestCreate covers kernel-semantics.md c.1 steps 3-9 and every row of c.3.
func TestCreate(t *testing.T) {
	innerArray := newTestMap(t, MapAttr{MapType: MapTypeArray, KeySize: 4, ValueSize: 4, MaxEntries: 2})
	innerProgArray := newTestMap(t, MapAttr{MapType: MapTypeProgArray, KeySize: 4, ValueSize: 4, MaxEntries: 2})
	innerAoM := newTestMap(t, MapAttr{MapType: MapTypeArrayOfMaps, KeySize: 4, ValueSize: 4, MaxEntries: 2, Inner: innerArray})
	innerHoM := newTestMap(t, MapAttr{MapType: MapTypeHashOfMaps, KeySize: 4, ValueSize: 4, MaxEntries: 2, Inner: innerArray})
	innerQueue := newTestMap(t, MapAttr{MapType: MapTypeQueue, ValueSize: 4, MaxEntries: 2})

	type row struct {
		name string
		attr MapAttr
		want unix.Errno
	}
	a := func(tp MapType, k, v, max, flags uint32) MapAttr {
		return MapAttr{MapType: tp, KeySize: k, ValueSize: v, MaxEntries: max, MapFlags: flags}
	}
	with := func(at MapAttr, f func(*MapAttr)) MapAttr { f(&at); return at }
	rows := []row{
		// c.1 common checks.
		{"unknown type", a(99, 4, 4, 1, 0), unix.EINVAL},
		{"unspec type", a(MapTypeUnspec, 4, 4, 1, 0), unix.EINVAL},
		{"map_extra on hash", with(a(MapTypeHash, 4, 4, 1, 0), func(at *MapAttr) { at.MapExtra = 1 }), unix.EINVAL},
		{"rdonly|wronly", a(MapTypeHash, 4, 4, 1, FRdonly|FWronly), unix.EINVAL},
		{"numa node 1", with(a(MapTypeHash, 4, 4, 1, FNumaNode), func(at *MapAttr) { at.NumaNode = 1 }), unix.EINVAL},
		{"bad name", with(a(MapTypeHash, 4, 4, 1, 0), func(at *MapAttr) { at.MapName = "bad-name" }), unix.EINVAL},
		{"name 16 bytes", with(a(MapTypeHash, 4, 4, 1, 0), func(at *MapAttr) { at.MapName = "0123456789abcdef" }), unix.EINVAL},
		{"name 15 bytes", with(a(MapTypeHash, 4, 4, 1, 0), func(at *MapAttr) { at.MapName = "counters_v1.abc" }), 0},
		{"rdonly_prog|wronly_prog", a(MapTypeHash, 4, 4, 1, FRdonlyProg|FWronlyProg), unix.EINVAL},

		// hash, percpu_hash.
		{"hash ok", a(MapTypeHash, 4, 8, 16, 0), 0},
		{"hash key 0", a(MapTypeHash, 0, 8, 16, 0), unix.EINVAL},
		{"hash value 0", a(MapTypeHash, 4, 0, 16, 0), unix.EINVAL},
		{"hash max 0", a(MapTypeHash, 4, 8, 0, 0), unix.EINVAL},
		{"hash no_prealloc", a(MapTypeHash, 4, 8, 16, FNoPrealloc), 0},
		{"hash numa", a(MapTypeHash, 4, 8, 16, FNumaNode), 0},
		{"hash rdonly", a(MapTypeHash, 4, 8, 16, FRdonly), 0},
		{"hash wronly", a(MapTypeHash, 4, 8, 16, FWronly), 0},
		{"hash rdonly_prog", a(MapTypeHash, 4, 8, 16, FRdonlyProg), 0},
		{"hash wronly_prog", a(MapTypeHash, 4, 8, 16, FWronlyProg), 0},
		{"hash mmapable", a(MapTypeHash, 4, 8, 16, FMmapable), unix.EINVAL},
		{"hash inner_map", a(MapTypeHash, 4, 8, 16, FInnerMap), unix.EINVAL},
		{"hash no_common_lru", a(MapTypeHash, 4, 8, 16, FNoCommonLRU), unix.EINVAL},
		{"hash zero_seed unprivileged", a(MapTypeHash, 4, 8, 16, FZeroSeed), unix.EPERM},
		{"hash zero_seed capable", with(a(MapTypeHash, 4, 8, 16, FZeroSeed), func(at *MapAttr) { at.Capable = true }), 0},
		{"hash zero_seed unprivileged bad flags", a(MapTypeHash, 4, 8, 16, FZeroSeed|FMmapable), unix.EPERM},
		{"hash key+value too big", a(MapTypeHash, 2<<20, 2<<20, 1, 0), unix.E2BIG},
		{"hash max > 2^31", a(MapTypeHash, 4, 4, 1<<31+1, 0), unix.E2BIG},
		{"percpu_hash ok", a(MapTypePercpuHash, 4, 8, 16, 0), 0},
		{"percpu_hash value 32 KiB", a(MapTypePercpuHash, 4, 32<<10, 1, 0), 0},
		{"percpu_hash value > 32 KiB", a(MapTypePercpuHash, 4, 32<<10+1, 1, 0), unix.E2BIG},
		{"percpu_hash numa", a(MapTypePercpuHash, 4, 8, 16, FNumaNode), unix.EINVAL},
		{"percpu_hash no_prealloc", a(MapTypePercpuHash, 4, 8, 16, FNoPrealloc), 0},

		// lru_hash, lru_percpu_hash.
		{"lru ok", a(MapTypeLRUHash, 4, 8, 16, 0), 0},
		{"lru no_prealloc", a(MapTypeLRUHash, 4, 8, 16, FNoPrealloc), ENOTSUPP},
		{"lru_percpu no_prealloc", a(MapTypeLRUPercpuHash, 4, 8, 16, FNoPrealloc), ENOTSUPP},
		{"lru no_common_lru", a(MapTypeLRUHash, 4, 8, 16, FNoCommonLRU), 0},
		{"lru no_common_lru numa", a(MapTypeLRUHash, 4, 8, 16, FNoCommonLRU|FNumaNode), unix.EINVAL},
		{"lru numa", a(MapTypeLRUHash, 4, 8, 16, FNumaNode), 0},
		{"lru_percpu numa", a(MapTypeLRUPercpuHash, 4, 8, 16, FNumaNode), unix.EINVAL},
		{"lru key 0", a(MapTypeLRUHash, 0, 8, 16, 0), unix.EINVAL},
		{"lru_percpu value > 32 KiB", a(MapTypeLRUPercpuHash, 4, 32<<10+1, 1, 0), unix.E2BIG},

		// array, percpu_array.
		{"array ok", a(MapTypeArray, 4, 8, 16, 0), 0},
		{"array key 8", a(MapTypeArray, 8, 8, 16, 0), unix.EINVAL},
		{"array key 0", a(MapTypeArray, 0, 8, 16, 0), unix.EINVAL},
		{"array value 0", a(MapTypeArray, 4, 0, 16, 0), unix.EINVAL},
		{"array max 0", a(MapTypeArray, 4, 8, 0, 0), unix.EINVAL},
		{"array no_prealloc", a(MapTypeArray, 4, 8, 16, FNoPrealloc), unix.EINVAL},
		{"array zero_seed", a(MapTypeArray, 4, 8, 16, FZeroSeed), unix.EINVAL},
		{"array numa", a(MapTypeArray, 4, 8, 16, FNumaNode), 0},
		{"array mmapable", a(MapTypeArray, 4, 8, 16, FMmapable), 0},
		{"array inner_map", a(MapTypeArray, 4, 8, 16, FInnerMap), 0},
		{"array preserve_elems", a(MapTypeArray, 4, 8, 16, FPreserveElems), unix.EINVAL},
		{"array rdonly_prog", a(MapTypeArray, 4, 8, 16, FRdonlyProg), 0},
		{"array value > INT_MAX", a(MapTypeArray, 4, 1<<31, 1, 0), unix.E2BIG},
		{"percpu_array ok", a(MapTypePercpuArray, 4, 8, 16, 0), 0},
		{"percpu_array mmapable", a(MapTypePercpuArray, 4, 8, 16, FMmapable), unix.EINVAL},
		{"percpu_array inner_map", a(MapTypePercpuArray, 4, 8, 16, FInnerMap), unix.EINVAL},
		{"percpu_array numa", a(MapTypePercpuArray, 4, 8, 16, FNumaNode), unix.EINVAL},
		{"percpu_array value > 32 KiB", a(MapTypePercpuArray, 4, 32<<10+1, 1, 0), unix.E2BIG},

		// prog_array.
		{"prog_array ok", a(MapTypeProgArray, 4, 4, 16, 0), 0},
		{"prog_array value 8", a(MapTypeProgArray, 4, 8, 16, 0), unix.EINVAL},
		{"prog_array key 8", a(MapTypeProgArray, 8, 4, 16, 0), unix.EINVAL},
		{"prog_array max 0", a(MapTypeProgArray, 4, 4, 0, 0), unix.EINVAL},
		{"prog_array rdonly_prog", a(MapTypeProgArray, 4, 4, 16, FRdonlyProg), unix.EINVAL},
		{"prog_array wronly_prog", a(MapTypeProgArray, 4, 4, 16, FWronlyProg), unix.EINVAL},
		{"prog_array mmapable", a(MapTypeProgArray, 4, 4, 16, FMmapable), unix.EINVAL},
		{"prog_array rdonly", a(MapTypeProgArray, 4, 4, 16, FRdonly), 0},

		// array_of_maps.
		{"array_of_maps ok", with(a(MapTypeArrayOfMaps, 4, 4, 4, 0), func(at *MapAttr) { at.Inner = innerArray }), 0},
		{"array_of_maps value 8", with(a(MapTypeArrayOfMaps, 4, 8, 4, 0), func(at *MapAttr) { at.Inner = innerArray }), unix.EINVAL},
		{"array_of_maps key 8", with(a(MapTypeArrayOfMaps, 8, 4, 4, 0), func(at *MapAttr) { at.Inner = innerArray }), unix.EINVAL},
		{"array_of_maps max 0", with(a(MapTypeArrayOfMaps, 4, 4, 0, 0), func(at *MapAttr) { at.Inner = innerArray }), unix.EINVAL},
		{"array_of_maps no inner fd", a(MapTypeArrayOfMaps, 4, 4, 4, 0), unix.EBADF},
		{"array_of_maps bad fd", with(a(MapTypeArrayOfMaps, 4, 4, 4, 0), func(at *MapAttr) { at.InnerErr = fmt.Errorf("fd 99: %w", unix.EBADF) }), unix.EBADF},
		{"array_of_maps non-map fd", with(a(MapTypeArrayOfMaps, 4, 4, 4, 0), func(at *MapAttr) { at.InnerErr = fmt.Errorf("fd 3: %w", unix.EINVAL) }), unix.EINVAL},
		{"array_of_maps inner array_of_maps", with(a(MapTypeArrayOfMaps, 4, 4, 4, 0), func(at *MapAttr) { at.Inner = innerAoM }), unix.EINVAL},
		{"array_of_maps inner hash_of_maps", with(a(MapTypeArrayOfMaps, 4, 4, 4, 0), func(at *MapAttr) { at.Inner = innerHoM }), unix.EINVAL},
		{"array_of_maps inner prog_array", with(a(MapTypeArrayOfMaps, 4, 4, 4, 0), func(at *MapAttr) { at.Inner = innerProgArray }), ENOTSUPP},
		{"array_of_maps inner queue", with(a(MapTypeArrayOfMaps, 4, 4, 4, 0), func(at *MapAttr) { at.Inner = innerQueue }), 0},
		{"array_of_maps size error before inner", a(MapTypeArrayOfMaps, 4, 8, 4, 0), unix.EINVAL},
		{"array_of_maps rdonly_prog", with(a(MapTypeArrayOfMaps, 4, 4, 4, FRdonlyProg), func(at *MapAttr) { at.Inner = innerArray }), unix.EINVAL},
		{"array_of_maps inner_map flag", with(a(MapTypeArrayOfMaps, 4, 4, 4, FInnerMap), func(at *MapAttr) { at.Inner = innerArray }), unix.EINVAL},

		// hash_of_maps.
		{"hash_of_maps ok", with(a(MapTypeHashOfMaps, 4, 4, 4, 0), func(at *MapAttr) { at.Inner = innerArray }), 0},
		{"hash_of_maps key 1", with(a(MapTypeHashOfMaps, 1, 4, 4, 0), func(at *MapAttr) { at.Inner = innerArray }), 0},
		{"hash_of_maps key 0", with(a(MapTypeHashOfMaps, 0, 4, 4, 0), func(at *MapAttr) { at.Inner = innerArray }), unix.EINVAL},
		{"hash_of_maps value 8", with(a(MapTypeHashOfMaps, 4, 8, 4, 0), func(at *MapAttr) { at.Inner = innerArray }), unix.EINVAL},
		{"hash_of_maps no_prealloc", with(a(MapTypeHashOfMaps, 4, 4, 4, FNoPrealloc), func(at *MapAttr) { at.Inner = innerArray }), 0},
		{"hash_of_maps no_common_lru", with(a(MapTypeHashOfMaps, 4, 4, 4, FNoCommonLRU), func(at *MapAttr) { at.Inner = innerArray }), unix.EINVAL},
		{"hash_of_maps no inner fd", a(MapTypeHashOfMaps, 4, 4, 4, 0), unix.EBADF},
		{"hash_of_maps inner hash_of_maps", with(a(MapTypeHashOfMaps, 4, 4, 4, 0), func(at *MapAttr) { at.Inner = innerHoM }), unix.EINVAL},
		{"hash_of_maps inner prog_array", with(a(MapTypeHashOfMaps, 4, 4, 4, 0), func(at *MapAttr) { at.Inner = innerProgArray }), ENOTSUPP},

		// lpm_trie.
		{"lpm ok", a(MapTypeLPMTrie, 8, 8, 16, FNoPrealloc), 0},
		{"lpm key 5", a(MapTypeLPMTrie, 5, 1, 16, FNoPrealloc), 0},
		{"lpm key 260", a(MapTypeLPMTrie, 260, 1, 16, FNoPrealloc), 0},
		{"lpm key 4", a(MapTypeLPMTrie, 4, 8, 16, FNoPrealloc), unix.EINVAL},
		{"lpm key 261", a(MapTypeLPMTrie, 261, 8, 16, FNoPrealloc), unix.EINVAL},
		{"lpm prealloc", a(MapTypeLPMTrie, 8, 8, 16, 0), unix.EINVAL},
		{"lpm value 0", a(MapTypeLPMTrie, 8, 0, 16, FNoPrealloc), unix.EINVAL},
		{"lpm value too big", a(MapTypeLPMTrie, 8, kmallocMaxSize, 16, FNoPrealloc), unix.EINVAL},
		{"lpm max 0", a(MapTypeLPMTrie, 8, 8, 0, FNoPrealloc), unix.EINVAL},
		{"lpm numa", a(MapTypeLPMTrie, 8, 8, 16, FNoPrealloc|FNumaNode), 0},
		{"lpm rdonly", a(MapTypeLPMTrie, 8, 8, 16, FNoPrealloc|FRdonly), 0},
		{"lpm zero_seed", with(a(MapTypeLPMTrie, 8, 8, 16, FNoPrealloc|FZeroSeed), func(at *MapAttr) { at.Capable = true }), unix.EINVAL},
		{"lpm mmapable", a(MapTypeLPMTrie, 8, 8, 16, FNoPrealloc|FMmapable), unix.EINVAL},
		{"lpm huge max is not ENOMEM first", a(MapTypeLPMTrie, 300, 8, 1<<31, FNoPrealloc), unix.EINVAL},

		// queue, stack.
		{"queue ok", a(MapTypeQueue, 0, 4, 16, 0), 0},
		{"stack ok", a(MapTypeStack, 0, 4, 16, 0), 0},
		{"queue key 4", a(MapTypeQueue, 4, 4, 16, 0), unix.EINVAL},
		{"stack key 4", a(MapTypeStack, 4, 4, 16, 0), unix.EINVAL},
		{"queue value 0", a(MapTypeQueue, 0, 0, 16, 0), unix.EINVAL},
		{"queue max 0", a(MapTypeQueue, 0, 4, 0, 0), unix.EINVAL},
		{"queue no_prealloc", a(MapTypeQueue, 0, 4, 16, FNoPrealloc), unix.EINVAL},
		{"queue zero_seed", a(MapTypeQueue, 0, 4, 16, FZeroSeed), unix.EINVAL},
		{"queue numa", a(MapTypeQueue, 0, 4, 16, FNumaNode), 0},
		{"queue rdonly", a(MapTypeQueue, 0, 4, 16, FRdonly), 0},
		{"queue value > KMALLOC_MAX_SIZE", a(MapTypeQueue, 0, kmallocMaxSize+1, 1, 0), unix.E2BIG},
		{"stack value = KMALLOC_MAX_SIZE", a(MapTypeStack, 0, kmallocMaxSize, 1, 0), 0},

		// bloom_filter.
		{"bloom ok", a(MapTypeBloomFilter, 0, 4, 100, 0), 0},
		{"bloom key 4", a(MapTypeBloomFilter, 4, 4, 100, 0), unix.EINVAL},
		{"bloom value 0", a(MapTypeBloomFilter, 0, 0, 100, 0), unix.EINVAL},
		{"bloom max 0", a(MapTypeBloomFilter, 0, 4, 0, 0), unix.EINVAL},
		{"bloom extra 15", with(a(MapTypeBloomFilter, 0, 4, 100, 0), func(at *MapAttr) { at.MapExtra = 15 }), 0},
		{"bloom extra 16", with(a(MapTypeBloomFilter, 0, 4, 100, 0), func(at *MapAttr) { at.MapExtra = 16 }), unix.EINVAL},
		{"bloom extra 1<<40", with(a(MapTypeBloomFilter, 0, 4, 100, 0), func(at *MapAttr) { at.MapExtra = 1 << 40 }), unix.EINVAL},
		{"bloom zero_seed unprivileged", a(MapTypeBloomFilter, 0, 4, 100, FZeroSeed), 0},
		{"bloom numa", a(MapTypeBloomFilter, 0, 4, 100, FNumaNode), 0},
		{"bloom no_prealloc", a(MapTypeBloomFilter, 0, 4, 100, FNoPrealloc), unix.EINVAL},
		{"bloom value > KMALLOC_MAX_SIZE", a(MapTypeBloomFilter, 0, kmallocMaxSize+1, 100, 0), unix.E2BIG},
		{"bloom value > KMALLOC_MAX_SIZE key 4", a(MapTypeBloomFilter, 4, kmallocMaxSize+1, 100, 0), unix.E2BIG},

		// ringbuf.
		{"ringbuf ok", a(MapTypeRingbuf, 0, 0, 4096, 0), 0},
		{"ringbuf 64 KiB", a(MapTypeRingbuf, 0, 0, 64<<10, 0), 0},
		{"ringbuf 1000", a(MapTypeRingbuf, 0, 0, 1000, 0), unix.EINVAL},
		{"ringbuf 2048", a(MapTypeRingbuf, 0, 0, 2048, 0), unix.EINVAL},
		{"ringbuf 3 pages", a(MapTypeRingbuf, 0, 0, 3*4096, 0), unix.EINVAL},
		{"ringbuf 0", a(MapTypeRingbuf, 0, 0, 0, 0), unix.EINVAL},
		{"ringbuf key 4", a(MapTypeRingbuf, 4, 0, 4096, 0), unix.EINVAL},
		{"ringbuf value 4", a(MapTypeRingbuf, 0, 4, 4096, 0), unix.EINVAL},
		{"ringbuf numa", a(MapTypeRingbuf, 0, 0, 4096, FNumaNode), 0},
		{"ringbuf rdonly", a(MapTypeRingbuf, 0, 0, 4096, FRdonly), unix.EINVAL},
		{"ringbuf wronly", a(MapTypeRingbuf, 0, 0, 4096, FWronly), unix.EINVAL},
		{"ringbuf rdonly_prog", a(MapTypeRingbuf, 0, 0, 4096, FRdonlyProg), unix.EINVAL},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			attr := r.attr
			attr.NumPossibleCPUs = testNCPU
			m, err := NewMap(&attr, nil)
			wantErrno(t, "create", err, r.want)
			if err == nil {
				refs, users := m.Refs()
				if refs != 1 || users != 1 {
					t.Fatalf("new map refs %d/%d, want 1/1", refs, users)
				}
				if m.Flags&(FRdonly|FWronly) != 0 {
					t.Fatalf("stored flags %#x keep RDONLY/WRONLY", m.Flags)
				}
				m.Release()
			}
		})
	}
}

// TestCreateValidateOrder checks that Validate alone reports the map_alloc_check errors and
// leaves the map_alloc ones (lpm, bloom, ringbuf, map-in-map) to NewMap, as map_create orders
// them around the permission checks.
func TestCreateValidateOrder(t *testing.T) {
	for _, at := range []MapAttr{
		{MapType: MapTypeLPMTrie, KeySize: 4, ValueSize: 4, MaxEntries: 1},
		{MapType: MapTypeBloomFilter, KeySize: 4, ValueSize: 4, MaxEntries: 1},
		{MapType: MapTypeRingbuf, MaxEntries: 1000},
		{MapType: MapTypeArrayOfMaps, KeySize: 4, ValueSize: 4, MaxEntries: 1},
	} {
		if err := Validate(&at); err != nil {
			t.Errorf("Validate(%s) = %v, want nil (the error belongs to map_alloc)", at.MapType, err)
		}
		if _, err := NewMap(&at, nil); err == nil {
			t.Errorf("NewMap(%s) succeeded", at.MapType)
		}
	}
	for _, at := range []MapAttr{
		{MapType: MapTypeQueue, KeySize: 4, ValueSize: 4, MaxEntries: 1},
		{MapType: MapTypeHash, KeySize: 0, ValueSize: 4, MaxEntries: 1},
		{MapType: MapTypeBloomFilter, ValueSize: kmallocMaxSize + 1, MaxEntries: 1},
	} {
		if err := Validate(&at); err == nil {
			t.Errorf("Validate(%s) = nil, want the map_alloc_check error", at.MapType)
		}
	}
}

func TestCreateUnsupportedKnownType(t *testing.T) {
	// A known type not implemented yet is EOPNOTSUPP (a deliberate difference: the kernel
	// supports it).
	err := Validate(&MapAttr{MapType: MapTypeDevmap, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	wantErrno(t, "devmap", err, unix.EOPNOTSUPP)
}

func TestCreateLRUNoCommonRounding(t *testing.T) {
	m := newTestMap(t, MapAttr{MapType: MapTypeLRUHash, KeySize: 4, ValueSize: 4, MaxEntries: 3, MapFlags: FNoCommonLRU})
	if m.MaxEntries != 4 {
		t.Fatalf("max_entries = %d, want 4 (rounded up to a multiple of %d CPUs)", m.MaxEntries, testNCPU)
	}
	m = newTestMap(t, MapAttr{MapType: MapTypeLRUHash, KeySize: 4, ValueSize: 4, MaxEntries: 3})
	if m.MaxEntries != 3 {
		t.Fatalf("max_entries = %d, want 3", m.MaxEntries)
	}
}

func TestCreateCharge(t *testing.T) {
	var charged int64
	charge := func(d int64) error {
		if charged+d > 1<<20 {
			return unix.ENOMEM
		}
		charged += d
		return nil
	}
	_, err := NewMap(&MapAttr{MapType: MapTypeArray, KeySize: 4, ValueSize: 8, MaxEntries: 1 << 20, NumPossibleCPUs: 1}, charge)
	wantErrno(t, "big array", err, unix.ENOMEM)
	_, err = NewMap(&MapAttr{MapType: MapTypeBloomFilter, ValueSize: 4, MaxEntries: 1 << 30, NumPossibleCPUs: 1}, charge)
	wantErrno(t, "big bloom", err, unix.ENOMEM)
	m, err := NewMap(&MapAttr{MapType: MapTypeHash, KeySize: 4, ValueSize: 8, MaxEntries: 16, NumPossibleCPUs: 1, MapName: "bad-name"}, charge)
	wantErrno(t, "bad name", err, unix.EINVAL)
	if charged != 0 || m != nil {
		t.Fatalf("failed create left %d bytes charged", charged)
	}
	m, err = NewMap(&MapAttr{MapType: MapTypeQueue, ValueSize: 8, MaxEntries: 16, NumPossibleCPUs: 1}, charge)
	wantErrno(t, "queue", err, 0)
	if charged == 0 || m.Memlock() != uint64(charged) {
		t.Fatalf("charged %d, memlock %d", charged, m.Memlock())
	}
}
