package fsnode

import (
	"io"
	"log/slog"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/bpffs-fuse/bpffs-fuse/engine"
	"github.com/bpffs-fuse/bpffs-fuse/fsnode/text"
	"github.com/bpffs-fuse/bpffs-fuse/objects"
	"github.com/bpffs-fuse/bpffs-fuse/pinning"
)

// writeRig is a map handle without a mount: the write path (parser, line tracking, apply
// through the engine) driven directly.
type writeRig struct {
	fs   *FS
	m    *objects.Map
	node *pinning.Node
	h    *mapHandle
}

func newWriteRig(t testing.TB, eng *engine.Engine, mt objects.MapType, key, value, max uint32) *writeRig {
	t.Helper()
	p := eng.NewProcess(engine.Root())
	fd, err := p.MapCreate(&engine.MapCreateAttr{MapType: mt, KeySize: key, ValueSize: value, MaxEntries: max})
	if err != nil {
		t.Fatal(err)
	}
	o, _ := p.Object(fd)
	m := o.(*objects.Map)
	tree := pinning.New(pinning.Options{Mode: 0o777})
	m.IncUser()
	node, err := tree.PinAt(tree.Root(), "m", m, pinning.Creator{})
	if err != nil {
		t.Fatal(err)
	}
	o.Put()
	p.Close(fd)
	f := &FS{eng: eng, proc: p, tree: tree, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	m.IncUser()
	h, err := newMapHandle(f, node, m, syscall.O_WRONLY)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Release(nil); tree.Close(); p.Exit() })
	return &writeRig{fs: f, m: m, node: node, h: h}
}

// dump lists the map's elements sorted, straight from the object.
func (r *writeRig) dump() string {
	var lines []string
	key := make([]byte, r.m.KeySize)
	next := make([]byte, r.m.KeySize)
	val := make([]byte, r.m.ValueBufSize())
	enc := text.NewEncoder(text.ShapeOf(r.m))
	var prev []byte
	for r.m.GetNextKey(prev, next) == nil {
		copy(key, next)
		prev = key
		if r.m.Lookup(key, val) == nil {
			lines = append(lines, string(enc.AppendEntry(nil, key, val)))
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "")
}

// FuzzWriteSplits: writing a valid text in arbitrary write(2) pieces (and a final flush)
// leaves the map as writing it whole does; when an op fails, the first failure reports the
// same line number, line text and errno either way. This checks the handle's tracking of
// lines carried across writes.
func FuzzWriteSplits(f *testing.F) {
	f.Add("1 1\n2 2\n3 3\n", uint8(1), uint8(5))
	f.Add("insert 1 1\ninsert 1 2\n3 3\n", uint8(3), uint8(2))
	f.Add("1: 01 00 00 00\n# c\n\ndelete 1\nreplace 2 2\n", uint8(7), uint8(1))
	f.Add("5 5\n6 6\n7 7\n8 8\n9 9\n", uint8(2), uint8(9))
	f.Add("0x10 -1\n16 0x7\nkey 1 0 0 0 value 2 0 0 0\n1 1", uint8(4), uint8(4))
	f.Fuzz(func(t *testing.T, data string, a, b uint8) {
		if len(data) > 4096 {
			return
		}
		eng := engine.New(engine.Config{MemoryLimit: 16 << 20})
		whole := newWriteRig(t, eng, objects.MapTypeHash, 4, 4, 4)
		if _, err := text.Parse(text.ShapeOf(whole.m), []byte(data)); err != nil {
			return // syntax errors fail a whole write; covered by text's own fuzzing
		}
		split := newWriteRig(t, eng, objects.MapTypeHash, 4, 4, 4)

		_, e1 := whole.h.Write(nil, []byte(data), 0)
		if e1 == 0 {
			e1 = whole.h.Flush(nil)
		}
		note1, _ := whole.node.Note()

		// Cut data at two points into up to three writes.
		i, j := int(a)%(len(data)+1), int(b)%(len(data)+1)
		if i > j {
			i, j = j, i
		}
		var e2 syscall.Errno
		var note2 string
		for _, piece := range []string{data[:i], data[i:j], data[j:]} {
			if _, e := split.h.Write(nil, []byte(piece), 0); e != 0 {
				e2 = e
				note2, _ = split.node.Note()
				break
			}
		}
		if e2 == 0 {
			e2 = split.h.Flush(nil)
			note2, _ = split.node.Note()
		}
		if e1 != e2 {
			t.Fatalf("errno whole %v, split %v (%q at %d,%d)", e1, e2, data, i, j)
		}
		if e1 != 0 {
			if note1 != note2 {
				t.Fatalf("error text whole %q, split %q", note1, note2)
			}
			return
		}
		if d1, d2 := whole.dump(), split.dump(); d1 != d2 {
			t.Fatalf("content whole:\n%s\nsplit:\n%s", d1, d2)
		}
	})
}
