package objects

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// TestHashOrderModel checks the lazily restored chain order (htab.stamp, orderBucket) against
// a model of the kernel's hashtab: per bucket a list, newest first, where an insert or a
// replacing update puts the key at the head (htab_map_update_elem: hlist_nulls_add_head_rcu of
// the new element, hlist_nulls_del_rcu of the old). After every operation the whole map is
// walked with get_next_key and with batch lookups and must be in the model's order. Small
// tables and a small key space make long chains; a low stamp limit makes stamps renumber.
func TestHashOrderModel(t *testing.T) {
	for _, tc := range []struct {
		name       string
		typ        MapType
		entries    uint32
		keys       uint32
		stampLimit uint32
	}{
		{"hash", MapTypeHash, 8, 14, 1 << 31},
		{"hash one bucket", MapTypeHash, 1, 1, 1 << 31},
		{"hash restamp", MapTypeHash, 8, 14, 20},
		{"hash restamp big", MapTypeHash, 300, 400, 50},
		{"lru no eviction", MapTypeLRUHash, 16, 16, 1 << 31},
		{"lru restamp", MapTypeLRUHash, 16, 16, 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seed := rand.Uint64()
			t.Logf("seed %d", seed)
			rng := rand.New(rand.NewPCG(seed, 0))
			m := newTestMap(t, MapAttr{MapType: tc.typ, KeySize: 4, ValueSize: 4, MaxEntries: tc.entries, MapFlags: FZeroSeed, Capable: true})
			h := m.ops.(*htab)
			h.stampLimit = tc.stampLimit
			model := map[uint32][]uint32{} // bucket → keys, head first
			count := 0
			for op := 0; op < 3000; op++ {
				k := rng.Uint32N(tc.keys)
				_, b := h.locate(u32(k))
				i := slices.Index(model[b], k)
				switch r := rng.IntN(10); {
				case r < 6: // update, any flag
					flags := []uint64{Any, NoExist, Exist}[rng.IntN(3)]
					err := m.Update(u32(k), u32(uint32(op)), flags)
					switch {
					case i >= 0 && flags == NoExist:
						wantErrno(t, "update existing NOEXIST", err, unix.EEXIST)
					case i < 0 && flags == Exist:
						wantErrno(t, "update missing EXIST", err, unix.ENOENT)
					case i < 0 && count == int(tc.entries):
						if tc.typ == MapTypeHash {
							wantErrno(t, "update full", err, unix.E2BIG)
						} else {
							// LRU eviction: leave that to the other tests; undo nothing.
							t.Fatalf("the LRU cases must not fill the map (keys ≤ entries)")
						}
					default:
						wantErrno(t, fmt.Sprintf("update %d", k), err, 0)
						if i >= 0 {
							model[b] = slices.Delete(model[b], i, i+1)
						} else {
							count++
						}
						model[b] = slices.Insert(model[b], 0, k)
					}
				case r < 8:
					err := m.Delete(u32(k))
					if i < 0 {
						wantErrno(t, "delete missing", err, unix.ENOENT)
						break
					}
					wantErrno(t, "delete", err, 0)
					model[b] = slices.Delete(model[b], i, i+1)
					count--
				default:
					// A get_next_key from k alone (it orders k's bucket).
					next := make([]byte, 4)
					err := m.GetNextKey(u32(k), next)
					if err != nil && !errors.Is(err, unix.ENOENT) {
						t.Fatal(err)
					}
				}
				if op%7 == 0 || tc.entries < 20 {
					checkOrder(t, m, h, model, op)
				}
			}
			checkOrder(t, m, h, model, -1)
		})
	}
}

func checkOrder(t *testing.T, m *Map, h *htab, model map[uint32][]uint32, op int) {
	t.Helper()
	var want []uint32
	for b := uint32(0); b < h.nBuckets; b++ {
		want = append(want, model[b]...)
	}
	var got []uint32
	var key []byte
	for {
		next := make([]byte, 4)
		if err := m.GetNextKey(key, next); err != nil {
			wantErrno(t, "get_next_key end", err, unix.ENOENT)
			break
		}
		got = append(got, binary.LittleEndian.Uint32(next))
		key = next
		if len(got) > len(want)+1 {
			break
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("after op %d: get_next_key order %v, want %v", op, got, want)
	}
	// Batch lookups, a few elements at a time (whole buckets per call).
	got = got[:0]
	keys, vals := make([]byte, 4*64), make([]byte, 4*64)
	for bucket := uint32(0); ; {
		n, nb, err := h.LookupBatch(bucket, keys, vals, 64, false)
		for j := 0; j < n; j++ {
			got = append(got, binary.LittleEndian.Uint32(keys[4*j:]))
		}
		if err != nil {
			wantErrno(t, "batch end", err, unix.ENOENT)
			break
		}
		bucket = nb
	}
	if !slices.Equal(got, want) {
		t.Fatalf("after op %d: batch order %v, want %v", op, got, want)
	}
}

// TestHashOrderLongChain: keys chosen to share one bucket (the seed is zero) make a chain as
// long as the map; replacing every key leaves it in reverse order until a walk sorts it, which
// must be quick (not quadratic) and give the kernel's order: most recently updated first.
func TestHashOrderLongChain(t *testing.T) {
	const n = 1500
	m := newTestMap(t, MapAttr{MapType: MapTypeHash, KeySize: 4, ValueSize: 4, MaxEntries: 4096, MapFlags: FZeroSeed, Capable: true})
	h := m.ops.(*htab)
	var keys []uint32
	for k := uint32(0); len(keys) < n; k++ {
		if _, b := h.locate(u32(k)); b == 0 {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		wantErrno(t, "insert", m.Update(u32(k), u32(1), Any), 0)
	}
	for _, k := range keys {
		wantErrno(t, "replace", m.Update(u32(k), u32(2), Any), 0)
	}
	want := slices.Clone(keys)
	slices.Reverse(want)
	var got []uint32
	for _, k := range allKeys(t, m) {
		got = append(got, binary.LittleEndian.Uint32(k))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("order of a %d-element chain after replacing every key: got %v..., want %v...", n, got[:5], want[:5])
	}
}

// TestHashSeeds checks that hash tables and bloom filters without BPF_F_ZERO_SEED get a
// random seed each (htab_map_alloc and bloom_map_alloc call get_random_u32), and that
// BPF_F_ZERO_SEED gives seed 0.
func TestHashSeeds(t *testing.T) {
	seeds := map[uint32]bool{}
	for range 8 {
		h := newTestMap(t, MapAttr{MapType: MapTypeHash, KeySize: 4, ValueSize: 8, MaxEntries: 4}).ops.(*htab)
		b := newTestMap(t, MapAttr{MapType: MapTypeBloomFilter, ValueSize: 4, MaxEntries: 4}).ops.(*bloomFilter)
		seeds[h.seed] = true
		seeds[b.seed] = true
	}
	if len(seeds) < 15 { // 16 draws of 32 random bits: even one repeat has odds of 3 in 10^8
		t.Errorf("16 maps got only %d distinct seeds", len(seeds))
	}
	z := newTestMap(t, MapAttr{MapType: MapTypeHash, KeySize: 4, ValueSize: 8, MaxEntries: 4, MapFlags: FZeroSeed, Capable: true})
	if s := z.ops.(*htab).seed; s != 0 {
		t.Errorf("BPF_F_ZERO_SEED hash: seed %#x, want 0", s)
	}
}
