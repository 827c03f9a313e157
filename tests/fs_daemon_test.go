package tests

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// newMountDir returns a fresh empty directory for a mount the test manages itself.
func newMountDir(t *testing.T) string {
	t.Helper()
	requireFUSE(t)
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, ok := mounted(dir); ok {
			exec.Command(bin, "umount", dir).Run()
			unix.Unmount(dir, unix.MNT_DETACH)
		}
	})
	return dir
}

func waitMounted(t *testing.T, dir string, want bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, ok := mounted(dir); ok == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: mounted=%v after 10 s, want %v", dir, !want, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestFSDaemonBackground: mount returns once the mount serves, the daemon runs detached, and
// umount stops it.
func TestFSDaemonBackground(t *testing.T) {
	dir := newMountDir(t)
	cli(t, "mount", "-o", "allow_other", dir)
	// Ready at once: no polling needed.
	if typ, ok := mounted(dir); !ok || typ != "fuse.bpffs-fuse" {
		t.Fatalf("after mount returned: mounted=%v type %q", ok, typ)
	}
	if _, err := os.Stat(dir + "/maps.debug"); err != nil {
		t.Fatal(err)
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if !strings.Contains(string(mi), "allow_other") {
		t.Errorf("allow_other missing from mountinfo")
	}
	pid := fsDaemonPID(t, dir)
	if pid == os.Getpid() || pid <= 0 {
		t.Fatalf("daemon pid %d", pid)
	}
	// The control socket is announced on the root.
	buf := make([]byte, 256)
	if n, err := unix.Getxattr(dir, "user.bpffs.control", buf); err != nil || !strings.HasSuffix(string(buf[:n]), ".sock") {
		t.Errorf("user.bpffs.control: %q %v", buf[:n], err)
	}
	cli(t, "umount", dir)
	waitGone(t, pid)
	if _, ok := mounted(dir); ok {
		t.Fatal("still mounted after umount")
	}
	// umount of something that is not a bpffs-fuse mount fails.
	if err := exec.Command(bin, "umount", dir).Run(); err == nil {
		t.Error("umount of an unmounted dir succeeded")
	}
}

// TestFSDaemonBadOptions: bad -o values fail the mount with the kernel's wording and mount
// nothing; unknown options are ignored like the kernel's bpffs does.
func TestFSDaemonBadOptions(t *testing.T) {
	dir := newMountDir(t)
	for _, o := range []string{"mode=9", "mode=", "uid=abc", "gid=-1", "uid=4294967295"} {
		out, err := exec.Command(bin, "mount", "-o", o, dir).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "bad value for") {
			t.Errorf("-o %s: %v %s", o, err, out)
		}
		if _, ok := mounted(dir); ok {
			t.Fatalf("-o %s mounted", o)
		}
	}
	cli(t, "mount", "-o", "foo=bar,rw,nosuid,delegate_cmds=any", dir)
	cli(t, "umount", dir)
}

// TestFSDaemonForegroundSignals: -f serves in the foreground; SIGTERM unmounts cleanly, and
// SIGINT on a busy mount (a process inside it) detaches it lazily.
func TestFSDaemonForegroundSignals(t *testing.T) {
	for _, c := range []struct {
		sig  syscall.Signal
		busy bool
	}{{syscall.SIGTERM, false}, {syscall.SIGINT, true}} {
		dir := newMountDir(t)
		cmd := exec.Command(bin, "mount", "-f", dir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitMounted(t, dir, true)
		var busy *exec.Cmd
		if c.busy {
			busy = exec.Command("sleep", "30")
			busy.Dir = dir
			if err := busy.Start(); err != nil {
				t.Fatal(err)
			}
		}
		cmd.Process.Signal(c.sig)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%v: daemon exit: %v", c.sig, err)
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("%v: daemon did not exit", c.sig)
		}
		if _, ok := mounted(dir); ok {
			t.Errorf("%v: still mounted", c.sig)
		}
		if busy != nil {
			busy.Process.Kill()
			busy.Wait()
		}
	}
}

// TestFSDaemonStaleMount: a daemon killed with SIGKILL leaves a dead mount (ENOTCONN); the
// next mount on that directory cleans it up, and umount works on a dead mount too.
func TestFSDaemonStaleMount(t *testing.T) {
	dir := newMountDir(t)
	cli(t, "mount", dir)
	pid := fsDaemonPID(t, dir)
	unix.Kill(pid, unix.SIGKILL)
	waitGone(t, pid)
	// The daemon's threads may still be closing /dev/fuse when its leader is a zombie: a
	// request caught in that window fails with ECONNABORTED (or EIO); once the connection is
	// gone every request gets ENOTCONN.
	var sf unix.Statfs_t
	err := unix.Statfs(dir, &sf)
	for deadline := time.Now().Add(5 * time.Second); !errors.Is(err, unix.ENOTCONN) && time.Now().Before(deadline); {
		if !errors.Is(err, unix.ECONNABORTED) && !errors.Is(err, unix.EIO) {
			break
		}
		time.Sleep(10 * time.Millisecond)
		err = unix.Statfs(dir, &sf)
	}
	expectErrno(t, "statfs of a dead mount", err, unix.ENOTCONN)
	cli(t, "mount", dir)
	var st unix.Stat_t
	if err := unix.Stat(dir+"/maps.debug", &st); err != nil {
		t.Fatalf("after remount: %v", err)
	}
	pid = fsDaemonPID(t, dir)
	unix.Kill(pid, unix.SIGKILL)
	waitGone(t, pid)
	cli(t, "umount", dir)
	if _, ok := mounted(dir); ok {
		t.Fatal("dead mount still there after umount")
	}
}

// TestFSMountHelper: mount(8)'s helper forms. "mount -t fuse.bpffs-fuse bpffs DIR" runs
// /sbin/mount.fuse.bpffs-fuse if installed, else mount.fuse3, which runs "bpffs-fuse bpffs DIR
// -o OPTS" from PATH; "mount -t fuse bpffs-fuse#bpffs DIR" goes through mount.fuse3 too.
func TestFSMountHelper(t *testing.T) {
	if _, err := exec.LookPath("mount.fuse3"); err != nil {
		if _, err := os.Stat("/sbin/mount.fuse3"); err != nil {
			t.Skip("mount.fuse3 (fuse3) is not installed")
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("mount(8) needs root here")
	}
	// mount(8) resets PATH for its helpers, so "mount -t fuse.bpffs-fuse" needs bpffs-fuse
	// installed; mount.fuse3 itself searches the PATH it is given.
	path := filepath.Dir(bin) + ":" + os.Getenv("PATH")
	forms := [][]string{
		{"mount.fuse3", "bpffs", "DIR", "-t", "fuse.bpffs-fuse", "-o", "mode=0700,uid=7"},
		{"mount.fuse3", "bpffs-fuse#bpffs", "DIR", "-o", "mode=0700,uid=7"},
	}
	if p, err := exec.LookPath("bpffs-fuse"); err == nil && strings.HasPrefix(p, "/") {
		forms = append(forms, []string{"mount", "-t", "fuse.bpffs-fuse", "bpffs", "DIR", "-o", "mode=0700,uid=7"})
	} else {
		t.Log("bpffs-fuse not installed in PATH: mount -t fuse.bpffs-fuse itself not tested")
	}
	for _, args := range forms {
		dir := newMountDir(t)
		for i := range args {
			if args[i] == "DIR" {
				args[i] = dir
			}
		}
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = append(os.Environ(), "PATH="+path)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("mount %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		var st unix.Stat_t
		if err := unix.Stat(dir, &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode != unix.S_IFDIR|unix.S_ISVTX|0o700 || st.Uid != 7 {
			t.Errorf("mount %s: root mode %o uid %d", strings.Join(args, " "), st.Mode, st.Uid)
		}
		if typ, _ := mounted(dir); typ != "fuse.bpffs-fuse" {
			t.Errorf("type %q", typ)
		}
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Fatalf("umount: %v %s", err, out)
		}
	}
	// mount(8) itself, with the binary installed as /sbin/mount.fuse.bpffs-fuse: only when
	// BPFFS_TEST_INSTALL_HELPER=1 allows the test to put that symlink there for its duration.
	if os.Getenv("BPFFS_TEST_INSTALL_HELPER") == "1" {
		const helper = "/sbin/mount.fuse.bpffs-fuse"
		if _, err := os.Lstat(helper); err == nil {
			t.Logf("%s exists already: not replaced", helper)
		} else if err := os.Symlink(bin, helper); err != nil {
			t.Errorf("installing %s: %v", helper, err)
		} else {
			dir := newMountDir(t)
			out, err := exec.Command("mount", "-t", "fuse.bpffs-fuse", "bpffs", dir, "-o", "mode=0710,gid=5").CombinedOutput()
			os.Remove(helper)
			if err != nil {
				t.Fatalf("mount -t fuse.bpffs-fuse via %s: %v %s", helper, err, out)
			}
			var st unix.Stat_t
			unix.Stat(dir, &st)
			if st.Mode != unix.S_IFDIR|unix.S_ISVTX|0o710 || st.Gid != 5 {
				t.Errorf("mount(8) via %s: root mode %o gid %d", helper, st.Mode, st.Gid)
			}
			if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
				t.Errorf("umount: %v %s", err, out)
			}
		}
	} else {
		t.Log("BPFFS_TEST_INSTALL_HELPER is not 1: mount(8) through /sbin/mount.fuse.bpffs-fuse not tested")
	}
	// The binary installed as mount.fuse.bpffs-fuse: mount(8)'s helper calling convention.
	dir := newMountDir(t)
	helper := filepath.Join(t.TempDir(), "mount.fuse.bpffs-fuse")
	if err := os.Symlink(bin, helper); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(helper, "bpffs", dir, "-o", "rw,mode=0711").CombinedOutput(); err != nil {
		t.Fatalf("%s: %v %s", helper, err, out)
	}
	var st unix.Stat_t
	unix.Stat(dir, &st)
	if st.Mode != unix.S_IFDIR|unix.S_ISVTX|0o711 {
		t.Errorf("helper mount: root mode %o", st.Mode)
	}
	cli(t, "umount", dir)
}

// TestFSPinsFromOutside: pins made and objects created through the engine (the CLI, over the
// control socket) appear in the mount at once, also where the kernel cached a lookup or a
// listing, and rm through FUSE unpins what the CLI sees.
func TestFSPinsFromOutside(t *testing.T) {
	d := mountFS(t)
	mustSh(t, d, "mkdir sub")
	// Cache a negative lookup and a listing first.
	if _, err := os.Stat(d + "/sub/m"); !os.IsNotExist(err) {
		t.Fatalf("stat before pin: %v", err)
	}
	if out := mustSh(t, d, "ls sub"); out != "" {
		t.Fatalf("ls sub: %q", out)
	}
	mkmap(t, d+"/sub/m", "hash", 4, 4, 4)
	if _, err := os.Stat(d + "/sub/m"); err != nil {
		t.Fatalf("pin made through the CLI not visible: %v", err)
	}
	if out := mustSh(t, d, "ls sub"); out != "m\n" {
		t.Fatalf("ls sub after pin: %q", out)
	}
	// A second name through the CLI (map pin), then rm both through FUSE.
	cli(t, "map", "pin", "pinned", d+"/sub/m", d+"/m2")
	if out := mustSh(t, d, "ls"); !strings.Contains(out, "m2\n") {
		t.Fatalf("ls after map pin: %q", out)
	}
	mustSh(t, d, "rm sub/m m2")
	if out, err := exec.Command(bin, "map", "show", "pinned", d+"/m2").CombinedOutput(); err == nil {
		t.Fatalf("map show of a removed pin succeeded: %s", out)
	}
	// maps.debug lists the engine's maps.
	mkmap(t, d+"/counters", "hash", 4, 8, 128)
	mustSh(t, d, "echo '1 1' > counters")
	md := mustSh(t, d, "cat maps.debug")
	if !strings.HasPrefix(md, "  id name             max_entries  cur_entries\n") || !strings.Contains(md, " counters                 128            1\n") {
		t.Errorf("maps.debug:\n%s", md)
	}
	if out := mustSh(t, d, "cat progs.debug"); out != "  id name             attached\n" {
		t.Errorf("progs.debug: %q", out)
	}
}
