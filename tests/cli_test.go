package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bpffs-fuse/bpffs-fuse/engine"
	"github.com/bpffs-fuse/bpffs-fuse/engine/control"
	"github.com/bpffs-fuse/bpffs-fuse/objects"
)

// ours runs the built binary with BPFFS_MOUNT unset (unless env sets it).
func ours(t testing.TB, env []string, args ...string) cliRun {
	t.Helper()
	return cliExec(t, append([]string{"BPFFS_MOUNT="}, env...), "", bin, args...)
}

// TestCLIHelp: every subcommand answers --help (and help) with its usage on stderr, exit 0.
func TestCLIHelp(t *testing.T) {
	cases := [][]string{
		{"--help"}, {"help"}, {"map", "help"}, {"map", "--help"}, {"-h", "map"}, {"batch", "--help"},
		{"prog", "--help"}, {"link", "help"}, {"btf", "--help"}, {"iter", "--help"}, {"cgroup", "--help"},
	}
	for _, c := range []string{"show", "list", "create", "dump", "update", "lookup", "getnext", "delete",
		"pin", "peek", "push", "pop", "enqueue", "dequeue", "freeze", "event_pipe"} {
		cases = append(cases, []string{"map", c, "--help"})
	}
	for _, args := range cases {
		r := ours(t, nil, args...)
		if r.code != 0 || !strings.Contains(r.stderr, "Usage:") {
			t.Errorf("%v: %v", args, r)
		}
	}
	if r := ours(t, nil, "-j", "map", "help"); r.code != 0 || r.stdout != "null\n" {
		t.Errorf("-j map help: %v", r)
	}
}

// TestCLIDaemonBinary: mount, umount and vm are bpffs-fused's, which bpffs-fuse runs from its
// own directory (or $PATH); without it they fail with a clear error and nothing is mounted.
func TestCLIDaemonBinary(t *testing.T) {
	for _, args := range [][]string{{"mount", "--help"}, {"vm", "help"}} {
		if r := ours(t, nil, args...); r.code != 0 || !strings.Contains(r.stdout, "Usage: bpffs-fuse "+args[0]) {
			t.Errorf("%v: %v", args, r)
		}
	}
	if r := ours(t, nil, "umount"); r.code != 255 || !strings.Contains(r.stderr, "Usage: bpffs-fuse mount") {
		t.Errorf("umount without DIR: %v", r)
	}
	alone := filepath.Join(t.TempDir(), "bpffs-fuse")
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(alone, data, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	r := cliExec(t, []string{"PATH=/usr/bin:/bin"}, "", alone, "mount", dir)
	if r.code != 255 || !strings.Contains(r.stderr, "Error: mount: bpffs-fused (installed beside bpffs-fuse) not found") {
		t.Errorf("mount without bpffs-fused: %v", r)
	}
	if mi, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mi), dir) {
		t.Errorf("%s mounted anyway", dir)
	}
}

// TestCLINotSupported: the objects that arrive with later issues fail clearly.
func TestCLINotSupported(t *testing.T) {
	for _, obj := range []string{"prog", "link", "btf", "iter", "cgroup"} {
		r := ours(t, nil, obj, "show")
		if r.code == 0 || r.stderr != "Error: bpffs-fuse "+obj+": not supported yet\n" {
			t.Errorf("%s show: %v", obj, r)
		}
	}
	mnt := mountFS(t)
	if r := ours(t, nil, "map", "create", mnt+"/pa", "type", "prog_array", "key", "4", "value", "4", "entries", "1", "name", "pa"); r.code != 0 {
		t.Fatalf("create prog_array: %v", r)
	}
	r := ours(t, nil, "map", "update", "pinned", mnt+"/pa", "key", "0", "0", "0", "0", "value", "id", "1")
	if r.code != 255 || !strings.Contains(r.stderr, "not supported yet") {
		t.Errorf("prog_array update: %v", r)
	}
	r = ours(t, nil, "map", "event_pipe", "pinned", mnt+"/pa")
	if r.code == 0 || !strings.Contains(r.stderr, "not supported yet") {
		t.Errorf("event_pipe: %v", r)
	}
}

// inNamespace runs script in a private mount namespace where every bpffs-fuse mount except
// keep has been detached (the daemons keep serving the host's mounts).
func inNamespace(t *testing.T, keep []string, script string) cliRun {
	t.Helper()
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare not installed")
	}
	var b strings.Builder
	b.WriteString(`for m in $(awk '$0 ~ / - fuse.bpffs-fuse / {print $5}' /proc/self/mountinfo); do case "$m" in`)
	for _, k := range keep {
		b.WriteString(" " + k + ")  ;;")
	}
	b.WriteString(` *) umount -l "$m";; esac; done; ` + script)
	return cliExec(t, []string{"BPFFS_MOUNT=", "B=" + bin}, "", "unshare", "-m", "--propagation", "private", "sh", "-c", b.String())
}

// TestCLIDiscovery: paths find their mount from anywhere inside it; id-based commands use
// --mount, BPFFS_MOUNT or the only mount, and fail clearly otherwise.
func TestCLIDiscovery(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a private mount namespace")
	}
	m1 := mountFS(t)
	m2 := mountFS(t)
	if err := os.MkdirAll(m1+"/a/b", 0o755); err != nil {
		t.Fatal(err)
	}
	if r := ours(t, nil, "map", "create", m1+"/a/b/m", "type", "array", "key", "4", "value", "4", "entries", "1", "name", "disc1"); r.code != 0 {
		t.Fatalf("create: %v", r)
	}
	if r := ours(t, nil, "map", "create", m2+"/m", "type", "hash", "key", "4", "value", "4", "entries", "1", "name", "disc2"); r.code != 0 {
		t.Fatalf("create: %v", r)
	}
	// A relative path from a directory inside the mount.
	cmd := exec.Command(bin, "map", "show", "pinned", "b/m")
	cmd.Dir = m1 + "/a"
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "name disc1") {
		t.Fatalf("relative path: %v\n%s", err, out)
	}
	// id 1 exists in both daemons: --mount and BPFFS_MOUNT choose.
	if r := ours(t, nil, "--mount", m2, "map", "show", "id", "1"); r.code != 0 || !strings.Contains(r.stdout, "name disc2") {
		t.Errorf("--mount m2: %v", r)
	}
	if r := ours(t, nil, "map", "show", "id", "1", "--mount="+m1+"/a"); r.code != 0 || !strings.Contains(r.stdout, "name disc1") {
		t.Errorf("--mount=m1/a: %v", r)
	}
	if r := ours(t, []string{"BPFFS_MOUNT=" + m2}, "map", "show", "id", "1"); r.code != 0 || !strings.Contains(r.stdout, "name disc2") {
		t.Errorf("BPFFS_MOUNT: %v", r)
	}
	if r := ours(t, nil, "--mount", t.TempDir(), "map", "show"); r.code != 255 || !strings.Contains(r.stderr, "is not on a bpffs-fuse mount") {
		t.Errorf("--mount outside: %v", r)
	}
	if r := ours(t, nil, "map", "show", "pinned", "/tmp/nowhere/x"); r.code != 255 || !strings.Contains(r.stderr, "not on a bpffs-fuse mount") {
		t.Errorf("pinned outside: %v", r)
	}
	// Only one mount: it is used. Two: a clear error. None: a clear error.
	r := inNamespace(t, []string{m1}, `"$B" map show id 1`)
	if r.code != 0 || !strings.Contains(r.stdout, "name disc1") {
		t.Errorf("only mount: %v", r)
	}
	r = inNamespace(t, []string{m1, m2}, `"$B" map show`)
	if r.code != 255 || !strings.Contains(r.stderr, "2 bpffs-fuse mounts") || !strings.Contains(r.stderr, "--mount DIR or BPFFS_MOUNT") {
		t.Errorf("two mounts: %v", r)
	}
	r = inNamespace(t, nil, `"$B" map show; "$B" map lookup id 3 key 0 0 0 0`)
	if r.code != 255 || strings.Count(r.stderr, "no bpffs-fuse mount found") != 2 {
		t.Errorf("no mount: %v", r)
	}
}

// TestCLIControlFDsReleased: a second process's fds (a control connection) are released when
// it disconnects; the CLI no longer sees its unpinned maps.
func TestCLIControlFDsReleased(t *testing.T) {
	mnt := mountFS(t)
	sock := make([]byte, 4096)
	n, err := unix.Getxattr(mnt, "user.bpffs.control", sock)
	if err != nil {
		t.Fatal(err)
	}
	c, err := control.Dial(string(sock[:n]))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := c.MapCreate(&engine.MapCreateAttr{MapType: objects.MapTypeHash, KeySize: 4, ValueSize: 4, MaxEntries: 1, MapName: "cl_tmp"}); err != nil {
			t.Fatal(err)
		}
	}
	if r := ours(t, nil, "--mount", mnt, "map", "show", "name", "cl_tmp"); r.code != 0 || strings.Count(r.stdout, "name cl_tmp") != 3 {
		t.Fatalf("before disconnect: %v", r)
	}
	c.Exit()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := ours(t, nil, "--mount", mnt, "map", "show")
		if r.code == 0 && !strings.Contains(r.stdout, "cl_tmp") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("maps still alive after disconnect: %v", r)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCLIUnauthorized: a uid that is not root, the owner or in control_group is refused with
// EPERM; with control_group naming its group it is let in.
func TestCLIUnauthorized(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the CLI as uid 65534")
	}
	dir, err := os.MkdirTemp("", "cli-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	nobodyBin := copyBinaries(t, dir)
	asNobody := func(args ...string) cliRun {
		cmd := exec.Command(nobodyBin, args...)
		cmd.Env = []string{"PATH=/usr/bin:/bin"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return cliRun{out.String(), errb.String(), code}
	}
	for _, tc := range []struct {
		opts string
		ok   bool
	}{{"allow_other", false}, {"allow_other,control_group=65534", true}} {
		mnt := mountFS(t, "-o", tc.opts)
		if r := ours(t, nil, "map", "create", mnt+"/m", "type", "array", "key", "4", "value", "4", "entries", "1", "name", "auth"); r.code != 0 {
			t.Fatalf("create: %v", r)
		}
		os.Chmod(filepath.Dir(mnt), 0o755)
		os.Chmod(filepath.Dir(filepath.Dir(mnt)), 0o755)
		r := asNobody("--mount", mnt, "map", "show", "name", "auth")
		if tc.ok {
			if r.code != 0 || !strings.Contains(r.stdout, "name auth") {
				t.Errorf("-o %s: uid 65534 in the control group refused: %v", tc.opts, r)
			}
			continue
		}
		if r.code != 255 || !strings.Contains(r.stderr, "Operation not permitted") {
			t.Errorf("-o %s: uid 65534 not refused: %v", tc.opts, r)
		}
		// The daemon keeps serving authorized users.
		if r := ours(t, nil, "map", "show", "pinned", mnt+"/m"); r.code != 0 {
			t.Errorf("after refusal: %v", r)
		}
	}
}

// TestCLIBatchStdin: `batch file -` reads commands from standard input.
func TestCLIBatchStdin(t *testing.T) {
	mnt := mountFS(t)
	in := "map create " + mnt + "/m type array key 4 value 4 entries 2 name bs\n" +
		"map update pinned " + mnt + "/m key 1 0 0 0 value 7 0 0 0\n" +
		"map lookup pinned " + mnt + "/m key 1 0 0 0\n"
	r := cliExec(t, nil, in, bin, "batch", "file", "-")
	want := "key: 01 00 00 00  value: 07 00 00 00\nprocessed 3 commands\n"
	if r.code != 0 || r.stdout != want {
		t.Fatalf("batch file -: %v", r)
	}
	if r := ours(t, nil, "batch", "file", "/nonexistent"); r.code != 255 || r.stderr != "Error: Can't open file (/nonexistent): No such file or directory\n" {
		t.Errorf("missing batch file: %v", r)
	}
	if r := ours(t, nil, "batch", "file"); r.code != 255 || r.stderr != "Error: too few parameters for batch\n" {
		t.Errorf("batch file: %v", r)
	}
}

// TestCLISymlinkedMount: a mount made through a symlinked path (as /var/run/x is /run/x) is
// found from either spelling, and pins land in it.
func TestCLISymlinkedMount(t *testing.T) {
	requireFUSE(t)
	base := t.TempDir()
	real := filepath.Join(base, "real")
	link := filepath.Join(base, "link")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "mount", link).CombinedOutput(); err != nil {
		t.Fatalf("mount %s: %v\n%s", link, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command(bin, "umount", real).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v\n%s", real, err, out)
		}
	})
	if r := ours(t, nil, "map", "create", link+"/m", "type", "array", "key", "4", "value", "4", "entries", "1", "name", "symm"); r.code != 0 {
		t.Fatalf("create through the link: %v", r)
	}
	for _, p := range []string{link + "/m", real + "/m"} {
		if r := ours(t, nil, "map", "update", "pinned", p, "key", "0", "0", "0", "0", "value", "1", "2", "3", "4"); r.code != 0 {
			t.Errorf("update %s: %v", p, r)
		}
	}
	if r := ours(t, nil, "-f", "map", "show", "--mount", link); r.code != 0 || !strings.Contains(r.stdout, "pinned "+real+"/m") {
		t.Errorf("show --mount link: %v", r)
	}
	if out, err := exec.Command("cat", real+"/m").CombinedOutput(); err != nil || !strings.Contains(string(out), "01 02 03 04") {
		t.Errorf("cat: %v\n%s", err, out)
	}
}
