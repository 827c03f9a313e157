// Package benchprog holds the loop programs the VM benchmarks and the
// callgrind measurement share, so that both measure the same code.
package benchprog

import "fmt"

// InsnsPerIter is the number of eBPF instructions one loop iteration of
// ALULoop and MemLoop executes; Overhead is the count outside the loop.
const (
	InsnsPerIter = 6
	Overhead     = 3
)

// ALULoop returns a loop of n iterations of ALU instructions and a
// conditional jump.
func ALULoop(n int) string {
	return fmt.Sprintf(`mov %%r0, 0
mov %%r1, %d
loop:
add %%r0, %%r1
xor %%r0, 0x55
lsh %%r0, 1
rsh %%r0, 1
sub %%r1, 1
jne %%r1, 0, loop
exit`, n)
}

// MemLoop returns a loop of n iterations of stack stores and loads.
func MemLoop(n int) string {
	return fmt.Sprintf(`mov %%r0, 0
mov %%r1, %d
loop:
stxdw [%%r10-8], %%r1
ldxdw %%r2, [%%r10-8]
stxw [%%r10-16], %%r2
ldxw %%r0, [%%r10-16]
sub %%r1, 1
jne %%r1, 0, loop
exit`, n)
}

// Insns returns how many instructions a loop of n iterations executes.
func Insns(n int) int { return n*InsnsPerIter + Overhead }
