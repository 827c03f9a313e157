package tests

import (
	"fmt"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/bpffs-fuse/bpffs-fuse/engine"
	"github.com/bpffs-fuse/bpffs-fuse/engine/control"
)

// objSide is BPF_OBJ_PIN / BPF_OBJ_GET and two element ops on one side: the kernel through raw
// bpf(2), or a bpffs-fuse daemon through its control socket (the same engine.Process calls a Go
// program in another process makes).
type objSide struct {
	create func() (int, error)
	pin    func(fd int, path string, flags uint32) error
	get    func(path string, flags uint32) (int, error)
	update func(fd int) error
	lookup func(fd int) error
	close  func(fd int)
}

func kernelElem(cmd, fd int, key, value []byte) error {
	var attr [fsAttrSize]byte
	fsPut32(attr[0:], uint32(fd))
	*(*uint64)(unsafe.Pointer(&attr[8])) = uint64(uintptr(unsafe.Pointer(&key[0])))
	*(*uint64)(unsafe.Pointer(&attr[16])) = uint64(uintptr(unsafe.Pointer(&value[0])))
	if _, errno := fsBPF(cmd, &attr); errno != 0 {
		return errno
	}
	return nil
}

func kernelObjSide() objSide {
	key, value := make([]byte, 4), make([]byte, 8)
	return objSide{
		create: func() (int, error) { return kernelMapCreate(fsMapTypeHash, 4, 8, 4) },
		pin:    kernelObjPin,
		get:    kernelObjGet,
		update: func(fd int) error { return kernelElem(2, fd, key, value) }, // BPF_MAP_UPDATE_ELEM
		lookup: func(fd int) error { return kernelElem(1, fd, key, value) }, // BPF_MAP_LOOKUP_ELEM
		close:  func(fd int) { unix.Close(fd) },
	}
}

func controlObjSide(c *control.Client) objSide {
	key, value := make([]byte, 4), make([]byte, 8)
	return objSide{
		create: func() (int, error) {
			return c.MapCreate(&engine.MapCreateAttr{MapType: fsMapTypeHash, KeySize: 4, ValueSize: 8, MaxEntries: 4})
		},
		pin:    c.ObjPin,
		get:    c.ObjGet,
		update: func(fd int) error { return c.MapUpdateElem(fd, key, value, 0) },
		lookup: func(fd int) error { return c.MapLookupElem(fd, key, value, 0) },
		close:  func(fd int) { c.Close(fd) },
	}
}

// objOutcome runs the OBJ_PIN / OBJ_GET script of TestFSDiffObjFlags on one side, inside root.
func objOutcome(t *testing.T, s objSide, root string) string {
	var b strings.Builder
	e := func(err error) string { return errnoText(t, err) }
	fd, err := s.create()
	if err != nil {
		t.Fatalf("map create: %v", err)
	}
	defer s.close(fd)
	for _, c := range []struct {
		name  string
		fd    int
		flags uint32
	}{
		{"pin flags=RDONLY", fd, fsFRdonly},
		{"pin flags=1<<20", fd, 1 << 20},
		{"pin bad fd 999", 999, 0},
		{"pin ok", fd, 0},
		{"pin again", fd, 0},
	} {
		fmt.Fprintf(&b, "%s: %s\n", c.name, e(s.pin(c.fd, root+"/m", c.flags)))
	}
	fmt.Fprintf(&b, "pin same map under a 2nd name: %s\n", e(s.pin(fd, root+"/m2", 0)))
	for _, c := range []struct {
		name  string
		flags uint32
	}{
		{"0", 0},
		{"RDONLY", fsFRdonly},
		{"WRONLY", fsFWronly},
		{"RDONLY|WRONLY", fsFRdonly | fsFWronly},
		{"1<<2", 1 << 2},
		{"1<<20", 1 << 20},
	} {
		g, err := s.get(root+"/m", c.flags)
		fmt.Fprintf(&b, "get flags=%s: %s", c.name, e(err))
		if err == nil {
			fmt.Fprintf(&b, ", update %s, lookup %s", e(s.update(g)), e(s.lookup(g)))
			s.close(g)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// TestFSDiffObjFlags compares BPF_OBJ_PIN's and BPF_OBJ_GET's file_flags checks and the access
// mode of the fd OBJ_GET returns (a.6, a.7): the kernel through bpf(2) on its bpffs, ours through
// the daemon's control socket on a bpffs-fuse mount.
func TestFSDiffObjFlags(t *testing.T) {
	k := kernelTree(t, "")
	o := oursTree(t)
	want := objOutcome(t, kernelObjSide(), k.root)
	got := objOutcome(t, controlObjSide(oursControl(t, o.root)), o.root)
	if got != want {
		t.Errorf("kernel:\n%s\nours:\n%s", want, got)
	}
}
