package vm_test

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/bpffs-fuse/bpffs-fuse/engine/vm"
	"github.com/bpffs-fuse/bpffs-fuse/engine/vm/asm"
)

// xdpProlog is bpf_conformance's --xdp_prolog (src/bpf_conformance.cc
// _generate_xdp_prolog): r1 = ctx->data, r2 = size after proving
// data + size <= data_end, so the program sees the mem section as (r1, r2).
func xdpProlog(size int) []vm.Insn {
	return []vm.Insn{
		{Op: 0xb7, Imm: -1},                // r0 = -1
		{Op: 0xbf, Dst: 6, Src: 1},         // r6 = r1
		{Op: 0x61, Dst: 1, Src: 6},         // r1 = *(u32 *)(r6 +0)   ctx->data
		{Op: 0x61, Dst: 2, Src: 6, Off: 4}, // r2 = *(u32 *)(r6 +4)   ctx->data_end
		{Op: 0xbf, Dst: 3, Src: 1},         // r3 = r1
		{Op: 0x07, Dst: 3, Imm: int32(size)},
		{Op: 0xbd, Dst: 3, Src: 2, Off: 1}, // if r3 <= r2 goto +1
		{Op: 0x95},                         // exit
		{Op: 0xb7, Dst: 2, Imm: int32(size)},
	}
}

// highHalf rewrites prog so that it returns r0 >> 32: every exit of the main
// function (the instructions before the first bpf-to-bpf call target)
// becomes a jump to "r0 >>= 32; exit" inserted at the end of the main
// function, and calls from main into later functions are shifted by two.
// BPF_PROG_TEST_RUN reports only 32 bits of r0; this recovers the rest.
func highHalf(prog []vm.Insn) []vm.Insn {
	end := len(prog)
	for i, in := range prog {
		if in.Op == vm.ClassJMP|vm.JmpCall && in.Src == vm.PseudoCall {
			if t := i + 1 + int(in.Imm); t < end && t > 0 {
				end = t
			}
		}
	}
	out := make([]vm.Insn, 0, len(prog)+2)
	for i := 0; i < end; i++ {
		in := prog[i]
		switch {
		case in.Op == vm.ClassJMP|vm.JmpExit:
			in = vm.Insn{Op: vm.ClassJMP | vm.JmpJA, Off: int16(end - i - 1)}
		case in.Op == vm.ClassJMP|vm.JmpCall && in.Src == vm.PseudoCall:
			in.Imm += 2
		}
		out = append(out, in)
	}
	out = append(out,
		vm.Insn{Op: vm.ClassALU64 | vm.AluRsh, Imm: 32},
		vm.Insn{Op: vm.ClassJMP | vm.JmpExit})
	return append(out, prog[end:]...)
}

// kernelOnly lists conformance programs whose kernel outcome legitimately
// differs from ModeLinux, with the reason.
// (call_unwind_fail calls helper 5, the suite's unwind helper here and
// bpf_ktime_get_ns in Linux; it is still compared since r0 is overwritten.)
var kernelOnly = map[string]string{}

// kernelRun loads prog behind the XDP prolog and returns the full 64-bit r0.
func kernelRun(t *testing.T, prog []vm.Insn, mem []byte) (uint64, error) {
	pkt := append([]byte(nil), mem...)
	if len(pkt) < 64 {
		pkt = append(pkt, make([]byte, 64-len(pkt))...)
	}
	var halves [2]uint32
	for h, p := range [][]vm.Insn{prog, highHalf(prog)} {
		full := append(xdpProlog(len(mem)), p...)
		fd, err := kernelLoad(progTypeXDP, full)
		if err != nil {
			if h == 1 {
				t.Fatalf("kernel accepted the program but not its high-half variant: %v", err)
			}
			return 0, err
		}
		ret, _, err := kernelTestRun(fd, append([]byte(nil), pkt...), 1)
		unix.Close(fd)
		if err != nil {
			t.Fatalf("BPF_PROG_TEST_RUN: %v", err)
		}
		halves[h] = ret
	}
	return uint64(halves[1])<<32 | uint64(halves[0]), nil
}

// TestKernelDifferential runs every conformance program in the real kernel
// (XDP, BPF_PROG_TEST_RUN) and in ModeLinux: the kernel must reject exactly
// what ModeLinux rejects, and return the same r0 for the rest.
func TestKernelDifferential(t *testing.T) {
	cases := loadConformance(t)
	requireKernel(t)
	m := vm.NewMachine()
	var same, bothReject, kernelRejectOnly int
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, ourErr := vm.Load(c.data.Insns, vm.LoadOptions{Mode: vm.ModeLinux, Helpers: vm.ConformanceHelpers()})
			kr, kErr := kernelRun(t, c.data.Insns, c.data.Mem)
			var ve *kernelVerifierError
			if kErr != nil && !errors.As(kErr, &ve) {
				t.Fatalf("kernel: %v", kErr)
			}
			switch {
			case kErr != nil && ourErr != nil:
				bothReject++
				if !errors.Is(ourErr, unix.EINVAL) {
					t.Errorf("ModeLinux error does not wrap EINVAL: %v", ourErr)
				}
				var le *vm.LoadError
				if !errors.As(ourErr, &le) || !strings.Contains(ve.Log, le.Msg) {
					t.Errorf("message differs: ours %q; kernel log:\n%s", ourErr, ve.Log)
				}
				t.Logf("both reject: ours %q; kernel %v", ourErr, lastLine(ve.Log))
				return
			case kErr != nil:
				if why, ok := kernelOnly[c.name]; ok {
					kernelRejectOnly++
					t.Logf("kernel rejects (%s): %s", why, lastLine(ve.Log))
					return
				}
				t.Fatalf("kernel rejects, ModeLinux accepts: %v\n%s", ve.Errno, ve.Log)
			case ourErr != nil:
				t.Fatalf("ModeLinux rejects, kernel accepts (r0=%#x): %v", kr, ourErr)
			}
			got, err := runData(m, p, c.data.Mem)
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			if got != kr {
				t.Fatalf("r0: ours %#x, kernel %#x", got, kr)
			}
			same++
		})
	}
	t.Logf("kernel differential: %d same r0, %d rejected by both, %d rejected by the kernel only (listed), of %d",
		same, bothReject, kernelRejectOnly, len(cases))
}

func lastLine(s string) string {
	lines := splitLines(s)
	for i := len(lines) - 1; i >= 0; i-- {
		if lines[i] != "" && lines[i][0] != '(' && !hasPrefix(lines[i], "processed") {
			return lines[i]
		}
	}
	return s
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func hasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }

var verifierInsnLine = regexp.MustCompile(`^(\d+): (\([0-9a-f]{2}\) .*?)(\s+;.*)?$`)

// TestKernelXlatedSyntax compares asm.XlatedInsn with the kernel's own
// rendering of every instruction it verifies (log_level 2 prints each insn
// with kernel/bpf/disasm.c:print_bpf_insn) over the conformance programs.
func TestKernelXlatedSyntax(t *testing.T) {
	cases := loadConformance(t)
	requireKernel(t)
	checked := 0
	for _, c := range cases {
		full := append(xdpProlog(len(c.data.Mem)), c.data.Insns...)
		fd, log, err := kernelLoadWithLog(progTypeXDP, full, 2)
		if err != nil {
			continue // rejected programs are covered by TestKernelDifferential
		}
		unix.Close(fd)
		seen := map[int]bool{}
		for _, line := range strings.Split(log, "\n") {
			mm := verifierInsnLine.FindStringSubmatch(line)
			if mm == nil {
				continue
			}
			i, _ := strconv.Atoi(mm[1])
			if seen[i] || i >= len(full) {
				continue
			}
			seen[i] = true
			if got := asm.XlatedInsn(full[i:]); got != mm[2] {
				t.Errorf("%s insn %d: ours %q, kernel %q", c.name, i, got, mm[2])
			}
			checked++
		}
	}
	if checked == 0 {
		t.Fatal("no instructions compared")
	}
	t.Logf("%d instructions rendered identically to the kernel verifier log", checked)
}
