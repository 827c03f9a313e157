// Package asm assembles and disassembles eBPF programs.
//
// Assemble reads the uBPF / bpf_conformance assembly dialect used by the
// conformance suite's .data files:
//
//	mov32 %r0, 10            # ALU32: mnemonic suffix 32; ALU64: none or 64
//	lddw %r1, 0x1122334455667788
//	ldxw %r0, [%r1+4]        # ldx{b,h,w,dw}, sign-extending ldxs{b,h,w}
//	stxdw [%r10-8], %r1      # stx{b,h,w,dw}; st{b,h,w,dw} [%r1+2], imm
//	lock fetch add32 [%r10-8], %r1   # add or and xor xchg cmpxchg, [fetch], 32
//	jne %r0, 0, exit         # labels (name:) or +N/-N; "exit" names the first exit
//	ja32 label               # gotol (JMP32|JA, 32-bit offset in imm)
//	call 1 | call %r2 | call local func | call runtime 7
//	be16 %r0 | le64 %r0 | bswap32 %r0 (also swap32) | neg %r0
//	movsx832 %r0, %r1 | movsx3264 %r0, %r1 | sdiv / smod
//	ldabsw 12 | ldindh %r1, 2  # legacy packet loads
//	.raw 0x5566778800000018  # one raw instruction, as in "-- raw" sections
//
// Disassemble prints the same dialect (jump targets as +N), so that
// Assemble(Disassemble(p)) == p for every program Load accepts. Xlated prints
// the syntax of the kernel's verifier log and `bpftool prog dump xlated`
// (kernel/bpf/disasm.c:print_bpf_insn).
package asm

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/bpffs-fuse/bpffs-fuse/engine/vm"
)

// Error is an assembly error at a 1-based source line.
type Error struct {
	Line int
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("asm: line %d: %s", e.Line, e.Msg) }

var aluOps = map[string]uint8{
	"add": vm.AluAdd, "sub": vm.AluSub, "mul": vm.AluMul, "div": vm.AluDiv, "sdiv": vm.AluDiv,
	"or": vm.AluOr, "and": vm.AluAnd, "lsh": vm.AluLsh, "rsh": vm.AluRsh, "neg": vm.AluNeg,
	"mod": vm.AluMod, "smod": vm.AluMod, "xor": vm.AluXor, "mov": vm.AluMov, "arsh": vm.AluArsh,
}

var jmpOps = map[string]uint8{
	"jeq": vm.JmpJEQ, "jgt": vm.JmpJGT, "jge": vm.JmpJGE, "jset": vm.JmpJSET, "jne": vm.JmpJNE,
	"jsgt": vm.JmpJSGT, "jsge": vm.JmpJSGE, "jlt": vm.JmpJLT, "jle": vm.JmpJLE, "jslt": vm.JmpJSLT,
	"jsle": vm.JmpJSLE,
}

var sizes = map[string]uint8{"b": vm.SizeB, "h": vm.SizeH, "w": vm.SizeW, "dw": vm.SizeDW}

var atomicOps = map[string]int32{
	"add": vm.AtomicAdd, "or": vm.AtomicOr, "and": vm.AtomicAnd, "xor": vm.AtomicXor,
	"xchg": vm.AtomicXchg, "cmpxchg": vm.AtomicCmpXchg,
}

type fixup struct {
	pc    int
	label string
	line  int
	imm   bool // patch imm (call local, ja32) instead of off
}

// Assemble translates assembly text into instructions.
func Assemble(src string) ([]vm.Insn, error) {
	var out []vm.Insn
	labels := map[string]int{}
	var fixups []fixup
	exitLabel := -1
	for n, line := range strings.Split(src, "\n") {
		lineNo := n + 1
		if i := strings.IndexAny(line, "#;"); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		// Labels, possibly followed by an instruction on the same line.
		for {
			i := strings.IndexByte(line, ':')
			if i <= 0 || strings.ContainsAny(line[:i], " \t[,") {
				break
			}
			name := line[:i]
			if _, dup := labels[name]; dup {
				return nil, &Error{lineNo, fmt.Sprintf("duplicate label %q", name)}
			}
			labels[name] = len(out)
			line = strings.TrimSpace(line[i+1:])
		}
		if line == "" {
			continue
		}
		toks := tokenize(line)
		if len(toks) == 0 {
			return nil, &Error{lineNo, "missing mnemonic"}
		}
		mn, ops := strings.ToLower(toks[0]), toks[1:]
		if mn == "exit" && exitLabel < 0 {
			exitLabel = len(out)
		}
		ins, fx, err := encode(mn, ops)
		if err != nil {
			return nil, &Error{lineNo, err.Error()}
		}
		if fx != nil {
			fx.pc, fx.line = len(out), lineNo
			fixups = append(fixups, *fx)
		}
		out = append(out, ins...)
	}
	if _, ok := labels["exit"]; !ok && exitLabel >= 0 {
		labels["exit"] = exitLabel
	}
	for _, f := range fixups {
		t, ok := labels[f.label]
		if !ok {
			return nil, &Error{f.line, fmt.Sprintf("undefined label %q", f.label)}
		}
		d := t - f.pc - 1
		if f.imm {
			out[f.pc].Imm = int32(d)
		} else {
			if d < -32768 || d > 32767 {
				return nil, &Error{f.line, fmt.Sprintf("jump to %q out of 16-bit range", f.label)}
			}
			out[f.pc].Off = int16(d)
		}
	}
	return out, nil
}

// tokenize splits on commas and blanks, keeping "[...]" together.
func tokenize(line string) []string {
	var toks []string
	var cur strings.Builder
	depth := 0
	flush := func() {
		if cur.Len() > 0 {
			toks = append(toks, cur.String())
			cur.Reset()
		}
	}
	for _, c := range line {
		switch {
		case c == '[':
			depth++
			cur.WriteRune(c)
		case c == ']':
			depth--
			cur.WriteRune(c)
		case depth > 0 && (c == ' ' || c == '\t'):
		case c == ',' || c == ' ' || c == '\t':
			flush()
		default:
			cur.WriteRune(c)
		}
	}
	flush()
	return toks
}

func reg(s string) (uint8, error) {
	t := strings.TrimPrefix(strings.ToLower(s), "%")
	if !strings.HasPrefix(t, "r") {
		return 0, fmt.Errorf("invalid register %q", s)
	}
	n, err := strconv.ParseUint(t[1:], 10, 8)
	if err != nil || n > 15 {
		return 0, fmt.Errorf("invalid register %q", s)
	}
	return uint8(n), nil
}

func isReg(s string) bool { return strings.HasPrefix(s, "%") }

// num parses decimal or 0x hex, optionally signed, within [min, max].
func num(s string, min int64, max uint64) (int64, error) {
	t := s
	neg := false
	if strings.HasPrefix(t, "-") {
		neg, t = true, t[1:]
	} else {
		t = strings.TrimPrefix(t, "+")
	}
	var v uint64
	var err error
	if strings.HasPrefix(strings.ToLower(t), "0x") {
		v, err = strconv.ParseUint(t[2:], 16, 64)
	} else {
		v, err = strconv.ParseUint(t, 10, 64)
	}
	if err != nil {
		return 0, fmt.Errorf("invalid number %q", s)
	}
	if neg {
		if v > uint64(-min) && !(min == -1<<63 && v == 1<<63) {
			return 0, fmt.Errorf("number %q out of range", s)
		}
		return -int64(v), nil
	}
	if v > max {
		return 0, fmt.Errorf("number %q out of range", s)
	}
	return int64(v), nil
}

func imm32(s string) (int32, error) {
	v, err := num(s, -1<<31, 1<<32-1)
	return int32(v), err
}

func off16(s string) (int16, error) {
	v, err := num(s, -1<<15, 1<<16-1)
	return int16(v), err
}

// memOperand parses "[%rN]", "[%rN+off]" or "[%rN-off]".
func memOperand(s string) (uint8, int16, error) {
	if !strings.HasPrefix(s, "[") || !strings.HasSuffix(s, "]") {
		return 0, 0, fmt.Errorf("invalid memory operand %q", s)
	}
	in := s[1 : len(s)-1]
	i := strings.IndexAny(in, "+-")
	if i < 0 {
		r, err := reg(in)
		return r, 0, err
	}
	r, err := reg(in[:i])
	if err != nil {
		return 0, 0, err
	}
	o, err := off16(in[i:])
	return r, o, err
}

func want(ops []string, n int) error {
	if len(ops) != n {
		return fmt.Errorf("expected %d operands, got %d", n, len(ops))
	}
	return nil
}

// target returns the offset for "+N"/"-N", or a fixup for a label.
func target(s string, imm bool) (int64, *fixup, error) {
	if strings.HasPrefix(s, "+") || strings.HasPrefix(s, "-") {
		if imm {
			v, err := num(s, -1<<31, 1<<31-1)
			return v, nil, err
		}
		v, err := num(s, -1<<15, 1<<15-1)
		return v, nil, err
	}
	if s == "" {
		return 0, nil, fmt.Errorf("missing jump target")
	}
	return 0, &fixup{label: s, imm: imm}, nil
}

func one(i vm.Insn) []vm.Insn { return []vm.Insn{i} }

func encode(mn string, ops []string) ([]vm.Insn, *fixup, error) {
	switch {
	case mn == ".raw":
		if err := want(ops, 1); err != nil {
			return nil, nil, err
		}
		v, err := num(ops[0], 0, 1<<64-1)
		if err != nil {
			return nil, nil, err
		}
		u := uint64(v)
		return one(vm.Insn{Op: uint8(u), Dst: uint8(u>>8) & 15, Src: uint8(u >> 12), Off: int16(u >> 16), Imm: int32(u >> 32)}), nil, nil
	case mn == "exit":
		return one(vm.Insn{Op: vm.ClassJMP | vm.JmpExit}), nil, want(ops, 0)
	case mn == "ja" || mn == "ja32":
		if err := want(ops, 1); err != nil {
			return nil, nil, err
		}
		is32 := mn == "ja32"
		v, fx, err := target(ops[0], is32)
		if is32 {
			return one(vm.Insn{Op: vm.ClassJMP32 | vm.JmpJA, Imm: int32(v)}), fx, err
		}
		return one(vm.Insn{Op: vm.ClassJMP | vm.JmpJA, Off: int16(v)}), fx, err
	case mn == "call":
		return encodeCall(ops)
	case mn == "lddw":
		if len(ops) != 2 && len(ops) != 4 {
			return nil, nil, fmt.Errorf("expected 2 operands")
		}
		d, err := reg(ops[0])
		if err != nil {
			return nil, nil, err
		}
		v, err := num(ops[1], -1<<63, 1<<64-1)
		if err != nil {
			return nil, nil, err
		}
		var src uint8
		if len(ops) == 4 {
			if ops[2] != "src" {
				return nil, nil, fmt.Errorf("unexpected %q", ops[2])
			}
			s, err := num(ops[3], 0, 15)
			if err != nil {
				return nil, nil, err
			}
			src = uint8(s)
		}
		return []vm.Insn{
			{Op: vm.OpLdImm64, Dst: d, Src: src, Imm: int32(uint32(v))},
			{Imm: int32(uint32(uint64(v) >> 32))},
		}, nil, nil
	case mn == "lock":
		return encodeAtomic(ops)
	case strings.HasPrefix(mn, "ldabs") || strings.HasPrefix(mn, "ldind"):
		sz, ok := sizes[mn[5:]]
		if !ok || sz == vm.SizeDW {
			return nil, nil, fmt.Errorf("invalid mnemonic %q", mn)
		}
		if mn[2:5] == "abs" {
			if err := want(ops, 1); err != nil {
				return nil, nil, err
			}
			v, err := imm32(ops[0])
			return one(vm.Insn{Op: vm.ClassLD | vm.ModeABS | sz, Imm: v}), nil, err
		}
		if err := want(ops, 2); err != nil {
			return nil, nil, err
		}
		s, err := reg(ops[0])
		if err != nil {
			return nil, nil, err
		}
		v, err := imm32(ops[1])
		return one(vm.Insn{Op: vm.ClassLD | vm.ModeIND | sz, Src: s, Imm: v}), nil, err
	case strings.HasPrefix(mn, "ldx"):
		mode, sfx := uint8(vm.ModeMEM), mn[3:]
		if strings.HasPrefix(mn, "ldxs") && mn[4:] != "" && mn[4:] != "dw" {
			if _, ok := sizes[mn[4:]]; ok {
				mode, sfx = vm.ModeMEMSX, mn[4:]
			}
		}
		sz, ok := sizes[sfx]
		if !ok {
			return nil, nil, fmt.Errorf("invalid mnemonic %q", mn)
		}
		if err := want(ops, 2); err != nil {
			return nil, nil, err
		}
		d, err := reg(ops[0])
		if err != nil {
			return nil, nil, err
		}
		s, o, err := memOperand(ops[1])
		return one(vm.Insn{Op: vm.ClassLDX | mode | sz, Dst: d, Src: s, Off: o}), nil, err
	case strings.HasPrefix(mn, "stx"):
		sz, ok := sizes[mn[3:]]
		if !ok {
			return nil, nil, fmt.Errorf("invalid mnemonic %q", mn)
		}
		if err := want(ops, 2); err != nil {
			return nil, nil, err
		}
		d, o, err := memOperand(ops[0])
		if err != nil {
			return nil, nil, err
		}
		s, err := reg(ops[1])
		return one(vm.Insn{Op: vm.ClassSTX | vm.ModeMEM | sz, Dst: d, Src: s, Off: o}), nil, err
	case strings.HasPrefix(mn, "st") && len(mn) > 2 && hasSize(mn[2:]):
		sz := sizes[mn[2:]]
		if err := want(ops, 2); err != nil {
			return nil, nil, err
		}
		d, o, err := memOperand(ops[0])
		if err != nil {
			return nil, nil, err
		}
		v, err := imm32(ops[1])
		return one(vm.Insn{Op: vm.ClassST | vm.ModeMEM | sz, Dst: d, Off: o, Imm: v}), nil, err
	}
	if ins, ok, err := encodeEnd(mn, ops); ok {
		return ins, nil, err
	}
	if ins, ok, fx, err := encodeJmp(mn, ops); ok {
		return ins, fx, err
	}
	return encodeALU(mn, ops)
}

func encodeCall(ops []string) ([]vm.Insn, *fixup, error) {
	mode := "helper"
	if len(ops) == 2 {
		mode, ops = ops[0], ops[1:]
	}
	if err := want(ops, 1); err != nil {
		return nil, nil, err
	}
	switch mode {
	case "helper":
		if isReg(ops[0]) {
			r, err := reg(ops[0])
			return one(vm.Insn{Op: vm.ClassJMP | vm.JmpCall | vm.SrcX, Dst: r}), nil, err
		}
		v, err := imm32(ops[0])
		return one(vm.Insn{Op: vm.ClassJMP | vm.JmpCall, Imm: v}), nil, err
	case "local":
		v, fx, err := target(ops[0], true)
		return one(vm.Insn{Op: vm.ClassJMP | vm.JmpCall, Src: vm.PseudoCall, Imm: int32(v)}), fx, err
	case "runtime":
		v, err := imm32(ops[0])
		return one(vm.Insn{Op: vm.ClassJMP | vm.JmpCall, Src: vm.PseudoKfuncCall, Imm: v}), nil, err
	}
	return nil, nil, fmt.Errorf("invalid call mode %q", mode)
}

func encodeAtomic(ops []string) ([]vm.Insn, *fixup, error) {
	fetch := false
	if len(ops) > 0 && ops[0] == "fetch" {
		fetch, ops = true, ops[1:]
	}
	if err := want(ops, 3); err != nil {
		return nil, nil, err
	}
	name, sz := ops[0], uint8(vm.SizeDW)
	if strings.HasSuffix(name, "32") {
		name, sz = strings.TrimSuffix(name, "32"), vm.SizeW
	} else {
		name = strings.TrimSuffix(name, "64")
	}
	op, ok := atomicOps[name]
	if !ok {
		return nil, nil, fmt.Errorf("invalid atomic operation %q", ops[0])
	}
	if fetch {
		op |= vm.AtomicFetch
	}
	d, o, err := memOperand(ops[1])
	if err != nil {
		return nil, nil, err
	}
	s, err := reg(ops[2])
	return one(vm.Insn{Op: vm.ClassSTX | vm.ModeATOMIC | sz, Dst: d, Src: s, Off: o, Imm: op}), nil, err
}

func encodeEnd(mn string, ops []string) ([]vm.Insn, bool, error) {
	var op uint8
	var rest string
	switch {
	case strings.HasPrefix(mn, "le"):
		op, rest = vm.ClassALU|vm.AluEnd, mn[2:]
	case strings.HasPrefix(mn, "be"):
		op, rest = vm.ClassALU|vm.AluEnd|vm.SrcX, mn[2:]
	case strings.HasPrefix(mn, "bswap"):
		op, rest = vm.ClassALU64|vm.AluEnd, mn[5:]
	case strings.HasPrefix(mn, "swap"):
		op, rest = vm.ClassALU64|vm.AluEnd, mn[4:]
	default:
		return nil, false, nil
	}
	if rest != "16" && rest != "32" && rest != "64" {
		return nil, true, fmt.Errorf("invalid mnemonic %q", mn)
	}
	if err := want(ops, 1); err != nil {
		return nil, true, err
	}
	d, err := reg(ops[0])
	w, _ := strconv.Atoi(rest)
	return one(vm.Insn{Op: op, Dst: d, Imm: int32(w)}), true, err
}

func encodeJmp(mn string, ops []string) ([]vm.Insn, bool, *fixup, error) {
	cls, base := uint8(vm.ClassJMP), mn
	if strings.HasSuffix(mn, "32") {
		cls, base = vm.ClassJMP32, strings.TrimSuffix(mn, "32")
	}
	op, ok := jmpOps[base]
	if !ok {
		return nil, false, nil, nil
	}
	if err := want(ops, 3); err != nil {
		return nil, true, nil, err
	}
	d, err := reg(ops[0])
	if err != nil {
		return nil, true, nil, err
	}
	in := vm.Insn{Op: cls | op, Dst: d}
	if isReg(ops[1]) {
		in.Op |= vm.SrcX
		in.Src, err = reg(ops[1])
	} else {
		in.Imm, err = imm32(ops[1])
	}
	if err != nil {
		return nil, true, nil, err
	}
	v, fx, err := target(ops[2], false)
	in.Off = int16(v)
	return one(in), true, fx, err
}

func encodeALU(mn string, ops []string) ([]vm.Insn, *fixup, error) {
	cls, base := uint8(vm.ClassALU64), mn
	var off int16
	if strings.HasPrefix(mn, "movsx") {
		// movsx{8,16,32} with an optional class suffix: movsx832, movsx3264.
		w := mn[5:]
		switch {
		case strings.HasSuffix(w, "32") && len(w) > 2:
			cls, w = vm.ClassALU, strings.TrimSuffix(w, "32")
		case strings.HasSuffix(w, "64") && len(w) > 2:
			w = strings.TrimSuffix(w, "64")
		}
		switch w {
		case "8", "16", "32":
			n, _ := strconv.Atoi(w)
			off, base = int16(n), "mov"
		default:
			return nil, nil, fmt.Errorf("invalid mnemonic %q", mn)
		}
		if err := want(ops, 2); err != nil {
			return nil, nil, err
		}
		if !isReg(ops[1]) {
			return nil, nil, fmt.Errorf("movsx needs a source register")
		}
	} else if strings.HasSuffix(mn, "32") {
		cls, base = vm.ClassALU, strings.TrimSuffix(mn, "32")
	} else {
		base = strings.TrimSuffix(mn, "64")
	}
	op, ok := aluOps[base]
	if !ok {
		return nil, nil, fmt.Errorf("invalid mnemonic %q", mn)
	}
	if base == "sdiv" || base == "smod" {
		off = 1
	}
	if op == vm.AluNeg {
		if err := want(ops, 1); err != nil {
			return nil, nil, err
		}
		d, err := reg(ops[0])
		return one(vm.Insn{Op: cls | op, Dst: d}), nil, err
	}
	if err := want(ops, 2); err != nil {
		return nil, nil, err
	}
	d, err := reg(ops[0])
	if err != nil {
		return nil, nil, err
	}
	in := vm.Insn{Op: cls | op, Dst: d, Off: off}
	if isReg(ops[1]) {
		in.Op |= vm.SrcX
		in.Src, err = reg(ops[1])
	} else {
		in.Imm, err = imm32(ops[1])
	}
	return one(in), nil, err
}

func hasSize(s string) bool {
	_, ok := sizes[s]
	return ok
}
