package vm_test

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bpffs-fuse/bpffs-fuse/engine/vm"
	"github.com/bpffs-fuse/bpffs-fuse/engine/vm/asm"
	"github.com/bpffs-fuse/bpffs-fuse/engine/vm/internal/benchprog"
)

// benchLoop reports ns per eBPF instruction for the VM, and for the kernel
// JIT on the same program in the same run (BPF_PROG_TEST_RUN with repeat;
// the kernel reports the average duration per run).
func benchLoop(b *testing.B, gen func(int) string) {
	const n = 100_000 // the kernel verifier explores every iteration: 6e5 < 1e6 insns
	insns, err := asm.Assemble(gen(n))
	if err != nil {
		b.Fatal(err)
	}
	perRun := float64(benchprog.Insns(n))
	b.Run("vm", func(b *testing.B) {
		p, err := vm.Load(insns, vm.LoadOptions{})
		if err != nil {
			b.Fatal(err)
		}
		m := vm.NewMachine()
		b.ResetTimer()
		for b.Loop() {
			if _, err := m.Run(p); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/perRun, "ns/insn")
	})
	b.Run("kernel-jit", func(b *testing.B) {
		requireKernel(b)
		fd, err := kernelLoad(progTypeXDP, insns)
		if err != nil {
			b.Skipf("kernel rejects the loop: %v", err)
		}
		defer unix.Close(fd)
		pkt := make([]byte, 64)
		var total time.Duration
		b.ResetTimer()
		for b.Loop() {
			_, dur, err := kernelTestRun(fd, pkt, 1)
			if err != nil {
				b.Fatal(err)
			}
			total += time.Duration(dur)
		}
		b.ReportMetric(float64(total.Nanoseconds())/float64(b.N)/perRun, "ns/insn")
	})
}

// BenchmarkALULoop: add/xor/lsh/rsh/sub and a conditional jump.
func BenchmarkALULoop(b *testing.B) { benchLoop(b, benchprog.ALULoop) }

// BenchmarkMemLoop: stack stores and loads (each bounds checked), sub and a jump.
func BenchmarkMemLoop(b *testing.B) { benchLoop(b, benchprog.MemLoop) }
