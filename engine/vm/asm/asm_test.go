package asm_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bpffs-fuse/bpffs-fuse/engine/vm"
	"github.com/bpffs-fuse/bpffs-fuse/engine/vm/asm"
)

func conformanceFiles(t testing.TB) []string {
	dir := os.Getenv("BPF_CONFORMANCE_DIR")
	if dir == "" {
		// The copy kept in the repository, with its license and source.
		dir = filepath.Join("..", "..", "..", "testdata", "bpf_conformance", "tests")
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.data"))
	if len(files) == 0 {
		t.Fatalf("bpf_conformance tests not found in %s (set BPF_CONFORMANCE_DIR)", dir)
	}
	return files
}

func TestAssembleGolden(t *testing.T) {
	for _, c := range []struct {
		src  string
		want vm.Insn
	}{
		{"mov32 %r0, 10", vm.Insn{Op: 0xb4, Imm: 10}},
		{"mov %r1, -1", vm.Insn{Op: 0xb7, Dst: 1, Imm: -1}},
		{"add %r0, %r1", vm.Insn{Op: 0x0f, Src: 1}},
		{"sdiv32 %r0, %r1", vm.Insn{Op: 0x3c, Src: 1, Off: 1}},
		{"smod %r0, 3", vm.Insn{Op: 0x97, Off: 1, Imm: 3}},
		{"movsx832 %r0, %r1", vm.Insn{Op: 0xbc, Src: 1, Off: 8}},
		{"movsx3264 %r0, %r1", vm.Insn{Op: 0xbf, Src: 1, Off: 32}},
		{"ldxw %r0, [%r1+4]", vm.Insn{Op: 0x61, Src: 1, Off: 4}},
		{"ldxsh %r0, [%r10-2]", vm.Insn{Op: 0x89, Src: 10, Off: -2}},
		{"stxdw [%r10-8], %r1", vm.Insn{Op: 0x7b, Dst: 10, Src: 1, Off: -8}},
		{"sth [%r0], 0x1234", vm.Insn{Op: 0x6a, Imm: 0x1234}},
		{"be16 %r0", vm.Insn{Op: 0xdc, Imm: 16}},
		{"le64 %r0", vm.Insn{Op: 0xd4, Imm: 64}},
		{"bswap32 %r0", vm.Insn{Op: 0xd7, Imm: 32}},
		{"swap64 %r0", vm.Insn{Op: 0xd7, Imm: 64}},
		{"jne %r0, 0, +2", vm.Insn{Op: 0x55, Off: 2}},
		{"jsgt32 %r0, %r1, -1", vm.Insn{Op: 0x6e, Src: 1, Off: -1}},
		{"ja32 +5", vm.Insn{Op: 0x06, Imm: 5}},
		{"call 1", vm.Insn{Op: 0x85, Imm: 1}},
		{"call %r2", vm.Insn{Op: 0x8d, Dst: 2}},
		{"call local +3", vm.Insn{Op: 0x85, Src: 1, Imm: 3}},
		{"lock fetch add32 [%r10-4], %r1", vm.Insn{Op: 0xc3, Dst: 10, Src: 1, Off: -4, Imm: 1}},
		{"lock cmpxchg [%r10-8], %r1", vm.Insn{Op: 0xdb, Dst: 10, Src: 1, Off: -8, Imm: 0xf1}},
		{"ldabsh 12", vm.Insn{Op: 0x28, Imm: 12}},
		{"ldindb %r1, 2", vm.Insn{Op: 0x50, Src: 1, Imm: 2}},
		{"exit", vm.Insn{Op: 0x95}},
	} {
		got, err := asm.Assemble(c.src)
		if err != nil {
			t.Errorf("%s: %v", c.src, err)
			continue
		}
		if len(got) != 1 || got[0] != c.want {
			t.Errorf("%s: got %+v, want %+v", c.src, got, c.want)
		}
	}
}

func TestAssembleLabels(t *testing.T) {
	got, err := asm.Assemble("mov %r0, 1\njeq %r0, 1, out # comment\nmov %r0, 2\nout:\nexit\ncall local f\nf: exit")
	if err != nil {
		t.Fatal(err)
	}
	if got[1].Off != 1 || got[4].Imm != 0 {
		t.Fatalf("label offsets: %+v", got)
	}
	// "exit" names the first exit when no label of that name exists.
	got, err = asm.Assemble("ja exit\nmov %r0, 1\nexit\nexit")
	if err != nil || got[0].Off != 1 {
		t.Fatalf("implicit exit label: %v %+v", err, got)
	}
	for _, bad := range []string{"mov %r11x, 1", "jeq %r0, 1, nowhere\nexit", "a:\na:\nexit", "bogus %r0", "lddw %r0", "ldxw %r0, %r1", "mov32 %r0, 0x1ffffffff"} {
		if _, err := asm.Assemble(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestRoundTripConformance(t *testing.T) {
	for _, f := range conformanceFiles(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		d, err := asm.ParseDataFile(string(b))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		text := asm.Disassemble(d.Insns)
		again, err := asm.Assemble(text)
		if err != nil {
			t.Fatalf("%s: reassemble: %v\n%s", filepath.Base(f), err, text)
		}
		if string(vm.Encode(again)) != string(vm.Encode(d.Insns)) {
			t.Fatalf("%s: round trip differs\n%s", filepath.Base(f), text)
		}
		if strings.Contains(text, ".raw") {
			t.Errorf("%s: valid program disassembled with .raw:\n%s", filepath.Base(f), text)
		}
	}
}

func TestXlatedGolden(t *testing.T) {
	src := `mov %r0, 1
add %r1, %r2
mov32 %r0, %r1
jgt %r1, 5, +2
stxw [%r10-4], %r1
ldxdw %r0, [%r1+8]
lddw %r1, 0x1122334455667788
lock add [%r1+0], %r2
lock fetch xor32 [%r1+0], %r2
lock cmpxchg [%r1+0], %r2
movsx1664 %r0, %r1
sdiv %r0, 3
bswap16 %r0
be32 %r0
ja32 +1
call 1
call local +1
neg32 %r3
ldxsb %r0, [%r1-1]
exit`
	insns, err := asm.Assemble(src)
	if err != nil {
		t.Fatal(err)
	}
	want := `   0: (b7) r0 = 1
   1: (0f) r1 += r2
   2: (bc) w0 = w1
   3: (25) if r1 > 0x5 goto pc+2
   4: (63) *(u32 *)(r10 -4) = r1
   5: (79) r0 = *(u64 *)(r1 +8)
   6: (18) r1 = 0x1122334455667788
   8: (db) lock *(u64 *)(r1 +0) += r2
   9: (c3) r2 = atomic_fetch_xor((u32 *)(r1 +0), r2)
  10: (db) r0 = atomic64_cmpxchg((u64 *)(r1 +0), r0, r2)
  11: (bf) r0 = (s16)r1
  12: (37) r0 s/= 3
  13: (d7) r0 = bswap16 r0
  14: (dc) r0 = be32 r0
  15: (06) gotol pc+1
  16: (85) call bpf_map_lookup_elem#1
  17: (85) call pc+1
  18: (84) w3 = -w3
  19: (91) r0 = *(s8 *)(r1 -1)
  20: (95) exit
`
	if got := asm.Xlated(insns); got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

// FuzzAssemble: the parser never panics, and whatever it accepts
// disassembles and reassembles to the same bytes.
func FuzzAssemble(f *testing.F) {
	f.Add("mov32 %r0, 10\nexit")
	f.Add("lddw %r0, 0x1122334455667788\njne %r0, 0, exit\nlock fetch add [%r10-8], %r1\nexit")
	f.Add("l: ja l\ncall local l\nstxdw [%r10-8], %r1\nmovsx832 %r1, %r2")
	f.Add(".raw 0x0000000000000095")
	f.Fuzz(func(t *testing.T, src string) {
		insns, err := asm.Assemble(src)
		if err != nil {
			return
		}
		text := asm.Disassemble(insns)
		again, err := asm.Assemble(text)
		if err != nil {
			t.Fatalf("reassemble %q: %v", text, err)
		}
		if string(vm.Encode(again)) != string(vm.Encode(insns)) {
			t.Fatalf("round trip differs:\n%s", text)
		}
		_ = asm.Xlated(insns)
	})
}
