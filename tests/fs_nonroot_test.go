package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestFSDaemonNonRoot: a user who is not root mounts through fusermount3 (the setuid helper),
// and the mount, the CLI over its control socket, cat and echo work for that user. As root the
// test lets uid 65534 open /dev/fuse for its duration (distributions ship it 0666; this
// machine's is 0600) and restores the mode afterwards.
func TestFSDaemonNonRoot(t *testing.T) {
	requireFUSE(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the daemon as another user")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("setpriv not installed")
	}
	if _, err := exec.LookPath("fusermount3"); err != nil {
		skipOrFail(t, "BPFFS_REQUIRE_FUSE", "fusermount3 not installed")
	}
	st, err := os.Stat("/dev/fuse")
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm()&0o006 != 0o006 {
		if err := os.Chmod("/dev/fuse", st.Mode().Perm()|0o006); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod("/dev/fuse", st.Mode().Perm()) })
	}
	// A directory tree the user can reach: t.TempDir's parents are 0700.
	base, err := os.MkdirTemp("/tmp", "bpffs-nonroot-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	mnt, run := filepath.Join(base, "mnt"), filepath.Join(base, "run")
	for _, d := range []string{mnt, run} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b := copyBinaries(t, base)
	for _, p := range []string{base, mnt, run} {
		if err := os.Chown(p, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	as := func(script string) shResult {
		cmd := exec.Command(setpriv, "--reuid", "65534", "--regid", "65534", "--clear-groups",
			"env", "HOME="+base, "BPFFS_RUNTIME_DIR="+run, "B="+b, "M="+mnt, "sh", "-c", script)
		return runCmd(t, cmd)
	}
	r := as(`"$B" mount "$M"`)
	if r.Code != 0 {
		t.Fatalf("mount as uid 65534: exit %d: %s", r.Code, r.Stderr)
	}
	t.Cleanup(func() {
		if r := as(`"$B" umount "$M"`); r.Code != 0 {
			t.Errorf("umount as uid 65534: exit %d: %s", r.Code, r.Stderr)
		}
	})
	if mi, err := os.ReadFile("/proc/self/mountinfo"); err != nil || !strings.Contains(string(mi), mnt+" ") {
		t.Fatalf("%s is not in mountinfo", mnt)
	}
	r = as(`"$B" map create "$M/m" type hash key 4 value 8 entries 4 name m && echo '1 2' > "$M/m" && cat "$M/m" && stat -c '%U %a' "$M/m"`)
	if r.Code != 0 {
		t.Fatalf("exit %d: %s", r.Code, r.Stderr)
	}
	want := "# hash name m key 4 value 8 max_entries 4\n01 00 00 00: 02 00 00 00 00 00 00 00\nnobody 600\n"
	if r.Stdout != want {
		t.Fatalf("got\n%s\nwant\n%s", r.Stdout, want)
	}
}
