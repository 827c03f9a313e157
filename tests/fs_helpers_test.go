package tests

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// bash runs script with bash -c in dir: bash's builtin echo reports the write(2) errno
// ("write error: File exists"), where dash only says "I/O error".
func bash(t testing.TB, dir, script string) shResult {
	t.Helper()
	return sh(t, dir, "exec bash -c "+shQuote(script))
}

func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// cli runs the built binary with args and fails the test unless it exits 0.
func cli(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("bpffs-fuse %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// mkmap creates a map pinned at path through the CLI (the daemon's control socket).
func mkmap(t testing.TB, path, typ string, key, value, entries int, extra ...string) {
	t.Helper()
	args := []string{"map", "create", path, "type", typ, "key", strconv.Itoa(key), "value",
		strconv.Itoa(value), "entries", strconv.Itoa(entries), "name", filepath.Base(path)}
	cli(t, append(args, extra...)...)
}

// catMap returns the listing of a map file without its header line.
func catMap(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("cat %s: %v", path, err)
	}
	s := string(b)
	if !strings.HasPrefix(s, "# ") {
		t.Fatalf("cat %s: no header line: %q", path, s)
	}
	_, rest, _ := strings.Cut(s, "\n")
	return rest
}

// sortedLines returns the lines of s sorted, for comparing hash listings.
func sortedLines(s string) []string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) == 1 && ls[0] == "" {
		return nil
	}
	sortStrings(ls)
	return ls
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// fsErrno returns the errno inside err (0 for nil).
func fsErrno(err error) unix.Errno {
	if err == nil {
		return 0
	}
	var e unix.Errno
	if errors.As(err, &e) {
		return e
	}
	return unix.Errno(0xffff)
}

// expectErrno fails unless err carries want (0: success).
func expectErrno(t testing.TB, what string, err error, want unix.Errno) {
	t.Helper()
	if got := fsErrno(err); got != want {
		t.Errorf("%s: got %v (%v), want %v", what, got, err, want)
	}
}

// fsDaemonPID returns the pid of the mount's daemon (the root's user.bpffs.pid xattr).
func fsDaemonPID(t testing.TB, dir string) int {
	t.Helper()
	buf := make([]byte, 32)
	n, err := unix.Getxattr(dir, "user.bpffs.pid", buf)
	if err != nil {
		t.Fatalf("getxattr user.bpffs.pid: %v", err)
	}
	pid, _ := strconv.Atoi(string(buf[:n]))
	return pid
}

// waitGone waits up to 10 s for pid to exit.
func waitGone(t testing.TB, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return
		}
		if i := strings.LastIndexByte(string(st), ')'); i > 0 && i+2 < len(st) && (st[i+2] == 'Z' || st[i+2] == 'X') {
			return // a zombie waiting for its reaper
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d still running", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// mounted reports whether dir is a mount point in /proc/self/mountinfo, and its fs type.
func mounted(dir string) (string, bool) {
	data, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 10 || f[4] != dir {
			continue
		}
		for i, x := range f {
			if x == "-" && i+1 < len(f) {
				return f[i+1], true
			}
		}
	}
	return "", false
}
