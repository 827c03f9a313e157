package text

import (
	"bytes"
	"testing"
)

// FuzzParse checks that Parse never panics, that anything it accepts re-encodes (AppendOp)
// and re-parses to the same ops, and that feeding the text in two writes gives the same ops.
func FuzzParse(f *testing.F) {
	seeds := []string{
		"1 42", "01 00 00 00: 2a 00 00 00 00 00 00 00\n", "insert 0x10 -1\nreplace 7: 0x2a\ndelete 1",
		"key 1 0 0 0 value hex 2a 0 0 0 0 0 0 0 noexist", "# c\n\n1 2 # x\r\n",
		"1: {\n\tcpu0: 01 00 00 00\n\tcpu2: 3\n}\n", "2: { cpu1: 5 }", "push 1\noverwrite 2\nvalue 3 exist",
		"1 id 7", "00 00 00 00: 17", "0x0a: 0xff", "01 02 03 04 05", "-9223372036854775808 1",
	}
	for i, s := range seeds {
		f.Add([]byte(s), uint8(i), uint16(len(s)/2))
	}
	f.Fuzz(func(t *testing.T, data []byte, shapeSel uint8, cut uint16) {
		s := testShapes[int(shapeSel)%len(testShapes)]
		ops, err := Parse(s, data)
		if err != nil {
			return
		}
		want := opsNoLine(ops)

		e := NewEncoder(s)
		var text []byte
		for _, op := range ops {
			text = e.AppendOp(text, op)
		}
		again, err := Parse(s, text)
		if err != nil {
			t.Fatalf("%s: re-parse of %q (from %q): %v", s.Type, text, data, err)
		}
		if got := opsNoLine(again); got != want {
			t.Fatalf("%s: %q -> %q\n got %s\nwant %s", s.Type, data, text, got, want)
		}

		c := int(cut) % (len(data) + 1)
		p := NewParser(s)
		first, err := p.Feed(data[:c])
		if err != nil {
			t.Fatalf("%s: Feed(%q): %v", s.Type, data[:c], err)
		}
		got := cloneOps(first)
		rest, err := p.Feed(data[c:])
		if err != nil {
			t.Fatalf("%s: Feed(%q) after %q: %v", s.Type, data[c:], data[:c], err)
		}
		got = append(got, cloneOps(rest)...)
		last, err := p.Flush()
		if err != nil {
			t.Fatalf("%s: Flush after %q | %q: %v", s.Type, data[:c], data[c:], err)
		}
		got = append(got, last...)
		if opsStr(got) != opsStr(ops) {
			t.Fatalf("%s: split at %d of %q\n got %s\nwant %s", s.Type, c, data, opsStr(got), opsStr(ops))
		}
		if bytes.Contains(text, []byte{0}) {
			t.Fatalf("encoder wrote a NUL")
		}
	})
}

func opsNoLine(ops []Op) string {
	c := make([]Op, len(ops))
	for i, op := range ops {
		op.Line = 0
		c[i] = op
	}
	return opsStr(c)
}
