package tests

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
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

// kernelMapID returns the id of the kernel map behind fd (BPF_OBJ_GET_INFO_BY_FD: bpf_fd at 0,
// info_len at 4, info at 8; struct bpf_map_info has id at offset 4).
func kernelMapID(fd int) (uint32, error) {
	var info [128]byte
	var attr [fsAttrSize]byte
	fsPut32(attr[0:], uint32(fd))
	fsPut32(attr[4:], uint32(len(info)))
	*(*uint64)(unsafe.Pointer(&attr[8])) = uint64(uintptr(unsafe.Pointer(&info[0])))
	if _, errno := fsBPF(15, &attr); errno != 0 {
		return 0, errno
	}
	return *(*uint32)(unsafe.Pointer(&info[4])), nil
}

// kernelMapByID opens the kernel map with the given id (BPF_MAP_GET_FD_BY_ID) and closes it.
func kernelMapByID(id uint32) error {
	var attr [fsAttrSize]byte
	fsPut32(attr[0:], id)
	fd, errno := fsBPF(14, &attr)
	if errno != 0 {
		return errno
	}
	unix.Close(fd)
	return nil
}

// lifeSide is what TestFSDiffUnpinFrees needs of a side besides objSide.
type lifeSide struct {
	objSide
	id   func(fd int) (uint32, error)
	byID func(id uint32) error
}

// lifeOutcome pins a map, drops its fd, and removes its names one at a time (unlink, rename,
// unlink of the last hard link), reporting whether the map's id still resolves after each step.
// The kernel frees a pinned map only when its last name is gone and no fd holds it
// (kernel/bpf/inode.c:bpf_free_inode after an RCU grace period, so the last step is polled).
func lifeOutcome(t *testing.T, s lifeSide, root string) string {
	var b strings.Builder
	e := func(err error) string { return errnoText(t, err) }
	alive := func(id uint32, wantGone bool) string {
		for i := 0; i < 200; i++ {
			err := s.byID(id)
			if err == nil && wantGone {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return e(err)
		}
		return "still alive after 2s"
	}
	fd, err := s.create()
	if err != nil {
		t.Fatalf("map create: %v", err)
	}
	id, err := s.id(fd)
	if err != nil {
		t.Fatalf("map id: %v", err)
	}
	fmt.Fprintf(&b, "pin p: %s\n", e(s.pin(fd, root+"/p", 0)))
	fmt.Fprintf(&b, "link p l: %s\n", e(os.Link(root+"/p", root+"/l")))
	s.close(fd)
	fmt.Fprintf(&b, "fd closed, by id: %s\n", alive(id, false))
	fmt.Fprintf(&b, "unlink p: %s, by id: %s\n", e(os.Remove(root+"/p")), alive(id, false))
	fmt.Fprintf(&b, "rename l l2: %s, by id: %s\n", e(os.Rename(root+"/l", root+"/l2")), alive(id, false))
	fmt.Fprintf(&b, "unlink l2: %s, by id: %s\n", e(os.Remove(root+"/l2")), alive(id, true))

	// An fd opened from the pin keeps the map after the pin is gone.
	fd, _ = s.create()
	id, _ = s.id(fd)
	fmt.Fprintf(&b, "pin q: %s\n", e(s.pin(fd, root+"/q", 0)))
	s.close(fd)
	g, err := s.get(root+"/q", 0)
	fmt.Fprintf(&b, "get q: %s\n", e(err))
	fmt.Fprintf(&b, "unlink q: %s, by id: %s\n", e(os.Remove(root+"/q")), alive(id, false))
	// Renaming a pin over another unpins the one replaced.
	fd2, _ := s.create()
	id2, _ := s.id(fd2)
	fmt.Fprintf(&b, "pin r: %s, pin q: %s\n", e(s.pin(fd2, root+"/r", 0)), e(s.pin(g, root+"/q", 0)))
	s.close(fd2)
	s.close(g)
	fmt.Fprintf(&b, "rename q over r: %s, r's old map by id: %s, q's map by id: %s\n",
		e(os.Rename(root+"/q", root+"/r")), alive(id2, true), alive(id, false))
	fmt.Fprintf(&b, "unlink r: %s, by id: %s\n", e(os.Remove(root+"/r")), alive(id, true))
	return b.String()
}

// TestFSDiffUnpinFrees compares when a pinned map is freed (its id stops resolving) as names are
// unlinked, renamed over and fds closed: the kernel through bpf(2) on its bpffs, ours through the
// control socket and real unlink(2)/rename(2) on the mount.
func TestFSDiffUnpinFrees(t *testing.T) {
	k := kernelTree(t, "")
	o := oursTree(t)
	c := oursControl(t, o.root)
	want := lifeOutcome(t, lifeSide{kernelObjSide(), kernelMapID, kernelMapByID}, k.root)
	got := lifeOutcome(t, lifeSide{controlObjSide(c),
		func(fd int) (uint32, error) { i, err := c.MapGetInfoByFD(fd); return i.ID, err },
		func(id uint32) error {
			fd, err := c.MapGetFDByID(id, 0)
			if err == nil {
				c.Close(fd)
			}
			return err
		}}, o.root)
	if got != want {
		t.Errorf("kernel:\n%s\nours:\n%s", want, got)
	}
}

// TestFSDiffObjGetDAC compares BPF_OBJ_GET's permission check (a.7: flags 0 needs read and write
// permission on the pin) for a root caller without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH
// (setpriv), on a pin owned by uid 1: bpftool map show pinned on the kernel's bpffs vs
// bpffs-fuse map show pinned on ours; and cat of the pin on ours, which the kernel checks
// through FUSE's default_permissions.
func TestFSDiffObjGetDAC(t *testing.T) {
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("setpriv not installed")
	}
	if _, err := exec.LookPath("bpftool"); err != nil {
		skipOrFail(t, "BPFFS_REQUIRE_KERNEL", "bpftool not installed")
	}
	k := kernelTree(t, "")
	o := oursTree(t)
	drop := []string{"--inh-caps=-dac_override,-dac_read_search", "--bounding-set=-dac_override,-dac_read_search"}
	run := func(tool string, args ...string) string {
		return errnoText(t, cliErr(exec.Command(setpriv, append(append(drop, tool), args...)...)))
	}
	for _, mode := range []uint32{0o600, 0o644, 0o666, 0o444, 0o222} {
		for _, tr := range []*fsTree{k, o} {
			p := fmt.Sprintf("%s/m%o", tr.root, mode)
			tr.pin(t, p, 0o022)
			if err := os.Chown(p, 1, 1); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, os.FileMode(mode)); err != nil {
				t.Fatal(err)
			}
		}
		name := fmt.Sprintf("get-dac/%04o", mode)
		want := run("bpftool", "map", "show", "pinned", fmt.Sprintf("%s/m%o", k.root, mode))
		got := run(bin, "map", "show", "pinned", fmt.Sprintf("%s/m%o", o.root, mode))
		t.Run(name, func(t *testing.T) { diffOrKnown(t, name, want, got) })
	}
	// The FUSE side is checked by the kernel itself: a uid-1 0600 pin is not readable.
	p := o.root + "/m600"
	if got := run("cat", p); got != "EACCES" {
		t.Errorf("cat of a uid-1 0600 pin without CAP_DAC_OVERRIDE: %s, want EACCES", got)
	}
}

// TestFSDiffCLIPin compares "map pin id N PATH" errors: bpftool against the kernel's bpffs and
// bpffs-fuse's CLI against a bpffs-fuse mount, each pinning a map of its own side (kept open by
// the test) at the same relative paths. Compared: the errno each tool names, and the tree.
func TestFSDiffCLIPin(t *testing.T) {
	if _, err := exec.LookPath("bpftool"); err != nil {
		skipOrFail(t, "BPFFS_REQUIRE_KERNEL", "bpftool not installed")
	}
	k := kernelTree(t, "")
	o := oursTree(t)
	c := oursControl(t, o.root)
	kfd, err := kernelMapCreate(fsMapTypeHash, 4, 8, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(kfd)
	kid, err := kernelMapID(kfd)
	if err != nil {
		t.Fatal(err)
	}
	ofd, err := controlObjSide(c).create()
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.MapGetInfoByFD(ofd)
	if err != nil {
		t.Fatal(err)
	}
	sides := []struct {
		tr   *fsTree
		tool string
		id   uint32
	}{{k, "bpftool", kid}, {o, bin, info.ID}}
	cases := []shCase{
		{"new", nil, "m"},
		{"in-dir", dirA, "a/m"},
		{"exists-pin", pinM, "m"},
		{"exists-dir", dirA, "a"},
		{"exists-symlink", []string{"s l x"}, "l"},
		{"dotted", nil, "a.b"},
		{"missing-parent", nil, "no/m"},
		{"parent-is-pin", pinM, "m/x"},
		{"through-symlinked-dir", []string{"d a", "s l a"}, "l/m"},
		{"second-name", []string{"d a"}, "a/m2"},
	}
	withUmask(0o022, func() {
		for i, cs := range cases {
			t.Run(cs.name, func(t *testing.T) {
				var res [2]string
				for j, s := range sides {
					dir := fmt.Sprintf("%s/p%03d", s.tr.root, i)
					if err := os.Mkdir(dir, 0o777); err != nil {
						t.Fatal(err)
					}
					applySetup(t, s.tr, dir, cs.setup)
					before := snapshot(t, dir)
					tick()
					cmd := exec.Command(s.tool, "map", "pin", "id", fmt.Sprint(s.id), dir+"/"+cs.script)
					if s.tool == bin {
						// Name the daemon: other tests (and packages) may have mounts of
						// their own at the same time.
						cmd.Env = append(os.Environ(), "BPFFS_MOUNT="+s.tr.root)
					}
					err := cliErr(cmd)
					res[j] = errnoText(t, err) + "\n" + render(before, snapshot(t, dir), nil)
				}
				diffOrKnown(t, "cli-pin/"+cs.name, res[0], res[1])
			})
		}
	})
}
