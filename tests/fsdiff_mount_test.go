package tests

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// rootState describes a mount's root directory and its top-level entries (the preloaded
// maps.debug and progs.debug).
func rootState(t testing.TB, root string) string {
	t.Helper()
	var b strings.Builder
	for _, e := range snapshot(t, root) {
		if strings.Count(e.rel, "/") > 0 {
			continue
		}
		fmt.Fprintf(&b, "%s %v n=%d %d:%d size=%d\n", e.rel, e.mode, e.nlink, e.uid, e.gid, e.size)
	}
	return b.String()
}

// TestFSDiffMountOptions mounts both filesystems with the same mode=/uid=/gid= options and compares
// the root's mode, owner and link count and the entries present at mount time (a.2, a.3).
func TestFSDiffMountOptions(t *testing.T) {
	for _, opts := range []string{"", "mode=0700", "mode=755,uid=1,gid=2", "uid=65534,gid=65534", "mode=0", "mode=01777", "mode=4777"} {
		t.Run(strings.ReplaceAll(opts, "=", ":"), func(t *testing.T) {
			var args []string
			if opts != "" {
				args = []string{"-o", opts}
			}
			o := oursTree(t, args...)
			k := kernelTree(t, opts)
			want, got := rootState(t, k.root), rootState(t, o.root)
			if got != want {
				t.Errorf("root after mount -o %q\nkernel:\n%s\nours:\n%s", opts, want, got)
			}
		})
	}
}

// TestFSDiffStatfs compares the statfs fields FUSE can show: f_bsize, f_frsize, f_namelen and the
// block and inode counts (all 0 on bpffs). f_type is FUSE's magic on ours by design: the kernel
// fills it in from the filesystem type, and FUSE cannot choose it.
func TestFSDiffStatfs(t *testing.T) {
	o := oursTree(t)
	k := kernelTree(t, "")
	show := func(root string) string {
		var st unix.Statfs_t
		if err := unix.Statfs(root, &st); err != nil {
			return "statfs: " + err.Error()
		}
		return fmt.Sprintf("bsize=%d frsize=%d namelen=%d blocks=%d bfree=%d bavail=%d files=%d ffree=%d",
			st.Bsize, st.Frsize, st.Namelen, st.Blocks, st.Bfree, st.Bavail, st.Files, st.Ffree)
	}
	want, got := show(k.root), show(o.root)
	if got != want {
		t.Errorf("statfs\nkernel: %s\nours:   %s", want, got)
	}
	// The same through a pin and a subdirectory.
	for _, tr := range []*fsTree{k, o} {
		if err := os.Mkdir(tr.root+"/d", 0o755); err != nil {
			t.Fatal(err)
		}
		tr.pin(t, tr.root+"/d/m", 0o022)
	}
	for _, p := range []string{"/d", "/d/m"} {
		if want, got := show(k.root+p), show(o.root+p); got != want {
			t.Errorf("statfs %s\nkernel: %s\nours:   %s", p, want, got)
		}
	}
}

// rootCases are operations on the preloaded files at the mount root (a.2: unlink, rename and link
// of maps.debug/progs.debug give EPERM). They run in order on one fresh mount of each kind.
var rootCases = []fsCase{
	{"unlink/maps.debug", nil, opUnlink("maps.debug")},
	{"unlink/progs.debug", nil, opUnlink("progs.debug")},
	{"rename/maps.debug", nil, opRename("maps.debug", "x", 0)},
	{"rename-exchange/maps.debug-progs.debug", nil, opRename("maps.debug", "progs.debug", unix.RENAME_EXCHANGE)},
	{"rename/over-maps.debug", []string{"d a"}, opRename("a", "maps.debug", 0)},
	{"link/maps.debug", nil, opLink("maps.debug", "x")},
	{"rmdir/maps.debug", nil, opRmdir("maps.debug")},
	{"mkdir/maps.debug", nil, opMkdir("maps.debug", 0o777)},
	{"pin/maps.debug", nil, opPin("maps.debug", 0o022)},
	{"symlink/maps.debug", nil, opSymlink("x", "maps.debug")},
	{"chown/maps.debug", nil, opChown("maps.debug", 1, 1)},
	{"chmod/maps.debug", nil, opChmod("maps.debug", 0o444)},
	{"get/maps.debug", nil, opGet("maps.debug")},
	{"rename/root-dotdot", nil, opRename("maps.debug", "../x", 0)},
	{"rmdir/root", nil, opRmdir(".")},
}

// TestFSDiffRootOps runs rootCases at the root of a fresh kernel bpffs and a fresh bpffs-fuse and
// compares errnos and the resulting root listings.
func TestFSDiffRootOps(t *testing.T) {
	k := kernelTree(t, "")
	o := oursTree(t)
	withUmask(0o022, func() {
		for _, c := range rootCases {
			t.Run(c.name, func(t *testing.T) {
				var res [2]string
				for j, tr := range []*fsTree{k, o} {
					applySetup(t, tr, tr.root, c.setup)
					before := snapshot(t, tr.root)
					tick()
					err := c.op(tr, tr.root)
					res[j] = errnoText(t, err) + "\n" + render(before, snapshot(t, tr.root), nil)
					for _, s := range c.setup { // leave the root as it was
						os.Remove(at(tr.root, strings.Fields(s)[1]))
					}
				}
				diffOrKnown(t, c.name, res[0], res[1])
			})
		}
	})
}

// TestFSDiffMountOptionErrors compares which mount option strings are accepted (a.3): bad
// mode/uid/gid values fail, unknown options are ignored. Ours fails with a message and exit
// status 255 where the kernel's mount(2) fails with EINVAL.
func TestFSDiffMountOptionErrors(t *testing.T) {
	requireKernel(t)
	requireDaemon(t)
	requireFUSE(t)
	for _, opts := range []string{"mode=xyz", "mode=0800", "mode=", "mode=99999", "uid=abc", "gid=-1",
		"uid=4294967295", "foo=bar", "rw,nosuid,nodev,noexec,relatime", "mode=700,uid=0,gid=0",
		"delegate_cmds=any", "delegate_maps=bogus"} {
		t.Run(strings.ReplaceAll(opts, "=", ":"), func(t *testing.T) {
			kdir, odir := t.TempDir(), t.TempDir()
			want := "accepted"
			if err := unix.Mount("bpf", kdir, "bpf", 0, opts); err != nil {
				want = "refused"
			} else {
				unix.Unmount(kdir, unix.MNT_DETACH)
			}
			got := "accepted"
			if out, err := exec.Command(bin, "mount", "-o", opts, odir).CombinedOutput(); err != nil {
				got = "refused"
				if !strings.Contains(string(out), "Error: ") {
					t.Errorf("mount -o %s failed without an Error: line: %s", opts, out)
				}
			} else {
				exec.Command(bin, "umount", odir).Run()
			}
			diffOrKnown(t, "mount-opts/"+opts, want, got)
		})
	}
}
