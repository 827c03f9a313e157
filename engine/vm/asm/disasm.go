package asm

import (
	"fmt"
	"strings"
	"unicode"

	ciliumasm "github.com/cilium/ebpf/asm"

	"github.com/bpffs-fuse/bpffs-fuse/engine/vm"
)

var aluNames = [16]string{"add", "sub", "mul", "div", "or", "and", "lsh", "rsh", "neg", "mod", "xor", "mov", "arsh", "", "", ""}
var jmpNames = [16]string{"ja", "jeq", "jgt", "jge", "jset", "jne", "jsgt", "jsge", "call", "exit", "jlt", "jle", "jslt", "jsle", "", ""}
var sizeNames = map[uint8]string{vm.SizeB: "b", vm.SizeH: "h", vm.SizeW: "w", vm.SizeDW: "dw"}
var atomicNames = map[int32]string{vm.AtomicAdd: "add", vm.AtomicOr: "or", vm.AtomicAnd: "and", vm.AtomicXor: "xor"}

// Disassemble prints insns in the assembly dialect Assemble reads, one
// instruction per line, jump targets as +N/-N. An instruction the dialect
// cannot express exactly (reserved fields set, unknown opcodes) is printed
// as ".raw 0x...", so Assemble(Disassemble(p)) reproduces p bit for bit.
func Disassemble(insns []vm.Insn) string {
	var b strings.Builder
	for i := 0; i < len(insns); i++ {
		n := 1
		if insns[i].Op == vm.OpLdImm64 && i+1 < len(insns) {
			n = 2
		}
		text := ubpfInsn(insns[i:])
		if got, err := Assemble(text); err != nil || !same(got, insns[i:i+n]) {
			text, n = raw(insns[i]), 1
		}
		b.WriteString(text)
		b.WriteByte('\n')
		i += n - 1
	}
	return b.String()
}

func same(a, b []vm.Insn) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func raw(in vm.Insn) string {
	u := uint64(in.Op) | uint64(in.Dst&15)<<8 | uint64(in.Src&15)<<12 | uint64(uint16(in.Off))<<16 | uint64(uint32(in.Imm))<<32
	return fmt.Sprintf(".raw 0x%016x", u)
}

func immText(v int32) string {
	if v >= -4096 && v <= 4096 {
		return fmt.Sprint(v)
	}
	return fmt.Sprintf("0x%x", uint32(v))
}

func mem(r uint8, off int16) string { return fmt.Sprintf("[%%r%d%+d]", r, off) }

// ubpfInsn renders insns[0] (and insns[1] for lddw) in the uBPF dialect.
func ubpfInsn(insns []vm.Insn) string {
	in := insns[0]
	cls := in.Op & 7
	x := in.Op&vm.SrcX != 0
	switch cls {
	case vm.ClassALU, vm.ClassALU64:
		op := in.Op & 0xf0
		sfx := ""
		if cls == vm.ClassALU {
			sfx = "32"
		}
		if op == vm.AluEnd {
			switch {
			case cls == vm.ClassALU64:
				return fmt.Sprintf("bswap%d %%r%d", in.Imm, in.Dst)
			case x:
				return fmt.Sprintf("be%d %%r%d", in.Imm, in.Dst)
			default:
				return fmt.Sprintf("le%d %%r%d", in.Imm, in.Dst)
			}
		}
		name := aluNames[op>>4]
		if op == vm.AluNeg {
			return fmt.Sprintf("%s%s %%r%d", name, sfx, in.Dst)
		}
		if op == vm.AluMov && x && in.Off != 0 {
			if cls == vm.ClassALU64 {
				sfx = "64"
			}
			return fmt.Sprintf("movsx%d%s %%r%d, %%r%d", in.Off, sfx, in.Dst, in.Src)
		}
		if in.Off == 1 && (op == vm.AluDiv || op == vm.AluMod) {
			name = "s" + name
		}
		if x {
			return fmt.Sprintf("%s%s %%r%d, %%r%d", name, sfx, in.Dst, in.Src)
		}
		return fmt.Sprintf("%s%s %%r%d, %s", name, sfx, in.Dst, immText(in.Imm))
	case vm.ClassJMP, vm.ClassJMP32:
		op := in.Op & 0xf0
		switch {
		case op == vm.JmpJA && cls == vm.ClassJMP32:
			return fmt.Sprintf("ja32 %+d", in.Imm)
		case op == vm.JmpJA:
			return fmt.Sprintf("ja %+d", in.Off)
		case op == vm.JmpExit:
			return "exit"
		case op == vm.JmpCall:
			switch {
			case x:
				return fmt.Sprintf("call %%r%d", in.Dst)
			case in.Src == vm.PseudoCall:
				return fmt.Sprintf("call local %+d", in.Imm)
			case in.Src == vm.PseudoKfuncCall:
				return fmt.Sprintf("call runtime %d", in.Imm)
			}
			return fmt.Sprintf("call %d", in.Imm)
		}
		sfx := ""
		if cls == vm.ClassJMP32 {
			sfx = "32"
		}
		if x {
			return fmt.Sprintf("%s%s %%r%d, %%r%d, %+d", jmpNames[op>>4], sfx, in.Dst, in.Src, in.Off)
		}
		return fmt.Sprintf("%s%s %%r%d, %s, %+d", jmpNames[op>>4], sfx, in.Dst, immText(in.Imm), in.Off)
	case vm.ClassLD:
		switch in.Op & 0xe0 {
		case vm.ModeIMM:
			if len(insns) < 2 {
				break
			}
			v := uint64(uint32(in.Imm)) | uint64(uint32(insns[1].Imm))<<32
			if in.Src != 0 {
				return fmt.Sprintf("lddw %%r%d, 0x%x, src %d", in.Dst, v, in.Src)
			}
			return fmt.Sprintf("lddw %%r%d, 0x%x", in.Dst, v)
		case vm.ModeABS:
			return fmt.Sprintf("ldabs%s %s", sizeNames[in.Op&0x18], immText(in.Imm))
		case vm.ModeIND:
			return fmt.Sprintf("ldind%s %%r%d, %s", sizeNames[in.Op&0x18], in.Src, immText(in.Imm))
		}
	case vm.ClassLDX:
		s := ""
		if in.Op&0xe0 == vm.ModeMEMSX {
			s = "s"
		}
		return fmt.Sprintf("ldx%s%s %%r%d, %s", s, sizeNames[in.Op&0x18], in.Dst, mem(in.Src, in.Off))
	case vm.ClassST:
		return fmt.Sprintf("st%s %s, %s", sizeNames[in.Op&0x18], mem(in.Dst, in.Off), immText(in.Imm))
	case vm.ClassSTX:
		if in.Op&0xe0 == vm.ModeATOMIC {
			sfx := ""
			if in.Op&0x18 == vm.SizeW {
				sfx = "32"
			}
			switch in.Imm {
			case vm.AtomicXchg:
				return fmt.Sprintf("lock xchg%s %s, %%r%d", sfx, mem(in.Dst, in.Off), in.Src)
			case vm.AtomicCmpXchg:
				return fmt.Sprintf("lock cmpxchg%s %s, %%r%d", sfx, mem(in.Dst, in.Off), in.Src)
			}
			fetch := ""
			if in.Imm&vm.AtomicFetch != 0 {
				fetch = "fetch "
			}
			return fmt.Sprintf("lock %s%s%s %s, %%r%d", fetch, atomicNames[in.Imm&^vm.AtomicFetch], sfx, mem(in.Dst, in.Off), in.Src)
		}
		return fmt.Sprintf("stx%s %s, %%r%d", sizeNames[in.Op&0x18], mem(in.Dst, in.Off), in.Src)
	}
	return raw(in)
}

// Xlated prints insns as `bpftool prog dump xlated` does: one line per
// instruction, "   0: (b7) r0 = 1".
func Xlated(insns []vm.Insn) string {
	var b strings.Builder
	for i := 0; i < len(insns); i++ {
		fmt.Fprintf(&b, "%4d: %s\n", i, XlatedInsn(insns[i:]))
		if insns[i].Op == vm.OpLdImm64 && i+1 < len(insns) {
			i++
		}
	}
	return b.String()
}

// HelperName returns the kernel's name of helper id ("bpf_map_lookup_elem"),
// or "" if unknown.
func HelperName(id int32) string {
	if id <= 0 || id > 211 {
		return ""
	}
	s := strings.TrimPrefix(ciliumasm.BuiltinFunc(id).String(), "Fn")
	var b strings.Builder
	b.WriteString("bpf")
	for i, r := range s {
		if unicode.IsUpper(r) {
			b.WriteByte('_')
			r = unicode.ToLower(r)
		} else if i == 0 {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	return b.String()
}

var xAlu = [16]string{"+=", "-=", "*=", "/=", "|=", "&=", "<<=", ">>=", "neg", "%=", "^=", "=", "s>>=", "endian", "", ""}
var xJmp = [16]string{"jmp", "==", ">", ">=", "&", "!=", "s>", "s>=", "call", "exit", "<", "<=", "s<", "s<=", "", ""}
var xSize = map[uint8]string{vm.SizeW: "u32", vm.SizeH: "u16", vm.SizeB: "u8", vm.SizeDW: "u64"}
var xSizeSX = map[uint8]string{vm.SizeW: "s32", vm.SizeH: "s16", vm.SizeB: "s8", vm.SizeDW: "s64"}
var xAtomic = map[int32]string{vm.AtomicAdd: "add", vm.AtomicAnd: "and", vm.AtomicOr: "or", vm.AtomicXor: "xor"}

// XlatedInsn renders insns[0] (with insns[1] for ld_imm64) in the kernel's
// verifier-log syntax. kernel/bpf/disasm.c:print_bpf_insn.
func XlatedInsn(insns []vm.Insn) string {
	in := insns[0]
	cls := in.Op & 7
	code := fmt.Sprintf("(%02x) ", in.Op)
	x := in.Op&vm.SrcX != 0
	switch cls {
	case vm.ClassALU, vm.ClassALU64:
		r := byte('r')
		if cls == vm.ClassALU {
			r = 'w'
		}
		op := in.Op & 0xf0
		switch {
		case op == vm.AluEnd && cls == vm.ClassALU64:
			return code + fmt.Sprintf("r%d = bswap%d r%d", in.Dst, in.Imm, in.Dst)
		case op == vm.AluEnd:
			e := "le"
			if x {
				e = "be"
			}
			return code + fmt.Sprintf("r%d = %s%d r%d", in.Dst, e, in.Imm, in.Dst)
		case op == vm.AluNeg:
			return code + fmt.Sprintf("%c%d = -%c%d", r, in.Dst, r, in.Dst)
		}
		s := xAlu[op>>4]
		if s == "" {
			break
		}
		if in.Off == 1 && (op == vm.AluDiv || op == vm.AluMod) {
			s = "s" + s
		}
		if x {
			if op == vm.AluMov && in.Off != 0 {
				return code + fmt.Sprintf("%c%d = (s%d)%c%d", r, in.Dst, in.Off, r, in.Src)
			}
			return code + fmt.Sprintf("%c%d %s %c%d", r, in.Dst, s, r, in.Src)
		}
		return code + fmt.Sprintf("%c%d %s %d", r, in.Dst, s, in.Imm)
	case vm.ClassSTX:
		sz := xSize[in.Op&0x18]
		switch in.Op & 0xe0 {
		case vm.ModeMEM:
			return code + fmt.Sprintf("*(%s *)(r%d %+d) = r%d", sz, in.Dst, in.Off, in.Src)
		case vm.ModeATOMIC:
			w := ""
			if in.Op&0x18 == vm.SizeDW {
				w = "64"
			}
			switch {
			case in.Imm == vm.AtomicCmpXchg:
				return code + fmt.Sprintf("r0 = atomic%s_cmpxchg((%s *)(r%d %+d), r0, r%d)", w, sz, in.Dst, in.Off, in.Src)
			case in.Imm == vm.AtomicXchg:
				return code + fmt.Sprintf("r%d = atomic%s_xchg((%s *)(r%d %+d), r%d)", in.Src, w, sz, in.Dst, in.Off, in.Src)
			case in.Imm&vm.AtomicFetch != 0 && xAtomic[in.Imm&^vm.AtomicFetch] != "":
				return code + fmt.Sprintf("r%d = atomic%s_fetch_%s((%s *)(r%d %+d), r%d)", in.Src, w, xAtomic[in.Imm&^vm.AtomicFetch], sz, in.Dst, in.Off, in.Src)
			case xAtomic[in.Imm] != "":
				return code + fmt.Sprintf("lock *(%s *)(r%d %+d) %s r%d", sz, in.Dst, in.Off, xAlu[in.Imm>>4], in.Src)
			}
		}
		return fmt.Sprintf("BUG_%02x", in.Op)
	case vm.ClassST:
		if in.Op&0xe0 != vm.ModeMEM {
			return fmt.Sprintf("BUG_st_%02x", in.Op)
		}
		return code + fmt.Sprintf("*(%s *)(r%d %+d) = %d", xSize[in.Op&0x18], in.Dst, in.Off, in.Imm)
	case vm.ClassLDX:
		sz := xSize[in.Op&0x18]
		switch in.Op & 0xe0 {
		case vm.ModeMEM:
		case vm.ModeMEMSX:
			sz = xSizeSX[in.Op&0x18]
		default:
			return fmt.Sprintf("BUG_ldx_%02x", in.Op)
		}
		return code + fmt.Sprintf("r%d = *(%s *)(r%d %+d)", in.Dst, sz, in.Src, in.Off)
	case vm.ClassLD:
		sz := xSize[in.Op&0x18]
		switch {
		case in.Op&0xe0 == vm.ModeABS:
			return code + fmt.Sprintf("r0 = *(%s *)skb[%d]", sz, in.Imm)
		case in.Op&0xe0 == vm.ModeIND:
			return code + fmt.Sprintf("r0 = *(%s *)skb[r%d + %d]", sz, in.Src, in.Imm)
		case in.Op == vm.OpLdImm64 && len(insns) > 1:
			v := uint64(uint32(in.Imm)) | uint64(uint32(insns[1].Imm))<<32
			// tools/bpf/bpftool/xlated_dumper.c:print_imm
			switch in.Src {
			case vm.PseudoMapFD, vm.PseudoMapIdx:
				return code + fmt.Sprintf("r%d = map[id:%d]", in.Dst, in.Imm)
			case vm.PseudoMapValue, vm.PseudoMapIdxValue:
				return code + fmt.Sprintf("r%d = map[id:%d][0]+%d", in.Dst, in.Imm, uint32(insns[1].Imm))
			case vm.PseudoFunc:
				return code + fmt.Sprintf("r%d = subprog[%+d]", in.Dst, in.Imm)
			}
			return code + fmt.Sprintf("r%d = 0x%x", in.Dst, v)
		}
		return fmt.Sprintf("BUG_ld_%02x", in.Op)
	case vm.ClassJMP, vm.ClassJMP32:
		op := in.Op & 0xf0
		r := byte('r')
		if cls == vm.ClassJMP32 {
			r = 'w'
		}
		switch {
		case op == vm.JmpCall && x:
			return code + fmt.Sprintf("callx r%d", in.Dst)
		case op == vm.JmpCall && in.Src == vm.PseudoCall:
			return code + fmt.Sprintf("call pc%+d", in.Imm)
		case op == vm.JmpCall:
			name := HelperName(in.Imm)
			if name == "" || in.Src != 0 {
				name = "unknown"
			}
			return code + fmt.Sprintf("call %s#%d", name, in.Imm)
		case in.Op == vm.ClassJMP|vm.JmpJA:
			return code + fmt.Sprintf("goto pc%+d", in.Off)
		case in.Op == vm.ClassJMP32|vm.JmpJA:
			return code + fmt.Sprintf("gotol pc%+d", in.Imm)
		case in.Op == vm.ClassJMP|vm.JmpExit:
			return code + "exit"
		case xJmp[op>>4] == "" || op == vm.JmpExit || op == vm.JmpJA:
			break
		case x:
			return code + fmt.Sprintf("if %c%d %s %c%d goto pc%+d", r, in.Dst, xJmp[op>>4], r, in.Src, in.Off)
		default:
			return code + fmt.Sprintf("if %c%d %s 0x%x goto pc%+d", r, in.Dst, xJmp[op>>4], uint32(in.Imm), in.Off)
		}
	}
	return code + []string{"ld", "ldx", "st", "stx", "alu", "jmp", "jmp32", "alu64"}[cls]
}
