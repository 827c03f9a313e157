package objects

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"golang.org/x/sys/unix"
)

func newLPM(t testing.TB, max uint32) *Map {
	return newTestMap(t, MapAttr{MapType: MapTypeLPMTrie, KeySize: 8, ValueSize: 4, MaxEntries: max, MapFlags: FNoPrealloc})
}

func lpmOrder(t testing.TB, m *Map) []string {
	var s []string
	for _, k := range allKeys(t, m) {
		s = append(s, lpmString(k))
	}
	return s
}

func TestLPMOps(t *testing.T) {
	m := newLPM(t, 3)
	got := make([]byte, 4)
	wantErrno(t, "lookup empty", m.Lookup(lpmKey(10, 1, 2, 3, 32), got), unix.ENOENT)
	wantErrno(t, "next empty", m.GetNextKey(nil, make([]byte, 8)), unix.ENOENT)
	wantErrno(t, "flags 3", m.Update(lpmKey(10, 0, 0, 0, 8), u32(8), 3), unix.EINVAL)
	wantErrno(t, "F_LOCK", m.Update(lpmKey(10, 0, 0, 0, 8), u32(8), FLock), unix.EINVAL)
	wantErrno(t, "prefixlen 33", m.Update(lpmKey(10, 0, 0, 0, 33), u32(8), Any), unix.EINVAL)
	wantErrno(t, "EXIST missing", m.Update(lpmKey(10, 0, 0, 0, 8), u32(8), Exist), unix.ENOENT)
	wantErrno(t, "insert /8", m.Update(lpmKey(10, 0, 0, 0, 8), u32(8), NoExist), 0)
	wantErrno(t, "insert /24", m.Update(lpmKey(10, 1, 2, 0, 24), u32(24), Any), 0)
	wantErrno(t, "insert /16", m.Update(lpmKey(10, 1, 0, 0, 16), u32(16), Any), 0)
	wantErrno(t, "NOEXIST existing", m.Update(lpmKey(10, 1, 0, 0, 16), u32(0), NoExist), unix.EEXIST)
	wantErrno(t, "full", m.Update(lpmKey(192, 168, 0, 0, 16), u32(0), Any), unix.ENOSPC)
	wantErrno(t, "full NOEXIST", m.Update(lpmKey(192, 168, 0, 0, 16), u32(0), NoExist), unix.ENOSPC)
	wantErrno(t, "full EXIST missing", m.Update(lpmKey(192, 168, 0, 0, 16), u32(0), Exist), unix.ENOENT)
	wantErrno(t, "replace in full", m.Update(lpmKey(10, 1, 0, 0, 16), u32(16), Exist), 0)
	if m.Len() != 3 {
		t.Fatalf("len %d", m.Len())
	}

	for _, tc := range []struct {
		key  []byte
		want uint32
	}{
		{lpmKey(10, 1, 2, 3, 32), 24},
		{lpmKey(10, 1, 3, 3, 32), 16},
		{lpmKey(10, 2, 3, 3, 32), 8},
		{lpmKey(10, 1, 2, 3, 16), 16}, // prefixlen caps the match
		{lpmKey(10, 1, 2, 3, 23), 16},
		{lpmKey(10, 1, 2, 3, 8), 8},
		{lpmKey(10, 1, 2, 0, 24), 24},
	} {
		wantErrno(t, "lookup "+lpmString(tc.key), m.Lookup(tc.key, got), 0)
		if getU32(got) != tc.want {
			t.Fatalf("lookup %s gave /%d, want /%d", lpmString(tc.key), getU32(got), tc.want)
		}
	}
	wantErrno(t, "lookup miss", m.Lookup(lpmKey(11, 0, 0, 0, 32), got), unix.ENOENT)
	wantErrno(t, "lookup /7", m.Lookup(lpmKey(10, 0, 0, 0, 7), got), unix.ENOENT)
	wantErrno(t, "lookup prefixlen 33", m.Lookup(lpmKey(10, 0, 0, 0, 33), got), unix.ENOENT)

	// Post-order: more specific first (kernel-semantics [obs]).
	order := lpmOrder(t, m)
	want := []string{"10.1.2.0/24", "10.1.0.0/16", "10.0.0.0/8"}
	if len(order) != 3 || order[0] != want[0] || order[1] != want[1] || order[2] != want[2] {
		t.Fatalf("order %v, want %v", order, want)
	}
	next := make([]byte, 8)
	for _, k := range [][]byte{lpmKey(1, 2, 3, 4, 32), lpmKey(10, 1, 0, 0, 17), lpmKey(10, 0, 0, 0, 99)} {
		wantErrno(t, "unknown key", m.GetNextKey(k, next), 0)
		if lpmString(next) != want[0] {
			t.Fatalf("next of unknown %s = %s, want the leftmost %s", lpmString(k), lpmString(next), want[0])
		}
	}
	wantErrno(t, "next of last", m.GetNextKey(lpmKey(10, 0, 0, 0, 8), next), unix.ENOENT)

	wantErrno(t, "lookup_and_delete", m.LookupAndDelete(lpmKey(10, 0, 0, 0, 8), got, 0), ENOTSUPP)
	wantErrno(t, "delete inexact", m.Delete(lpmKey(10, 1, 0, 0, 17)), unix.ENOENT)
	wantErrno(t, "delete inexact", m.Delete(lpmKey(10, 1, 0, 0, 15)), unix.ENOENT)
	wantErrno(t, "delete prefixlen 33", m.Delete(lpmKey(10, 1, 0, 0, 33)), unix.EINVAL)
	wantErrno(t, "delete /16", m.Delete(lpmKey(10, 1, 0, 0, 16)), 0)
	wantErrno(t, "delete /16 again", m.Delete(lpmKey(10, 1, 0, 0, 16)), unix.ENOENT)
	wantErrno(t, "lookup after delete", m.Lookup(lpmKey(10, 1, 3, 3, 32), got), 0)
	if getU32(got) != 8 {
		t.Fatalf("after deleting /16, 10.1.3.3 matched /%d", getU32(got))
	}
	wantErrno(t, "insert after delete", m.Update(lpmKey(192, 168, 0, 0, 16), u32(0), NoExist), 0)
}

// TestLPMKernelExample is the 4-node example at the top of kernel/bpf/lpm_trie.c, with its
// documented get_next_key order.
func TestLPMKernelExample(t *testing.T) {
	m := newLPM(t, 16)
	for _, k := range [][]byte{
		lpmKey(192, 168, 0, 0, 16), lpmKey(192, 168, 0, 0, 24), lpmKey(192, 168, 128, 0, 24), lpmKey(192, 168, 1, 0, 24),
	} {
		wantErrno(t, "insert", m.Update(k, u32(binary.LittleEndian.Uint32(k)), Any), 0)
	}
	want := []string{"192.168.0.0/24", "192.168.1.0/24", "192.168.128.0/24", "192.168.0.0/16"}
	got := lpmOrder(t, m)
	for i := range want {
		if i >= len(got) || got[i] != want[i] {
			t.Fatalf("order %v, want %v", got, want)
		}
	}
	// Inserting the intermediate node's prefix turns it into a real node.
	wantErrno(t, "insert /23", m.Update(lpmKey(192, 168, 0, 0, 23), u32(23), NoExist), 0)
	got = lpmOrder(t, m)
	want = []string{"192.168.0.0/24", "192.168.1.0/24", "192.168.0.0/23", "192.168.128.0/24", "192.168.0.0/16"}
	for i := range want {
		if i >= len(got) || got[i] != want[i] {
			t.Fatalf("order %v, want %v", got, want)
		}
	}
	// Deleting a node with two children keeps it as an intermediate node.
	wantErrno(t, "delete /23", m.Delete(lpmKey(192, 168, 0, 0, 23)), 0)
	v := make([]byte, 4)
	wantErrno(t, "lookup", m.Lookup(lpmKey(192, 168, 1, 9, 32), v), 0)
	if getU32(v) != 24 {
		t.Fatalf("lookup 192.168.1.9 gave /%d", getU32(v))
	}
	if m.Len() != 4 {
		t.Fatalf("len %d", m.Len())
	}
}

// lpmModel is a brute-force reference: a list of (prefixlen, masked data) entries.
type lpmModel map[[2]uint32]uint32 // {prefixlen, masked addr} -> value

func maskAddr(a uint32, plen uint32) uint32 {
	if plen == 0 {
		return 0
	}
	return a &^ (1<<(32-plen) - 1)
}

// TestLPMModel compares the trie with a brute-force longest-prefix match over random
// operations, and checks get_next_key's post-order invariants.
func TestLPMModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	m := newLPM(t, 64)
	model := lpmModel{}
	key := func(addr, plen uint32) []byte {
		k := make([]byte, 8)
		binary.LittleEndian.PutUint32(k, plen)
		binary.BigEndian.PutUint32(k[4:], addr)
		return k
	}
	for step := 0; step < 20000; step++ {
		// Few distinct addresses so that prefixes nest.
		addr := uint32(rng.IntN(4))<<30 | uint32(rng.IntN(4))<<22 | uint32(rng.IntN(4))
		plen := uint32(rng.IntN(33))
		mk := [2]uint32{plen, maskAddr(addr, plen)}
		switch rng.IntN(4) {
		case 0, 1:
			v := uint32(step)
			_, exists := model[mk]
			err := m.Update(key(addr, plen), u32(v), Any)
			switch {
			case exists || len(model) < 64:
				wantErrno(t, "update", err, 0)
				model[mk] = v
			default:
				wantErrno(t, "update full", err, unix.ENOSPC)
			}
		case 2:
			err := m.Delete(key(addr, plen))
			if _, exists := model[mk]; exists {
				wantErrno(t, "delete", err, 0)
				delete(model, mk)
			} else {
				wantErrno(t, "delete missing", err, unix.ENOENT)
			}
		case 3:
			got := make([]byte, 4)
			err := m.Lookup(key(addr, plen), got)
			best, bestLen, found := uint32(0), -1, false
			for k, v := range model {
				if k[0] <= plen && maskAddr(addr, k[0]) == k[1] && int(k[0]) > bestLen {
					best, bestLen, found = v, int(k[0]), true
				}
			}
			if !found {
				wantErrno(t, "lookup miss", err, unix.ENOENT)
			} else {
				wantErrno(t, "lookup", err, 0)
				if getU32(got) != best {
					t.Fatalf("step %d: lookup %08x/%d = %d, want %d (/%d)", step, addr, plen, getU32(got), best, bestLen)
				}
			}
		}
		if m.Len() != len(model) {
			t.Fatalf("step %d: len %d, model %d", step, m.Len(), len(model))
		}
		if step%500 == 0 {
			keys := allKeys(t, m)
			if len(keys) != len(model) {
				t.Fatalf("step %d: get_next_key listed %d keys, model has %d", step, len(keys), len(model))
			}
			pos := map[[2]uint32]int{}
			for i, k := range keys {
				pl := binary.LittleEndian.Uint32(k)
				mk := [2]uint32{pl, maskAddr(binary.BigEndian.Uint32(k[4:]), pl)}
				if _, dup := pos[mk]; dup {
					t.Fatalf("key listed twice")
				}
				if _, ok := model[mk]; !ok {
					t.Fatalf("listed key not in the model")
				}
				pos[mk] = i
			}
			for a, ia := range pos {
				for b, ib := range pos {
					// a covers b: b must come first.
					if a[0] < b[0] && maskAddr(b[1], a[0]) == a[1] && ib > ia {
						t.Fatalf("step %d: %08x/%d listed after its covering %08x/%d", step, b[1], b[0], a[1], a[0])
					}
				}
			}
		}
	}
}

func TestLPMKeySizes(t *testing.T) {
	// key_size 5 (one data byte) and 260 (256 bytes, prefixlen up to 2048).
	m := newTestMap(t, MapAttr{MapType: MapTypeLPMTrie, KeySize: 5, ValueSize: 1, MaxEntries: 4, MapFlags: FNoPrealloc})
	wantErrno(t, "prefixlen 8", m.Update([]byte{8, 0, 0, 0, 0xab}, []byte{1}, Any), 0)
	wantErrno(t, "prefixlen 9", m.Update([]byte{9, 0, 0, 0, 0xab}, []byte{1}, Any), unix.EINVAL)
	wantErrno(t, "prefixlen 4", m.Update([]byte{4, 0, 0, 0, 0xa0}, []byte{2}, Any), 0)
	v := []byte{0}
	wantErrno(t, "lookup", m.Lookup([]byte{8, 0, 0, 0, 0xac}, v), 0)
	if v[0] != 2 {
		t.Fatalf("lookup 0xac gave %d", v[0])
	}
	big := newTestMap(t, MapAttr{MapType: MapTypeLPMTrie, KeySize: 260, ValueSize: 1, MaxEntries: 4, MapFlags: FNoPrealloc})
	k := make([]byte, 260)
	binary.LittleEndian.PutUint32(k, 2048)
	k[259] = 1
	wantErrno(t, "prefixlen 2048", big.Update(k, []byte{7}, Any), 0)
	binary.LittleEndian.PutUint32(k, 2049)
	wantErrno(t, "prefixlen 2049", big.Update(k, []byte{7}, Any), unix.EINVAL)
	binary.LittleEndian.PutUint32(k, 2047)
	wantErrno(t, "prefixlen 2047", big.Update(k, []byte{8}, Any), 0)
	binary.LittleEndian.PutUint32(k, 2048)
	k[259] = 0
	wantErrno(t, "lookup", big.Lookup(k, v), 0)
	if v[0] != 8 {
		t.Fatalf("lookup gave %d", v[0])
	}
	if keys := allKeys(t, big); len(keys) != 2 || binary.LittleEndian.Uint32(keys[0]) != 2048 {
		t.Fatalf("keys %x", keys)
	}
}

func TestQueueStack(t *testing.T) {
	for _, tp := range []MapType{MapTypeQueue, MapTypeStack} {
		t.Run(tp.String(), func(t *testing.T) {
			m := newTestMap(t, MapAttr{MapType: tp, ValueSize: 4, MaxEntries: 3})
			v := make([]byte, 4)
			v[0] = 0xff
			wantErrno(t, "peek empty", m.Lookup(nil, v), unix.ENOENT)
			if getU32(v) != 0 {
				t.Fatalf("peek on empty left %x in value, the kernel zeroes it", v)
			}
			wantErrno(t, "pop empty", m.LookupAndDelete(nil, v, 0), unix.ENOENT)
			wantErrno(t, "NOEXIST", m.Update(nil, u32(1), NoExist), unix.EINVAL)
			wantErrno(t, "flags 3", m.Update(nil, u32(1), 3), unix.EINVAL)
			wantErrno(t, "F_LOCK", m.Update(nil, u32(1), FLock), unix.EINVAL)
			for i := uint32(1); i <= 3; i++ {
				wantErrno(t, "push", m.Update(nil, u32(i), Any), 0)
			}
			wantErrno(t, "push full", m.Update(nil, u32(4), Any), unix.E2BIG)
			wantErrno(t, "push full EXIST", m.Update(nil, u32(4), Exist), 0) // drops 1
			if m.Len() != 3 {
				t.Fatalf("len %d", m.Len())
			}
			var listed []uint32
			wantErrno(t, "values", m.Values(func(b []byte) bool { listed = append(listed, getU32(b)); return true }), 0)
			if len(listed) != 3 || listed[0] != 2 || listed[1] != 3 || listed[2] != 4 {
				t.Fatalf("values %v, want [2 3 4] (push order)", listed)
			}
			wantErrno(t, "peek", m.Lookup(nil, v), 0)
			wantPeek := uint32(2)
			if tp == MapTypeStack {
				wantPeek = 4
			}
			if getU32(v) != wantPeek {
				t.Fatalf("peek %d, want %d", getU32(v), wantPeek)
			}
			wantErrno(t, "pop flags", m.LookupAndDelete(nil, v, Exist), unix.EINVAL)
			wantErrno(t, "pop flags F_LOCK", m.LookupAndDelete(nil, v, FLock), unix.EINVAL)
			var popped []uint32
			for m.LookupAndDelete(nil, v, 0) == nil {
				popped = append(popped, getU32(v))
			}
			want := []uint32{2, 3, 4}
			if tp == MapTypeStack {
				want = []uint32{4, 3, 2}
			}
			for i := range want {
				if i >= len(popped) || popped[i] != want[i] {
					t.Fatalf("popped %v, want %v", popped, want)
				}
			}
			wantErrno(t, "delete", m.Delete(nil), unix.EINVAL)
			wantErrno(t, "get_next_key", m.GetNextKey(nil, nil), unix.EINVAL)
			wantErrno(t, "keyed peek", m.Lookup(u32(0), v), unix.EINVAL)
			wantErrno(t, "keyed push", m.Update(u32(0), v, Any), unix.EINVAL)
			// Many wraps of the ring.
			for i := uint32(0); i < 1000; i++ {
				wantErrno(t, "push", m.Update(nil, u32(i), Any), 0)
				if i%2 == 1 {
					wantErrno(t, "pop", m.LookupAndDelete(nil, v, 0), 0)
					wantErrno(t, "pop", m.LookupAndDelete(nil, v, 0), 0)
				}
			}
			// Values stops when fn says so.
			wantErrno(t, "push", m.Update(nil, u32(1), Any), 0)
			wantErrno(t, "push", m.Update(nil, u32(2), Any), 0)
			n := 0
			_ = m.Values(func([]byte) bool { n++; return false })
			if n != 1 {
				t.Fatalf("Values went on after false: %d calls", n)
			}
		})
	}
	h := newTestMap(t, MapAttr{MapType: MapTypeHash, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	wantErrno(t, "Values on a hash", h.Values(func([]byte) bool { return true }), unix.EINVAL)
}

// TestQueueValuesConcurrent: values present for the whole listing are listed exactly once
// while other elements are pushed and popped.
func TestQueueValuesConcurrent(t *testing.T) {
	m := newTestMap(t, MapAttr{MapType: MapTypeQueue, ValueSize: 8, MaxEntries: 100000})
	for i := uint64(0); i < 1000; i++ {
		wantErrno(t, "push", m.Update(nil, u64(i), Any), 0)
	}
	for i := uint64(1 << 32); i < 1<<32+1000; i++ {
		wantErrno(t, "push", m.Update(nil, u64(i), Any), 0)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		v := make([]byte, 8)
		for i := 0; i < 1000; i++ { // pops the first 1000 only
			_ = m.LookupAndDelete(nil, v, 0)
			_ = m.Update(nil, u64(1<<40+uint64(i)), Any)
		}
	}()
	seen := map[uint64]int{}
	_ = m.Values(func(b []byte) bool { seen[binary.LittleEndian.Uint64(b)]++; return true })
	<-done
	for i := uint64(1 << 32); i < 1<<32+1000; i++ {
		if seen[i] != 1 {
			t.Fatalf("value %#x listed %d times", i, seen[i])
		}
	}
	for v, n := range seen {
		if n != 1 {
			t.Fatalf("value %#x listed %d times", v, n)
		}
	}
}

func TestBloomFilter(t *testing.T) {
	m := newTestMap(t, MapAttr{MapType: MapTypeBloomFilter, ValueSize: 4, MaxEntries: 100, MapFlags: FZeroSeed})
	for i := uint32(0); i < 100; i++ {
		wantErrno(t, "push", m.Update(nil, u32(i), Any), 0)
	}
	for i := uint32(0); i < 100; i++ {
		wantErrno(t, "lookup present", m.Lookup(nil, u32(i)), 0)
	}
	absent := 0
	for i := uint32(1000); i < 2000; i++ {
		if m.Lookup(nil, u32(i)) != nil {
			absent++
		}
	}
	if absent < 900 {
		t.Fatalf("only %d of 1000 absent values reported ENOENT", absent)
	}
	wantErrno(t, "lookup absent", m.Lookup(nil, u32(1<<31)), unix.ENOENT)
	v := u32(5)
	_ = m.Lookup(nil, v)
	if getU32(v) != 5 {
		t.Fatal("lookup wrote the value buffer")
	}
	wantErrno(t, "EXIST", m.Update(nil, u32(1), Exist), unix.EINVAL)
	wantErrno(t, "NOEXIST", m.Update(nil, u32(1), NoExist), unix.EINVAL)
	wantErrno(t, "F_LOCK", m.Update(nil, u32(1), FLock), unix.EINVAL)
	wantErrno(t, "delete", m.Delete(nil), unix.EOPNOTSUPP)
	wantErrno(t, "get_next_key", m.GetNextKey(nil, nil), unix.EOPNOTSUPP)
	wantErrno(t, "pop", m.LookupAndDelete(nil, make([]byte, 4), 0), ENOTSUPP)

	// The bits are the kernel's: jhash2 (value_size % 4 == 0) or jhash, seeded hash_seed+i.
	for _, vs := range []uint32{4, 5} {
		one := newTestMap(t, MapAttr{MapType: MapTypeBloomFilter, ValueSize: vs, MaxEntries: 10, MapFlags: FZeroSeed, MapExtra: 3})
		b := one.ops.(*bloomFilter)
		if b.nrHash != 3 || b.mask != 63 {
			t.Fatalf("nr_hash %d mask %d, want 3 and 63", b.nrHash, b.mask)
		}
		val := []byte{1, 2, 3, 4, 5}[:vs]
		wantErrno(t, "push", one.Update(nil, val, Any), 0)
		var want uint64
		for i := uint32(0); i < 3; i++ {
			h := jhash(val, i)
			if vs%4 == 0 {
				h = jhash2(val, i)
			}
			want |= 1 << (h & 63)
		}
		if b.bitset[0] != want {
			t.Fatalf("value_size %d: bits %#x, want %#x", vs, b.bitset[0], want)
		}
	}
}

func TestBloomGeometry(t *testing.T) {
	for _, tc := range []struct {
		max    uint32
		extra  uint64
		nrHash uint32
		bits   uint64
	}{
		{1, 0, 5, 64},
		{100, 0, 5, 1024},          // 100*5/5*7 = 700
		{100, 1, 1, 256},           // 100/5*7 = 140
		{9, 0, 5, 64},              // 63
		{10, 0, 5, 128},            // 70
		{1 << 28, 15, 15, 1 << 32}, // overflows u32
		{1 << 29, 1, 1, 1 << 30},   // 2^29/5*7 rounds up to 2^30
		{1 << 30, 1, 1, 1 << 31},   // 2^30/5*7 < 2^31
		{1 << 31, 1, 1, 1 << 32},   // 2^31/5*7 > 2^31
	} {
		nr, mask, bits := bloomGeometry(tc.max, tc.extra)
		if nr != tc.nrHash || bits != tc.bits || uint64(mask) != bits-1 {
			t.Errorf("bloomGeometry(%d, %d) = %d, %#x, %d; want %d hashes, %d bits", tc.max, tc.extra, nr, mask, bits, tc.nrHash, tc.bits)
		}
	}
}

func TestRingbufOps(t *testing.T) {
	m := newTestMap(t, MapAttr{MapType: MapTypeRingbuf, MaxEntries: 1 << 16})
	wantErrno(t, "lookup", m.Lookup(nil, nil), ENOTSUPP)
	wantErrno(t, "update", m.Update(nil, nil, Any), ENOTSUPP)
	wantErrno(t, "delete", m.Delete(nil), ENOTSUPP)
	wantErrno(t, "get_next_key", m.GetNextKey(nil, nil), ENOTSUPP)
	wantErrno(t, "lookup_and_delete", m.LookupAndDelete(nil, nil, 0), ENOTSUPP)
	if m.Memlock() != 0 {
		t.Fatalf("memlock without charge %d", m.Memlock())
	}
	if got := ringbufMemUsage(m); got < 1<<16 {
		t.Fatalf("mem usage %d below the data size", got)
	}
}

func TestArrayOfMaps(t *testing.T) {
	tmpl := newTestMap(t, MapAttr{MapType: MapTypeArray, KeySize: 4, ValueSize: 4, MaxEntries: 2})
	m := newTestMap(t, MapAttr{MapType: MapTypeArrayOfMaps, KeySize: 4, ValueSize: 4, MaxEntries: 3, Inner: tmpl})
	if meta := m.InnerMeta(); meta == nil || meta == tmpl || meta.Type != MapTypeArray || meta.MaxEntries != 2 {
		t.Fatalf("inner meta %+v", meta)
	}
	if r, u := tmpl.Refs(); r != 1 || u != 1 {
		t.Fatalf("template refs %d/%d: the meta must not hold one", r, u)
	}
	in1 := newTestMap(t, MapAttr{MapType: MapTypeArray, KeySize: 4, ValueSize: 4, MaxEntries: 2})
	in3 := newTestMap(t, MapAttr{MapType: MapTypeArray, KeySize: 4, ValueSize: 4, MaxEntries: 3})
	inHash := newTestMap(t, MapAttr{MapType: MapTypeHash, KeySize: 4, ValueSize: 4, MaxEntries: 2})
	inFlags := newTestMap(t, MapAttr{MapType: MapTypeArray, KeySize: 4, ValueSize: 4, MaxEntries: 2, MapFlags: FRdonlyProg})
	inRdonly := newTestMap(t, MapAttr{MapType: MapTypeArray, KeySize: 4, ValueSize: 4, MaxEntries: 2, MapFlags: FRdonly})
	released := false
	in1.OnRelease = func() { released = true }
	fds := fdTable{3: in1, 4: in3, 5: inHash, 6: newFakeProg(9), 7: inFlags, 8: inRdonly}
	got := make([]byte, 4)

	wantErrno(t, "plain update", m.Update(u32(0), u32(3), Any), unix.EINVAL)
	wantErrno(t, "NOEXIST", m.UpdateObject(u32(0), u32(3), NoExist, fds.resolve), unix.EINVAL)
	wantErrno(t, "EXIST", m.UpdateObject(u32(0), u32(3), Exist, fds.resolve), unix.EINVAL)
	wantErrno(t, "out of range", m.UpdateObject(u32(3), u32(3), Any, fds.resolve), unix.E2BIG)
	wantErrno(t, "bad fd", m.UpdateObject(u32(0), u32(99), Any, fds.resolve), unix.EBADF)
	wantErrno(t, "prog fd", m.UpdateObject(u32(0), u32(6), Any, fds.resolve), unix.EINVAL)
	wantErrno(t, "entries 3 vs 2", m.UpdateObject(u32(0), u32(4), Any, fds.resolve), unix.EINVAL)
	wantErrno(t, "hash vs array", m.UpdateObject(u32(0), u32(5), Any, fds.resolve), unix.EINVAL)
	wantErrno(t, "flags differ", m.UpdateObject(u32(0), u32(7), Any, fds.resolve), unix.EINVAL)
	for _, o := range []*Map{in3, inHash, inFlags} {
		if r, _ := o.Refs(); r != 1 {
			t.Fatalf("rejected inner map keeps a reference (%d)", r)
		}
	}
	// RDONLY is not a permanent flag, so that map matches.
	wantErrno(t, "rdonly inner", m.UpdateObject(u32(2), u32(8), Any, fds.resolve), 0)
	wantErrno(t, "lookup empty", m.Lookup(u32(0), got), unix.ENOENT)
	wantErrno(t, "lookup out of range", m.Lookup(u32(3), got), unix.ENOENT)
	wantErrno(t, "insert", m.UpdateObject(u32(0), u32(3), Any, fds.resolve), 0)
	wantErrno(t, "insert twice", m.UpdateObject(u32(1), u32(3), Any, fds.resolve), 0)
	wantErrno(t, "lookup", m.Lookup(u32(0), got), 0)
	if getU32(got) != in1.ID() {
		t.Fatalf("lookup gave %d, want inner id %d", getU32(got), in1.ID())
	}
	if r, u := in1.Refs(); r != 3 || u != 1 {
		t.Fatalf("inner refs %d/%d, want 3/1 (slots hold refcnt, not usercnt)", r, u)
	}
	in1.PutUser() // unpinned: the slots keep it alive
	if released {
		t.Fatal("inner map freed while in a slot")
	}
	wantErrno(t, "lookup_and_delete", m.LookupAndDelete(u32(0), got, 0), ENOTSUPP)
	wantErrno(t, "delete out of range", m.Delete(u32(3)), unix.E2BIG)
	wantErrno(t, "delete", m.Delete(u32(0)), 0)
	wantErrno(t, "delete empty", m.Delete(u32(0)), unix.ENOENT)
	if m.Len() != 2 {
		t.Fatalf("len %d", m.Len())
	}
	next := make([]byte, 4)
	wantErrno(t, "next", m.GetNextKey(nil, next), 0)
	wantErrno(t, "next last", m.GetNextKey(u32(2), next), unix.ENOENT)
	m.Release()
	if !released {
		t.Fatal("inner map not freed when the outer map was")
	}
	if r, _ := inRdonly.Refs(); r != 1 {
		t.Fatalf("outer release left %d refs on an inner map", r)
	}

	// BPF_F_INNER_MAP templates accept any max_entries.
	tmpl2 := newTestMap(t, MapAttr{MapType: MapTypeArray, KeySize: 4, ValueSize: 4, MaxEntries: 2, MapFlags: FInnerMap})
	m2 := newTestMap(t, MapAttr{MapType: MapTypeArrayOfMaps, KeySize: 4, ValueSize: 4, MaxEntries: 1, Inner: tmpl2})
	in9 := newTestMap(t, MapAttr{MapType: MapTypeArray, KeySize: 4, ValueSize: 4, MaxEntries: 9, MapFlags: FInnerMap})
	wantErrno(t, "BPF_F_INNER_MAP", m2.UpdateObject(u32(0), u32(1), Any, fdTable{1: in9}.resolve), 0)
	// The template copy is not an element store.
	wantErrno(t, "meta lookup", m2.InnerMeta().Lookup(u32(0), got), unix.EINVAL)
	// Hash inner maps compare no max_entries.
	htmpl := newTestMap(t, MapAttr{MapType: MapTypeHash, KeySize: 4, ValueSize: 4, MaxEntries: 2})
	m3 := newTestMap(t, MapAttr{MapType: MapTypeArrayOfMaps, KeySize: 4, ValueSize: 4, MaxEntries: 1, Inner: htmpl})
	hbig := newTestMap(t, MapAttr{MapType: MapTypeHash, KeySize: 4, ValueSize: 4, MaxEntries: 200})
	wantErrno(t, "hash any size", m3.UpdateObject(u32(0), u32(1), Any, fdTable{1: hbig}.resolve), 0)
}

func TestHashOfMaps(t *testing.T) {
	tmpl := newTestMap(t, MapAttr{MapType: MapTypeArray, KeySize: 4, ValueSize: 4, MaxEntries: 2})
	m := newTestMap(t, MapAttr{MapType: MapTypeHashOfMaps, KeySize: 4, ValueSize: 4, MaxEntries: 2, Inner: tmpl})
	in1 := newTestMap(t, MapAttr{MapType: MapTypeArray, KeySize: 4, ValueSize: 4, MaxEntries: 2})
	in2 := newTestMap(t, MapAttr{MapType: MapTypeArray, KeySize: 4, ValueSize: 4, MaxEntries: 2})
	bad := newTestMap(t, MapAttr{MapType: MapTypeArray, KeySize: 4, ValueSize: 4, MaxEntries: 3})
	fds := fdTable{3: in1, 4: in2, 5: bad}
	got := make([]byte, 4)
	refs := func(mm *Map) int64 { r, _ := mm.Refs(); return r }

	wantErrno(t, "plain update", m.Update(u32(0), u32(3), Any), unix.EINVAL)
	wantErrno(t, "bad fd", m.UpdateObject(u32(0), u32(99), Any, fds.resolve), unix.EBADF)
	wantErrno(t, "bad fd before flags", m.UpdateObject(u32(0), u32(99), 7, fds.resolve), unix.EBADF)
	wantErrno(t, "meta mismatch", m.UpdateObject(u32(0), u32(5), Any, fds.resolve), unix.EINVAL)
	wantErrno(t, "EXIST missing", m.UpdateObject(u32(0), u32(3), Exist, fds.resolve), unix.ENOENT)
	wantErrno(t, "flags 3", m.UpdateObject(u32(0), u32(3), 3, fds.resolve), unix.EINVAL)
	if refs(in1) != 1 || refs(bad) != 1 {
		t.Fatalf("failed updates leaked references: %d %d", refs(in1), refs(bad))
	}
	wantErrno(t, "NOEXIST missing", m.UpdateObject(u32(0), u32(3), NoExist, fds.resolve), 0)
	wantErrno(t, "NOEXIST existing", m.UpdateObject(u32(0), u32(4), NoExist, fds.resolve), unix.EEXIST)
	if refs(in2) != 1 {
		t.Fatalf("EEXIST leaked a reference: %d", refs(in2))
	}
	wantErrno(t, "lookup", m.Lookup(u32(0), got), 0)
	if getU32(got) != in1.ID() {
		t.Fatalf("lookup gave %d, want %d", getU32(got), in1.ID())
	}
	wantErrno(t, "same inner again", m.UpdateObject(u32(1), u32(3), Any, fds.resolve), 0)
	if refs(in1) != 3 {
		t.Fatalf("in1 refcnt %d, want 3", refs(in1))
	}
	wantErrno(t, "full", m.UpdateObject(u32(2), u32(4), Any, fds.resolve), unix.E2BIG)
	wantErrno(t, "replace same id", m.UpdateObject(u32(1), u32(3), Exist, fds.resolve), 0)
	if refs(in1) != 3 {
		t.Fatalf("in1 refcnt %d after replacing with itself, want 3", refs(in1))
	}
	wantErrno(t, "replace", m.UpdateObject(u32(1), u32(4), Exist, fds.resolve), 0)
	if refs(in1) != 2 || refs(in2) != 2 {
		t.Fatalf("refcnts %d %d after replace, want 2 2", refs(in1), refs(in2))
	}
	wantErrno(t, "lookup_and_delete", m.LookupAndDelete(u32(0), got, 0), ENOTSUPP)
	if keys := allKeys(t, m); len(keys) != 2 {
		t.Fatalf("%d keys", len(keys))
	}
	// Batches return inner ids and drop references of deleted slots.
	b, ok := m.Batcher()
	if !ok {
		t.Fatal("hash_of_maps has no bucket batcher")
	}
	keys, vals := make([]byte, 8), make([]byte, 8)
	n, _, err := b.LookupBatch(0, keys, vals, 2, false)
	wantErrno(t, "batch", err, unix.ENOENT)
	ids := map[uint32]bool{getU32(vals): true, getU32(vals[4:]): true}
	if n != 2 || !ids[in1.ID()] || !ids[in2.ID()] {
		t.Fatalf("batch gave %d values %x, want ids %d and %d", n, vals, in1.ID(), in2.ID())
	}
	wantErrno(t, "delete", m.Delete(u32(0)), 0)
	wantErrno(t, "delete missing", m.Delete(u32(0)), unix.ENOENT)
	if refs(in1) != 1 {
		t.Fatalf("in1 refcnt %d after delete, want 1", refs(in1))
	}
	n, _, err = b.LookupBatch(0, keys, vals, 2, true)
	wantErrno(t, "batch delete", err, unix.ENOENT)
	if n != 1 || refs(in2) != 1 || m.Len() != 0 {
		t.Fatalf("batch delete: n %d, in2 refcnt %d, len %d", n, refs(in2), m.Len())
	}
	wantErrno(t, "insert", m.UpdateObject(u32(7), u32(3), Any, fds.resolve), 0)
	wantErrno(t, "insert", m.UpdateObject(u32(8), u32(3), Any, fds.resolve), 0)
	m.Release()
	if refs(in1) != 1 {
		t.Fatalf("in1 refcnt %d after outer release, want 1", refs(in1))
	}
}
