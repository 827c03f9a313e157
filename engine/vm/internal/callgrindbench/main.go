// Command callgrindbench runs one VM benchmark loop once, for counting host
// instructions with valgrind --tool=callgrind. Run it twice with different
// -n and divide the difference in instructions ("Ir") by the difference in
// executed eBPF instructions; see BENCHMARKS.md.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/bpffs-fuse/bpffs-fuse/engine/vm"
	"github.com/bpffs-fuse/bpffs-fuse/engine/vm/asm"
	"github.com/bpffs-fuse/bpffs-fuse/engine/vm/internal/benchprog"
)

func main() {
	prog := flag.String("prog", "alu", "alu or mem")
	n := flag.Int("n", 1000, "loop iterations")
	flag.Parse()
	src := benchprog.ALULoop(*n)
	if *prog == "mem" {
		src = benchprog.MemLoop(*n)
	}
	insns, err := asm.Assemble(src)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	p, err := vm.Load(insns, vm.LoadOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	m := vm.NewMachine()
	m.Budget = 1 << 62
	r0, err := m.Run(p)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("r0=%#x insns=%d\n", r0, benchprog.Insns(*n))
}
