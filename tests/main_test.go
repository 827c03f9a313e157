// Package tests holds bpffs-fuse's end-to-end tests: the built binary, real FUSE mounts in temp
// dirs driven by real shell commands, and differential tests against the running kernel.
package tests

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// bin is the bpffs-fuse binary built for this test run.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "bpffs-fuse-tests-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "bpffs-fuse")
	// Both binaries, as `make build` builds them: static, without cgo (a cgo build is
	// dynamically linked, and loading libc adds about 0.7 ms to every CLI exec; neither needs
	// C code). bpffs-fuse runs bpffs-fused from its own directory for mount, umount and vm.
	for _, b := range []struct{ out, pkg string }{{bin, "../cmd/bpffs-fuse"}, {filepath.Join(dir, "bpffs-fused"), "../cmd/bpffs-fused"}} {
		build := exec.Command("go", "build", "-o", b.out, b.pkg)
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building", b.pkg+":", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// copyBinaries copies bpffs-fuse and bpffs-fused into dir (for a user who cannot reach the
// test run's build directory) and returns the copy of bpffs-fuse.
func copyBinaries(t testing.TB, dir string) string {
	t.Helper()
	for _, name := range []string{"bpffs-fuse", "bpffs-fused"} {
		data, err := os.ReadFile(filepath.Join(filepath.Dir(bin), name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "bpffs-fuse")
}

// skipOrFail skips the test with reason, unless the environment variable env is "1" (as CI sets
// it), in which case the missing facility is a failure.
func skipOrFail(t testing.TB, env, reason string) {
	t.Helper()
	if os.Getenv(env) == "1" {
		t.Fatalf("%s is set but: %s", env, reason)
	}
	t.Skip(reason)
}

// requireKernel skips (or fails under BPFFS_REQUIRE_KERNEL=1) unless this process can create a
// BPF map and mount a kernel bpffs.
func requireKernel(t testing.TB) {
	t.Helper()
	if reason := kernelUnavailable(); reason != "" {
		skipOrFail(t, "BPFFS_REQUIRE_KERNEL", "kernel BPF unavailable: "+reason)
	}
}

func kernelUnavailable() string {
	// BPF_MAP_CREATE of a 1-entry array: union bpf_attr starts with map_type, key_size,
	// value_size, max_entries.
	var attr [128]byte
	le := func(off int, v uint32) {
		attr[off], attr[off+1], attr[off+2], attr[off+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	}
	le(0, 2)
	le(4, 4)
	le(8, 4)
	le(12, 1)
	fd, _, errno := unix.Syscall(unix.SYS_BPF, 0, uintptrOf(&attr), uintptr(len(attr)))
	if errno != 0 {
		return "bpf(BPF_MAP_CREATE): " + errno.Error()
	}
	unix.Close(int(fd))
	dir, err := os.MkdirTemp("", "bpffs-probe-")
	if err != nil {
		return err.Error()
	}
	defer os.Remove(dir)
	if err := unix.Mount("bpf", dir, "bpf", 0, ""); err != nil {
		return "mount -t bpf: " + err.Error()
	}
	unix.Unmount(dir, 0)
	return ""
}

// requireFUSE skips (or fails under BPFFS_REQUIRE_FUSE=1) unless FUSE mounts are possible.
func requireFUSE(t testing.TB) {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		skipOrFail(t, "BPFFS_REQUIRE_FUSE", "FUSE unavailable: "+err.Error())
	}
	if os.Geteuid() != 0 {
		if _, err := exec.LookPath("fusermount3"); err != nil {
			skipOrFail(t, "BPFFS_REQUIRE_FUSE", "FUSE unavailable: not root and no fusermount3")
		}
	}
}

// mountFS mounts a fresh bpffs-fuse in a temp dir with the given mount arguments and unmounts it
// when the test ends.
func mountFS(t testing.TB, args ...string) string {
	t.Helper()
	requireFUSE(t)
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, append(append([]string{"mount"}, args...), dir)...).CombinedOutput()
	if err != nil {
		t.Fatalf("bpffs-fuse mount %s: %v\n%s", dir, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command(bin, "umount", dir).CombinedOutput(); err != nil {
			t.Errorf("bpffs-fuse umount %s: %v\n%s", dir, err, out)
		}
	})
	return dir
}

// mountKernelBPFFS mounts the kernel's bpffs in a temp dir (requires kernel BPF).
func mountKernelBPFFS(t testing.TB, opts string) string {
	t.Helper()
	requireKernel(t)
	dir := filepath.Join(t.TempDir(), "kbpf")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("bpf", dir, "bpf", 0, opts); err != nil {
		t.Fatalf("mount -t bpf %s: %v", dir, err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

// shResult is what a shell command did.
type shResult struct {
	Stdout, Stderr string
	Code           int
}

// sh runs script with sh -c in dir and returns its output and exit status.
func sh(t testing.TB, dir, script string) shResult {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	cmd.Dir = dir
	return runCmd(t, cmd)
}

// runCmd runs cmd and returns its output and exit status; a command that cannot be started
// fails the test.
func runCmd(t testing.TB, cmd *exec.Cmd) shResult {
	t.Helper()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%v: %v", cmd.Args, err)
	}
	return shResult{out.String(), errb.String(), code}
}

// mustSh runs script and fails the test unless it exits 0.
func mustSh(t testing.TB, dir, script string) string {
	t.Helper()
	r := sh(t, dir, script)
	if r.Code != 0 {
		t.Fatalf("sh -c %q: exit %d\nstdout: %s\nstderr: %s", script, r.Code, r.Stdout, strings.TrimSpace(r.Stderr))
	}
	return r.Stdout
}
