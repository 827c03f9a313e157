package text

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/bpffs-fuse/bpffs-fuse/objects"
)

// Shapes used across the tests.
var (
	shHash    = Shape{Type: objects.MapTypeHash, KeySize: 4, ValueSize: 8, MaxEntries: 1024, Name: "counters"}
	shByte    = Shape{Type: objects.MapTypeHash, KeySize: 1, ValueSize: 1, MaxEntries: 16}
	shOdd     = Shape{Type: objects.MapTypeHash, KeySize: 3, ValueSize: 5, MaxEntries: 16}
	shWide    = Shape{Type: objects.MapTypeHash, KeySize: 16, ValueSize: 4, MaxEntries: 16}
	shSame    = Shape{Type: objects.MapTypeHash, KeySize: 4, ValueSize: 4, MaxEntries: 16}
	shNoVal   = Shape{Type: objects.MapTypeHash, KeySize: 2, ValueSize: 0, MaxEntries: 16}
	shArray   = Shape{Type: objects.MapTypeArray, KeySize: 4, ValueSize: 8, MaxEntries: 4}
	shPcpu    = Shape{Type: objects.MapTypePercpuHash, KeySize: 4, ValueSize: 4, MaxEntries: 16, NumCPUs: 3}
	shPcpuArr = Shape{Type: objects.MapTypePercpuArray, KeySize: 4, ValueSize: 12, MaxEntries: 4, NumCPUs: 2}
	shPcpu1   = Shape{Type: objects.MapTypeLRUPercpuHash, KeySize: 1, ValueSize: 1, MaxEntries: 4, NumCPUs: 2}
	shLPM     = Shape{Type: objects.MapTypeLPMTrie, KeySize: 8, ValueSize: 8, MaxEntries: 16}
	shQueue   = Shape{Type: objects.MapTypeQueue, ValueSize: 4, MaxEntries: 8}
	shStack   = Shape{Type: objects.MapTypeStack, ValueSize: 8, MaxEntries: 8}
	shBloom   = Shape{Type: objects.MapTypeBloomFilter, ValueSize: 4, MaxEntries: 100}
	shRing    = Shape{Type: objects.MapTypeRingbuf, MaxEntries: 4096}
	shProgArr = Shape{Type: objects.MapTypeProgArray, KeySize: 4, ValueSize: 4, MaxEntries: 8}
	shHoM     = Shape{Type: objects.MapTypeHashOfMaps, KeySize: 8, ValueSize: 4, MaxEntries: 8}
)

// opStr is a compact form of an op for comparisons: "kind key=value flags@line".
func opStr(op Op) string {
	return fmt.Sprintf("%s %x=%x f%d@%d", op.Kind, op.Key, op.Value, op.Flags, op.Line)
}

func opsStr(ops []Op) string {
	var b strings.Builder
	for i, op := range ops {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(opStr(op))
	}
	return b.String()
}

func TestParseForms(t *testing.T) {
	tests := []struct {
		name string
		s    Shape
		in   string
		want string
	}{
		{"decimal key value", shHash, "1 42", "update 01000000=2a00000000000000 f0@1"},
		{"printed form", shHash, "01 00 00 00: 2a 00 00 00 00 00 00 00\n", "update 01000000=2a00000000000000 f0@1"},
		{"colon glued", shHash, "1:42", "update 01000000=2a00000000000000 f0@1"},
		{"colon spaced", shHash, "1 : 42", "update 01000000=2a00000000000000 f0@1"},
		{"hex ints", shHash, "0x10 0xDEADbeef", "update 10000000=efbeadde00000000 f0@1"},
		{"negative", shHash, "-1 -2", "update ffffffff=feffffffffffffff f0@1"},
		{"max u64", shHash, "4294967295 18446744073709551615", "update ffffffff=ffffffffffffffff f0@1"},
		{"min i64", shHash, "-2147483648 -9223372036854775808", "update 00000080=0000000000000080 f0@1"},
		{"bytes no colon", shHash, "01 00 00 00 2a 00 00 00 00 00 00 00", "update 01000000=2a00000000000000 f0@1"},
		{"key bytes int value", shHash, "01 00 00 00 42", "update 01000000=2a00000000000000 f0@1"},
		{"key int value bytes", shHash, "1 2a 00 00 00 00 00 00 00", "update 01000000=2a00000000000000 f0@1"},
		{"0x bytes", shHash, "0x1 0x00 0 00: 0x2a 0 0 0 0 0 0 0", ""}, // single-digit bytes rejected
		{"upper hex bytes", shHash, "AB CD EF 01: 1", "update abcdef01=0100000000000000 f0@1"},
		{"update verb", shHash, "update 1 42", "update 01000000=2a00000000000000 f0@1"},
		{"insert verb", shHash, "insert 1: 42", "insert 01000000=2a00000000000000 f1@1"},
		{"replace verb", shHash, "replace 01 00 00 00: 2a 00 00 00 00 00 00 00", "replace 01000000=2a00000000000000 f2@1"},
		{"delete", shHash, "delete 1", "delete 01000000= f0@1"},
		{"delete bytes colon", shHash, "delete 01 00 00 00:", "delete 01000000= f0@1"},
		{"comments blanks", shHash, "# hash key 4\n\n   \t\n1 2 # trailing\n#x\n3 4\r\n", "update 01000000=0200000000000000 f0@4; update 03000000=0400000000000000 f0@6"},
		{"no final newline", shHash, "1 2\n3 4", "update 01000000=0200000000000000 f0@1; update 03000000=0400000000000000 f0@2"},
		{"one byte fields", shByte, "10 255", "update 0a=ff f0@1"},
		{"one byte printed", shByte, "0x0a: 0xff", "update 0a=ff f0@1"},
		{"one byte negative", shByte, "-128 -1", "update 80=ff f0@1"},
		{"odd sizes int", shOdd, "0x123456 1", "update 563412=0100000000 f0@1"},
		{"odd sizes bytes", shOdd, "01 02 03: 04 05 06 07 08", "update 010203=0405060708 f0@1"},
		{"wide key", shWide, "20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01: 7", "update 20010db8000000000000000000000001=07000000 f0@1"},
		{"wide key no colon", shWide, "20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01 7", "update 20010db8000000000000000000000001=07000000 f0@1"},
		{"no value", shNoVal, "0x0102:\n7", "update 0201= f0@1; update 0700= f0@2"},
		{"lpm", shLPM, "18 00 00 00 0a 01 02 00: 5", "update 180000000a010200=0500000000000000 f0@1"},
		{"lpm int key", shLPM, "0x0002010a00000018 5", "update 180000000a010200=0500000000000000 f0@1"},
		{"array", shArray, "3 1", "update 03000000=0100000000000000 f0@1"},

		{"percpu replicate", shPcpu, "1 7", "update 01000000=070000000000000007000000000000000700000000000000 f0@1"},
		{"percpu bytes replicate", shPcpu, "1: 01 02 03 04", "update 01000000=010203040000000001020304000000000102030400000000 f0@1"},
		{"percpu block", shPcpu, "01 00 00 00: {\n\tcpu0: 01 00 00 00\n\tcpu1: 02 00 00 00\n\tcpu2: 03 00 00 00\n}\n",
			"update 01000000=010000000000000002000000000000000300000000000000 f0@1"},
		{"percpu block one line", shPcpu, "insert 2: { cpu2: 9 cpu0: 0x10 }", "insert 02000000=100000000000000000000000000000000900000000000000 f1@1"},
		{"percpu block no colon", shPcpu, "2 {\ncpu1 : 5\n}", "update 02000000=000000000000000005000000000000000000000000000000 f0@1"},
		{"percpu block then line", shPcpu, "1: {\n  cpu0: 1 }\n2 3\n", "update 01000000=010000000000000000000000000000000000000000000000 f0@1; update 02000000=030000000000000003000000000000000300000000000000 f0@3"},
		{"percpu block comment", shPcpu, "1: {\n# c\n\ncpu0: 1\n}", "update 01000000=010000000000000000000000000000000000000000000000 f0@1"},
		{"percpu empty block", shPcpu, "1: {}", "update 01000000=000000000000000000000000000000000000000000000000 f0@1"},
		{"percpu array stride", shPcpuArr, "0: { cpu0: 01 02 03 04 05 06 07 08 09 0a 0b 0c cpu1: 1 }", ""},
		{"percpu array stride ok", shPcpuArr, "0: { cpu0: 01 02 03 04 05 06 07 08 09 0a 0b 0c cpu1: 0d 0e 0f 10 11 12 13 14 15 16 17 18 }",
			"update 00000000=0102030405060708090a0b0c000000000d0e0f10111213141516171800000000 f0@1"},
		{"percpu one byte", shPcpu1, "0x01: {\n\tcpu0: 0x02\n\tcpu1: 0x03\n}", "update 01=0200000000000000" + "0300000000000000 f0@1"},

		{"queue value", shQueue, "42\n00 00 00 01\n", "push =2a000000 f0@1; push =00000001 f0@2"},
		{"queue push", shQueue, "push 1\nenqueue 2\nupdate 3\noverwrite 4", "push =01000000 f0@1; push =02000000 f0@2; push =03000000 f0@3; push =04000000 f2@4"},
		{"stack bytes", shStack, "01 02 03 04 05 06 07 08", "push =0102030405060708 f0@1"},
		{"bloom push", shBloom, "push 0x01020304", "push =04030201 f0@1"},

		{"prog array id", shProgArr, "00 00 00 00: 17", "update 00000000=11000000 f0@1"},
		{"prog array id word", shProgArr, "1 id 4294967295", "update 01000000=ffffffff f0@1"},
		{"prog array bytes", shProgArr, "1: 05 00 00 00", "update 01000000=05000000 f0@1"},
		{"hom", shHoM, "00 00 00 00 00 00 00 07: 12\ndelete 7", "update 0000000000000007=0c000000 f0@1; delete 0700000000000000= f0@2"},

		{"bpftool", shHash, "update key 1 0 0 0 value 42 0 0 0 0 0 0 0", "update 01000000=2a00000000000000 f0@1"},
		{"bpftool no verb", shHash, "key 0x01 0 0 0 value 0x2a 0 0 0 0 0 0 0", "update 01000000=2a00000000000000 f0@1"},
		{"bpftool hex", shHash, "key hex 01 0 0 0 value hex ff ff 0x1 0 0 0 0 10", "update 01000000=ffff010000000010 f0@1"},
		{"bpftool octal", shHash, "key 010 0 0 0 value 0377 0 0 0 0 0 0 0", "update 08000000=ff00000000000000 f0@1"},
		{"bpftool flags", shHash, "key 1 0 0 0 value 2 0 0 0 0 0 0 0 noexist\nupdate key 1 0 0 0 value 2 0 0 0 0 0 0 0 exist\ninsert key 1 0 0 0 value 2 0 0 0 0 0 0 0 noexist\nkey 1 0 0 0 value 2 0 0 0 0 0 0 0 any",
			"insert 01000000=0200000000000000 f1@1; replace 01000000=0200000000000000 f2@2; insert 01000000=0200000000000000 f1@3; update 01000000=0200000000000000 f0@4"},
		{"bpftool int ext", shHash, "key 1 value 0x2a", "update 01000000=2a00000000000000 f0@1"},
		{"bpftool delete", shHash, "delete key 1 0 0 0", "delete 01000000= f0@1"},
		{"bpftool push", shQueue, "push value 1 2 3 4\nvalue hex ff 0 0 0\nvalue 5", "push =01020304 f0@1; push =ff000000 f0@2; push =05000000 f0@3"},
		{"bpftool push exist", shStack, "push value 1 exist", "push =0100000000000000 f2@1"},
		{"bpftool percpu", shPcpu, "key 1 0 0 0 value 1 2 3 4", "update 01000000=010203040000000001020304000000000102030400000000 f0@1"},
		{"bpftool fd id", shProgArr, "key 2 0 0 0 value id 9", "update 02000000=09000000 f0@1"},
		{"bpftool fd hex", shProgArr, "key 2 0 0 0 value hex 09 00 00 00", "update 02000000=09000000 f0@1"},
		{"bpftool one byte", shByte, "key 010 value 0x10", "update 08=10 f0@1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ops, err := Parse(tt.s, []byte(tt.in))
			if tt.want == "" {
				if err == nil {
					t.Fatalf("Parse(%q) = %s, want an error", tt.in, opsStr(ops))
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if got := opsStr(ops); got != tt.want {
				t.Errorf("Parse(%q)\n got %s\nwant %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		s    Shape
		in   string
		want string // the whole error text
	}{
		{shHash, "1 2\n3 4\n01 02: zz", `line 3: "01 02: zz": key: expected 4 hex bytes or one integer, got 2 fields`},
		{shHash, "01 00 00 00: zz", `line 1: "01 00 00 00: zz": value: "zz" is not a hex byte or integer`},
		{shHash, "1: 2a 00 00 00 00 00 00 0g", `line 1: "1: 2a 00 00 00 00 00 00 0g": value: "0g" is not a hex byte (byte 8 of 8: two hex digits, or 0x and one or two)`},
		{shHash, "1: 2a 00 00", `line 1: "1: 2a 00 00": value: expected 8 hex bytes or one integer, got 3 fields`},
		{shHash, "1:", `line 1: "1:": value: expected 8 hex bytes or one integer, got 0 fields`},
		{shHash, ": 1", `line 1: ": 1": key missing before ':'`},
		{shHash, "1", `line 1: "1": value missing: expected KEY VALUE or KEY: VALUE`},
		{shHash, "1 2 3", `line 1: "1 2 3": expected KEY VALUE: key as 4 hex bytes or one integer, value as 8 hex bytes or one integer; got 3 fields`},
		{shHash, "4294967296 1", `line 1: "4294967296 1": key: 4294967296 does not fit in 4 bytes (-2147483648..4294967295)`},
		{shHash, "-2147483649 1", `line 1: "-2147483649 1": key: -2147483649 does not fit in 4 bytes (-2147483648..4294967295)`},
		{shHash, "1 18446744073709551616", `line 1: "1 18446744073709551616": value: "18446744073709551616" is not a hex byte or integer`},
		{shHash, "1 0x10000000000000000", `line 1: "1 0x10000000000000000": value: "0x10000000000000000" is not a hex byte or integer`},
		{shHash, "1 -9223372036854775809", `line 1: "1 -9223372036854775809": value: -9223372036854775809 does not fit in 8 bytes (-9223372036854775808..18446744073709551615)`},
		{shHash, "1 0x", `line 1: "1 0x": value: "0x" is not a hex byte or integer`},
		{shHash, "1 -", `line 1: "1 -": value: "-" is not a hex byte or integer`},
		{shHash, "add 1 2", `line 1: "add 1 2": expected KEY VALUE: key as 4 hex bytes or one integer, value as 8 hex bytes or one integer; got 3 fields`},
		{shByte, "1 256", `line 1: "1 256": value: 256 does not fit in 1 byte (-128..255)`},
		{shByte, "1 2a", `line 1: "1 2a": value: "2a" is not an integer (a 1-byte field is one integer: 42 or 0x2a)`},
		{shSame, "01 02 03 04 05", `line 1: "01 02 03 04 05": ambiguous: the fields split into key and value in two ways; write KEY: VALUE`},
		{shWide, "1 2", `line 1: "1 2": expected KEY VALUE: key as 16 hex bytes, value as 4 hex bytes or one integer; got 2 fields`},
		{shWide, "1: 2", `line 1: "1: 2": key: expected 16 hex bytes, got 1 field`},
		{shHash, "delete 1: 2", `line 1: "delete 1: 2": delete takes a key only`},
		{shHash, "delete", `line 1: "delete": delete: nothing follows`},
		{shHash, "push 1", `line 1: "push 1": push: only queue, stack and bloom_filter maps are pushed to; hash maps take KEY VALUE`},
		{shHash, "1: { cpu0: 1 }", `line 1: "1: { cpu0: 1 }": { } blocks are for per-CPU maps; hash values are written after KEY:`},
		{shQueue, "1: 2", `line 1: "1: 2": queue maps have no keys: write the value alone`},
		{shQueue, "insert 1", `line 1: "insert 1": insert: queue maps have no keys; write the value alone to push it (overwrite VALUE to push over the oldest)`},
		{shQueue, "delete 1", `line 1: "delete 1": delete: queue maps have no keys; write the value alone to push it (overwrite VALUE to push over the oldest)`},
		{shQueue, "1 2", `line 1: "1 2": value: expected 4 hex bytes or one integer, got 2 fields`},
		{shRing, "1", `line 1: "1": ringbuf maps cannot be written as text: records are produced through mmap`},
		{shProgArr, "1 -1", `line 1: "1 -1": value: "-1" is not an id (a decimal number up to 4294967295)`},
		{shProgArr, "1 id", `line 1: "1 id": value: "id" is not an id (a decimal number up to 4294967295)`},
		{shProgArr, "1 4294967296", `line 1: "1 4294967296": value: "4294967296" is not an id (a decimal number up to 4294967295)`},
		{shProgArr, "key 1 0 0 0 value pinned /x", `line 1: "key 1 0 0 0 value pinned /x": value: only "id N" can be written as text; use the CLI for pinned`},
		{shPcpu, "1: { cpu3: 1 }", `line 1: "1: { cpu3: 1 }": cpu3: the map has 3 possible CPUs (cpu0..cpu2)`},
		{shPcpu, "1: {\ncpu0: 1\ncpu0: 2\n}", `line 3: "cpu0: 2": cpu0 is given twice`},
		{shPcpu, "1: {\ncpu0: 1 } 2", `line 2: "cpu0: 1 } 2": text after }`},
		{shPcpu, "1: {\ncpu0 1\n}", `line 2: "cpu0 1": expected "cpuN: VALUE" or "}", got "cpu0"`},
		{shPcpu, "1: {\ncpu0: zz\n}", `line 2: "cpu0: zz": cpu0: "zz" is not a hex byte or integer`},
		{shPcpu, "1: {\ncpu0: 1\n", `line 1: "1: {": per-CPU block not closed with }`},
		{shPcpu, "1 2: {", `line 1: "1 2: {": key: expected 4 hex bytes or one integer, got 2 fields`},
		{shPcpu, "1 : 2 {", `line 1: "1 : 2 {": expected KEY: { cpu0: VALUE ... }`},
		{shHash, "key 1 0 0 value 1", `line 1: "key 1 0 0 value 1": key: expected 4 bytes, got 3`},
		{shHash, "key 1 0 0 256 value 1", `line 1: "key 1 0 0 256 value 1": key: "256" is not a byte (byte 4 of 4: 0..255 or 0x00..0xff)`},
		{shHash, "key 08 0 0 0 value 1", `line 1: "key 08 0 0 0 value 1": key: "08" is not a byte (byte 1 of 4: 0..255 or 0x00..0xff)`},
		{shHash, "key hex 1 value 1", `line 1: "key hex 1 value 1": key: expected 4 bytes, got 1`},
		{shHash, "key 1", `line 1: "key 1": value missing`},
		{shHash, "value 1", `line 1: "value 1": key missing: hash maps take key BYTES value BYTES`},
		{shHash, "delete key 1 value 2", `line 1: "delete key 1 value 2": delete takes a key only`},
		{shHash, "insert key 1 value 2 exist", `line 1: "insert key 1 value 2 exist": insert: conflicts with the flag exist`},
		{shQueue, "key 1 value 2", `line 1: "key 1 value 2": queue maps have no keys: write value BYTES`},
		{shQueue, "value 1 noexist", `line 1: "value 1 noexist": noexist: queue maps are pushed with any or exist`},
		{shHash, "1 2 #c\n\n" + strings.Repeat("x", 300), `line 3: "` + strings.Repeat("x", 200) + `...": value missing: expected KEY VALUE or KEY: VALUE`},
	}
	for _, tt := range tests {
		ops, err := Parse(tt.s, []byte(tt.in))
		if err == nil {
			t.Errorf("Parse(%s, %q) = %s, want error %s", tt.s.Type, tt.in, opsStr(ops), tt.want)
			continue
		}
		if err.Error() != tt.want {
			t.Errorf("Parse(%s, %q)\n got %s\nwant %s", tt.s.Type, tt.in, err, tt.want)
		}
		if !errors.Is(err, unix.EINVAL) {
			t.Errorf("Parse(%q): %v does not wrap EINVAL", tt.in, err)
		}
		var se *SyntaxError
		if !errors.As(err, &se) || se.Line < 1 {
			t.Errorf("Parse(%q): %v is not a *SyntaxError with a line", tt.in, err)
		}
		if ops != nil {
			t.Errorf("Parse(%q) returned ops with its error", tt.in)
		}
	}
}
