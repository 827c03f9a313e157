package main

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/bpffs-fuse/bpffs-fuse/engine/vm"
	"github.com/bpffs-fuse/bpffs-fuse/engine/vm/asm"
)

// TestVMPluginConformance drives "vm plugin" exactly as bpf_conformance's
// runner does (hex program on stdin, hex memory as argument 1) over the suite.
func TestVMPluginConformance(t *testing.T) {
	dir := os.Getenv("BPF_CONFORMANCE_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", "testdata", "bpf_conformance", "tests")
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.data"))
	if len(files) == 0 {
		t.Fatalf("bpf_conformance tests not found in %s (set BPF_CONFORMANCE_DIR)", dir)
	}
	for _, f := range files {
		b, _ := os.ReadFile(f)
		d, err := asm.ParseDataFile(string(b))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		var args []string
		if len(d.Mem) > 0 {
			args = append(args, spacedHex(d.Mem))
		}
		var out, errb bytes.Buffer
		in := strings.NewReader(spacedHex(vm.Encode(d.Insns)) + "\n")
		if rc := vmPlugin(args, in, &out, &errb); rc != 0 {
			t.Fatalf("%s: rc=%d stderr=%s", filepath.Base(f), rc, errb.String())
		}
		got, err := strconv.ParseUint(strings.TrimSpace(out.String()), 16, 64)
		if err != nil || got != d.Result {
			t.Fatalf("%s: got %q, want %#x", filepath.Base(f), out.String(), d.Result)
		}
	}
	// Errors go to stderr with a non-zero status.
	var out, errb bytes.Buffer
	if rc := vmPlugin([]string{"--mode", "linux"}, strings.NewReader("b7 00 00 00 01 00 00 00 67 00 00 00 40 00 00 00 95 00 00 00 00 00 00 00\n"), &out, &errb); rc == 0 || !strings.Contains(errb.String(), "invalid shift 64") {
		t.Fatalf("rc=%d stderr=%q", rc, errb.String())
	}
}

func spacedHex(b []byte) string {
	var parts []string
	for _, c := range b {
		parts = append(parts, hex.EncodeToString([]byte{c}))
	}
	return strings.Join(parts, " ")
}
