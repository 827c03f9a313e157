package vm_test

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/bpffs-fuse/bpffs-fuse/engine/vm"
	"github.com/bpffs-fuse/bpffs-fuse/engine/vm/asm"
)

// loadProbes are malformed or mode-dependent encodings: ModeLinux must reject
// exactly those the kernel rejects, with a message the kernel's log contains.
var loadProbes = []struct {
	name  string
	src   string    // assembly, or
	raw   []vm.Insn // raw instructions
	isaOK bool      // accepted in ModeISA
}{
	{name: "div-imm-zero", src: "mov %r0, 1\ndiv %r0, 0\nexit", isaOK: true},
	{name: "mod32-imm-zero", src: "mov %r0, 1\nmod32 %r0, 0\nexit", isaOK: true},
	{name: "sdiv-imm-zero", src: "mov %r0, 1\nsdiv %r0, 0\nexit", isaOK: true},
	{name: "lsh-imm-64", src: "mov %r0, 1\nlsh %r0, 64\nexit", isaOK: true},
	{name: "arsh32-imm-32", src: "mov %r0, 1\narsh32 %r0, 32\nexit", isaOK: true},
	{name: "callx", src: "mov %r0, 1\nmov %r2, 2\ncall %r2\nexit", isaOK: true},
	{name: "mov-reserved-off", raw: []vm.Insn{{Op: 0xb7, Off: 1}, {Op: 0x95}}},
	{name: "movsx32-in-alu32", raw: []vm.Insn{{Op: 0xb7}, {Op: 0xbc, Dst: 0, Src: 0, Off: 32}, {Op: 0x95}}},
	{name: "add-reserved-off", raw: []vm.Insn{{Op: 0xb7}, {Op: 0x07, Off: 1}, {Op: 0x95}}},
	{name: "neg-imm", raw: []vm.Insn{{Op: 0xb7}, {Op: 0x87, Imm: 1}, {Op: 0x95}}},
	{name: "end-imm-8", raw: []vm.Insn{{Op: 0xb7}, {Op: 0xd4, Imm: 8}, {Op: 0x95}}},
	{name: "write-r10", src: "mov %r10, 0\nmov %r0, 0\nexit"},
	{name: "ja-out-of-range", src: "mov %r0, 0\nja +5\nexit"},
	{name: "call-unknown-helper", src: "mov %r0, 0\ncall 99999\nexit"},
	{name: "no-exit", src: "mov %r0, 0\nmov %r0, 1"},
	{name: "unknown-opcode", raw: []vm.Insn{{Op: 0xb7}, {Op: 0xff}, {Op: 0x95}}},
	{name: "lddw-truncated", raw: []vm.Insn{{Op: 0xb7}, {Op: 0x95}, {Op: 0x18}}},
	{name: "jump-into-lddw", raw: []vm.Insn{{Op: 0xb7}, {Op: 0x15, Off: 1}, {Op: 0x18, Dst: 1}, {}, {Op: 0x95}}},
	{name: "atomic-bad-op", raw: []vm.Insn{{Op: 0xb7}, {Op: 0x7b, Dst: 10, Src: 0, Off: -8}, {Op: 0xdb, Dst: 10, Src: 0, Off: -8, Imm: 0x10}, {Op: 0x95}}},
	{name: "jmp-reserved-imm", raw: []vm.Insn{{Op: 0xb7}, {Op: 0x1d, Imm: 1}, {Op: 0x95}}},
	{name: "exit-reserved", raw: []vm.Insn{{Op: 0xb7}, {Op: 0x95, Imm: 1}}},
	{name: "valid-gotol", src: "mov %r0, 3\nja32 +0\nexit", isaOK: true},
	{name: "valid-movsx-bswap-ldsx", src: "mov %r0, 3\nstxdw [%r10-8], %r0\nldxsb %r1, [%r10-8]\nmovsx3264 %r0, %r1\nbswap16 %r0\nexit", isaOK: true},
	{name: "valid-atomics", src: "mov %r0, 3\nstxdw [%r10-8], %r0\nmov %r1, 1\nlock fetch add [%r10-8], %r1\nlock cmpxchg32 [%r10-8], %r1\nlock xchg [%r10-8], %r1\nexit", isaOK: true},
}

func TestKernelLoadProbes(t *testing.T) {
	requireKernel(t)
	for _, pr := range loadProbes {
		t.Run(pr.name, func(t *testing.T) {
			insns := pr.raw
			if pr.src != "" {
				var err error
				if insns, err = asm.Assemble(pr.src); err != nil {
					t.Fatal(err)
				}
			}
			_, isaErr := vm.Load(insns, vm.LoadOptions{Mode: vm.ModeISA, Helpers: vm.ConformanceHelpers()})
			if (isaErr == nil) != pr.isaOK {
				t.Errorf("ModeISA: err = %v, want accepted=%v", isaErr, pr.isaOK)
			}
			_, ourErr := vm.Load(insns, vm.LoadOptions{Mode: vm.ModeLinux, Helpers: vm.ConformanceHelpers()})
			fd, kErr := kernelLoad(progTypeSocketFlt, insns)
			if kErr == nil {
				unix.Close(fd)
				if ourErr != nil {
					t.Fatalf("kernel accepts, ModeLinux rejects: %v", ourErr)
				}
				return
			}
			var ve *kernelVerifierError
			if !errors.As(kErr, &ve) {
				t.Fatal(kErr)
			}
			if ourErr == nil {
				t.Fatalf("kernel rejects (%v), ModeLinux accepts:\n%s", ve.Errno, ve.Log)
			}
			if !errors.Is(ourErr, ve.Errno) {
				t.Errorf("errno: ours %v, kernel %v", ourErr, ve.Errno)
			}
			var le *vm.LoadError
			if !errors.As(ourErr, &le) || !strings.Contains(ve.Log, le.Msg) {
				t.Errorf("message: ours %q, kernel log:\n%s", ourErr, ve.Log)
			}
		})
	}
}
