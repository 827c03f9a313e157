package tests

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// CLI latency beside bpftool on the kernel, in the same run:
//
//	go test ./tests -run '^$' -bench 'BenchmarkCLI' -benchtime 200x   # one map update per exec
//	go test ./tests -run '^$' -bench 'BenchmarkCLIBatch' -benchtime 3x # 1e5-line batch file
//
// Each op of BenchmarkCLIMapUpdate is one exec of the tool (process start, finding the map,
// one update, exit); each op of BenchmarkCLIBatch is one `batch file F` of cliBatchLines
// update lines on one pinned hash map.

const cliBatchLines = 100000

// cliBenchSides mounts both file systems and creates a hash map named m on each.
func cliBenchSides(b *testing.B, entries int) map[string]struct {
	tool string
	env  []string
	path string
} {
	requireKernel(b)
	if _, err := exec.LookPath("bpftool"); err != nil {
		skipOrFail(b, "BPFFS_REQUIRE_KERNEL", "bpftool not installed")
	}
	k := mountKernelBPFFS(b, "")
	m := mountFS(b)
	sides := map[string]struct {
		tool string
		env  []string
		path string
	}{
		"bpftool-kernel": {"bpftool", nil, k + "/m"},
		"bpffs-fuse":     {bin, []string{"BPFFS_MOUNT=" + m}, m + "/m"},
	}
	for name, s := range sides {
		out, err := cliCommand(s.tool, s.env, "map", "create", s.path, "type", "hash", "key", "4", "value", "8",
			"entries", fmt.Sprint(entries), "name", "bench").CombinedOutput()
		if err != nil {
			b.Fatalf("%s: map create: %v\n%s", name, err, out)
		}
	}
	return sides
}

func cliCommand(tool string, env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(tool, args...)
	cmd.Env = append(os.Environ(), env...)
	return cmd
}

func BenchmarkCLIMapUpdate(b *testing.B) {
	sides := cliBenchSides(b, 1024)
	for _, name := range []string{"bpftool-kernel", "bpffs-fuse"} {
		s := sides[name]
		b.Run(name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				i++
				out, err := cliCommand(s.tool, s.env, "map", "update", "pinned", s.path,
					"key", fmt.Sprint(i&0xff), "0", "0", "0", "value", "1", "2", "3", "4", "5", "6", "7", "8").CombinedOutput()
				if err != nil {
					b.Fatalf("%v\n%s", err, out)
				}
			}
		})
	}
}

func BenchmarkCLIBatch(b *testing.B) {
	sides := cliBenchSides(b, cliBatchLines)
	for _, name := range []string{"bpftool-kernel", "bpffs-fuse"} {
		s := sides[name]
		f := filepath.Join(b.TempDir(), "batch")
		fh, err := os.Create(f)
		if err != nil {
			b.Fatal(err)
		}
		w := bufio.NewWriter(fh)
		for i := range cliBatchLines {
			fmt.Fprintf(w, "map update pinned %s key %d %d %d 0 value %d 0 0 0 0 0 0 1\n", s.path, i&0xff, i>>8&0xff, i>>16, i&0xff)
		}
		w.Flush()
		fh.Close()
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				out, err := cliCommand(s.tool, s.env, "batch", "file", f).CombinedOutput()
				if err != nil {
					b.Fatalf("%v\n%s", err, out[max(0, len(out)-500):])
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/cliBatchLines, "ns/line")
		})
	}
}
