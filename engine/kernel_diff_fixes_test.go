package engine_test

import (
	"encoding/binary"
	"errors"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/bpffs-fuse/bpffs-fuse/engine"
	"github.com/bpffs-fuse/bpffs-fuse/objects"
)

// These tests pin down differences from the kernel that tests/mapdiff_test.go (the kernel
// differential test) found; each states the kernel's behaviour it checks.

func diffProc(t *testing.T) *engine.Process {
	t.Helper()
	p := engine.New(engine.Config{NumPossibleCPUs: 2}).NewProcess(engine.Root())
	t.Cleanup(p.Exit)
	return p
}

func wantErrno(t *testing.T, what string, err error, want unix.Errno) {
	t.Helper()
	if want == 0 {
		if err != nil {
			t.Fatalf("%s: %v, want success", what, err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("%s: %v, want %v", what, err, want)
	}
}

func u32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

// hashtab.c:__htab_map_lookup_and_delete_batch returns ENOENT for in_batch >= n_buckets before
// the walk, without writing out_batch; on ENOSPC it writes out_batch (the bucket that did not
// fit).
func TestDiffFixHtabBatchTokens(t *testing.T) {
	p := diffProc(t)
	fd, err := p.MapCreate(&engine.MapCreateAttr{MapType: objects.MapTypeHash, KeySize: 4, ValueSize: 8,
		MaxEntries: 4, MapFlags: objects.FZeroSeed})
	wantErrno(t, "create", err, 0)
	out := []byte{0xa5, 0xa5, 0xa5, 0xa5}
	a := &engine.MapBatchAttr{InBatch: u32(4), OutBatch: out, Keys: make([]byte, 16), Values: make([]byte, 32), Count: 4}
	wantErrno(t, "lookup_batch from bucket n_buckets", p.MapLookupBatch(fd, a), unix.ENOENT)
	if a.Count != 0 || binary.LittleEndian.Uint32(out) != 0xa5a5a5a5 {
		t.Fatalf("in_batch past the end: count %d, out_batch %x; want 0 and untouched", a.Count, out)
	}

	// Two keys in one bucket and count 1: ENOSPC, out_batch = that bucket.
	for k := uint32(0); k < 64; k++ {
		_ = p.MapUpdateElem(fd, u32(k), make([]byte, 8), objects.Any)
	}
	a = &engine.MapBatchAttr{OutBatch: out, Keys: make([]byte, 4), Values: make([]byte, 8), Count: 1}
	for b := uint32(0); b < 4; b++ {
		a.InBatch, a.Count = u32(b), 1
		copy(out, []byte{0xa5, 0xa5, 0xa5, 0xa5})
		if err := p.MapLookupBatch(fd, a); errors.Is(err, unix.ENOSPC) {
			if got := binary.LittleEndian.Uint32(out); got != b || a.Count != 0 {
				t.Fatalf("ENOSPC at bucket %d: out_batch %d count %d, want %d and 0", b, got, a.Count, b)
			}
			return
		}
	}
	t.Fatal("no bucket with two elements: ENOSPC never happened")
}

// syscall.c:map_lookup_elem looks up into a kernel buffer and copies the value out afterwards,
// so a NULL value pointer gives ENOENT for a missing key and EFAULT only for a hit.
func TestDiffFixLookupNullValue(t *testing.T) {
	p := diffProc(t)
	for _, typ := range []objects.MapType{objects.MapTypeHash, objects.MapTypeArray} {
		fd, err := p.MapCreate(&engine.MapCreateAttr{MapType: typ, KeySize: 4, ValueSize: 8, MaxEntries: 2})
		wantErrno(t, "create", err, 0)
		want := unix.ENOENT
		if typ == objects.MapTypeArray {
			want = unix.EFAULT // index 1 exists in an array
		}
		wantErrno(t, typ.String()+" lookup of key 1 with a NULL value", p.MapLookupElem(fd, u32(1), nil, 0), want)
		wantErrno(t, typ.String()+" lookup of key 9 with a NULL value", p.MapLookupElem(fd, u32(9), nil, 0), unix.ENOENT)
		wantErrno(t, "update", p.MapUpdateElem(fd, u32(1), make([]byte, 8), 0), 0)
		wantErrno(t, typ.String()+" lookup of a present key with a NULL value", p.MapLookupElem(fd, u32(1), nil, 0), unix.EFAULT)
	}
}

// Since Linux 6.16 ("bpf: Support atomic update for htab of maps"),
// hashtab.c:bpf_fd_htab_map_update_elem replaces a hash_of_maps value in place, so the key keeps
// its place in its bucket; plain hash maps insert the new element at the bucket's head.
func TestDiffFixHashOfMapsUpdateInPlace(t *testing.T) {
	p := diffProc(t)
	inner, err := p.MapCreate(&engine.MapCreateAttr{MapType: objects.MapTypeArray, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	wantErrno(t, "create inner", err, 0)
	walk := func(fd int) []uint32 {
		var keys []uint32
		var prev []byte
		for {
			next := make([]byte, 4)
			if err := p.MapGetNextKey(fd, prev, next); err != nil {
				return keys
			}
			keys = append(keys, binary.LittleEndian.Uint32(next))
			prev = next
		}
	}
	// Find two keys sharing a bucket: in a plain ZERO_SEED hash with 2 buckets, replacing
	// the second of a bucket moves it to the front.
	h, err := p.MapCreate(&engine.MapCreateAttr{MapType: objects.MapTypeHash, KeySize: 4, ValueSize: 4, MaxEntries: 2, MapFlags: objects.FZeroSeed})
	wantErrno(t, "create hash", err, 0)
	var a, b uint32
	found := false
	for k := uint32(1); k < 16 && !found; k++ {
		_ = p.MapDeleteElem(h, u32(0))
		_ = p.MapDeleteElem(h, u32(k-1))
		wantErrno(t, "update", p.MapUpdateElem(h, u32(0), u32(0), 0), 0)
		wantErrno(t, "update", p.MapUpdateElem(h, u32(k), u32(0), 0), 0)
		before := walk(h)
		wantErrno(t, "update", p.MapUpdateElem(h, u32(before[1]), u32(1), 0), 0)
		if after := walk(h); after[0] != before[0] {
			a, b, found = before[0], before[1], true
		}
	}
	if !found {
		t.Fatal("no two keys share a bucket")
	}
	hm, err := p.MapCreate(&engine.MapCreateAttr{MapType: objects.MapTypeHashOfMaps, KeySize: 4, ValueSize: 4,
		MaxEntries: 2, MapFlags: objects.FZeroSeed, InnerMapFD: uint32(inner)})
	wantErrno(t, "create hash_of_maps", err, 0)
	wantErrno(t, "update", p.MapUpdateElem(hm, u32(b), u32(uint32(inner)), 0), 0)
	wantErrno(t, "update", p.MapUpdateElem(hm, u32(a), u32(uint32(inner)), 0), 0)
	before := walk(hm)
	wantErrno(t, "replace", p.MapUpdateElem(hm, u32(before[1]), u32(uint32(inner)), 0), 0)
	if after := walk(hm); after[0] != before[0] || after[1] != before[1] {
		t.Fatalf("hash_of_maps order after replacing %d: %v, was %v (want unchanged)", before[1], after, before)
	}
}

// hashtab.c:htab_map_alloc rejects more than 2^31 entries (after NO_COMMON_LRU rounding) with
// E2BIG before allocating anything, so the memory budget must not answer ENOMEM first.
func TestDiffFixHtabMaxEntriesE2BIG(t *testing.T) {
	p := diffProc(t)
	inner, err := p.MapCreate(&engine.MapCreateAttr{MapType: objects.MapTypeArray, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	wantErrno(t, "create inner", err, 0)
	for _, a := range []engine.MapCreateAttr{
		{MapType: objects.MapTypeHash, KeySize: 4, ValueSize: 8, MaxEntries: 1<<31 + 1},
		{MapType: objects.MapTypeLRUPercpuHash, KeySize: 4, ValueSize: 4096, MaxEntries: 1<<31 + 1},
		{MapType: objects.MapTypeLRUHash, KeySize: 4, ValueSize: 8, MaxEntries: 1<<31 + 1, MapFlags: objects.FNoCommonLRU},
		{MapType: objects.MapTypeHashOfMaps, KeySize: 1, ValueSize: 4, MaxEntries: 1<<31 + 1, InnerMapFD: uint32(inner)},
	} {
		_, err := p.MapCreate(&a)
		wantErrno(t, a.MapType.String()+" with 2^31+1 entries", err, unix.E2BIG)
	}
}

// syscall.c:map_create and the alloc checks compare bpf_map_attr_numa_node() with NUMA_NO_NODE:
// BPF_F_NUMA_NODE with numa_node -1 means "no node" and is accepted, also for per-CPU maps.
func TestDiffFixNumaNoNode(t *testing.T) {
	p := diffProc(t)
	for _, typ := range []objects.MapType{objects.MapTypeHash, objects.MapTypePercpuHash, objects.MapTypeLRUPercpuHash, objects.MapTypePercpuArray} {
		_, err := p.MapCreate(&engine.MapCreateAttr{MapType: typ, KeySize: 4, ValueSize: 8, MaxEntries: 2,
			MapFlags: objects.FNumaNode, NumaNode: 0xffffffff})
		wantErrno(t, typ.String()+" BPF_F_NUMA_NODE with NUMA_NO_NODE", err, 0)
	}
	_, err := p.MapCreate(&engine.MapCreateAttr{MapType: objects.MapTypePercpuHash, KeySize: 4, ValueSize: 8, MaxEntries: 2,
		MapFlags: objects.FNumaNode, NumaNode: 0})
	wantErrno(t, "percpu_hash on numa node 0", err, unix.EINVAL)
}

// syscall.c:map_lookup_and_delete_elem and map_get_next_key also work on kernel buffers and copy
// out last: with a NULL value the element is removed and then EFAULT is returned; with a NULL
// next_key the step's own error (ENOENT at the end) comes first, EFAULT otherwise.
func TestDiffFixNullOutputs(t *testing.T) {
	p := diffProc(t)
	fd, err := p.MapCreate(&engine.MapCreateAttr{MapType: objects.MapTypeHash, KeySize: 4, ValueSize: 8, MaxEntries: 2})
	wantErrno(t, "create", err, 0)
	wantErrno(t, "get_next_key of an empty map, NULL next_key", p.MapGetNextKey(fd, nil, nil), unix.ENOENT)
	wantErrno(t, "lookup_and_delete of a missing key, NULL value", p.MapLookupAndDeleteElem(fd, u32(1), nil, 0), unix.ENOENT)
	wantErrno(t, "update", p.MapUpdateElem(fd, u32(1), make([]byte, 8), 0), 0)
	wantErrno(t, "get_next_key, NULL next_key", p.MapGetNextKey(fd, nil, nil), unix.EFAULT)
	wantErrno(t, "get_next_key after the last key, NULL next_key", p.MapGetNextKey(fd, u32(1), nil), unix.ENOENT)
	wantErrno(t, "lookup_and_delete, NULL value", p.MapLookupAndDeleteElem(fd, u32(1), nil, 0), unix.EFAULT)
	wantErrno(t, "lookup after lookup_and_delete with a NULL value", p.MapLookupElem(fd, u32(1), make([]byte, 8), 0), unix.ENOENT)

	q, err := p.MapCreate(&engine.MapCreateAttr{MapType: objects.MapTypeQueue, ValueSize: 4, MaxEntries: 2})
	wantErrno(t, "create queue", err, 0)
	wantErrno(t, "push", p.MapUpdateElem(q, nil, u32(7), 0), 0)
	wantErrno(t, "pop, NULL value", p.MapLookupAndDeleteElem(q, nil, nil, 0), unix.EFAULT)
	wantErrno(t, "pop of the now empty queue", p.MapLookupAndDeleteElem(q, nil, make([]byte, 4), 0), unix.ENOENT)
}
