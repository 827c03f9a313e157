// Package vm is the eBPF interpreter: the full RFC 9669 instruction set
// (v1-v4: ALU/ALU64 incl. sdiv/smod, movsx and bswap; JMP/JMP32 incl. gotol;
// LD_IMM64 and its pseudo forms; LDX/ST/STX incl. MEMSX; atomics;
// bpf-to-bpf calls; helper calls; tail calls; callx; legacy LD_ABS/LD_IND),
// memory-safe by construction.
//
// # Using it
//
//	p, err := vm.Load(insns, vm.LoadOptions{Mode: vm.ModeLinux, Helpers: helpers,
//		Resolver: loader, TailCaller: engine})
//	m := vm.NewMachine()                     // one per goroutine, reusable
//	ctx := m.NewPointer(vm.Region{Data: ctxBytes, Writable: true, Kind: vm.RegionContext})
//	r0, err := m.Run(p, ctx)                 // r1 = ctx; the region table is emptied on return
//
// Load validates the encoding (opcodes, reserved fields, jump ranges,
// ld_imm64 pairs, helper ids) and pre-decodes every instruction into a
// 16-byte form with absolute jump targets. It does no abstract
// interpretation: that is the verifier's job. Programs are immutable and may
// be shared by many Machines.
//
// # Memory model
//
// Registers hold plain uint64 values. Memory the program may touch is a table
// of regions per Machine: region i occupies virtual addresses
// [(i+1)<<40, (i+2)<<40), so pointer arithmetic works as in the kernel, and
// each load or store decodes its address to (region, offset) with a shift and
// a mask and checks it against the region's length (and Writable for stores)
// with one compare. Region 0 is the stack: 512 bytes per frame, frames laid
// out upward from the main program's, the region's length always ending at
// the current frame's r10 — so an access below the first frame or above the
// current r10 fails. A bad access ends the run with a *RunError wrapping
// ErrAccess (unix.EFAULT):
//
//	vm: insn 12: invalid read of 8 bytes at stack-520
//
// Helpers read and write program memory with Machine.Mem, and give the
// program pointers to new memory (a map value from bpf_map_lookup_elem) with
// Machine.NewPointer, which deduplicates identical memory. Runs are bounded
// by Machine.Budget instructions (ErrBudget). No Go panic escapes Run.
//
// # Engine hooks
//
//   - Helpers: LoadOptions.Helpers maps a helper id to a Helper; calls are
//     bound at load (an unknown id is rejected like Linux does).
//   - Maps: LoadOptions.Resolver resolves LD_IMM64 with src 1, 2, 3, 5, 6 at
//     load time into a plain value (a map handle the engine's helpers
//     understand) or a Region + offset (a map value, e.g. global data), which
//     the VM registers on first use in each run. src 4 (a function) becomes a
//     value Machine.CallFunction accepts (for bpf_loop-style callbacks).
//   - Tail calls: LoadOptions.TailCaller makes helper 12 a tail call with
//     Linux semantics (at most 33 per run, empty slot falls through).
//   - Context access rewriting (the kernel's convert_ctx_access) is the
//     verifier's job: the VM runs what it is given.
//
// # ModeISA and ModeLinux
//
// The two modes differ only at load time; execution is identical, and in
// both the run-time results are those of Linux's interpreter and JITs
// (shift counts masked, division by zero yields 0, modulo by zero leaves
// the dividend — truncated to 32 bits for 32-bit operations).
//
//	case                                 ModeISA (RFC 9669)      ModeLinux (kernel verifier)
//	shift by immediate >= width or < 0   count masked (&63/&31)  rejected: "invalid shift N"
//	div/mod/sdiv/smod by immediate 0     result 0 / dst kept     rejected: "div by zero"
//	callx (0x8d, helper id in dst reg)   calls the helper        rejected: "unknown opcode 8d"
//
// Common to both (deliberate differences from Linux, each for a reason given
// at the code): calls to kernel functions (CALL src 2) are rejected since
// there is no kernel BTF; every bpf-to-bpf frame gets its own 512 bytes
// (Linux's verifier bounds the sum of frames to 512); LD_ABS/LD_IND read the
// packet given to SetPacket and negative (ancillary) offsets are out of
// bounds.
package vm
