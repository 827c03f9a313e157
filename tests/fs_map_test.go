package tests

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestFSMapCatEcho covers the input grammar through echo/printf and what cat prints back.
func TestFSMapCatEcho(t *testing.T) {
	d := mountFS(t)
	mkmap(t, d+"/m", "hash", 4, 8, 64)
	mustSh(t, d, `echo '1 42' > m
printf '2 0x10\n3: -1\n' >> m
echo '04 00 00 00: 05 00 00 00 00 00 00 00' > m
echo 'key 5 0 0 0 value hex 2a 0 0 0 0 0 0 0' > m
echo '0x6 7 # comment' >> m
printf '\n# only a comment\n\n' > m`)
	want := []string{
		"01 00 00 00: 2a 00 00 00 00 00 00 00",
		"02 00 00 00: 10 00 00 00 00 00 00 00",
		"03 00 00 00: ff ff ff ff ff ff ff ff",
		"04 00 00 00: 05 00 00 00 00 00 00 00",
		"05 00 00 00: 2a 00 00 00 00 00 00 00",
		"06 00 00 00: 07 00 00 00 00 00 00 00",
	}
	if got := sortedLines(catMap(t, d+"/m")); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("cat m:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	head := mustSh(t, d, "head -1 m")
	if head != "# hash name m key 4 value 8 max_entries 64\n" {
		t.Errorf("header %q", head)
	}
	// Verbs: replace, delete, insert.
	mustSh(t, d, "echo 'replace 1 43' > m && echo 'delete 2' > m && echo 'insert 7 7' > m")
	got := strings.Join(sortedLines(catMap(t, d+"/m")), "\n")
	if !strings.Contains(got, "01 00 00 00: 2b 00") || strings.Contains(got, "02 00 00 00:") || !strings.Contains(got, "07 00 00 00: 07 00") {
		t.Errorf("after verbs:\n%s", got)
	}
	// The CLI sees the same content (the pin is the engine's map).
	if out := cli(t, "map", "lookup", "pinned", d+"/m", "key", "7", "0", "0", "0"); !strings.Contains(out, "07 00 00 00 00 00 00 00") {
		t.Errorf("bpffs-fuse map lookup: %s", out)
	}
	// st_size stays 0 after writes.
	var st unix.Stat_t
	unix.Stat(d+"/m", &st)
	if st.Size != 0 {
		t.Errorf("st_size %d after writes", st.Size)
	}
}

// TestFSMapBadInput: syntax and size errors fail the write with EINVAL and apply nothing of
// it; apply errors fail with the op's errno after applying the lines before.
func TestFSMapBadInput(t *testing.T) {
	d := mountFS(t)
	mkmap(t, d+"/m", "hash", 4, 8, 3)
	mustSh(t, d, "echo '1 1' > m")
	before := catMap(t, d+"/m")
	for _, c := range []struct {
		data  string
		want  unix.Errno
		xattr string
	}{
		{"zz 1\n", unix.EINVAL, `line 1: "zz 1"`},
		{"2 2\n3 3\nbad line here\n", unix.EINVAL, `"bad line here"`},
		{"01 02: 03\n", unix.EINVAL, "01 02: 03"},                       // wrong key size
		{"1 0x1ffffffffffffffff\n", unix.EINVAL, "0x1ffffffffffffffff"}, // value too wide
		{"1: 01 02 03\n", unix.EINVAL, "1: 01 02 03"},                   // wrong value size
		{"2 2\n1: {\n", unix.EINVAL, "line"},                            // a per-CPU block on a plain map
		{"insert 1 5\n", unix.EEXIST, `"insert 1 5"`},                   // NOEXIST on a present key
		{"replace 9 5\n", unix.ENOENT, `"replace 9 5"`},                 // EXIST on a missing key
		{"delete 9\n", unix.ENOENT, `"delete 9"`},
	} {
		expectErrno(t, fmt.Sprintf("write %q", c.data), writeOnce(d+"/m", c.data), c.want)
		xa := mustSh(t, d, "getfattr --only-values -n user.bpffs.error m")
		if !strings.Contains(xa, c.xattr) {
			t.Errorf("write %q: user.bpffs.error %q, want it to mention %q", c.data, xa, c.xattr)
		}
		if after := catMap(t, d+"/m"); after != before {
			t.Fatalf("write %q changed the map:\n%s\nwas:\n%s", c.data, after, before)
		}
	}
	// The shell shows the errno too (bash's echo: "write error: File exists").
	if r := bash(t, d, "echo 'insert 1 5' > m"); r.Code == 0 || !strings.Contains(r.Stderr, "File exists") {
		t.Errorf("bash echo insert: %d %q", r.Code, r.Stderr)
	}
	// A failing line stops the write; the lines before it are applied, the ones after not.
	expectErrno(t, "insert in the middle", writeOnce(d+"/m", "2 2\ninsert 1 9\n3 3\n"), unix.EEXIST)
	got := catMap(t, d+"/m")
	if !strings.Contains(got, "02 00 00 00: 02") || strings.Contains(got, "03 00 00 00:") || !strings.Contains(got, "01 00 00 00: 01") {
		t.Errorf("after a failing middle line:\n%s", got)
	}
	xa := mustSh(t, d, "getfattr --only-values -n user.bpffs.error m")
	if !strings.Contains(xa, `line 2: "insert 1 9"`) || !strings.Contains(xa, "EEXIST") {
		t.Errorf("xattr after failing middle line: %q", xa)
	}
	// Full map: E2BIG at the third element (max_entries 3).
	expectErrno(t, "full map", writeOnce(d+"/m", "3 3\n4 4\n5 5\n"), unix.E2BIG)
	if n := len(sortedLines(catMap(t, d+"/m"))); n != 3 {
		t.Errorf("full map holds %d elements, want 3", n)
	}
	// Reading from a write-only fd and writing to a read-only fd: EBADF from the kernel.
	f, err := os.OpenFile(d+"/m", os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Write([]byte("1 1\n"))
	expectErrno(t, "write on O_RDONLY", err, unix.EBADF)
	f.Close()
}

// TestFSMapFrozenAndReadOnly: writes to a frozen map fail with EPERM, nothing applied; reads
// still work.
func TestFSMapFrozenAndReadOnly(t *testing.T) {
	d := mountFS(t)
	mkmap(t, d+"/f", "array", 4, 4, 4)
	mustSh(t, d, "echo '1 7' > f")
	cli(t, "map", "freeze", "pinned", d+"/f")
	r := bash(t, d, "echo '2 8' > f")
	if r.Code == 0 || !strings.Contains(r.Stderr, "Operation not permitted") {
		t.Errorf("write to frozen map: %d %s", r.Code, r.Stderr)
	}
	got := catMap(t, d+"/f")
	if !strings.Contains(got, "01 00 00 00: 07 00 00 00") || !strings.Contains(got, "02 00 00 00: 00 00 00 00") {
		t.Errorf("frozen map content:\n%s", got)
	}
	xa := mustSh(t, d, "getfattr --only-values -n user.bpffs.error f")
	if !strings.Contains(xa, "EPERM") {
		t.Errorf("xattr %q", xa)
	}
	// BPF_F_RDONLY at MAP_CREATE only makes the creating fd read-only
	// (kernel/bpf/syscall.c:map_create → bpf_map_new_fd(map, f_flags)); an fd opened by path
	// later is read-write, as on the kernel, so writing through the file works.
	mkmap(t, d+"/ro", "hash", 4, 4, 4, "flags", "8")
	mustSh(t, d, "echo '1 1' > ro")
}

// TestFSMapSplitWrites: a line cut across two write(2)s applies when completed; a last line
// without newline applies at close; a bad write after a good one leaves the good one.
func TestFSMapSplitWrites(t *testing.T) {
	d := mountFS(t)
	mkmap(t, d+"/m", "hash", 4, 8, 16)
	f, err := os.OpenFile(d+"/m", os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	has := func(line string) bool { return strings.Contains(catMap(t, d+"/m"), line) }
	if _, err := f.Write([]byte("1 0x")); err != nil {
		t.Fatal(err)
	}
	if has("01 00 00 00:") {
		t.Fatal("half a line was applied")
	}
	if _, err := f.Write([]byte("2a\n2 ")); err != nil {
		t.Fatal(err)
	}
	if !has("01 00 00 00: 2a 00") {
		t.Fatal("completed line not applied at once")
	}
	// A bad write: EINVAL, the carried "2 " is kept as it was.
	_, err = f.Write([]byte("zz\n"))
	expectErrno(t, "bad write", err, unix.EINVAL)
	if has("02 00 00 00:") {
		t.Fatal("bad write applied something")
	}
	if _, err := f.Write([]byte("5")); err != nil { // completes "2 5" only at close
		t.Fatal(err)
	}
	if has("02 00 00 00:") {
		t.Fatal("unterminated line applied before close")
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if !has("02 00 00 00: 05 00") {
		t.Fatalf("last line not applied at close:\n%s", catMap(t, d+"/m"))
	}
	// An invalid unterminated last line fails close(2) with EINVAL.
	f2, _ := os.OpenFile(d+"/m", os.O_WRONLY, 0)
	f2.Write([]byte("3 3\n9 zz"))
	expectErrno(t, "close with a bad last line", f2.Close(), unix.EINVAL)
	if !has("03 00 00 00: 03 00") {
		t.Error("line before the bad last line not applied")
	}
	// > and >> both update; neither clears.
	mustSh(t, d, "echo '4 4' > m && echo '6 6' >> m")
	if n := len(sortedLines(catMap(t, d+"/m"))); n != 5 {
		t.Errorf("%d elements after > and >>, want 5:\n%s", n, catMap(t, d+"/m"))
	}
}

// TestFSMapLiveWriter: a long-running writer (producer | tee -a map) updates the map line by
// line while it runs.
func TestFSMapLiveWriter(t *testing.T) {
	d := mountFS(t)
	mkmap(t, d+"/m", "hash", 4, 8, 16)
	cmd := exec.Command("tee", "-a", d+"/m")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		fmt.Fprintf(in, "%d %d\n", i, i*10)
		want := fmt.Sprintf("%02x 00 00 00: %02x 00", i, i*10)
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(catMap(t, d+"/m"), want) {
			if time.Now().After(deadline) {
				t.Fatalf("line %d not applied while tee runs:\n%s", i, catMap(t, d+"/m"))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	in.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
}

// TestFSMapConcurrentWriters: several writers on their own fds, many small writes each; every
// update lands.
func TestFSMapConcurrentWriters(t *testing.T) {
	d := mountFS(t)
	mkmap(t, d+"/m", "hash", 4, 8, 4096)
	const writers, per = 4, 200
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			f, err := os.OpenFile(d+"/m", os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				errs <- err
				return
			}
			defer f.Close()
			for i := 0; i < per; i++ {
				k := w*per + i
				// Split some lines across writes to mix carried text with other writers.
				line := fmt.Sprintf("%d %d\n", k, k+1)
				if i%3 == 0 {
					if _, err := f.Write([]byte(line[:2])); err != nil {
						errs <- err
						return
					}
					line = line[2:]
				}
				if _, err := f.Write([]byte(line)); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	lines := sortedLines(catMap(t, d+"/m"))
	if len(lines) != writers*per {
		t.Fatalf("%d elements, want %d", len(lines), writers*per)
	}
	for k := 0; k < writers*per; k += 97 {
		out := cli(t, "map", "lookup", "pinned", d+"/m", "key", strconv.Itoa(k&0xff), strconv.Itoa(k>>8), "0", "0")
		v := k + 1
		if !strings.Contains(out, fmt.Sprintf("value: %02x %02x", v&0xff, v>>8)) {
			t.Errorf("key %d: %s", k, out)
		}
	}
}

// TestFSMapRoundTrip: for every writable map type, cat m > f; cat f > m leaves m unchanged,
// and cat f > fresh gives the same content (queues and stacks round-trip into an empty map,
// since writing pushes).
func TestFSMapRoundTrip(t *testing.T) {
	d := mountFS(t)
	mkmap(t, d+"/inner", "array", 4, 4, 2)
	innerID := strings.Fields(cli(t, "map", "show", "pinned", d+"/inner"))[0]
	innerID = strings.TrimSuffix(innerID, ":")
	for _, c := range []struct {
		name, typ        string
		key, value, max  int
		extra            []string
		fill             string
		keyless, ordered bool
	}{
		{"hash", "hash", 4, 8, 16, nil, "1 1\n2 0x1234\n3 -5\n", false, false},
		{"array", "array", 4, 12, 4, nil, "0: 01 02 03 04 05 06 07 08 09 0a 0b 0c\n3: 11 00 00 00 00 00 00 00 00 00 00 22\n", false, true},
		{"percpu_hash", "percpu_hash", 4, 4, 8, nil, "1 7\n2: { cpu0: 1 cpu1: 2 }\n", false, false},
		{"percpu_array", "percpu_array", 4, 8, 2, nil, "1 9\n", false, true},
		{"lru_hash", "lru_hash", 8, 4, 8, nil, "1 1\n0x100000000 2\n", false, false},
		{"lru_percpu_hash", "lru_percpu_hash", 2, 2, 8, nil, "1 1\n", false, false},
		{"lpm_trie", "lpm_trie", 8, 4, 8, []string{"flags", "1"}, "key 24 0 0 0 10 1 2 0 value 1 0 0 0\nkey 8 0 0 0 10 0 0 0 value 2 0 0 0\n", false, true},
		{"queue", "queue", 0, 4, 8, nil, "1\n2\n3\n", true, true},
		{"stack", "stack", 0, 4, 8, nil, "1\n2\n3\n", true, true},
		{"hash_of_maps", "hash_of_maps", 4, 4, 4, []string{"inner_map", "pinned", d + "/inner"}, "5 " + innerID + "\n", false, false},
		{"array_of_maps", "array_of_maps", 4, 4, 4, []string{"inner_map", "pinned", d + "/inner"}, "2 " + innerID + "\n", false, true},
		{"prog_array", "prog_array", 4, 4, 4, nil, "", false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, m2 := d+"/"+c.name, d+"/"+c.name+"_2"
			mkmap(t, m, c.typ, c.key, c.value, c.max, c.extra...)
			mkmap(t, m2, c.typ, c.key, c.value, c.max, c.extra...)
			if c.fill != "" {
				if err := os.WriteFile(m, []byte(c.fill), 0); err != nil {
					t.Fatalf("fill: %v", err)
				}
			}
			saved := t.TempDir() + "/saved"
			mustSh(t, d, fmt.Sprintf("cat %s > %s && cat %s > %s", m, saved, saved, m2))
			orig := catMap(t, m)
			if c.fill != "" && strings.TrimSpace(orig) == "" {
				t.Fatalf("fill left the map empty")
			}
			cmp := func(a, b string) bool {
				if c.ordered {
					return a == b
				}
				return strings.Join(sortedLines(a), "\n") == strings.Join(sortedLines(b), "\n")
			}
			if got := catMap(t, m2); !cmp(got, orig) {
				t.Errorf("cat saved > fresh map:\n%s\nwant:\n%s", got, orig)
			}
			if !c.keyless {
				mustSh(t, d, fmt.Sprintf("cat %s > %s", saved, m))
				if got := catMap(t, m); !cmp(got, orig) {
					t.Errorf("cat m > f; cat f > m changed m:\n%s\nwas:\n%s", got, orig)
				}
			}
		})
	}
	// What cannot be listed says so in a comment line, and nothing else.
	mkmap(t, d+"/bloom", "bloom_filter", 0, 4, 16)
	mustSh(t, d, "echo 5 > bloom")
	out := mustSh(t, d, "cat bloom")
	if strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, "# ") {
		t.Errorf("cat bloom: %q", out)
	}
}

// TestFSMapPercpuFormat: per-CPU values print as blocks, one line per possible CPU.
func TestFSMapPercpuFormat(t *testing.T) {
	d := mountFS(t)
	mkmap(t, d+"/p", "percpu_array", 4, 4, 1)
	mustSh(t, d, "echo '0 3' > p")
	got := catMap(t, d+"/p")
	if !strings.HasPrefix(got, "00 00 00 00: {\n\tcpu0: 03 00 00 00\n") || !strings.HasSuffix(got, "}\n") {
		t.Errorf("percpu listing:\n%s", got)
	}
}

// TestFSMapStreaming: a 100k-element map lists every key exactly once, and reads at an
// offset (dd skip) see the same bytes as a whole cat.
func TestFSMapStreaming(t *testing.T) {
	d := mountFS(t)
	const n = 100000
	mkmap(t, d+"/big", "hash", 4, 8, n)
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "%d %d\n", i, i)
	}
	lines := t.TempDir() + "/lines"
	os.WriteFile(lines, []byte(b.String()), 0o600)
	mustSh(t, d, "cat "+lines+" > big")
	out := catMap(t, d+"/big")
	seen := make(map[string]bool, n)
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		k, _, _ := strings.Cut(l, ":")
		if seen[k] {
			t.Fatalf("key %s listed twice", k)
		}
		seen[k] = true
	}
	if len(seen) != n {
		t.Fatalf("%d keys listed, want %d", len(seen), n)
	}
	whole := mustSh(t, d, "cat big | md5sum")
	tail := mustSh(t, d, "dd if=big bs=1000 skip=1234 2>/dev/null | md5sum")
	ref := mustSh(t, d, "cat big | tail -c +1234001 | md5sum")
	if tail != ref {
		t.Errorf("dd skip gives different bytes than cat|tail: %s vs %s (whole %s)", tail, ref, whole)
	}
}

// writeOnce writes data to path in one write(2) and returns the write's error, else close's.
func writeOnce(path, data string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, werr := f.Write([]byte(data))
	cerr := f.Close()
	if werr != nil {
		return werr
	}
	return cerr
}
