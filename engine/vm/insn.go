package vm

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"
)

// Instruction classes (RFC 9669 §3.3, include/uapi/linux/bpf_common.h).
const (
	ClassLD    = 0x00
	ClassLDX   = 0x01
	ClassST    = 0x02
	ClassSTX   = 0x03
	ClassALU   = 0x04
	ClassJMP   = 0x05
	ClassJMP32 = 0x06
	ClassALU64 = 0x07
)

// Source operand bit of ALU and JMP opcodes.
const (
	SrcK = 0x00 // immediate
	SrcX = 0x08 // register
)

// ALU operations (high nibble of an ALU/ALU64 opcode).
const (
	AluAdd  = 0x00
	AluSub  = 0x10
	AluMul  = 0x20
	AluDiv  = 0x30
	AluOr   = 0x40
	AluAnd  = 0x50
	AluLsh  = 0x60
	AluRsh  = 0x70
	AluNeg  = 0x80
	AluMod  = 0x90
	AluXor  = 0xa0
	AluMov  = 0xb0
	AluArsh = 0xc0
	AluEnd  = 0xd0
)

// Jump operations (high nibble of a JMP/JMP32 opcode).
const (
	JmpJA   = 0x00
	JmpJEQ  = 0x10
	JmpJGT  = 0x20
	JmpJGE  = 0x30
	JmpJSET = 0x40
	JmpJNE  = 0x50
	JmpJSGT = 0x60
	JmpJSGE = 0x70
	JmpCall = 0x80
	JmpExit = 0x90
	JmpJLT  = 0xa0
	JmpJLE  = 0xb0
	JmpJSLT = 0xc0
	JmpJSLE = 0xd0
)

// Load/store sizes and modes.
const (
	SizeW  = 0x00
	SizeH  = 0x08
	SizeB  = 0x10
	SizeDW = 0x18

	ModeIMM    = 0x00
	ModeABS    = 0x20
	ModeIND    = 0x40
	ModeMEM    = 0x60
	ModeMEMSX  = 0x80
	ModeATOMIC = 0xc0
)

// Atomic operations (imm field of a STX|ATOMIC instruction).
const (
	AtomicFetch   = 0x01
	AtomicAdd     = 0x00
	AtomicOr      = 0x40
	AtomicAnd     = 0x50
	AtomicXor     = 0xa0
	AtomicXchg    = 0xe0 | AtomicFetch
	AtomicCmpXchg = 0xf0 | AtomicFetch
)

// Pseudo source registers of LD_IMM64 (include/uapi/linux/bpf.h).
const (
	PseudoMapFD       = 1
	PseudoMapValue    = 2
	PseudoBTFID       = 3
	PseudoFunc        = 4
	PseudoMapIdx      = 5
	PseudoMapIdxValue = 6
)

// Pseudo source registers of CALL.
const (
	PseudoCall      = 1 // bpf-to-bpf call, imm is pc-relative
	PseudoKfuncCall = 2 // call by BTF id
)

// OpLdImm64 is the opcode of the 16-byte wide LD_IMM64 instruction (lddw).
const OpLdImm64 = ClassLD | ModeIMM | SizeDW

// HelperTailCall is the id of bpf_tail_call, which the VM handles itself through TailCaller.
const HelperTailCall = 12

// Insn is one raw 8-byte eBPF instruction (struct bpf_insn). LD_IMM64 takes two
// consecutive Insns; the second holds the upper 32 bits of the constant in Imm.
type Insn struct {
	Op  uint8
	Dst uint8 // 4 bits
	Src uint8 // 4 bits
	Off int16
	Imm int32
}

// Class returns the instruction class (the low 3 bits of the opcode).
func (i Insn) Class() uint8 { return i.Op & 0x07 }

// Decode splits little-endian bytecode into instructions. The length must be a
// multiple of 8; errors wrap unix.EINVAL.
func Decode(b []byte) ([]Insn, error) {
	if len(b)%8 != 0 {
		return nil, fmt.Errorf("vm: bytecode length %d is not a multiple of 8: %w", len(b), unix.EINVAL)
	}
	out := make([]Insn, len(b)/8)
	for i := range out {
		w := b[i*8 : i*8+8]
		out[i] = Insn{
			Op:  w[0],
			Dst: w[1] & 0x0f,
			Src: w[1] >> 4,
			Off: int16(binary.LittleEndian.Uint16(w[2:])),
			Imm: int32(binary.LittleEndian.Uint32(w[4:])),
		}
	}
	return out, nil
}

// Encode is the inverse of Decode.
func Encode(insns []Insn) []byte {
	out := make([]byte, 8*len(insns))
	for i, in := range insns {
		w := out[i*8:]
		w[0] = in.Op
		w[1] = in.Dst&0x0f | in.Src<<4
		binary.LittleEndian.PutUint16(w[2:], uint16(in.Off))
		binary.LittleEndian.PutUint32(w[4:], uint32(in.Imm))
	}
	return out
}
