package text

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/bpffs-fuse/bpffs-fuse/objects"
)

func TestEncoderOutput(t *testing.T) {
	pcpuVal := []byte{1, 0, 0, 0, 0xaa, 0xaa, 0xaa, 0xaa, 2, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0}
	tests := []struct {
		name       string
		s          Shape
		key, value []byte
		header     string
		entry      string
	}{
		{"hash", shHash, []byte{1, 0, 0, 0}, []byte{42, 0, 0, 0, 0, 0, 0, 0},
			"# hash name counters key 4 value 8 max_entries 1024\n", "01 00 00 00: 2a 00 00 00 00 00 00 00\n"},
		{"one byte", shByte, []byte{0xa}, []byte{0xff},
			"# hash key 1 value 1 max_entries 16\n", "0x0a: 0xff\n"},
		{"no value", shNoVal, []byte{1, 2}, nil,
			"# hash key 2 value 0 max_entries 16\n", "01 02:\n"},
		{"percpu", shPcpu, []byte{1, 0, 0, 0}, pcpuVal,
			"# percpu_hash key 4 value 4 max_entries 16 cpus 3\n",
			"01 00 00 00: {\n\tcpu0: 01 00 00 00\n\tcpu1: 02 00 00 00\n\tcpu2: 03 00 00 00\n}\n"},
		{"queue", shQueue, nil, []byte{1, 2, 3, 4},
			"# queue value 4 max_entries 8\n", "01 02 03 04\n"},
		{"prog_array", shProgArr, []byte{3, 0, 0, 0}, []byte{0x39, 0x30, 0, 0},
			"# prog_array key 4 value 4 max_entries 8 (values are program ids)\n", "03 00 00 00: 12345\n"},
		{"hash_of_maps", shHoM, []byte{1, 0, 0, 0, 0, 0, 0, 0}, []byte{0xff, 0xff, 0xff, 0xff},
			"# hash_of_maps key 8 value 4 max_entries 8 (values are map ids)\n", "01 00 00 00 00 00 00 00: 4294967295\n"},
		{"bloom", shBloom, nil, []byte{1, 2, 3, 4},
			"# bloom_filter value 4 max_entries 100: cannot be listed: a bloom filter only answers membership queries; add values with push VALUE\n",
			"01 02 03 04\n"},
		{"ringbuf", shRing, nil, nil,
			"# ringbuf value 0 max_entries 4096: cannot be listed: a ring buffer's records are consumed through mmap, not listed\n", "\n"},
	}
	for _, tt := range tests {
		e := NewEncoder(tt.s)
		if got := string(e.AppendHeader(nil)); got != tt.header {
			t.Errorf("%s header\n got %q\nwant %q", tt.name, got, tt.header)
		}
		got := string(e.AppendEntry([]byte("x"), tt.key, tt.value))
		if got != "x"+tt.entry {
			t.Errorf("%s entry\n got %q\nwant %q", tt.name, got, "x"+tt.entry)
		}
		if len(got)-1 > e.MaxEntryLen() {
			t.Errorf("%s: entry of %d bytes, MaxEntryLen %d", tt.name, len(got)-1, e.MaxEntryLen())
		}
	}
}

func TestAppendOp(t *testing.T) {
	e := NewEncoder(shHash)
	k, v := []byte{1, 0, 0, 0}, []byte{2, 0, 0, 0, 0, 0, 0, 0}
	var b []byte
	b = e.AppendOp(b, Op{Kind: OpUpdate, Key: k, Value: v})
	b = e.AppendOp(b, Op{Kind: OpInsert, Key: k, Value: v, Flags: objects.NoExist})
	b = e.AppendOp(b, Op{Kind: OpReplace, Key: k, Value: v, Flags: objects.Exist})
	b = e.AppendOp(b, Op{Kind: OpDelete, Key: k})
	want := "01 00 00 00: 02 00 00 00 00 00 00 00\ninsert 01 00 00 00: 02 00 00 00 00 00 00 00\n" +
		"replace 01 00 00 00: 02 00 00 00 00 00 00 00\ndelete 01 00 00 00\n"
	if string(b) != want {
		t.Errorf("got\n%s\nwant\n%s", b, want)
	}
	q := NewEncoder(shQueue)
	b = q.AppendOp(nil, Op{Kind: OpPush, Value: []byte{1, 2, 3, 4}})
	b = q.AppendOp(b, Op{Kind: OpPush, Value: []byte{1, 2, 3, 4}, Flags: objects.Exist})
	if want := "01 02 03 04\noverwrite 01 02 03 04\n"; string(b) != want {
		t.Errorf("got %q want %q", b, want)
	}
}

// TestMaxEntryLen checks the bound for many shapes and random contents.
func TestMaxEntryLen(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, s := range testShapes {
		e := NewEncoder(s)
		for range 50 {
			k, v := randBytes(r, s.KeySize), randBytes(r, s.ValueBufSize())
			for _, op := range []Op{{Kind: OpUpdate, Key: k, Value: v}, {Kind: OpReplace, Key: k, Value: v}} {
				if s.Keyless() {
					op.Kind = OpPush
				}
				n := len(e.AppendOp(nil, op))
				if n > e.MaxEntryLen()+len("replace ") {
					t.Fatalf("%+v: %d bytes > MaxEntryLen %d", s, n, e.MaxEntryLen())
				}
			}
		}
	}
}

func TestAppendEntryAllocs(t *testing.T) {
	for _, s := range []Shape{shHash, shPcpu, shProgArr, shQueue, shWide} {
		e := NewEncoder(s)
		buf := make([]byte, 0, 1<<16)
		k, v := make([]byte, s.KeySize), make([]byte, s.ValueBufSize())
		n := testing.AllocsPerRun(1000, func() {
			buf = e.AppendEntry(buf[:0], k, v)
		})
		if n != 0 {
			t.Errorf("%s: AppendEntry allocates %v times per entry", s.Type, n)
		}
	}
}

type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	w.n++
	if w.n > 1 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

func TestWriter(t *testing.T) {
	var out bytes.Buffer
	w := NewWriter(&out, shHash)
	if err := w.Header(); err != nil {
		t.Fatal(err)
	}
	const n = 5000 // more than one buffer
	for i := range n {
		if err := w.Entry([]byte{byte(i), byte(i >> 8), 0, 0}, make([]byte, 8)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(out.String(), "\n"); lines != n+1 {
		t.Fatalf("%d lines, want %d", lines, n+1)
	}
	ops, err := Parse(shHash, out.Bytes())
	if err != nil || len(ops) != n {
		t.Fatalf("re-parse: %d ops, %v", len(ops), err)
	}

	fw := &failWriter{}
	w = NewWriter(fw, shHash)
	var werr error
	for i := 0; i < 10000 && werr == nil; i++ {
		werr = w.Entry(make([]byte, 4), make([]byte, 8))
	}
	if werr == nil {
		werr = w.Flush()
	}
	if werr == nil || w.Flush() == nil || w.Entry(make([]byte, 4), make([]byte, 8)) == nil {
		t.Fatalf("write error not sticky: %v", werr)
	}
}

func TestShapeOf(t *testing.T) {
	for _, attr := range []objects.MapAttr{
		{MapType: objects.MapTypeHash, KeySize: 4, ValueSize: 8, MaxEntries: 16, MapName: "h"},
		{MapType: objects.MapTypePercpuHash, KeySize: 4, ValueSize: 5, MaxEntries: 16, NumPossibleCPUs: 3},
		{MapType: objects.MapTypeLRUPercpuHash, KeySize: 4, ValueSize: 5, MaxEntries: 16, NumPossibleCPUs: 2},
		{MapType: objects.MapTypeArray, KeySize: 4, ValueSize: 3, MaxEntries: 16},
		{MapType: objects.MapTypePercpuArray, KeySize: 4, ValueSize: 12, MaxEntries: 16, NumPossibleCPUs: 4},
		{MapType: objects.MapTypeProgArray, KeySize: 4, ValueSize: 4, MaxEntries: 16},
		{MapType: objects.MapTypeQueue, ValueSize: 4, MaxEntries: 16},
		{MapType: objects.MapTypeStack, ValueSize: 4, MaxEntries: 16},
		{MapType: objects.MapTypeLPMTrie, KeySize: 8, ValueSize: 4, MaxEntries: 16, MapFlags: objects.FNoPrealloc},
	} {
		if !objects.Supported(attr.MapType) {
			continue
		}
		m, err := objects.NewMap(&attr, nil)
		if err != nil {
			t.Fatalf("%s: %v", attr.MapType, err)
		}
		s := ShapeOf(m)
		if s.Percpu() != m.IsPercpu() || s.FdMap() != m.IsFdMap() || s.Keyless() != m.Keyless() ||
			s.ValueBufSize() != m.ValueBufSize() || s.Name != m.Name || s.MaxEntries != m.MaxEntries {
			t.Errorf("%s: ShapeOf %+v disagrees with the map", attr.MapType, s)
		}
	}
}
