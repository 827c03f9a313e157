package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCLIBatchQueueDifferential runs batch files whose element commands go through
// bpffs-fuse's queue (kept handles, one OpVector round trip per chunk) against bpftool on the
// kernel: every line's output, where the batch stops, the error and the exit status must match,
// also when the failing line is deep inside a chunk, past a chunk boundary, a parse error, or
// follows a command that changes what a handle names.
func TestCLIBatchQueueDifferential(t *testing.T) {
	kernel, ours := cliSides(t)
	var long strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&long, "map update pinned {M}/bh key %d %d 0 0 value %d 0 0 0\n", i&0xff, i>>8, i&0xff)
	}
	scripts := map[string]string{
		"mixed": `map create {M}/bh type hash key 4 value 4 entries 8 name q_bh
map update pinned {M}/bh key 1 0 0 0 value 1 0 0 0
m u pinned {M}/bh key 2 0 0 0 value 2 0 0 0
map lookup pinned {M}/bh key 2 0 0 0
map lookup pinned {M}/bh key hex 01 00 00 00
map delete pinned {M}/bh key 2 0 0 0
map update pinned {M}/bh key 1 0 0 0 value 2 0 0 0 exist
map getnext pinned {M}/bh key 1 0 0 0
map update pinned {M}/bh key 3 0 0 0 value 3 0 0 0
map dump pinned {M}/bh
map update pinned {M}/bh key 1 0 0 0 value 9 0 0 0 noexist
map update pinned {M}/bh key 5 0 0 0 value 9 0 0 0
`,
		"parse error": `map create {M}/bh type hash key 4 value 4 entries 8 name q_bh
map update pinned {M}/bh key 1 0 0 0 value 1 0 0 0
map update pinned {M}/bh key 2 0 0 0 value 2 0 0 0
map update pinned {M}/bh key 3 0 0 value 3 0 0 0
map update pinned {M}/bh key 4 0 0 0 value 4 0 0 0
`,
		"missing key": `map create {M}/bh type hash key 4 value 4 entries 8 name q_bh
map update pinned {M}/bh key 1 0 0 0 value 1 0 0 0
map lookup pinned {M}/bh key 1 0 0 0
map lookup pinned {M}/bh key 7 0 0 0
map update pinned {M}/bh key 4 0 0 0 value 4 0 0 0
`,
		"bad handle": `map create {M}/bh type hash key 4 value 4 entries 8 name q_bh
map update pinned {M}/bh key 1 0 0 0 value 1 0 0 0
map update pinned {M}/bh key 2 0 0 0 value 1 0 0 0
map update pinned {M}/nope key 1 0 0 0 value 1 0 0 0
`,
		"queue": `map create {M}/bq type queue value 4 entries 3 name q_bq
map push pinned {M}/bq value 1 2 3 4
map enqueue pinned {M}/bq value 5 6 7 8
map peek pinned {M}/bq
map push pinned {M}/bq value 9 9 9 9
map push pinned {M}/bq value 7 7 7 7
`,
		"pop until empty": `map create {M}/bq type queue value 4 entries 3 name q_bq
map push pinned {M}/bq value 1 2 3 4
map push pinned {M}/bq value 5 6 7 8
map pop pinned {M}/bq
map dequeue pinned {M}/bq
map pop pinned {M}/bq
map push pinned {M}/bq value 5 6 7 8
`,
		"percpu and array": `map create {M}/bp type percpu_hash key 4 value 4 entries 8 name q_bp
map create {M}/ba type array key 4 value 8 entries 4 name q_ba
map update pinned {M}/bp key 1 0 0 0 value 1 0 0 0
map update pinned {M}/ba key 1 0 0 0 value 1 0 0 0 0 0 0 0
map update pinned {M}/bp key 2 0 0 0 value 2 0 0 0
map lookup pinned {M}/bp key 1 0 0 0
map lookup pinned {M}/ba key 1 0 0 0
map delete pinned {M}/ba key 1 0 0 0
`,
		"array out of range": `map create {M}/ba type array key 4 value 8 entries 4 name q_ba
map update pinned {M}/ba key 1 0 0 0 value 1 0 0 0 0 0 0 0
map update pinned {M}/ba key 9 0 0 0 value 1 0 0 0 0 0 0 0
map update pinned {M}/ba key 2 0 0 0 value 1 0 0 0 0 0 0 0
`,
		"freeze and pin": `map create {M}/bh type hash key 4 value 4 entries 8 name q_bh
map update pinned {M}/bh key 1 0 0 0 value 1 0 0 0
map pin pinned {M}/bh {M}/bh2
map update pinned {M}/bh2 key 2 0 0 0 value 2 0 0 0
map lookup pinned {M}/bh key 2 0 0 0
map freeze pinned {M}/bh2
map lookup pinned {M}/bh key 1 0 0 0
map update pinned {M}/bh key 3 0 0 0 value 3 0 0 0
`,
		"long": "map create {M}/bh type hash key 4 value 4 entries 8192 name q_bh\n" + long.String() +
			"map lookup pinned {M}/bh key 1 1 0 0\nmap update pinned {M}/bh key 1 1 0 0 value 0 0 0 0 noexist\nmap update pinned {M}/bh key 9 9 0 0 value 0 0 0 0\n",
		"long then parse error": "map create {M}/bh type hash key 4 value 4 entries 8192 name q_bh\n" + long.String() +
			"map update pinned {M}/bh key 1 1 0 0 value 0 0 0\n",
		"long then bad quote": "map create {M}/bh type hash key 4 value 4 entries 8192 name q_bh\n" + long.String() +
			"map update pinned {M}/bh key 1 1 0 0 value 0 0 0 'x\n",
		"long, ok": "map create {M}/bh type hash key 4 value 4 entries 8192 name q_bh\n" + long.String(),
	}
	for name, script := range scripts {
		for _, opts := range [][]string{nil, {"-j"}, {"-p"}} {
			var runs [2]cliRun
			for i, s := range []cliSide{kernel, ours} {
				for _, p := range []string{"bh", "bh2", "bq", "bp", "ba"} {
					os.Remove(s.mnt + "/" + p)
				}
				f := filepath.Join(t.TempDir(), "batch")
				if err := os.WriteFile(f, []byte(strings.ReplaceAll(script, "{M}", s.mnt)), 0o644); err != nil {
					t.Fatal(err)
				}
				r := s.run(append(opts, "batch", "file", f)...)
				runs[i] = cliRun{cliNormalize(r.stdout, s.mnt), cliNormalize(strings.ReplaceAll(r.stderr, f, "F"), s.mnt), r.code}
			}
			if runs[0] != runs[1] {
				k, o := runs[0], runs[1]
				if len(k.stdout) > 3000 {
					k.stdout, o.stdout = "..."+k.stdout[len(k.stdout)-3000:], "..."+o.stdout[max(0, len(o.stdout)-3000):]
				}
				t.Errorf("batch %q %v:\n=== bpftool:\n%v=== bpffs-fuse:\n%v", name, opts, k, o)
			}
		}
	}
	// id handles: the maps exist before the batch.
	for _, s := range []cliSide{kernel, ours} {
		os.Remove(s.mnt + "/bh")
		if r := s.run("map", "create", s.mnt+"/bh", "type", "hash", "key", "4", "value", "4", "entries", "8", "name", "q_bh"); r.code != 0 {
			t.Fatalf("%s: map create: %v", s.name, r)
		}
	}
	var runs [2]cliRun
	for i, s := range []cliSide{kernel, ours} {
		script := strings.Join(s.expand(t, `map update id {id:bh} key 1 0 0 0 value 1 0 0 0
map update i {id:bh} key 2 0 0 0 value 2 0 0 0
map lookup id {id:bh} key 2 0 0 0
map delete id {id:bh} key 2 0 0 0
map lookup id {id:bh} key 2 0 0 0
map update id {id:bh} key 3 0 0 0 value 3 0 0 0`), " ")
		script = strings.ReplaceAll(script, " map ", "\nmap ") + "\n"
		f := filepath.Join(t.TempDir(), "batch")
		os.WriteFile(f, []byte(script), 0o644)
		r := s.run("batch", "file", f)
		runs[i] = cliRun{cliNormalize(r.stdout, s.mnt), cliNormalize(r.stderr, s.mnt), r.code}
	}
	if runs[0] != runs[1] {
		t.Errorf("batch on id handles:\n=== bpftool:\n%v=== bpffs-fuse:\n%v", runs[0], runs[1])
	}
}
