package vm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"
)

// rd returns the memory at addr with at least n bytes, or nil if the n
// bytes at addr are not all inside one region.
func (m *Machine) rd(addr, n uint64) []byte {
	ri := addr>>regionShift - 1
	if ri < uint64(len(m.regions)) {
		d := m.regions[ri].Data
		if o := addr & offMask; o+n <= uint64(len(d)) {
			return d[o:]
		}
	}
	return nil
}

// wr is rd for stores: the region must also be writable.
func (m *Machine) wr(addr, n uint64) []byte {
	ri := addr>>regionShift - 1
	if ri < uint64(len(m.regions)) {
		r := &m.regions[ri]
		if o := addr & offMask; o+n <= uint64(len(r.Data)) && r.Writable {
			return r.Data[o:]
		}
	}
	return nil
}

func (m *Machine) fault(pc int, addr, n uint64, write bool) error {
	msg := fmt.Sprintf("invalid %s of %d bytes at %s", rw(write), n, m.describe(addr))
	if write {
		if r, _, ok := m.Region(addr); ok && !r.Writable {
			msg += " (read-only)"
		}
	}
	return &RunError{PC: pc, Msg: msg, Err: ErrAccess}
}

// memSize is the access size of each load and store op.
var memSize = [numOps]uint64{
	opLdx8: 1, opLdx16: 2, opLdx32: 4, opLdx64: 8, opLdxs8: 1, opLdxs16: 2, opLdxs32: 4,
	opSt8: 1, opSt16: 2, opSt32: 4, opSt64: 8, opStx8: 1, opStx16: 2, opStx32: 4, opStx64: 8,
}

// exec runs a program like kernel/bpf/core.c:___bpf_prog_run (the slow
// path: calls, exits, tail calls, atomics, packet loads, faults; fast does
// the rest). It runs until the frame it was entered in exits.
func (m *Machine) exec(p *Program, pc int, regs *[16]uint64) (uint64, error) {
	r := regs
	code := p.code
	left := m.left
	base := m.depth
	depth := base
	var frames [MaxCallFrames]frame

	for {
		pc, left = fast(m.regions, r, code, pc, left)
		if left == 0 {
			return 0, &RunError{PC: pc, Msg: fmt.Sprintf("instruction budget exhausted (%d instructions)", m.budget()), Err: ErrBudget}
		}
		left--
		in := &code[pc]
		switch in.op {
		case opLdx8, opLdx16, opLdx32, opLdx64, opLdxs8, opLdxs16, opLdxs32:
			// fast returned here: the access is out of bounds.
			return 0, m.fault(pc, r[in.src&15]+uint64(in.off), memSize[in.op], false)
		case opSt8, opSt16, opSt32, opSt64, opStx8, opStx16, opStx32, opStx64:
			return 0, m.fault(pc, r[in.dst&15]+uint64(in.off), memSize[in.op], true)
		case opAtomic32, opAtomic64:
			if err := m.atomic(pc, in, r); err != nil {
				return 0, err
			}

		case opLdRegion:
			reg := p.regions[in.off]
			a := m.NewPointer(*reg)
			if a != 0 {
				a += uint64(in.imm)
			}
			r[in.dst&15] = a
			pc += 2
			continue

		case opLdAbs8, opLdAbs16, opLdAbs32, opLdInd8, opLdInd16, opLdInd32:
			v, ok := m.ldPacket(in, r)
			if !ok {
				// kernel/bpf/core.c (LD_ABS/LD_IND): an out-of-bounds packet
				// load ends the program with r0 = 0.
				m.left = left
				return 0, ErrStop
			}
			r[0] = v

		case opCallHelper:
			m.left = left
			v, err := p.helpers[in.imm](m, r[1], r[2], r[3], r[4], r[5])
			left = m.left
			if err != nil {
				return v, m.helperErr(pc, err)
			}
			r[0] = v
		case opCallX:
			// callx (ISA mode only): the helper id is in the dst register.
			id := int32(r[in.dst&15])
			if id == HelperTailCall && p.tail != nil {
				goto tailcall
			}
			if h := p.byID[id]; h != nil {
				m.left = left
				v, err := h(m, r[1], r[2], r[3], r[4], r[5])
				left = m.left
				if err != nil {
					return v, m.helperErr(pc, err)
				}
				r[0] = v
			} else {
				return 0, &RunError{PC: pc, Msg: fmt.Sprintf("callx to unknown helper %d", id), Err: ErrNoHelper}
			}
		case opTailCall:
			goto tailcall
		case opCallLocal:
			if depth+1 >= MaxCallFrames {
				return 0, &RunError{PC: pc, Msg: fmt.Sprintf("the call stack of %d frames is too deep", depth+2), Err: ErrCallTooDeep}
			}
			frames[depth] = frame{prog: p, ret: pc + 1, r6: [4]uint64{r[6], r[7], r[8], r[9]}}
			depth++
			m.setDepth(depth)
			r[10] = frameBase(depth)
			pc = int(in.off)
			continue
		case opExit:
			if depth == base {
				m.left = left
				return r[0], nil
			}
			depth--
			f := &frames[depth]
			r[6], r[7], r[8], r[9] = f.r6[0], f.r6[1], f.r6[2], f.r6[3]
			r[10] = frameBase(depth)
			m.setDepth(depth)
			if f.prog != p {
				p = f.prog
				code = p.code
				m.prog = p
			}
			pc = f.ret
			continue
		default: // opFallOff, opInvalid: unreachable in a program Load accepted
			return 0, &RunError{PC: pc, Msg: fmt.Sprintf("invalid instruction (internal op %d)", in.op), Err: ErrPanic}
		}
		pc++
		continue

	tailcall:
		// kernel/bpf/core.c:___bpf_prog_run JMP_TAIL_CALL: the count is
		// checked and incremented before the slot is read; an empty slot or
		// the limit falls through to the next instruction.
		if m.tails < MaxTailCalls && p.tail != nil {
			m.tails++
			m.left = left
			if t := p.tail.TailCallTarget(m, r[2], uint32(r[3])); t != nil {
				p = t
				code = p.code
				m.prog = p
				pc = 0
				continue
			}
		}
		pc++
	}
}

func (m *Machine) budget() uint64 {
	if m.Budget == 0 {
		return DefaultBudget
	}
	return m.Budget
}

func (m *Machine) helperErr(pc int, err error) error {
	if err == ErrStop {
		return ErrStop
	}
	var re *RunError
	if errors.As(err, &re) {
		return err
	}
	return &RunError{PC: pc, Msg: "helper: " + err.Error(), Err: err}
}

// ldPacket implements LD_ABS/LD_IND like net/core/filter.c:bpf_skb_load_helper_{8,16,32}:
// a big-endian load from the packet set with SetPacket. Deliberate
// difference: negative offsets (the kernel's SKF_NET_OFF/SKF_LL_OFF
// ancillary area) are out of bounds, as there is no skb behind the packet.
func (m *Machine) ldPacket(in *dinsn, r *[16]uint64) (uint64, bool) {
	off := int64(int32(in.imm))
	if in.op >= opLdInd8 {
		off = int64(int32(uint32(r[in.src&15]) + uint32(in.imm)))
	}
	var n int64
	switch in.op {
	case opLdAbs8, opLdInd8:
		n = 1
	case opLdAbs16, opLdInd16:
		n = 2
	default:
		n = 4
	}
	if off < 0 || off+n > int64(len(m.packet)) {
		return 0, false
	}
	b := m.packet[off:]
	switch n {
	case 1:
		return uint64(b[0]), true
	case 2:
		return uint64(binary.BigEndian.Uint16(b)), true
	}
	return uint64(binary.BigEndian.Uint32(b)), true
}

// atomic implements BPF_STX|BPF_ATOMIC like kernel/bpf/core.c:___bpf_prog_run
// (STX_ATOMIC_W, STX_ATOMIC_DW). The memory must be naturally aligned, as the
// verifier requires for atomics.
func (m *Machine) atomic(pc int, in *dinsn, r *[16]uint64) error {
	a := r[in.dst&15] + uint64(in.off)
	n := uint64(8)
	if in.op == opAtomic32 {
		n = 4
	}
	b := m.wr(a, n)
	if b == nil {
		return m.fault(pc, a, n, true)
	}
	ptr := unsafe.Pointer(&b[0])
	if uintptr(ptr)%uintptr(n) != 0 {
		return &RunError{PC: pc, Msg: fmt.Sprintf("misaligned atomic access of %d bytes at %s", n, m.describe(a)), Err: ErrAccess}
	}
	src := &r[in.src&15]
	op := in.imm
	if n == 8 {
		p := (*uint64)(ptr)
		var old uint64
		switch op &^ AtomicFetch {
		case AtomicAdd:
			old = atomic.AddUint64(p, *src) - *src
		case AtomicOr:
			old = atomic.OrUint64(p, *src)
		case AtomicAnd:
			old = atomic.AndUint64(p, *src)
		case AtomicXor:
			for {
				old = atomic.LoadUint64(p)
				if atomic.CompareAndSwapUint64(p, old, old^*src) {
					break
				}
			}
		case AtomicXchg &^ AtomicFetch:
			old = atomic.SwapUint64(p, *src)
		case AtomicCmpXchg &^ AtomicFetch:
			for {
				old = atomic.LoadUint64(p)
				if old != r[0] || atomic.CompareAndSwapUint64(p, old, *src) {
					break
				}
			}
			r[0] = old
			return nil
		}
		if op&AtomicFetch != 0 {
			*src = old
		}
		return nil
	}
	p := (*uint32)(ptr)
	s := uint32(*src)
	var old uint32
	switch op &^ AtomicFetch {
	case AtomicAdd:
		old = atomic.AddUint32(p, s) - s
	case AtomicOr:
		old = atomic.OrUint32(p, s)
	case AtomicAnd:
		old = atomic.AndUint32(p, s)
	case AtomicXor:
		for {
			old = atomic.LoadUint32(p)
			if atomic.CompareAndSwapUint32(p, old, old^s) {
				break
			}
		}
	case AtomicXchg &^ AtomicFetch:
		old = atomic.SwapUint32(p, s)
	case AtomicCmpXchg &^ AtomicFetch:
		for {
			old = atomic.LoadUint32(p)
			if old != uint32(r[0]) || atomic.CompareAndSwapUint32(p, old, s) {
				break
			}
		}
		r[0] = uint64(old)
		return nil
	}
	if op&AtomicFetch != 0 {
		*src = uint64(old)
	}
	return nil
}
