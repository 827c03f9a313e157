package vm

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Mode selects which of the places where RFC 9669 and Linux disagree the VM follows.
// The package documentation lists every difference.
type Mode uint8

const (
	// ModeISA follows RFC 9669 and the bpf_conformance suite: shift counts are
	// masked, division by an immediate zero yields 0, callx is accepted.
	ModeISA Mode = iota
	// ModeLinux rejects at load what the Linux verifier rejects at load for the
	// same encoding (out-of-range immediate shifts, immediate division by zero,
	// callx), with the kernel's message.
	ModeLinux
)

func (m Mode) String() string {
	switch m {
	case ModeISA:
		return "isa"
	case ModeLinux:
		return "linux"
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// Helper is a helper function callable with CALL imm (src 0). It receives r1-r5
// and returns the new r0. A non-nil error ends the run with that error, except
// ErrStop, which ends the run successfully with r0 = the returned value.
// Helpers reach memory through m.Mem and create pointers with m.NewPointer.
type Helper func(m *Machine, r1, r2, r3, r4, r5 uint64) (uint64, error)

// Imm64 is what a Resolver returns for a pseudo LD_IMM64.
type Imm64 struct {
	// Value is loaded into the register when Region is nil (e.g. a map handle
	// for BPF_PSEUDO_MAP_FD / BPF_PSEUDO_MAP_IDX).
	Value uint64
	// Region, if non-nil, makes the register a pointer to Region.Data[Offset]
	// (e.g. a map value for BPF_PSEUDO_MAP_VALUE: global .data/.bss/.rodata).
	// The region is registered in the Machine the first time the instruction
	// runs in each Run.
	Region *Region
	Offset uint64
}

// Resolver resolves the pseudo forms of LD_IMM64 (src 1, 2, 3, 5, 6) when a
// program is loaded; the engine's loader implements it. src 4 (BPF_PSEUDO_FUNC)
// is resolved by the VM itself into a value CallFunction accepts.
type Resolver interface {
	// ResolveImm64 is called for the instruction at pc with its source
	// register and the imm fields of both halves. Errors are returned from Load.
	ResolveImm64(pc int, src uint8, imm, nextImm int32) (Imm64, error)
}

// TailCaller implements bpf_tail_call (helper 12) for the VM; the engine
// implements it with its PROG_ARRAY maps.
type TailCaller interface {
	// TailCallTarget returns the program at index in the prog array passed as
	// r2, or nil if the slot is empty (the tail call then falls through, as in
	// Linux).
	TailCallTarget(m *Machine, progArray uint64, index uint32) *Program
}

// LoadOptions configures Load.
type LoadOptions struct {
	Mode Mode
	// Helpers maps helper ids to implementations. A call to an id missing here
	// is rejected at load (Linux: "invalid func unknown#N").
	Helpers map[int32]Helper
	// Resolver resolves pseudo LD_IMM64 forms; nil rejects them.
	Resolver Resolver
	// TailCaller, if set, makes helper 12 a tail call (and takes precedence
	// over Helpers[12]).
	TailCaller TailCaller
	// MaxInsns bounds the program size; 0 means 1,000,000 (BPF_COMPLEXITY_LIMIT_INSNS).
	MaxInsns int
}

// Program is a validated, pre-decoded program, safe for concurrent use by many Machines.
type Program struct {
	insns   []Insn
	code    []dinsn
	helpers []Helper
	regions []*Region
	mode    Mode
	tail    TailCaller
	byID    map[int32]Helper // for callx
}

// Insns returns the raw instructions the program was loaded from.
func (p *Program) Insns() []Insn { return p.insns }

// Mode returns the mode the program was loaded in.
func (p *Program) Mode() Mode { return p.mode }

// dinsn is the pre-decoded instruction: 16 bytes, immediates already sign
// extended, jump targets absolute.
type dinsn struct {
	op  uint8
	dst uint8
	src uint8
	_   uint8
	off int32
	imm int64
}

// LoadError is a load-time rejection. It wraps unix.EINVAL (EACCES for writes
// to r10, E2BIG for size, as Linux),
// and its message follows the Linux verifier's wording where there is one.
type LoadError struct {
	PC    int // instruction index, -1 if not about one instruction
	Msg   string
	Errno unix.Errno
}

func (e *LoadError) Error() string {
	if e.PC < 0 {
		return "vm: " + e.Msg
	}
	return fmt.Sprintf("vm: insn %d: %s", e.PC, e.Msg)
}

func (e *LoadError) Unwrap() error { return e.Errno }

func loadErr(pc int, format string, args ...any) error {
	return &LoadError{PC: pc, Msg: fmt.Sprintf(format, args...), Errno: unix.EINVAL}
}

var (
	alu64K = [14]uint8{opAdd64K, opSub64K, opMul64K, opDiv64K, opOr64K, opAnd64K, opLsh64K, opRsh64K, opNeg64, opMod64K, opXor64K, opMov64K, opArsh64K, 0}
	alu64X = [14]uint8{opAdd64X, opSub64X, opMul64X, opDiv64X, opOr64X, opAnd64X, opLsh64X, opRsh64X, 0, opMod64X, opXor64X, opMov64X, opArsh64X, 0}
	alu32K = [14]uint8{opAdd32K, opSub32K, opMul32K, opDiv32K, opOr32K, opAnd32K, opLsh32K, opRsh32K, opNeg32, opMod32K, opXor32K, opMov32K, opArsh32K, 0}
	alu32X = [14]uint8{opAdd32X, opSub32X, opMul32X, opDiv32X, opOr32X, opAnd32X, opLsh32X, opRsh32X, 0, opMod32X, opXor32X, opMov32X, opArsh32X, 0}
	// indexed by jump op >> 4; 0 for JA, CALL, EXIT and the unused 0xe/0xf.
	jmp64K = [16]uint8{0, opJeq64K, opJgt64K, opJge64K, opJset64K, opJne64K, opJsgt64K, opJsge64K, 0, 0, opJlt64K, opJle64K, opJslt64K, opJsle64K, 0, 0}
	jmp64X = [16]uint8{0, opJeq64X, opJgt64X, opJge64X, opJset64X, opJne64X, opJsgt64X, opJsge64X, 0, 0, opJlt64X, opJle64X, opJslt64X, opJsle64X, 0, 0}
	jmp32K = [16]uint8{0, opJeq32K, opJgt32K, opJge32K, opJset32K, opJne32K, opJsgt32K, opJsge32K, 0, 0, opJlt32K, opJle32K, opJslt32K, opJsle32K, 0, 0}
	jmp32X = [16]uint8{0, opJeq32X, opJgt32X, opJge32X, opJset32X, opJne32X, opJsgt32X, opJsge32X, 0, 0, opJlt32X, opJle32X, opJslt32X, opJsle32X, 0, 0}
)

// Load validates insns like kernel/bpf/verifier.c:bpf_check's encoding checks
// (check_subprogs, resolve_pseudo_ldimm64, check_alu_op & co.: opcodes,
// reserved fields, jump ranges, ld_imm64 pairs, helper ids — not the abstract
// interpretation, which is the verifier package's job) and translates them
// into the pre-decoded form.
// Rejections are *LoadError values wrapping unix.EINVAL.
func Load(insns []Insn, opts LoadOptions) (*Program, error) {
	max := opts.MaxInsns
	if max <= 0 {
		max = 1_000_000
	}
	if len(insns) == 0 {
		return nil, &LoadError{PC: -1, Msg: "empty program", Errno: unix.EINVAL}
	}
	if len(insns) > max {
		return nil, &LoadError{PC: -1, Msg: fmt.Sprintf("program of %d insns is too large (limit %d)", len(insns), max), Errno: unix.E2BIG}
	}
	p := &Program{
		insns: append([]Insn(nil), insns...),
		code:  make([]dinsn, len(insns)+1),
		mode:  opts.Mode,
		tail:  opts.TailCaller,
		byID:  opts.Helpers,
	}
	p.code[len(insns)] = dinsn{op: opFallOff}
	// kernel/bpf/verifier.c:check_subprogs runs before the per-insn checks.
	if last := insns[len(insns)-1]; !(last.Op == ClassJMP|JmpExit || last.Op == ClassJMP|JmpJA || last.Op == ClassJMP32|JmpJA) {
		return nil, loadErr(len(insns)-1, "last insn is not an exit or jmp")
	}
	helperIdx := map[int32]int64{}
	second := make([]bool, len(insns)) // second halves of ld_imm64
	var targets []int                  // (pc, target) pairs to check after decoding

	for pc := 0; pc < len(insns); pc++ {
		in := insns[pc]
		d := dinsn{dst: in.Dst, src: in.Src, off: int32(in.Off), imm: int64(in.Imm)}
		if in.Dst > 10 {
			return nil, loadErr(pc, "R%d is invalid", in.Dst)
		}
		if in.Src > 10 && !(in.Op == OpLdImm64 || in.Op == ClassJMP|JmpCall) {
			return nil, loadErr(pc, "R%d is invalid", in.Src)
		}
		writesDst := false
		cls := in.Op & 7
		switch cls {
		case ClassALU, ClassALU64:
			op := in.Op & 0xf0
			x := in.Op&SrcX != 0
			is64 := cls == ClassALU64
			writesDst = true
			switch {
			case op > AluEnd:
				return nil, loadErr(pc, "unknown opcode %02x", in.Op)
			case op == AluEnd:
				if in.Src != 0 || in.Off != 0 || (in.Imm != 16 && in.Imm != 32 && in.Imm != 64) || (is64 && x) {
					return nil, loadErr(pc, "BPF_END uses reserved fields")
				}
				switch {
				case is64 || x: // ALU64 bswap, or ALU to big endian: this VM stores little endian
					d.op = map[int32]uint8{16: opBswap16, 32: opBswap32, 64: opBswap64}[in.Imm]
				default: // to little endian: truncate
					d.op = map[int32]uint8{16: opZext16, 32: opZext32, 64: opNop}[in.Imm]
				}
			case op == AluNeg:
				if x || in.Src != 0 || in.Off != 0 || in.Imm != 0 {
					return nil, loadErr(pc, "BPF_NEG uses reserved fields")
				}
				d.op = alu32K[8]
				if is64 {
					d.op = alu64K[8]
				}
			case op == AluMov:
				if x {
					ok := in.Imm == 0 && (in.Off == 0 || in.Off == 8 || in.Off == 16 || (is64 && in.Off == 32))
					if !ok {
						return nil, loadErr(pc, "BPF_MOV uses reserved fields")
					}
					switch {
					case in.Off == 0 && is64:
						d.op = opMov64X
					case in.Off == 0:
						d.op = opMov32X
					case is64:
						d.op = map[int16]uint8{8: opMovsx8to64, 16: opMovsx16to64, 32: opMovsx32to64}[in.Off]
					default:
						d.op = map[int16]uint8{8: opMovsx8to32, 16: opMovsx16to32}[in.Off]
					}
				} else {
					if in.Src != 0 || in.Off != 0 {
						return nil, loadErr(pc, "BPF_MOV uses reserved fields")
					}
					d.op = opMov32K
					if is64 {
						d.op = opMov64K
					}
				}
			default:
				signed := in.Off == 1 && (op == AluDiv || op == AluMod)
				if (x && in.Imm != 0) || (!x && in.Src != 0) || (in.Off != 0 && !signed) {
					return nil, loadErr(pc, "BPF_ALU uses reserved fields")
				}
				tab := &alu32K
				switch {
				case is64 && x:
					tab = &alu64X
				case is64:
					tab = &alu64K
				case x:
					tab = &alu32X
				}
				d.op = tab[op>>4]
				if signed {
					d.op += 2 // opSdivK follows opDivK, opDivX; likewise for mod
				}
				if !x && (op == AluDiv || op == AluMod) && in.Imm == 0 && opts.Mode == ModeLinux {
					return nil, loadErr(pc, "div by zero")
				}
				if !x && (op == AluLsh || op == AluRsh || op == AluArsh) {
					size := int32(32)
					if is64 {
						size = 64
					}
					if in.Imm < 0 || in.Imm >= size {
						if opts.Mode == ModeLinux {
							return nil, loadErr(pc, "invalid shift %d", in.Imm)
						}
						// Deliberate difference (ModeISA): RFC 9669 masks the count.
						d.imm = int64(in.Imm & (size - 1))
					}
				}
			}

		case ClassJMP, ClassJMP32:
			op := in.Op & 0xf0
			x := in.Op&SrcX != 0
			switch {
			case op == JmpJA:
				if cls == ClassJMP {
					if x || in.Src != 0 || in.Dst != 0 || in.Imm != 0 {
						return nil, loadErr(pc, "BPF_JA uses reserved fields")
					}
					d.off = int32(pc) + 1 + int32(in.Off)
				} else {
					if x || in.Src != 0 || in.Dst != 0 || in.Off != 0 {
						return nil, loadErr(pc, "BPF_JA uses reserved fields")
					}
					d.off = int32(int64(pc) + 1 + int64(in.Imm))
				}
				d.op = opJa
				targets = append(targets, pc, int(d.off))
			case op == JmpCall && cls == ClassJMP:
				if x {
					if opts.Mode == ModeLinux {
						// Linux has no callx (opcode 0x8d): kernel/bpf/verifier.c
						// rejects it before looking at the fields.
						return nil, loadErr(pc, "unknown opcode %02x", in.Op)
					}
					if in.Src != 0 || in.Off != 0 || in.Imm != 0 {
						return nil, loadErr(pc, "BPF_CALL uses reserved fields")
					}
					d.op = opCallX
					break
				}
				if in.Off != 0 || in.Dst != 0 {
					return nil, loadErr(pc, "BPF_CALL uses reserved fields")
				}
				switch in.Src {
				case 0:
					if in.Imm == HelperTailCall && opts.TailCaller != nil {
						d.op = opTailCall
						break
					}
					h, ok := opts.Helpers[in.Imm]
					if !ok || h == nil {
						return nil, loadErr(pc, "invalid func unknown#%d", in.Imm)
					}
					idx, seen := helperIdx[in.Imm]
					if !seen {
						idx = int64(len(p.helpers))
						helperIdx[in.Imm] = idx
						p.helpers = append(p.helpers, h)
					}
					d.op, d.imm = opCallHelper, idx
				case PseudoCall:
					d.op = opCallLocal
					d.off = int32(int64(pc) + 1 + int64(in.Imm))
					targets = append(targets, pc, int(d.off))
				default:
					// Deliberate difference: calls by BTF id (kfuncs) need kernel
					// BTF; the VM has none.
					return nil, loadErr(pc, "calling kernel functions is not supported")
				}
			case op == JmpExit && cls == ClassJMP:
				if x || in.Src != 0 || in.Dst != 0 || in.Off != 0 || in.Imm != 0 {
					return nil, loadErr(pc, "BPF_EXIT uses reserved fields")
				}
				d.op = opExit
			default:
				tab := &jmp64K
				switch {
				case cls == ClassJMP && x:
					tab = &jmp64X
				case cls == ClassJMP32 && x:
					tab = &jmp32X
				case cls == ClassJMP32:
					tab = &jmp32K
				}
				d.op = tab[op>>4]
				if d.op == 0 {
					return nil, loadErr(pc, "unknown opcode %02x", in.Op)
				}
				if (x && in.Imm != 0) || (!x && in.Src != 0) {
					return nil, loadErr(pc, "BPF_JMP/JMP32 uses reserved fields")
				}
				d.off = int32(pc) + 1 + int32(in.Off)
				targets = append(targets, pc, int(d.off))
			}

		case ClassLD:
			mode := in.Op & 0xe0
			size := in.Op & 0x18
			switch {
			case in.Op == OpLdImm64:
				if pc+1 >= len(insns) {
					return nil, loadErr(pc, "invalid bpf_ld_imm64 insn")
				}
				nx := insns[pc+1]
				if nx.Op != 0 || nx.Dst != 0 || nx.Src != 0 || nx.Off != 0 || in.Off != 0 {
					return nil, loadErr(pc, "invalid bpf_ld_imm64 insn")
				}
				writesDst = true
				switch in.Src {
				case 0:
					d.op = opLdImm64
					d.imm = int64(uint64(uint32(in.Imm)) | uint64(uint32(nx.Imm))<<32)
				case PseudoFunc:
					t := int64(pc) + 1 + int64(in.Imm)
					if t < 0 || t >= int64(len(insns)) {
						return nil, loadErr(pc, "jump out of range from insn %d to %d", pc, t)
					}
					d.op, d.imm = opLdImm64, int64(funcTag|uint64(t))
					targets = append(targets, pc, int(t))
				case PseudoMapFD, PseudoMapValue, PseudoBTFID, PseudoMapIdx, PseudoMapIdxValue:
					if opts.Resolver == nil {
						return nil, loadErr(pc, "invalid bpf_ld_imm64 insn: src %d needs a resolver", in.Src)
					}
					v, err := opts.Resolver.ResolveImm64(pc, in.Src, in.Imm, nx.Imm)
					if err != nil {
						return nil, err
					}
					if v.Region == nil {
						d.op, d.imm = opLdImm64, int64(v.Value)
					} else {
						d.op, d.off, d.imm = opLdRegion, int32(len(p.regions)), int64(v.Offset)
						p.regions = append(p.regions, v.Region)
					}
				default:
					return nil, loadErr(pc, "invalid bpf_ld_imm64 insn")
				}
				d.src = 0
				p.code[pc] = d
				second[pc+1] = true
				pc++
				continue
			case (mode == ModeABS || mode == ModeIND) && size != SizeDW:
				if in.Dst != 0 || in.Off != 0 || (mode == ModeABS && in.Src != 0) {
					return nil, loadErr(pc, "BPF_LD_[ABS|IND] uses reserved fields")
				}
				base := opLdAbs8
				if mode == ModeIND {
					base = opLdInd8
				}
				d.op = base + map[uint8]uint8{SizeB: 0, SizeH: 1, SizeW: 2}[size]
			default:
				return nil, loadErr(pc, "unknown opcode %02x", in.Op)
			}

		case ClassLDX:
			mode := in.Op & 0xe0
			size := in.Op & 0x18
			switch mode {
			case ModeMEM:
				d.op = map[uint8]uint8{SizeB: opLdx8, SizeH: opLdx16, SizeW: opLdx32, SizeDW: opLdx64}[size]
			case ModeMEMSX:
				d.op = map[uint8]uint8{SizeB: opLdxs8, SizeH: opLdxs16, SizeW: opLdxs32}[size]
			}
			if d.op == 0 {
				return nil, loadErr(pc, "unknown opcode %02x", in.Op)
			}
			if in.Imm != 0 {
				return nil, loadErr(pc, "BPF_LDX uses reserved fields")
			}
			writesDst = true

		case ClassST:
			if in.Op&0xe0 != ModeMEM {
				return nil, loadErr(pc, "unknown opcode %02x", in.Op)
			}
			if in.Src != 0 {
				return nil, loadErr(pc, "BPF_ST uses reserved fields")
			}
			d.op = map[uint8]uint8{SizeB: opSt8, SizeH: opSt16, SizeW: opSt32, SizeDW: opSt64}[in.Op&0x18]

		case ClassSTX:
			size := in.Op & 0x18
			switch in.Op & 0xe0 {
			case ModeMEM:
				if in.Imm != 0 {
					return nil, loadErr(pc, "BPF_STX uses reserved fields")
				}
				d.op = map[uint8]uint8{SizeB: opStx8, SizeH: opStx16, SizeW: opStx32, SizeDW: opStx64}[size]
			case ModeATOMIC:
				if size != SizeW && size != SizeDW {
					return nil, loadErr(pc, "invalid atomic operand size")
				}
				switch in.Imm {
				case AtomicAdd, AtomicOr, AtomicAnd, AtomicXor,
					AtomicAdd | AtomicFetch, AtomicOr | AtomicFetch, AtomicAnd | AtomicFetch, AtomicXor | AtomicFetch,
					AtomicXchg, AtomicCmpXchg:
				default:
					return nil, loadErr(pc, "BPF_ATOMIC uses invalid atomic opcode %02x", in.Imm)
				}
				if in.Imm&AtomicFetch != 0 && in.Imm != AtomicCmpXchg && in.Src == 10 {
					return nil, &LoadError{PC: pc, Msg: "frame pointer is read only", Errno: unix.EACCES}
				}
				d.op = opAtomic64
				if size == SizeW {
					d.op = opAtomic32
				}
			default:
				return nil, loadErr(pc, "unknown opcode %02x", in.Op)
			}
		}
		if writesDst && in.Dst == 10 {
			return nil, &LoadError{PC: pc, Msg: "frame pointer is read only", Errno: unix.EACCES}
		}
		p.code[pc] = d
	}
	for i := 0; i < len(targets); i += 2 {
		from, to := targets[i], targets[i+1]
		if to < 0 || to >= len(insns) {
			return nil, loadErr(from, "jump out of range from insn %d to %d", from, to)
		}
		if second[to] {
			return nil, loadErr(from, "jump into the middle of ldimm64 insn %d", to-1)
		}
	}
	if last := insns[len(insns)-1]; !(last.Op == ClassJMP|JmpExit || last.Op == ClassJMP|JmpJA || last.Op == ClassJMP32|JmpJA) || second[len(insns)-1] {
		return nil, loadErr(len(insns)-1, "last insn is not an exit or jmp")
	}
	return p, nil
}
