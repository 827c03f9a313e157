package vm

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// RegionKind says what a region holds; it only affects error messages and
// what helpers may check.
type RegionKind uint8

const (
	RegionStack    RegionKind = iota // the program stack (always region 0)
	RegionContext                    // the program context (ctx, r1 at entry)
	RegionPacket                     // packet data
	RegionMapValue                   // a map value
	RegionReadOnly                   // read-only data (e.g. .rodata, frozen maps)
	RegionMemory                     // other memory passed by the runner or a helper
)

func (k RegionKind) String() string {
	switch k {
	case RegionStack:
		return "stack"
	case RegionContext:
		return "ctx"
	case RegionPacket:
		return "pkt"
	case RegionMapValue:
		return "map_value"
	case RegionReadOnly:
		return "rdonly"
	case RegionMemory:
		return "mem"
	}
	return fmt.Sprintf("region%d", uint8(k))
}

// Region is a piece of Go memory the program may address. The VM never
// reads or writes outside Data, and never writes unless Writable.
type Region struct {
	Data     []byte
	Writable bool
	Kind     RegionKind
}

// Address layout: region i (0-based index in the machine's table) occupies
// the virtual addresses [(i+1)<<regionShift, (i+2)<<regionShift). A pointer
// is decoded with one shift and one mask, and bounds checked with one compare.
// Address 0 (NULL) and small integers are never valid pointers.
const (
	regionShift = 40
	offMask     = 1<<regionShift - 1
	// MaxRegions bounds the per-run region table; NewPointer returns 0 (NULL)
	// when it is full.
	MaxRegions = 1 << 16
	// funcTag marks BPF_PSEUDO_FUNC values (code addresses); it decodes to no
	// region, so loads and stores through it fault.
	funcTag = uint64(0xffffff) << regionShift
)

// Stack geometry (include/linux/bpf.h: MAX_BPF_STACK, MAX_CALL_FRAMES).
const (
	StackSize     = 512 // bytes per frame
	MaxCallFrames = 8   // main program + 7 nested bpf-to-bpf calls
	// MaxTailCalls is MAX_TAIL_CALL_CNT.
	MaxTailCalls = 33
	// DefaultBudget is the instruction budget of a Run when Machine.Budget is 0.
	DefaultBudget = 1 << 24
)

// Errors a Run can return, wrapped in a *RunError naming the instruction.
// Each also matches (errors.Is) the errno given in its comment.
var (
	ErrAccess      = &vmError{"invalid memory access", unix.EFAULT}       // EFAULT
	ErrBudget      = &vmError{"instruction budget exhausted", unix.ELOOP} // ELOOP
	ErrCallTooDeep = &vmError{"call stack too deep", unix.E2BIG}          // E2BIG
	ErrNoHelper    = &vmError{"unknown helper", unix.EINVAL}              // EINVAL
	ErrPanic       = &vmError{"internal error", unix.EFAULT}              // EFAULT
	// ErrStop, returned by a Helper, ends the run successfully with r0 set to
	// the helper's return value (e.g. the conformance suite's unwind helper).
	ErrStop = errors.New("vm: stop")
)

type vmError struct {
	msg   string
	errno unix.Errno
}

func (e *vmError) Error() string { return e.msg }
func (e *vmError) Unwrap() error { return e.errno }

// RunError is a run-time failure at instruction PC.
type RunError struct {
	PC  int
	Msg string
	Err error // one of the Err* sentinels, or a helper's error
}

func (e *RunError) Error() string { return fmt.Sprintf("vm: insn %d: %s", e.PC, e.Msg) }
func (e *RunError) Unwrap() error { return e.Err }

// frame is a saved caller context of a bpf-to-bpf call.
type frame struct {
	prog *Program
	ret  int
	r6   [4]uint64 // r6-r9
}

// Machine runs programs. It is not safe for concurrent use: use one Machine
// per goroutine (they are cheap, ~4.5 KiB). The zero value is not usable;
// call NewMachine.
//
// Regions: the stack is always region 0. Other regions are registered with
// NewPointer before Run (ctx, packet, memory) or by helpers during Run (map
// values); the table is emptied when Run returns, so pointers from one run
// are invalid in the next.
type Machine struct {
	// Budget is the maximum number of instructions one Run may execute
	// (counting helpers' callbacks); 0 means DefaultBudget.
	Budget uint64

	regions []Region
	dedup   map[regionKey]uint64
	stack   []byte // MaxCallFrames*StackSize, 8-byte aligned
	packet  []byte // for LD_ABS/LD_IND
	prog    *Program
	depth   int    // current call depth (0 = main program)
	left    uint64 // budget left, valid while a helper runs
	tails   int    // tail calls made in this run
	running bool
}

type regionKey struct {
	p *byte
	n int
	w bool
}

// NewMachine returns a Machine with an empty region table.
func NewMachine() *Machine {
	backing := make([]uint64, MaxCallFrames*StackSize/8)
	m := &Machine{
		stack:   unsafe.Slice((*byte)(unsafe.Pointer(&backing[0])), MaxCallFrames*StackSize),
		regions: make([]Region, 1, 8),
		dedup:   map[regionKey]uint64{},
	}
	m.regions[0] = Region{Data: m.stack[:StackSize], Writable: true, Kind: RegionStack}
	return m
}

// NewPointer registers r for the current (or next) run and returns the
// address of r.Data[0]. Registering the same memory again returns the same
// address. It returns 0 when the table is full (MaxRegions).
func (m *Machine) NewPointer(r Region) uint64 {
	var k regionKey
	if cap(r.Data) > 0 {
		k = regionKey{unsafe.SliceData(r.Data), len(r.Data), r.Writable}
		if a, ok := m.dedup[k]; ok {
			return a
		}
	}
	if len(m.regions) >= MaxRegions {
		return 0
	}
	m.regions = append(m.regions, r)
	a := uint64(len(m.regions)) << regionShift
	if k.p != nil {
		m.dedup[k] = a
	}
	return a
}

// SetPacket sets the packet that LD_ABS and LD_IND read for the next run.
func (m *Machine) SetPacket(pkt []byte) { m.packet = pkt }

// Program returns the program running (for helpers), or nil.
func (m *Machine) Program() *Program { return m.prog }

// Mem returns the n bytes at ptr, which must lie inside one region; write
// asks for a writable region. Helpers use it to read and write program
// memory. The error wraps ErrAccess.
func (m *Machine) Mem(ptr uint64, n int, write bool) ([]byte, error) {
	ri := ptr>>regionShift - 1
	if n < 0 || ri >= uint64(len(m.regions)) {
		return nil, fmt.Errorf("%s of %d bytes at %s: %w", rw(write), n, m.describe(ptr), ErrAccess)
	}
	r := &m.regions[ri]
	o := ptr & offMask
	if o+uint64(n) > uint64(len(r.Data)) || (write && !r.Writable) {
		return nil, fmt.Errorf("%s of %d bytes at %s: %w", rw(write), n, m.describe(ptr), ErrAccess)
	}
	return r.Data[o : o+uint64(n) : o+uint64(n)], nil
}

// Region returns the region ptr points into and the offset inside it.
func (m *Machine) Region(ptr uint64) (Region, uint64, bool) {
	ri := ptr>>regionShift - 1
	if ri >= uint64(len(m.regions)) {
		return Region{}, 0, false
	}
	return m.regions[ri], ptr & offMask, true
}

func rw(write bool) string {
	if write {
		return "write"
	}
	return "read"
}

// describe renders an address for error messages: "stack-520" relative to the
// current frame pointer, "ctx+4096", "mem+16", or the raw value.
func (m *Machine) describe(addr uint64) string {
	if addr&^offMask == funcTag {
		return fmt.Sprintf("func#%d", addr&offMask)
	}
	// The nearest region base, so that addresses just below a region (a
	// negative offset) are described relative to it too.
	ri := (addr+1<<(regionShift-1))>>regionShift - 1
	if ri >= uint64(len(m.regions)) {
		return fmt.Sprintf("%#x", addr)
	}
	o := int64(addr - (ri+1)<<regionShift)
	if ri == 0 {
		return fmt.Sprintf("stack%+d", o-int64(StackSize*(m.depth+1)))
	}
	return fmt.Sprintf("%s%+d", m.regions[ri].Kind, o)
}

// reset empties the region table after a run.
func (m *Machine) reset() {
	clear(m.regions[1:])
	m.regions = m.regions[:1]
	clear(m.dedup)
	m.packet = nil
	m.prog = nil
	m.depth = 0
	m.tails = 0
	m.running = false
}

func (m *Machine) setDepth(d int) {
	m.depth = d
	m.regions[0].Data = m.stack[:StackSize*(d+1)]
}

// frameBase returns r10 for call depth d.
func frameBase(d int) uint64 { return 1<<regionShift + uint64(StackSize*(d+1)) }

// Run executes p with r1..r5 = args (missing ones are 0) and returns r0.
// Regions registered with NewPointer before Run are visible to the program;
// the table is emptied when Run returns. The stack is zeroed first.
func (m *Machine) Run(p *Program, args ...uint64) (r0 uint64, err error) {
	if m.running {
		return 0, errors.New("vm: Run called re-entrantly; helpers use CallFunction")
	}
	m.running = true
	defer m.reset()
	var regs [16]uint64
	copy(regs[1:6], args)
	clear(m.stack)
	m.setDepth(0)
	regs[10] = frameBase(0)
	m.prog = p
	budget := m.Budget
	if budget == 0 {
		budget = DefaultBudget
	}
	m.left = budget
	// Last line of defence: no Go panic escapes Run, whatever the program.
	defer func() {
		if e := recover(); e != nil {
			r0, err = 0, &RunError{PC: -1, Msg: fmt.Sprintf("internal error: %v", e), Err: ErrPanic}
		}
	}()
	r0, err = m.exec(p, 0, &regs)
	if err == ErrStop {
		err = nil
	}
	return r0, err
}

// CallFunction calls the bpf-to-bpf function fn (a BPF_PSEUDO_FUNC value,
// e.g. a bpf_loop callback) of the running program with r1..r5 = args, in a
// new stack frame, and returns its r0. Only helpers may call it, during Run.
func (m *Machine) CallFunction(fn uint64, args ...uint64) (uint64, error) {
	if !m.running || m.prog == nil {
		return 0, errors.New("vm: CallFunction outside Run")
	}
	if fn&^offMask != funcTag || fn&offMask >= uint64(len(m.prog.insns)) {
		return 0, fmt.Errorf("vm: %#x is not a function pointer: %w", fn, ErrAccess)
	}
	if m.depth+1 >= MaxCallFrames {
		return 0, fmt.Errorf("vm: the call stack of %d frames is too deep: %w", m.depth+2, ErrCallTooDeep)
	}
	saved := m.depth
	var regs [16]uint64
	copy(regs[1:6], args)
	m.setDepth(saved + 1)
	regs[10] = frameBase(saved + 1)
	r0, err := m.exec(m.prog, int(fn&offMask), &regs)
	m.setDepth(saved)
	return r0, err
}
