package objects

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// testNCPU is the number of possible CPUs the tests model (the reference VM has 2).
const testNCPU = 2

var nextTestID atomic.Uint32

// newTestMap creates a map and gives it an id, as the engine would.
func newTestMap(t testing.TB, attr MapAttr) *Map {
	t.Helper()
	if attr.NumPossibleCPUs == 0 {
		attr.NumPossibleCPUs = testNCPU
	}
	m, err := NewMap(&attr, nil)
	if err != nil {
		t.Fatalf("NewMap(%s key %d value %d max %d flags %#x): %v", attr.MapType, attr.KeySize,
			attr.ValueSize, attr.MaxEntries, attr.MapFlags, err)
	}
	m.SetID(nextTestID.Add(1))
	return m
}

// wantErrno checks err against want (0: success) with errors.Is.
func wantErrno(t testing.TB, what string, err error, want unix.Errno) {
	t.Helper()
	if want == 0 {
		if err != nil {
			t.Fatalf("%s: unexpected error %v", what, err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("%s: got %v, want %v (%d)", what, err, want, int(want))
	}
}

func u32(v uint32) []byte {
	b := make([]byte, 4)
	binary.LittleEndian.PutUint32(b, v)
	return b
}

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.LittleEndian.PutUint64(b, v)
	return b
}

// lpmKey builds an IPv4 lpm_trie key (prefixlen host endian, address network order).
func lpmKey(a, b, c, d byte, prefixlen uint32) []byte {
	k := make([]byte, 8)
	binary.LittleEndian.PutUint32(k, prefixlen)
	k[4], k[5], k[6], k[7] = a, b, c, d
	return k
}

func lpmString(k []byte) string {
	return fmt.Sprintf("%d.%d.%d.%d/%d", k[4], k[5], k[6], k[7], binary.LittleEndian.Uint32(k))
}

// fakeProg is a program object for prog_array slots.
type fakeProg struct {
	Ref
	id    uint32
	owner any
}

func newFakeProg(id uint32) *fakeProg {
	p := &fakeProg{id: id, owner: "xdp"}
	p.Init()
	return p
}

func (p *fakeProg) ID() uint32          { return p.id }
func (p *fakeProg) ProgArrayOwner() any { return p.owner }

// fdTable is a Resolver over a small fd table, taking a reference as the engine does.
type fdTable map[uint32]Object

func (ft fdTable) resolve(fd uint32) (Object, error) {
	o, ok := ft[fd]
	if !ok {
		return nil, fmt.Errorf("fd %d: %w", fd, unix.EBADF)
	}
	o.Inc()
	return o, nil
}

// allKeys walks GetNextKey from nil to ENOENT.
func allKeys(t testing.TB, m *Map) [][]byte {
	t.Helper()
	var keys [][]byte
	var key []byte
	for i := 0; ; i++ {
		next := make([]byte, m.KeySize)
		err := m.GetNextKey(key, next)
		if errors.Is(err, unix.ENOENT) {
			return keys
		}
		if err != nil {
			t.Fatalf("GetNextKey: %v", err)
		}
		if i > int(m.MaxEntries)+1 {
			t.Fatalf("GetNextKey does not end")
		}
		keys = append(keys, next)
		key = next
	}
}
