package vm_test

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/bpffs-fuse/bpffs-fuse/engine/vm"
	"github.com/bpffs-fuse/bpffs-fuse/engine/vm/asm"
)

// conformanceDir finds the bpf_conformance tests: $BPF_CONFORMANCE_DIR, or the copy kept in
// the repository (testdata/bpf_conformance, with its license and source).
func conformanceDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("BPF_CONFORMANCE_DIR"); d != "" {
		return d
	}
	d := filepath.Join("..", "..", "testdata", "bpf_conformance", "tests")
	if !isDir(d) {
		t.Fatalf("bpf_conformance tests not found at %s (set BPF_CONFORMANCE_DIR)", d)
	}
	return d
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

type conformanceCase struct {
	name string
	data *asm.DataFile
}

func loadConformance(t testing.TB) []conformanceCase {
	dir := conformanceDir(t)
	files, err := filepath.Glob(filepath.Join(dir, "*.data"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no .data files in %s", dir)
	}
	sort.Strings(files)
	var out []conformanceCase
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		d, err := asm.ParseDataFile(string(b))
		if err != nil {
			t.Fatalf("%s: %v", filepath.Base(f), err)
		}
		out = append(out, conformanceCase{strings.TrimSuffix(filepath.Base(f), ".data"), d})
	}
	return out
}

// runData runs a conformance program the way the bpf_conformance plugins do:
// r1 = pointer to a copy of the mem section, r2 = its length.
func runData(m *vm.Machine, p *vm.Program, mem []byte) (uint64, error) {
	buf := append([]byte(nil), mem...)
	var r1 uint64
	if len(buf) > 0 {
		r1 = m.NewPointer(vm.Region{Data: buf, Writable: true, Kind: vm.RegionMemory})
	}
	m.SetPacket(buf)
	return m.Run(p, r1, uint64(len(buf)))
}

func TestConformance(t *testing.T) {
	cases := loadConformance(t)
	m := vm.NewMachine()
	pass := 0
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := vm.Load(c.data.Insns, vm.LoadOptions{Mode: vm.ModeISA, Helpers: vm.ConformanceHelpers()})
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			got, err := runData(m, p, c.data.Mem)
			if c.data.Error != "" {
				if err == nil {
					t.Fatalf("expected error %q, got r0=%#x", c.data.Error, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			if got != c.data.Result {
				t.Fatalf("r0 = %#x, want %#x", got, c.data.Result)
			}
			pass++
		})
	}
	t.Logf("%d/%d conformance tests pass in ModeISA", pass, len(cases))
}
