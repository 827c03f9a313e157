package objects

import (
	"bytes"
	"encoding/binary"
	"errors"
	"sort"
	"testing"

	"golang.org/x/sys/unix"
)

// TestHashFlags covers the ANY/NOEXIST/EXIST × exists/missing table of kernel-semantics c.4 for
// every hash flavour, with and without preallocation.
func TestHashFlags(t *testing.T) {
	for _, tc := range []struct {
		tp    MapType
		flags uint32
	}{
		{MapTypeHash, 0}, {MapTypeHash, FNoPrealloc}, {MapTypePercpuHash, 0}, {MapTypePercpuHash, FNoPrealloc},
		{MapTypeLRUHash, 0}, {MapTypeLRUPercpuHash, 0}, {MapTypeLRUHash, FNoCommonLRU},
	} {
		t.Run(tc.tp.String(), func(t *testing.T) {
			m := newTestMap(t, MapAttr{MapType: tc.tp, KeySize: 4, ValueSize: 8, MaxEntries: 8, MapFlags: tc.flags})
			vs := m.ValueBufSize()
			val := func(b byte) []byte { return bytes.Repeat([]byte{b}, vs) }
			got := make([]byte, vs)
			wantErrno(t, "lookup missing", m.Lookup(u32(1), got), unix.ENOENT)
			wantErrno(t, "EXIST missing", m.Update(u32(1), val(1), Exist), unix.ENOENT)
			wantErrno(t, "NOEXIST missing", m.Update(u32(1), val(1), NoExist), 0)
			wantErrno(t, "NOEXIST existing", m.Update(u32(1), val(2), NoExist), unix.EEXIST)
			wantErrno(t, "EXIST existing", m.Update(u32(1), val(3), Exist), 0)
			wantErrno(t, "ANY existing", m.Update(u32(1), val(4), Any), 0)
			wantErrno(t, "ANY missing", m.Update(u32(2), val(5), Any), 0)
			wantErrno(t, "flags 3", m.Update(u32(3), val(5), 3), unix.EINVAL)
			wantErrno(t, "flags 8", m.Update(u32(3), val(5), 8), unix.EINVAL)
			wantErrno(t, "lookup", m.Lookup(u32(1), got), 0)
			if !bytes.Equal(got, val(4)) {
				t.Fatalf("value %x, want %x", got, val(4))
			}
			if m.Len() != 2 {
				t.Fatalf("len %d, want 2", m.Len())
			}
			wantErrno(t, "delete existing", m.Delete(u32(1)), 0)
			wantErrno(t, "delete missing", m.Delete(u32(1)), unix.ENOENT)
			wantErrno(t, "lookup deleted", m.Lookup(u32(1), got), unix.ENOENT)
			clear(got)
			wantErrno(t, "lookup_and_delete existing", m.LookupAndDelete(u32(2), got, 0), 0)
			if !bytes.Equal(got, val(5)) {
				t.Fatalf("lookup_and_delete value %x, want %x", got, val(5))
			}
			wantErrno(t, "lookup_and_delete missing", m.LookupAndDelete(u32(2), got, 0), unix.ENOENT)
			if m.Len() != 0 {
				t.Fatalf("len %d, want 0", m.Len())
			}
		})
	}
}

// TestHashFull: a new key in a full map is E2BIG, replacing is fine, and the flag checks come
// before the capacity check.
func TestHashFull(t *testing.T) {
	for _, tc := range []struct {
		tp    MapType
		flags uint32
	}{{MapTypeHash, 0}, {MapTypeHash, FNoPrealloc}, {MapTypePercpuHash, 0}, {MapTypePercpuHash, FNoPrealloc}} {
		m := newTestMap(t, MapAttr{MapType: tc.tp, KeySize: 4, ValueSize: 4, MaxEntries: 4, MapFlags: tc.flags})
		v := make([]byte, m.ValueBufSize())
		for i := uint32(0); i < 4; i++ {
			wantErrno(t, "fill", m.Update(u32(i), v, Any), 0)
		}
		wantErrno(t, "new key ANY", m.Update(u32(9), v, Any), unix.E2BIG)
		wantErrno(t, "new key NOEXIST", m.Update(u32(9), v, NoExist), unix.E2BIG)
		wantErrno(t, "new key EXIST", m.Update(u32(9), v, Exist), unix.ENOENT)
		wantErrno(t, "existing NOEXIST", m.Update(u32(1), v, NoExist), unix.EEXIST)
		wantErrno(t, "replace ANY", m.Update(u32(1), v, Any), 0)
		wantErrno(t, "replace EXIST", m.Update(u32(1), v, Exist), 0)
		wantErrno(t, "delete", m.Delete(u32(1)), 0)
		wantErrno(t, "insert after delete", m.Update(u32(9), v, NoExist), 0)
		if m.Len() != 4 {
			t.Fatalf("%s: len %d", tc.tp, m.Len())
		}
	}
}

// TestLRU: never E2BIG, count stays <= max_entries, the newest key is present; with 4 entries,
// inserting 1..5 leaves {2,3,4,5} (the kernel's result in 3 of 3 runs).
func TestLRU(t *testing.T) {
	for _, tp := range []MapType{MapTypeLRUHash, MapTypeLRUPercpuHash} {
		m := newTestMap(t, MapAttr{MapType: tp, KeySize: 4, ValueSize: 4, MaxEntries: 4})
		v := make([]byte, m.ValueBufSize())
		for i := uint32(1); i <= 5; i++ {
			wantErrno(t, "insert", m.Update(u32(i), v, Any), 0)
		}
		var got []uint32
		for _, k := range allKeys(t, m) {
			got = append(got, binary.LittleEndian.Uint32(k))
		}
		sort.Slice(got, func(i, j int) bool { return got[i] < got[j] })
		if len(got) != 4 || got[0] != 2 || got[3] != 5 {
			t.Fatalf("%s: keys %v, want [2 3 4 5]", tp, got)
		}
		for i := uint32(100); i < 200; i++ {
			wantErrno(t, "insert", m.Update(u32(i), v, NoExist), 0)
			if m.Len() > 4 {
				t.Fatalf("len %d > 4", m.Len())
			}
			wantErrno(t, "newest present", m.Lookup(u32(i), v), 0)
		}
		// An update of an existing key makes it the most recent.
		wantErrno(t, "touch", m.Update(u32(196), v, Exist), 0)
		wantErrno(t, "insert", m.Update(u32(300), v, Any), 0)
		wantErrno(t, "touched survives", m.Lookup(u32(196), v), 0)
		wantErrno(t, "oldest evicted", m.Lookup(u32(197), v), unix.ENOENT)
	}
	m := newTestMap(t, MapAttr{MapType: MapTypeLRUHash, KeySize: 4, ValueSize: 4, MaxEntries: 8, MapFlags: FNoCommonLRU})
	for i := uint32(0); i < 100; i++ {
		wantErrno(t, "insert", m.Update(u32(i), u32(i), Any), 0)
		if m.Len() > int(m.MaxEntries) {
			t.Fatalf("len %d > %d", m.Len(), m.MaxEntries)
		}
	}
}

// TestHashGetNextKey: NULL or unknown key gives the first element, every key comes once, then
// ENOENT; an empty map is ENOENT at once.
func TestHashGetNextKey(t *testing.T) {
	for _, tp := range []MapType{MapTypeHash, MapTypePercpuHash, MapTypeLRUHash, MapTypeLRUPercpuHash} {
		m := newTestMap(t, MapAttr{MapType: tp, KeySize: 4, ValueSize: 4, MaxEntries: 64})
		next := make([]byte, 4)
		wantErrno(t, "empty", m.GetNextKey(nil, next), unix.ENOENT)
		wantErrno(t, "empty with key", m.GetNextKey(u32(7), next), unix.ENOENT)
		v := make([]byte, m.ValueBufSize())
		for i := uint32(0); i < 50; i++ {
			wantErrno(t, "insert", m.Update(u32(i*7), v, Any), 0)
		}
		keys := allKeys(t, m)
		seen := map[uint32]bool{}
		for _, k := range keys {
			seen[binary.LittleEndian.Uint32(k)] = true
		}
		if len(keys) != 50 || len(seen) != 50 {
			t.Fatalf("%s: %d keys, %d distinct, want 50", tp, len(keys), len(seen))
		}
		first := make([]byte, 4)
		wantErrno(t, "nil", m.GetNextKey(nil, first), 0)
		wantErrno(t, "unknown", m.GetNextKey(u32(1), next), 0)
		if !bytes.Equal(first, next) || !bytes.Equal(first, keys[0]) {
			t.Fatalf("unknown key gave %x, first is %x", next, first)
		}
		wantErrno(t, "last", m.GetNextKey(keys[len(keys)-1], next), unix.ENOENT)
	}
}

// TestHashZeroSeedOrder: with BPF_F_ZERO_SEED the order is the kernel's: buckets in order
// (bucket = jhash2(key, 0) & (n_buckets-1)), newest first inside a bucket.
func TestHashZeroSeedOrder(t *testing.T) {
	m := newTestMap(t, MapAttr{MapType: MapTypeHash, KeySize: 4, ValueSize: 4, MaxEntries: 5, MapFlags: FZeroSeed, Capable: true})
	const nb = 8
	type ent struct{ key, bucket, seq uint32 }
	var want []ent
	for i := uint32(0); i < 5; i++ {
		wantErrno(t, "insert", m.Update(u32(i), u32(i), Any), 0)
		want = append(want, ent{i, jhash2(u32(i), 0) & (nb - 1), i})
	}
	sort.Slice(want, func(i, j int) bool {
		if want[i].bucket != want[j].bucket {
			return want[i].bucket < want[j].bucket
		}
		return want[i].seq > want[j].seq
	})
	for i, k := range allKeys(t, m) {
		if got := binary.LittleEndian.Uint32(k); got != want[i].key {
			t.Fatalf("key %d: got %d, want %d (order %v)", i, got, want[i].key, want)
		}
	}
}

// TestJhash checks jhash against lookup3's published vectors (hashlittle, which the kernel's
// jhash is on little-endian hosts).
func TestJhash(t *testing.T) {
	for _, tc := range []struct {
		in   string
		seed uint32
		want uint32
	}{
		{"", 0, 0xdeadbeef},
		{"", 0xdeadbeef, 0xbd5b7dde},
		{"Four score and seven years ago", 0, 0x17770551},
		{"Four score and seven years ago", 1, 0xcd628161},
	} {
		if got := jhash([]byte(tc.in), tc.seed); got != tc.want {
			t.Errorf("jhash(%q, %#x) = %#x, want %#x", tc.in, tc.seed, got, tc.want)
		}
	}
	// jhash2 mixes in the length in bytes (length<<2) and reads little-endian words, so on a
	// little-endian host it equals jhash over the same bytes.
	k := []byte("0123456789abcdef")
	for n := 0; n <= len(k); n += 4 {
		if jhash2(k[:n], 7) != jhash(k[:n], 7) {
			t.Errorf("jhash2 and jhash differ on %d bytes", n)
		}
	}
	if htabHash(k, 3) != jhash2(k, 3) || htabHash(k[:5], 3) != jhash(k[:5], 3) {
		t.Errorf("htabHash does not pick jhash2 for word-sized keys and jhash otherwise")
	}
}

// TestPercpuValues: per-CPU values are round_up(value_size, 8) bytes per possible CPU, every
// slot is written by update and returned by lookup.
func TestPercpuValues(t *testing.T) {
	for _, tp := range []MapType{MapTypePercpuHash, MapTypeLRUPercpuHash, MapTypePercpuArray} {
		m := newTestMap(t, MapAttr{MapType: tp, KeySize: 4, ValueSize: 5, MaxEntries: 4})
		if m.ValueBufSize() != 8*testNCPU {
			t.Fatalf("%s: value buffer %d, want %d", tp, m.ValueBufSize(), 8*testNCPU)
		}
		in := []byte{1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 13, 14, 15, 16, 17, 18}
		wantErrno(t, "update", m.Update(u32(1), in, Any), 0)
		out := make([]byte, len(in))
		wantErrno(t, "lookup", m.Lookup(u32(1), out), 0)
		if !bytes.Equal(in, out) {
			t.Fatalf("%s: got %x, want %x", tp, out, in)
		}
	}
}

// TestArrayOps covers the array rows of c.4.
func TestArrayOps(t *testing.T) {
	for _, tp := range []MapType{MapTypeArray, MapTypePercpuArray} {
		m := newTestMap(t, MapAttr{MapType: tp, KeySize: 4, ValueSize: 4, MaxEntries: 5})
		v := make([]byte, m.ValueBufSize())
		for i := range v {
			v[i] = byte(i + 1)
		}
		got := make([]byte, len(v))
		wantErrno(t, "zero-filled", m.Lookup(u32(4), got), 0)
		if !bytes.Equal(got, make([]byte, len(v))) {
			t.Fatalf("initial value %x", got)
		}
		wantErrno(t, "lookup out of range", m.Lookup(u32(5), got), unix.ENOENT)
		wantErrno(t, "update out of range", m.Update(u32(5), v, Any), unix.E2BIG)
		wantErrno(t, "NOEXIST out of range", m.Update(u32(5), v, NoExist), unix.E2BIG)
		wantErrno(t, "NOEXIST", m.Update(u32(1), v, NoExist), unix.EEXIST)
		wantErrno(t, "EXIST", m.Update(u32(1), v, Exist), 0)
		wantErrno(t, "ANY", m.Update(u32(2), v, Any), 0)
		wantErrno(t, "flags 3", m.Update(u32(2), v, 3), unix.EINVAL)
		wantErrno(t, "lookup", m.Lookup(u32(1), got), 0)
		if !bytes.Equal(got, v) {
			t.Fatalf("got %x, want %x", got, v)
		}
		wantErrno(t, "delete", m.Delete(u32(1)), unix.EINVAL)
		wantErrno(t, "delete out of range", m.Delete(u32(9)), unix.EINVAL)
		wantErrno(t, "lookup_and_delete", m.LookupAndDelete(u32(1), got, 0), ENOTSUPP)
		next := make([]byte, 4)
		wantErrno(t, "next nil", m.GetNextKey(nil, next), 0)
		if getU32(next) != 0 {
			t.Fatalf("next of nil %d", getU32(next))
		}
		wantErrno(t, "next out of range", m.GetNextKey(u32(77), next), 0)
		if getU32(next) != 0 {
			t.Fatalf("next of 77 %d", getU32(next))
		}
		wantErrno(t, "next 2", m.GetNextKey(u32(2), next), 0)
		if getU32(next) != 3 {
			t.Fatalf("next of 2 %d", getU32(next))
		}
		wantErrno(t, "next last", m.GetNextKey(u32(4), next), unix.ENOENT)
		if len(allKeys(t, m)) != 5 || m.Len() != 5 {
			t.Fatalf("array does not list 5 keys")
		}
	}
}

func TestProgArray(t *testing.T) {
	m := newTestMap(t, MapAttr{MapType: MapTypeProgArray, KeySize: 4, ValueSize: 4, MaxEntries: 4})
	p1, p2 := newFakeProg(101), newFakeProg(102)
	notProg := newTestMap(t, MapAttr{MapType: MapTypeArray, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	fds := fdTable{3: p1, 4: p2, 5: notProg}
	got := make([]byte, 4)

	wantErrno(t, "plain update", m.Update(u32(0), u32(3), Any), unix.EINVAL)
	wantErrno(t, "NOEXIST", m.UpdateObject(u32(0), u32(3), NoExist, fds.resolve), unix.EINVAL)
	wantErrno(t, "EXIST", m.UpdateObject(u32(0), u32(3), Exist, fds.resolve), unix.EINVAL)
	wantErrno(t, "out of range", m.UpdateObject(u32(4), u32(3), Any, fds.resolve), unix.E2BIG)
	wantErrno(t, "bad fd", m.UpdateObject(u32(0), u32(9), Any, fds.resolve), unix.EBADF)
	wantErrno(t, "not a prog", m.UpdateObject(u32(0), u32(5), Any, fds.resolve), unix.EINVAL)
	if r, _ := notProg.Refs(); r != 1 {
		t.Fatalf("rejected object keeps a reference: refcnt %d", r)
	}
	wantErrno(t, "lookup empty", m.Lookup(u32(0), got), unix.ENOENT)
	wantErrno(t, "insert", m.UpdateObject(u32(0), u32(3), Any, fds.resolve), 0)
	wantErrno(t, "lookup", m.Lookup(u32(0), got), 0)
	if getU32(got) != 101 {
		t.Fatalf("lookup gave id %d, want 101", getU32(got))
	}
	if r, u := p1.Refs(); r != 2 || u != 1 {
		t.Fatalf("prog refs %d/%d, want 2/1", r, u)
	}
	wantErrno(t, "replace", m.UpdateObject(u32(0), u32(4), Any, fds.resolve), 0)
	if r, _ := p1.Refs(); r != 1 {
		t.Fatalf("replaced prog refcnt %d, want 1", r)
	}
	wantErrno(t, "lookup_and_delete", m.LookupAndDelete(u32(0), got, 0), ENOTSUPP)
	wantErrno(t, "delete out of range", m.Delete(u32(4)), unix.E2BIG)
	wantErrno(t, "delete empty", m.Delete(u32(1)), unix.ENOENT)
	wantErrno(t, "delete", m.Delete(u32(0)), 0)
	if r, _ := p2.Refs(); r != 1 {
		t.Fatalf("deleted prog refcnt %d, want 1", r)
	}
	// The last user reference empties the array (prog_array_map_clear).
	wantErrno(t, "insert", m.UpdateObject(u32(2), u32(3), Any, fds.resolve), 0)
	m.IncUser()
	m.PutUser()
	if m.Len() != 1 {
		t.Fatalf("cleared while a user reference remained")
	}
	m.Inc() // a program still uses the map
	m.PutUser()
	if m.Len() != 0 {
		t.Fatalf("prog_array not cleared when usercnt reached 0")
	}
	if r, _ := p1.Refs(); r != 1 {
		t.Fatalf("cleared prog refcnt %d, want 1", r)
	}
	next := make([]byte, 4)
	wantErrno(t, "next", m.GetNextKey(u32(3), next), unix.ENOENT)
}

// TestLookupAndDeleteSupport: only queue, stack and the four hash types support it; every
// other type is ENOTSUPP (kernel-semantics c.2).
func TestLookupAndDeleteSupport(t *testing.T) {
	inner := newTestMap(t, MapAttr{MapType: MapTypeArray, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	for _, tc := range []struct {
		attr MapAttr
		want unix.Errno
	}{
		{MapAttr{MapType: MapTypeHash, KeySize: 4, ValueSize: 4, MaxEntries: 1}, unix.ENOENT},
		{MapAttr{MapType: MapTypePercpuHash, KeySize: 4, ValueSize: 4, MaxEntries: 1}, unix.ENOENT},
		{MapAttr{MapType: MapTypeLRUHash, KeySize: 4, ValueSize: 4, MaxEntries: 1}, unix.ENOENT},
		{MapAttr{MapType: MapTypeLRUPercpuHash, KeySize: 4, ValueSize: 4, MaxEntries: 1}, unix.ENOENT},
		{MapAttr{MapType: MapTypeQueue, ValueSize: 4, MaxEntries: 1}, unix.ENOENT},
		{MapAttr{MapType: MapTypeStack, ValueSize: 4, MaxEntries: 1}, unix.ENOENT},
		{MapAttr{MapType: MapTypeArray, KeySize: 4, ValueSize: 4, MaxEntries: 1}, ENOTSUPP},
		{MapAttr{MapType: MapTypePercpuArray, KeySize: 4, ValueSize: 4, MaxEntries: 1}, ENOTSUPP},
		{MapAttr{MapType: MapTypeProgArray, KeySize: 4, ValueSize: 4, MaxEntries: 1}, ENOTSUPP},
		{MapAttr{MapType: MapTypeArrayOfMaps, KeySize: 4, ValueSize: 4, MaxEntries: 1, Inner: inner}, ENOTSUPP},
		{MapAttr{MapType: MapTypeHashOfMaps, KeySize: 4, ValueSize: 4, MaxEntries: 1, Inner: inner}, ENOTSUPP},
		{MapAttr{MapType: MapTypeLPMTrie, KeySize: 8, ValueSize: 4, MaxEntries: 1, MapFlags: FNoPrealloc}, ENOTSUPP},
		{MapAttr{MapType: MapTypeBloomFilter, ValueSize: 4, MaxEntries: 1}, ENOTSUPP},
		{MapAttr{MapType: MapTypeRingbuf, MaxEntries: 4096}, ENOTSUPP},
	} {
		m := newTestMap(t, tc.attr)
		var key []byte
		if m.KeySize > 0 {
			key = make([]byte, m.KeySize)
		}
		err := m.LookupAndDelete(key, make([]byte, m.ValueBufSize()), 0)
		wantErrno(t, m.Type.String(), err, tc.want)
	}
}

// TestHashBatch covers the htab rows of c.6: whole buckets, ENOSPC when the first bucket does
// not fit, ENOENT with the partial count at the end, in_batch past the end, the empty map.
func TestHashBatch(t *testing.T) {
	m := newTestMap(t, MapAttr{MapType: MapTypeHash, KeySize: 4, ValueSize: 8, MaxEntries: 16})
	b, ok := m.Batcher()
	if !ok {
		t.Fatal("hash map has no bucket batcher")
	}
	keys, vals := make([]byte, 4*16), make([]byte, 8*16)
	n, next, err := b.LookupBatch(0, keys, vals, 16, false)
	wantErrno(t, "empty", err, unix.ENOENT)
	if n != 0 || next != 16 {
		t.Fatalf("empty map: n %d next %d", n, next)
	}
	_, _, err = b.LookupBatch(16, keys, vals, 16, false)
	wantErrno(t, "in_batch past the end", err, unix.ENOENT)
	// Two keys in the same bucket.
	var k1, k2 uint32
	h := m.ops.(*htab)
	for k1 = 0; ; k1++ {
		_, b1 := h.locate(u32(k1))
		for k2 = k1 + 1; k2 < k1+1000; k2++ {
			if _, b2 := h.locate(u32(k2)); b2 == b1 {
				goto found
			}
		}
	}
found:
	wantErrno(t, "insert", m.Update(u32(k1), u64(1), Any), 0)
	wantErrno(t, "insert", m.Update(u32(k2), u64(2), Any), 0)
	n, _, err = b.LookupBatch(0, keys, vals, 1, false)
	wantErrno(t, "bucket does not fit", err, unix.ENOSPC)
	if n != 0 {
		t.Fatalf("ENOSPC with n %d", n)
	}
	for i := uint32(100); i < 110; i++ {
		wantErrno(t, "insert", m.Update(u32(i), u64(uint64(i)), Any), 0)
	}
	total, bucket, count := 0, uint32(0), 2
	for {
		n, next, err := b.LookupBatch(bucket, keys, vals, count, false)
		total += n
		if errors.Is(err, unix.ENOSPC) {
			count++ // as user space does: retry with a larger batch
			continue
		}
		if err != nil {
			wantErrno(t, "end", err, unix.ENOENT)
			break
		}
		if n == 0 {
			t.Fatal("no progress")
		}
		bucket = next
	}
	if total != 12 {
		t.Fatalf("batches returned %d elements, want 12", total)
	}
	n, _, err = b.LookupBatch(0, keys, vals, 16, true)
	wantErrno(t, "lookup_and_delete all", err, unix.ENOENT)
	if n != 12 || m.Len() != 0 {
		t.Fatalf("deleted %d, %d left", n, m.Len())
	}
	if _, ok := newTestMap(t, MapAttr{MapType: MapTypeArray, KeySize: 4, ValueSize: 4, MaxEntries: 1}).Batcher(); ok {
		t.Fatal("array has a bucket batcher")
	}
}
