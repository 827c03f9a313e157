package tests

import (
	"fmt"
	"strings"
	"testing"

	"github.com/bpffs-fuse/bpffs-fuse/objects"
)

// TestMapDiffCreate compares BPF_MAP_CREATE on the kernel and the engine for random attrs built
// from the interesting values of kernel-semantics.md c.1 and c.3 (sizes at and around each
// limit, every create flag, map_extra, names, numa nodes, inner map fds): the errno must match,
// and a created map must show the same bpf_map_info (max_entries rounding included) and give the
// same errnos through its creating fd (BPF_F_RDONLY/WRONLY at create).
func TestMapDiffCreate(t *testing.T) {
	d := newDiffer(t, "create")
	types := []objects.MapType{
		objects.MapTypeHash, objects.MapTypePercpuHash, objects.MapTypeLRUHash, objects.MapTypeLRUPercpuHash,
		objects.MapTypeArray, objects.MapTypePercpuArray, objects.MapTypeProgArray, objects.MapTypeLPMTrie,
		objects.MapTypeQueue, objects.MapTypeStack, objects.MapTypeBloomFilter, objects.MapTypeRingbuf,
		objects.MapTypeArrayOfMaps, objects.MapTypeHashOfMaps, objects.MapTypeUnspec, objects.MapType(200),
	}
	keySizes := []uint32{0, 0, 1, 3, 4, 4, 4, 5, 8, 255, 256, 257, 260, 261}
	valueSizes := []uint32{0, 1, 4, 4, 8, 8, 13, 4096, 32 << 10, 32<<10 + 1, 4 << 20, 4<<20 + 1}
	maxEntries := []uint32{0, 1, 2, 3, 7, 64, 1000, 4096, 8192, 12288, 1 << 16, 1<<31 + 1, 0xffffffff}
	flagBits := []uint32{objects.FNoPrealloc, objects.FNoCommonLRU, objects.FNumaNode, objects.FRdonly,
		objects.FWronly, objects.FZeroSeed, objects.FRdonlyProg, objects.FWronlyProg, objects.FMmapable,
		objects.FInnerMap, objects.FPreserveElems, objects.FStackBuildID, 1 << 19}
	extras := []uint64{0, 0, 0, 1, 3, 15, 16, 1 << 32}
	names := []string{"", "", "ok_name.1", "bad-name", strings.Repeat("n", 15), strings.Repeat("n", 16)}

	inner, e := d.create("inner", createAttr{Type: objects.MapTypeArray, KeySize: 4, ValueSize: 4, MaxEntries: 2}, nil)
	if e != 0 {
		d.fail("create inner: %s", errStr(e))
	}
	pa, _ := d.create("pa", createAttr{Type: objects.MapTypeProgArray, KeySize: 4, ValueSize: 4, MaxEntries: 2}, nil)
	mim, _ := d.create("mim", createAttr{Type: objects.MapTypeArrayOfMaps, KeySize: 4, ValueSize: 4, MaxEntries: 2}, inner)
	inners := []*dmap{inner, inner, pa, mim, {name: "closed", rw: [2]int{100000, 100000}}}

	n := *mapDiffOps / 2
	created := 0
	for i := 0; i < n; i++ {
		d.ops++
		a := createAttr{
			Type:       types[d.pick(len(types))],
			KeySize:    keySizes[d.pick(len(keySizes))],
			ValueSize:  valueSizes[d.pick(len(valueSizes))],
			MaxEntries: maxEntries[d.pick(len(maxEntries))],
			Extra:      extras[d.pick(len(extras))],
			Name:       names[d.pick(len(names))],
		}
		for range d.pick(4) {
			a.Flags |= flagBits[d.pick(len(flagBits))]
		}
		if a.Flags&objects.FNumaNode != 0 {
			a.NumaNode = []uint32{0, 0, 1, 0xffffffff}[d.pick(4)]
		} else if d.chance(0.05) {
			a.NumaNode = 1 // ignored without BPF_F_NUMA_NODE
		}
		// Valid-looking sizes for the type most of the time, so the later checks run.
		if d.chance(0.6) {
			switch a.Type {
			case objects.MapTypeArray, objects.MapTypePercpuArray, objects.MapTypeProgArray, objects.MapTypeArrayOfMaps:
				a.KeySize = 4
			case objects.MapTypeQueue, objects.MapTypeStack, objects.MapTypeBloomFilter, objects.MapTypeRingbuf:
				a.KeySize = 0
			case objects.MapTypeLPMTrie:
				a.KeySize = 4 + uint32(1+d.pick(4))
				a.Flags |= objects.FNoPrealloc
			}
			switch a.Type {
			case objects.MapTypeProgArray, objects.MapTypeArrayOfMaps, objects.MapTypeHashOfMaps:
				a.ValueSize = 4
			case objects.MapTypeRingbuf:
				a.ValueSize = 0
			}
			if a.Type != objects.MapTypeBloomFilter && d.chance(0.8) {
				a.Extra = 0
			}
		}
		// Keep what a successful create would allocate small: the test is about the checks.
		per := uint64(a.KeySize) + (uint64(a.ValueSize)+7)&^7 + 64
		if a.Type == objects.MapTypePercpuHash || a.Type == objects.MapTypeLRUPercpuHash || a.Type == objects.MapTypePercpuArray {
			per += (uint64(a.ValueSize) + 7) &^ 7 * uint64(d.ncpu)
		}
		// Hash maps reject more than 2^31 entries before allocating (E2BIG) and are kept for
		// that check. Everything else is capped: lpm_trie allocates lazily in the kernel, so
		// any max_entries is valid there while the engine charges its budget for
		// max_entries up front (a documented difference), and a queue of 2^32-1 entries
		// makes the kernel's u32 ring size wrap to 0 (always full).
		hashE2BIG := a.MaxEntries > 1<<31 && (a.Type == objects.MapTypeHash || a.Type == objects.MapTypePercpuHash ||
			a.Type == objects.MapTypeLRUHash || a.Type == objects.MapTypeLRUPercpuHash || a.Type == objects.MapTypeHashOfMaps)
		if uint64(a.MaxEntries)*per > 32<<20 && !hashE2BIG && a.Type != objects.MapTypeRingbuf {
			a.MaxEntries = []uint32{1, 3, 4096}[d.pick(3)]
			if uint64(a.MaxEntries)*per > 32<<20 {
				a.MaxEntries = 1
			}
		}
		var in *dmap
		if a.Type == objects.MapTypeArrayOfMaps || a.Type == objects.MapTypeHashOfMaps || d.chance(0.02) {
			in = inners[d.pick(len(inners))]
		}
		name := fmt.Sprintf("c%d", i)
		m, e := d.create(name, a, in)
		if e != 0 {
			continue
		}
		created++
		// The creating fd's access mode follows BPF_F_RDONLY/WRONLY.
		var key []byte
		if a.KeySize > 0 {
			key = make([]byte, a.KeySize)
		}
		for _, cmd := range []int{cmdMapLookupElem, cmdMapUpdateElem} {
			v := d.outBufs(m.vbuf)
			if m.vbuf == 0 {
				v = [2][]byte{}
			}
			fdMap := a.Type == objects.MapTypeArrayOfMaps || a.Type == objects.MapTypeHashOfMaps || a.Type == objects.MapTypeProgArray
			if cmd == cmdMapUpdateElem && fdMap {
				continue // values are fds
			}
			d.elem(m, 0, cmd, key, v, 0)
		}
		d.closeMap(m)
	}
	t.Logf("%d creates, %d succeeded", n, created)
	d.logStats()
	if created < n/20 {
		t.Fatalf("only %d of %d creates succeeded: the attrs are too often invalid to test much", created, n)
	}
}
