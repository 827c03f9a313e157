package vm_test

import (
	"fmt"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/bpffs-fuse/bpffs-fuse/engine/vm"
	"github.com/bpffs-fuse/bpffs-fuse/engine/vm/asm"
)

// TestKernelLdAbsInd compares the legacy packet loads with a SOCKET_FILTER
// program in the kernel: BPF_PROG_TEST_RUN gives the program an skb whose
// data starts after the 14-byte Ethernet header (net/bpf/test_run.c:
// eth_type_trans pulls it), which is the packet the VM gets here. Loads past
// the end make both return 0.
func TestKernelLdAbsInd(t *testing.T) {
	requireKernel(t)
	pkt := make([]byte, 64)
	for i := range pkt {
		pkt[i] = byte(0x10 + i)
	}
	pkt[12], pkt[13] = 0x08, 0x00 // IPv4 ethertype
	var progs []string
	for _, sz := range []string{"b", "h", "w"} {
		for _, off := range []int{0, 1, 3, 46, 48, 49, 50, 60} {
			progs = append(progs, fmt.Sprintf("mov %%r6, %%r1\nmov %%r0, 7\nldabs%s %d\nexit", sz, off))
			progs = append(progs, fmt.Sprintf("mov %%r6, %%r1\nmov %%r7, %d\nldind%s %%r7, 2\nexit", off, sz))
		}
	}
	progs = append(progs, "mov %r6, %r1\nmov %r7, -4\nldindb %r7, 5\nexit", "mov %r6, %r1\nmov %r7, -8\nldindb %r7, 2\nexit")
	// Not compared: offsets from SKF_NET_OFF (-0x100000) / SKF_LL_OFF address the
	// network/link headers in Linux; the VM has no skb, see ldPacket.
	m := vm.NewMachine()
	for _, src := range progs {
		insns, err := asm.Assemble(src)
		if err != nil {
			t.Fatal(err)
		}
		fd, err := kernelLoad(progTypeSocketFlt, insns)
		if err != nil {
			t.Fatalf("%s: kernel: %v", src, err)
		}
		kr, _, err := kernelTestRun(fd, append([]byte(nil), pkt...), 1)
		unix.Close(fd)
		if err != nil {
			t.Fatal(err)
		}
		p, err := vm.Load(insns, vm.LoadOptions{Mode: vm.ModeLinux})
		if err != nil {
			t.Fatal(err)
		}
		m.SetPacket(append([]byte(nil), pkt[14:]...))
		got, err := m.Run(p)
		if err != nil {
			t.Fatal(err)
		}
		if uint32(got) != kr {
			t.Errorf("%q: ours %#x, kernel %#x", src, got, kr)
		}
	}
}
