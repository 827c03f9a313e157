package tests

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"golang.org/x/sys/unix"

	"github.com/bpffs-fuse/bpffs-fuse/engine"
	"github.com/bpffs-fuse/bpffs-fuse/engine/control"
	"github.com/bpffs-fuse/bpffs-fuse/objects"
)

// Benchmarks of the filesystem against the kernel, in one run (issue 3, BENCHMARKS.md):
//
//	go test -run '^$' -bench 'BenchmarkFS' -count 5 ./tests
//
// BenchmarkFSDump: cat of a 1e6-entry hash map (key 4 B, value 8 B) on bpffs-fuse, vs bpftool map
// dump pinned of the same content on the kernel, vs cat of a BTF-typed map of the same content on
// the kernel's bpffs; the daemon's added peak RSS while it streams the dump.
// BenchmarkFSUpdate: 1e5 update lines through cat lines > map on bpffs-fuse vs bpftool batch file
// of 1e5 "map update" lines on the kernel.

const (
	benchDumpEntries   = 1_000_000
	benchUpdateEntries = 100_000
)

// benchValue is the value stored under key i in every benchmark map.
func benchValue(i uint32) uint64 { return uint64(i)*2654435761 + 7 }

// benchKV returns the keys and values of the n-entry benchmark content.
func benchKV(n int) (keys []uint32, values []uint64) {
	keys, values = make([]uint32, n), make([]uint64, n)
	for i := range keys {
		keys[i] = uint32(i)
		values[i] = benchValue(uint32(i))
	}
	return keys, values
}

// kernelBenchMap creates a kernel hash map (with BTF key/value types when typed), fills it with the
// n-entry content and pins it at path.
func kernelBenchMap(b *testing.B, path string, n int, typed bool) {
	b.Helper()
	spec := &ebpf.MapSpec{Name: "bench", Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: uint32(n)}
	if typed {
		spec.Key = &btf.Int{Name: "__u32", Size: 4}
		spec.Value = &btf.Int{Name: "__u64", Size: 8}
	}
	m, err := ebpf.NewMap(spec)
	if err != nil {
		b.Fatalf("kernel map: %v", err)
	}
	defer m.Close()
	keys, values := benchKV(n)
	if _, err := m.BatchUpdate(keys, values, nil); err != nil {
		b.Fatalf("kernel batch update: %v", err)
	}
	if err := m.Pin(path); err != nil {
		b.Fatalf("kernel pin: %v", err)
	}
}

// oursControl connects to the control socket of the bpffs-fuse mount at mnt (the root's
// user.bpffs.control xattr names it).
func oursControl(b testing.TB, mnt string) *control.Client {
	b.Helper()
	buf := make([]byte, 4096)
	n, err := unix.Getxattr(mnt, "user.bpffs.control", buf)
	if err != nil {
		b.Fatalf("getxattr user.bpffs.control: %v", err)
	}
	c, err := control.Dial(string(buf[:n]))
	if err != nil {
		b.Fatalf("control dial: %v", err)
	}
	b.Cleanup(c.Exit)
	return c
}

// oursBenchMap creates a hash map key 4 value 8 with maxEntries in the daemon of mnt, fills it with
// the first n entries of the benchmark content and pins it at path.
func oursBenchMap(b *testing.B, c *control.Client, path string, maxEntries, n int) {
	b.Helper()
	fd, err := c.MapCreate(&engine.MapCreateAttr{MapType: objects.MapType(ebpf.Hash), KeySize: 4, ValueSize: 8,
		MaxEntries: uint32(maxEntries), MapName: "bench"})
	if err != nil {
		b.Fatalf("ours map create: %v", err)
	}
	defer c.Close(fd)
	const chunk = 50_000
	kb, vb := make([]byte, 4*chunk), make([]byte, 8*chunk)
	for i := 0; i < n; i += chunk {
		cnt := min(chunk, n-i)
		for j := range cnt {
			binary.LittleEndian.PutUint32(kb[4*j:], uint32(i+j))
			binary.LittleEndian.PutUint64(vb[8*j:], benchValue(uint32(i+j)))
		}
		if err := c.MapUpdateBatch(fd, &engine.MapBatchAttr{Keys: kb[:4*cnt], Values: vb[:8*cnt], Count: uint32(cnt)}); err != nil {
			b.Fatalf("ours batch update: %v", err)
		}
	}
	if err := c.ObjPin(fd, path, 0); err != nil {
		b.Fatalf("ours pin %s: %v", path, err)
	}
}

// runCount runs name with args, counts the bytes and lines it writes to stdout (through a pipe,
// the same for every tool) and fails on a non-zero exit.
func runCount(b *testing.B, name string, args ...string) (bytes, lines int64) {
	cmd := exec.Command(name, args...)
	var errb strings.Builder
	cmd.Stderr = &errb
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 256<<10)
	for {
		n, err := out.Read(buf)
		bytes += int64(n)
		lines += int64(countNL(buf[:n]))
		if err == io.EOF {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	if err := cmd.Wait(); err != nil {
		b.Fatalf("%s %v: %v\n%s", name, args, err, errb.String())
	}
	return bytes, lines
}

func countNL(p []byte) int { return bytes.Count(p, []byte{'\n'}) }

// daemonPID finds the bpffs-fused process serving mnt: the one whose command line is
// "bpffs-fused mount ... mnt" and which has /dev/fuse open.
func daemonPID(b testing.TB, mnt string) int {
	b.Helper()
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cl, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(cl), "\x00"), "\x00")
		if len(args) < 2 || filepath.Base(args[0]) != "bpffs-fused" || args[len(args)-1] != mnt {
			continue
		}
		fds, _ := os.ReadDir(filepath.Join("/proc", e.Name(), "fd"))
		for _, fd := range fds {
			if l, _ := os.Readlink(filepath.Join("/proc", e.Name(), "fd", fd.Name())); l == "/dev/fuse" {
				return pid
			}
		}
	}
	b.Fatalf("no daemon process found for %s", mnt)
	return 0
}

// procStatusKB reads a "Name:   N kB" field of /proc/PID/status.
func procStatusKB(b testing.TB, pid int, field string) int64 {
	b.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	b.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// resetPeakRSS sets the process's VmHWM back to its current VmRSS (proc(5): clear_refs 5).
func resetPeakRSS(b testing.TB, pid int) {
	b.Helper()
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		b.Fatalf("clear_refs: %v", err)
	}
}

// BenchmarkFSDump compares reading a whole 1e6-entry hash map: cat on bpffs-fuse, bpftool map dump
// on the kernel, and cat of a BTF-typed map on the kernel's bpffs. The ours/cat result also reports
// the daemon's peak RSS during the dumps above its RSS before them (MiB-added-RSS).
func BenchmarkFSDump(b *testing.B) {
	requireKernel(b)
	if _, err := exec.LookPath("bpftool"); err != nil {
		skipOrFail(b, "BPFFS_REQUIRE_KERNEL", "bpftool not installed")
	}
	requireDaemon(b)
	k := mountKernelBPFFS(b, "")
	o := mountFS(b)
	kernelBenchMap(b, k+"/plain", benchDumpEntries, false)
	kernelBenchMap(b, k+"/typed", benchDumpEntries, true)
	oursBenchMap(b, oursControl(b, o), o+"/m", benchDumpEntries, benchDumpEntries)
	// The daemon's RSS once the map is loaded, before any dump: what streaming adds is the peak
	// above it (the Go runtime keeps freed memory a while, so later dumps reuse what the first
	// one took and the peak is measured from here for every run).
	pid := daemonPID(b, o)
	resetPeakRSS(b, pid)
	before := procStatusKB(b, pid, "VmRSS")

	b.Run("ours-cat", func(b *testing.B) {
		var n int64
		for b.Loop() {
			var lines int64
			n, lines = runCount(b, "cat", o+"/m")
			if lines < benchDumpEntries {
				b.Fatalf("cat printed %d lines, want ≥ %d", lines, benchDumpEntries)
			}
		}
		b.SetBytes(n)
		peak := procStatusKB(b, pid, "VmHWM")
		b.ReportMetric(float64(peak-before)/1024, "MiB-added-RSS")
		b.ReportMetric(float64(peak)/1024, "MiB-peak-RSS")
	})
	b.Run("kernel-bpftool-dump", func(b *testing.B) {
		var n int64
		for b.Loop() {
			var lines int64
			n, lines = runCount(b, "bpftool", "map", "dump", "pinned", k+"/plain")
			if lines < benchDumpEntries {
				b.Fatalf("bpftool printed %d lines, want ≥ %d", lines, benchDumpEntries)
			}
		}
		b.SetBytes(n)
	})
	b.Run("kernel-btf-cat", func(b *testing.B) {
		var n int64
		for b.Loop() {
			var lines int64
			n, lines = runCount(b, "cat", k+"/typed")
			if lines < benchDumpEntries {
				b.Fatalf("cat printed %d lines, want ≥ %d", lines, benchDumpEntries)
			}
		}
		b.SetBytes(n)
	})
}

// BenchmarkFSUpdate compares applying 1e5 updates given as text: cat lines > map on bpffs-fuse
// (decimal "KEY VALUE" lines) vs bpftool batch file with 1e5 "map update pinned" lines on the
// kernel. Both maps hold the same 1e5 keys already, so every iteration replaces values (BPF_ANY).
func BenchmarkFSUpdate(b *testing.B) {
	requireKernel(b)
	if _, err := exec.LookPath("bpftool"); err != nil {
		skipOrFail(b, "BPFFS_REQUIRE_KERNEL", "bpftool not installed")
	}
	requireDaemon(b)
	k := mountKernelBPFFS(b, "")
	o := mountFS(b)
	kernelBenchMap(b, k+"/m", benchUpdateEntries, false)
	oursBenchMap(b, oursControl(b, o), o+"/m", benchUpdateEntries, benchUpdateEntries)

	dir := b.TempDir()
	var lines, batch bytes.Buffer
	for i := range uint32(benchUpdateEntries) {
		v := benchValue(i) + 1
		fmt.Fprintf(&lines, "%d %d\n", i, v)
		fmt.Fprintf(&batch, "map update pinned %s/m key hex", k)
		for _, c := range binary.LittleEndian.AppendUint32(nil, i) {
			fmt.Fprintf(&batch, " %02x", c)
		}
		batch.WriteString(" value hex")
		for _, c := range binary.LittleEndian.AppendUint64(nil, v) {
			fmt.Fprintf(&batch, " %02x", c)
		}
		batch.WriteByte('\n')
	}
	linesFile, batchFile := filepath.Join(dir, "lines"), filepath.Join(dir, "batch")
	if err := os.WriteFile(linesFile, lines.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(batchFile, batch.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}

	// A side filtered out by -bench did not run and keeps its old values: only the sides
	// that ran are checked.
	var oursRan, kernelRan bool
	b.Run("ours-cat-lines", func(b *testing.B) {
		oursRan = true
		for b.Loop() {
			out, err := exec.Command("sh", "-c", fmt.Sprintf("cat %q > %q", linesFile, o+"/m")).CombinedOutput()
			if err != nil {
				b.Fatalf("cat lines > map: %v\n%s", err, out)
			}
		}
		b.SetBytes(int64(lines.Len()))
	})
	b.Run("kernel-bpftool-batch", func(b *testing.B) {
		kernelRan = true
		for b.Loop() {
			out, err := exec.Command("bpftool", "batch", "file", batchFile).CombinedOutput()
			if err != nil {
				b.Fatalf("bpftool batch: %v\n%s", err, out)
			}
		}
		b.SetBytes(int64(lines.Len()))
	})
	// Both maps (those whose side ran) now hold value+1 under every key.
	km, err := ebpf.LoadPinnedMap(k+"/m", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer km.Close()
	c := oursControl(b, o)
	ofd, err := c.ObjGet(o+"/m", 0)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close(ofd)
	for i := uint32(0); i < benchUpdateEntries; i += 997 {
		var kv uint64
		if err := km.Lookup(i, &kv); kernelRan && (err != nil || kv != benchValue(i)+1) {
			b.Errorf("kernel key %d: %d, %v; want %d", i, kv, err, benchValue(i)+1)
		}
		key, val := binary.LittleEndian.AppendUint32(nil, i), make([]byte, 8)
		if err := c.MapLookupElem(ofd, key, val, 0); oursRan && (err != nil || binary.LittleEndian.Uint64(val) != benchValue(i)+1) {
			b.Errorf("ours key %d: %d, %v; want %d", i, binary.LittleEndian.Uint64(val), err, benchValue(i)+1)
		}
	}
}
