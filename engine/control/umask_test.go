package control

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/bpffs-fuse/bpffs-fuse/engine"
	"github.com/bpffs-fuse/bpffs-fuse/objects"
	"github.com/bpffs-fuse/bpffs-fuse/pinning"
)

// TestPinUsesPeerUmask checks that a pin made through the control socket gets 0600 &^ the
// caller's umask, as BPF_OBJ_PIN on the kernel's bpffs does (kernel-semantics a.2).
func TestPinUsesPeerUmask(t *testing.T) {
	eng, path := startServer(t, Policy{})
	mnt := filepath.Join(t.TempDir(), "mnt")
	tree := pinning.New(pinning.Options{Mode: 0o777, MountDir: mnt})
	eng.AddMount(mnt, tree)
	defer eng.RemoveMount(mnt)
	for _, c := range []struct {
		umask int
		mode  uint32
	}{{0o022, 0o600}, {0o277, 0o400}, {0, 0o600}, {0o177, 0o600}, {0o077, 0o600}, {0o377, 0o400}, {0o777, 0}} {
		old := unix.Umask(c.umask)
		cl, err := Dial(path) // the umask is read when the connection arrives
		unix.Umask(old)
		if err != nil {
			t.Fatal(err)
		}
		fd, err := cl.MapCreate(&engine.MapCreateAttr{MapType: objects.MapTypeHash, KeySize: 4, ValueSize: 8, MaxEntries: 1})
		if err != nil {
			t.Fatal(err)
		}
		name := "m" + string(rune('a'+c.umask%26))
		if err := cl.ObjPin(fd, mnt+"/"+name, 0); err != nil {
			t.Fatal(err)
		}
		n, err := tree.Lookup(tree.Root(), name)
		if err != nil {
			t.Fatal(err)
		}
		if got := n.Attr().Mode & 0o7777; got != c.mode {
			t.Errorf("umask %04o: pin mode %04o, want %04o", c.umask, got, c.mode)
		}
		cl.Exit()
	}
	if m, ok := peerUmask(int32(os.Getpid())); !ok || m != uint32(currentUmask()) {
		t.Errorf("peerUmask(self) = %04o, %v; want %04o", m, ok, currentUmask())
	}
	if _, ok := peerUmask(0); ok {
		t.Errorf("peerUmask(0) ok")
	}
}

func currentUmask() int {
	m := unix.Umask(0)
	unix.Umask(m)
	return m
}
