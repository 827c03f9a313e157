package main

import (
	"bufio"
	"io"
	"strings"
	"testing"

	"github.com/bpffs-fuse/bpffs-fuse/engine"
	"github.com/bpffs-fuse/bpffs-fuse/objects"
)

// TestStrtoul checks C strtoul(s, &end, base) with bpftool's *end == 0 test.
func TestStrtoul(t *testing.T) {
	for _, tc := range []struct {
		s    string
		base int
		v    uint64
		ok   bool
	}{
		{"", 0, 0, true}, {"0", 0, 0, true}, {"10", 0, 10, true}, {"010", 0, 8, true}, {"0x1f", 0, 31, true},
		{"0X1F", 0, 31, true}, {"1f", 16, 31, true}, {"0x1f", 16, 31, true}, {"ff", 0, 0, false},
		{"08", 0, 0, false}, {" 7", 0, 7, true}, {"+7", 0, 7, true}, {"-1", 0, ^uint64(0), true},
		{"7 ", 0, 7, false}, {"0x", 0, 0, false}, {"x", 0, 0, false}, {" ", 0, 0, false},
		{"99999999999999999999999", 0, ^uint64(0), true}, {"256", 0, 256, true},
	} {
		v, ok := strtoul(tc.s, tc.base)
		if ok != tc.ok || (ok && v != tc.v) {
			t.Errorf("strtoul(%q, %d) = %d, %v; want %d, %v", tc.s, tc.base, v, ok, tc.v, tc.ok)
		}
	}
}

// TestJSONWriter checks json_writer.c's quirks: empty collections close on the same line,
// pretty closers go on their own line, backslash prints as \n.
func TestJSONWriter(t *testing.T) {
	var b strings.Builder
	j := newJSONWriter(&b)
	j.pretty = true
	j.startObject()
	j.name("a")
	j.startArray()
	j.endArray()
	j.strField("s", `x\y"`)
	j.name("k")
	j.startArray()
	j.printf(`"0x01"`)
	j.endArray()
	j.endObject()
	j.destroy()
	want := "{\n    \"a\": [],\n    \"s\": \"x\\ny\\\"\",\n    \"k\": [\"0x01\"\n    ]\n}\n"
	if b.String() != want {
		t.Errorf("got %q\nwant %q", b.String(), want)
	}
}

// FuzzBatchLine feeds arbitrary batch lines through bpftool's word splitting and the element
// grammar (key/value bytes, hex, flags) of a hash and a per-CPU map: never a panic, and a
// successful parse fills every key and value byte.
func FuzzBatchLine(f *testing.F) {
	for _, s := range []string{
		"key 1 0 0 0 value 1 2 3 4 5 6 7 8",
		"value hex ff 0x2 03 4 5 6 7 8 key hex 1 a 0 0 noexist",
		`key "1" '2' 3 4 value 1 2 3 4 5 6 7 8 any exist`,
		"key 1 0 0 value 1",
		"'unterminated",
		"key -1 0x 08 0 value",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		if len(line) > 4096 {
			return
		}
		tl := &tool{out: bufio.NewWriter(io.Discard)}
		tl.json = newJSONWriter(io.Discard)
		words, msg := tl.makeArgs(line, 0)
		if msg != "" {
			return
		}
		for _, mt := range []objects.MapType{objects.MapTypeHash, objects.MapTypeQueue} {
			info := &engine.MapInfo{Type: mt, KeySize: 4, ValueSize: 8}
			if mt == objects.MapTypeQueue {
				info.KeySize = 0
			}
			var key []byte
			if info.KeySize != 0 {
				key = make([]byte, info.KeySize)
			}
			value := make([]byte, info.ValueSize)
			flags := objects.Any
			vfd := -1
			tl.parseElem(words, elemParse{info: info, key: key, value: value, keySize: info.KeySize,
				valueSize: info.ValueSize, flags: &flags, valueFD: &vfd})
			if flags > objects.Exist {
				t.Fatalf("flags %d", flags)
			}
		}
	})
}

func TestCDirname(t *testing.T) {
	for in, want := range map[string]string{
		"/a/b": "/a", "/a/b/": "/a", "a": ".", "/": "/", "/a": "/", "a/b": "a", "//a//b": "//a", "": ".",
	} {
		if got := cDirname(in); got != want {
			t.Errorf("cDirname(%q) = %q, want %q", in, got, want)
		}
	}
}
