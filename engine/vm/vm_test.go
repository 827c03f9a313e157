package vm_test

import (
	"encoding/binary"
	"errors"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/bpffs-fuse/bpffs-fuse/engine/vm"
	"github.com/bpffs-fuse/bpffs-fuse/engine/vm/asm"
)

func mustLoad(t testing.TB, src string, opts vm.LoadOptions) *vm.Program {
	t.Helper()
	insns, err := asm.Assemble(src)
	if err != nil {
		t.Fatal(err)
	}
	if opts.Helpers == nil {
		opts.Helpers = vm.ConformanceHelpers()
	}
	p, err := vm.Load(insns, opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMemorySafety(t *testing.T) {
	m := vm.NewMachine()
	for _, c := range []struct{ name, src, msg string }{
		{"stack-below", "ldxdw %r0, [%r10-520]\nexit", "vm: insn 0: invalid read of 8 bytes at stack-520"},
		{"stack-above", "ldxb %r0, [%r10+0]\nexit", "vm: insn 0: invalid read of 1 bytes at stack+0"},
		{"null", "mov %r1, 0\nldxw %r0, [%r1+0]\nexit", "vm: insn 1: invalid read of 4 bytes at 0x0"},
		{"scalar", "mov %r1, 12345\nstxw [%r1+0], %r1\nexit", "vm: insn 1: invalid write of 4 bytes at 0x3039"},
		{"straddle", "stxdw [%r10-4], %r1\nexit", "vm: insn 0: invalid write of 8 bytes at stack-4"},
		{"mem-end", "ldxdw %r0, [%r1+1]\nexit", "vm: insn 0: invalid read of 8 bytes at mem+1"},
		{"func-ptr", "lddw %r1, 0\nexit", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := mustLoad(t, c.src, vm.LoadOptions{})
			r1 := m.NewPointer(vm.Region{Data: make([]byte, 8), Writable: true, Kind: vm.RegionMemory})
			_, err := m.Run(p, r1)
			if c.msg == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || err.Error() != c.msg {
				t.Fatalf("err = %v, want %q", err, c.msg)
			}
			if !errors.Is(err, vm.ErrAccess) || !errors.Is(err, unix.EFAULT) {
				t.Fatalf("err %v does not match ErrAccess/EFAULT", err)
			}
		})
	}
}

func TestReadOnlyRegion(t *testing.T) {
	m := vm.NewMachine()
	p := mustLoad(t, "ldxb %r0, [%r1+0]\nstb [%r1+0], 7\nexit", vm.LoadOptions{})
	data := []byte{42}
	_, err := m.Run(p, m.NewPointer(vm.Region{Data: data, Kind: vm.RegionReadOnly}))
	if err == nil || !strings.Contains(err.Error(), "invalid write of 1 bytes at rdonly+0 (read-only)") {
		t.Fatalf("err = %v", err)
	}
	if data[0] != 42 {
		t.Fatal("read-only region written")
	}
}

func TestRegionsResetBetweenRuns(t *testing.T) {
	m := vm.NewMachine()
	p := mustLoad(t, "ldxb %r0, [%r1+0]\nexit", vm.LoadOptions{})
	ptr := m.NewPointer(vm.Region{Data: []byte{9}})
	if r0, err := m.Run(p, ptr); err != nil || r0 != 9 {
		t.Fatalf("r0=%d err=%v", r0, err)
	}
	if _, err := m.Run(p, ptr); !errors.Is(err, vm.ErrAccess) {
		t.Fatalf("stale pointer accepted: %v", err)
	}
}

func TestBudget(t *testing.T) {
	m := vm.NewMachine()
	m.Budget = 1000
	p := mustLoad(t, "mov %r0, 0\nl: add %r0, 1\nja l\nexit", vm.LoadOptions{})
	_, err := m.Run(p)
	if !errors.Is(err, vm.ErrBudget) || !strings.Contains(err.Error(), "budget") {
		t.Fatalf("err = %v", err)
	}
}

func TestCallsAndFrames(t *testing.T) {
	m := vm.NewMachine()
	// r6 is callee-saved, r10 per frame; the callee writes its own frame and
	// reads the caller's through a pointer.
	p := mustLoad(t, `
mov %r6, 7
stxdw [%r10-8], %r6
mov %r1, %r10
add %r1, -8
call local f
add %r0, %r6
exit
f:
mov %r6, 100
stxdw [%r10-8], %r6
ldxdw %r0, [%r1+0]
ldxdw %r2, [%r10-8]
add %r0, %r2
exit`, vm.LoadOptions{})
	r0, err := m.Run(p)
	if err != nil || r0 != 7+100+7 {
		t.Fatalf("r0=%d err=%v", r0, err)
	}
	// Unbounded recursion stops at 8 frames.
	p = mustLoad(t, "call local f\nexit\nf: call local f\nexit", vm.LoadOptions{})
	_, err = m.Run(p)
	if !errors.Is(err, vm.ErrCallTooDeep) || !strings.Contains(err.Error(), "the call stack of 9 frames is too deep") {
		t.Fatalf("err = %v", err)
	}
}

// mapValueHelper is a stand-in for bpf_map_lookup_elem: it returns a pointer
// into a Go-owned value.
func TestHelperRegionsAndMem(t *testing.T) {
	value := make([]byte, 8)
	helpers := map[int32]vm.Helper{
		1: func(m *vm.Machine, _, key, _, _, _ uint64) (uint64, error) {
			k, err := m.Mem(key, 4, false)
			if err != nil {
				return 0, err
			}
			if binary.LittleEndian.Uint32(k) != 3 {
				return 0, nil
			}
			return m.NewPointer(vm.Region{Data: value, Writable: true, Kind: vm.RegionMapValue}), nil
		},
	}
	p := mustLoad(t, `
stw [%r10-4], 3
mov %r2, %r10
add %r2, -4
call 1
jeq %r0, 0, out
mov %r1, 5
lock add [%r0+0], %r1
ldxdw %r0, [%r0+0]
out:
exit`, vm.LoadOptions{Helpers: helpers})
	m := vm.NewMachine()
	for i := 1; i <= 3; i++ {
		r0, err := m.Run(p)
		if err != nil || r0 != uint64(5*i) {
			t.Fatalf("run %d: r0=%d err=%v", i, r0, err)
		}
	}
	// Reading past the value faults with the region's kind in the message.
	p = mustLoad(t, "stw [%r10-4], 3\nmov %r2, %r10\nadd %r2, -4\ncall 1\nldxdw %r0, [%r0+8]\nexit", vm.LoadOptions{Helpers: helpers})
	if _, err := m.Run(p); err == nil || !strings.Contains(err.Error(), "at map_value+8") {
		t.Fatalf("err = %v", err)
	}
}

type resolver struct{ global *vm.Region }

func (r resolver) ResolveImm64(pc int, src uint8, imm, next int32) (vm.Imm64, error) {
	switch src {
	case vm.PseudoMapFD:
		return vm.Imm64{Value: 0xabc0000 + uint64(imm)}, nil
	case vm.PseudoMapValue:
		return vm.Imm64{Region: r.global, Offset: uint64(uint32(next))}, nil
	}
	return vm.Imm64{}, errors.New("unsupported")
}

func TestPseudoLdImm64(t *testing.T) {
	global := &vm.Region{Data: make([]byte, 16), Writable: true, Kind: vm.RegionMapValue}
	binary.LittleEndian.PutUint64(global.Data[8:], 40)
	insns, _ := asm.Assemble("lddw %r1, 0x0000000800000005, src 2\nldxdw %r0, [%r1+0]\nlddw %r2, 0x7, src 1\nadd %r0, %r2\nexit")
	p, err := vm.Load(insns, vm.LoadOptions{Resolver: resolver{global}})
	if err != nil {
		t.Fatal(err)
	}
	r0, err := vm.NewMachine().Run(p)
	if err != nil || r0 != 40+0xabc0007 {
		t.Fatalf("r0=%#x err=%v", r0, err)
	}
	if _, err := vm.Load(insns, vm.LoadOptions{}); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("no resolver: %v", err)
	}
}

type progArray map[uint32]*vm.Program

func (a progArray) TailCallTarget(m *vm.Machine, arr uint64, idx uint32) *vm.Program {
	return a[idx]
}

func TestTailCall(t *testing.T) {
	arr := progArray{}
	target := mustLoad(t, "ldxdw %r0, [%r10-8]\nadd %r0, %r1\nexit", vm.LoadOptions{})
	arr[1] = target
	// Tail call into slot 1 keeps the stack and r1; slot 2 is empty and falls through.
	p := mustLoad(t, "mov %r6, 99\nstxdw [%r10-8], %r6\nmov %r3, 2\ncall 12\nmov %r3, 1\ncall 12\nmov %r0, 1\nexit", vm.LoadOptions{TailCaller: arr})
	r0, err := vm.NewMachine().Run(p, 1000)
	if err != nil || r0 != 1099 {
		t.Fatalf("r0=%d err=%v", r0, err)
	}
	// A program tail-calling itself stops after 33 tail calls.
	self := progArray{}
	loop := mustLoad(t, "add %r1, 1\nmov %r0, %r1\nmov %r3, 0\ncall 12\nexit", vm.LoadOptions{TailCaller: self})
	self[0] = loop
	r0, err = vm.NewMachine().Run(loop, 0)
	if err != nil || r0 != vm.MaxTailCalls+1 {
		t.Fatalf("r0=%d err=%v", r0, err)
	}
}

func TestLdAbsInd(t *testing.T) {
	m := vm.NewMachine()
	p := mustLoad(t, "ldabsh 2\nmov %r6, %r0\nmov %r1, 1\nldindw %r1, 3\nadd %r0, %r6\nexit", vm.LoadOptions{})
	m.SetPacket([]byte{0, 0, 0x12, 0x34, 0, 0, 0, 1})
	r0, err := m.Run(p)
	if err != nil || r0 != 0x1234+1 {
		t.Fatalf("r0=%#x err=%v", r0, err)
	}
	// Out of bounds ends the program with r0 = 0, as Linux.
	p = mustLoad(t, "mov %r0, 5\nldabsw 6\nmov %r0, 7\nexit", vm.LoadOptions{})
	m.SetPacket(make([]byte, 8))
	if r0, err := m.Run(p); err != nil || r0 != 0 {
		t.Fatalf("r0=%d err=%v", r0, err)
	}
}

func TestCallFunction(t *testing.T) {
	// A bpf_loop-like helper: calls the callback r2 times with the index.
	helpers := map[int32]vm.Helper{
		181: func(m *vm.Machine, n, fn, ctx, _, _ uint64) (uint64, error) {
			for i := uint64(0); i < n; i++ {
				ret, err := m.CallFunction(fn, i, ctx)
				if err != nil {
					return 0, err
				}
				if ret != 0 {
					return i + 1, nil
				}
			}
			return n, nil
		},
	}
	p := mustLoad(t, `
stdw [%r10-8], 0
mov %r1, 10
lddw %r2, 0x7, src 4
mov %r3, %r10
add %r3, -8
mov %r4, 0
call 181
ldxdw %r0, [%r10-8]
exit
cb:
ldxdw %r0, [%r2+0]
add %r0, %r1
stxdw [%r2+0], %r0
mov %r0, 0
exit`, vm.LoadOptions{Helpers: helpers})
	r0, err := vm.NewMachine().Run(p)
	if err != nil || r0 != 45 {
		t.Fatalf("r0=%d err=%v", r0, err)
	}
}

func TestConcurrentMachines(t *testing.T) {
	p := mustLoad(t, "mov %r0, 0\nmov %r2, 1\nl: lock add [%r1+0], %r2\nadd %r0, 1\njlt %r0, 1000, l\nexit", vm.LoadOptions{})
	shared := make([]byte, 8)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := vm.NewMachine()
			if _, err := m.Run(p, m.NewPointer(vm.Region{Data: shared, Writable: true, Kind: vm.RegionMapValue})); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got := binary.LittleEndian.Uint64(shared); got != 4000 {
		t.Fatalf("atomic adds: %d", got)
	}
}

// FuzzVM: arbitrary bytecode never panics or hangs the VM; it is rejected
// at load or runs to an exit or a clean error within the budget.
func FuzzVM(f *testing.F) {
	for _, s := range []string{
		"mov %r0, 1\nexit",
		"ldxdw %r0, [%r1+0]\nstxdw [%r10-8], %r0\nlock fetch add [%r10-8], %r0\nexit",
		"call local f\nexit\nf: call local f\nexit",
		"l: ja l\nexit",
		"ldabsw 0\nldindb %r1, 1\nexit",
		"mov %r2, 1\ncall %r2\nexit",
	} {
		insns, err := asm.Assemble(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(vm.Encode(insns), false)
	}
	f.Fuzz(func(t *testing.T, code []byte, linux bool) {
		insns, err := vm.Decode(code[:len(code)/8*8])
		if err != nil || len(insns) == 0 {
			return
		}
		mode := vm.ModeISA
		if linux {
			mode = vm.ModeLinux
		}
		p, err := vm.Load(insns, vm.LoadOptions{Mode: mode, Helpers: vm.ConformanceHelpers()})
		if err != nil {
			if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.EACCES) && !errors.Is(err, unix.E2BIG) {
				t.Fatalf("load error without errno: %v", err)
			}
			return
		}
		m := vm.NewMachine()
		m.Budget = 20000
		mem := make([]byte, 64)
		m.SetPacket(mem)
		_, err = m.Run(p, m.NewPointer(vm.Region{Data: mem, Writable: true, Kind: vm.RegionMemory}), uint64(len(mem)))
		if errors.Is(err, vm.ErrPanic) {
			t.Fatalf("internal error: %v\n%s", err, asm.Disassemble(insns))
		}
	})
}
