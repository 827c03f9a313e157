package fsnode

import (
	"errors"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bpffs-fuse/bpffs-fuse/engine"
	"github.com/bpffs-fuse/bpffs-fuse/objects"
)

func requireFUSE(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil || os.Geteuid() != 0 {
		reason := "FUSE unavailable: needs /dev/fuse and root"
		if os.Getenv("BPFFS_REQUIRE_FUSE") == "1" {
			t.Fatal(reason)
		}
		t.Skip(reason)
	}
}

// mountTest mounts a bpffs in a temp dir with an in-process engine.
func mountTest(t *testing.T) (*Server, *engine.Process) {
	t.Helper()
	requireFUSE(t)
	eng := engine.New(engine.Config{MemoryLimit: 256 << 20})
	dir := t.TempDir()
	s, err := Mount(dir, Config{Engine: eng, Mode: 0o777})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Unmount(); err != nil {
			t.Error(err)
		}
	})
	p := eng.NewProcess(engine.Root())
	t.Cleanup(p.Exit)
	return s, p
}

func sh(t *testing.T, dir, script string) (string, error) {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func mustSh(t *testing.T, dir, script string) string {
	t.Helper()
	out, err := sh(t, dir, script)
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	return out
}

func TestPinAppearsAndCatEcho(t *testing.T) {
	s, p := mountTest(t)
	fd, err := p.MapCreate(&engine.MapCreateAttr{MapType: objects.MapTypeHash, KeySize: 4, ValueSize: 8, MaxEntries: 16, MapName: "counters"})
	if err != nil {
		t.Fatal(err)
	}
	// Look the name up first, so that a stale negative entry would show.
	if _, err := os.Stat(filepath.Join(s.Dir, "m")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stat before pin: %v", err)
	}
	if err := p.ObjPin(fd, filepath.Join(s.Dir, "m"), 0); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(s.Dir, "m"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != 0o600 || fi.Size() != 0 {
		t.Fatalf("pin mode %v size %d", fi.Mode(), fi.Size())
	}
	mustSh(t, s.Dir, "echo '1 42' > m && printf '2 7\\n3 8\\n' >> m")
	out := mustSh(t, s.Dir, "cat m")
	if !strings.HasPrefix(out, "# hash name counters key 4 value 8 max_entries 16\n") ||
		!strings.Contains(out, "\n01 00 00 00: 2a 00 00 00 00 00 00 00\n") || strings.Count(out, "\n") != 4 {
		t.Fatalf("cat m:\n%s", out)
	}
	var v [8]byte
	if err := p.MapLookupElem(fd, []byte{3, 0, 0, 0}, v[:], 0); err != nil || v[0] != 8 {
		t.Fatalf("lookup 3: %v %v", v, err)
	}
	// A failing line: the error is kept in the xattr.
	if out, err := sh(t, s.Dir, "bash -c 'echo insert 1 5 > m'"); err == nil || !strings.Contains(out, "File exists") {
		t.Fatalf("insert existing: %v %s", err, out)
	}
	xa := mustSh(t, s.Dir, "getfattr --only-values -n user.bpffs.error m")
	if !strings.Contains(xa, `line 1: "insert 1 5"`) || !strings.Contains(xa, "EEXIST") {
		t.Fatalf("xattr: %q", xa)
	}
	// Unlink through FUSE drops the pin.
	mustSh(t, s.Dir, "rm m")
	if _, err := p.ObjGet(filepath.Join(s.Dir, "m"), 0); !errors.Is(err, unix.ENOENT) {
		t.Fatalf("get after rm: %v", err)
	}
}

// TestConcurrentPinsReadsWrites runs engine-side pins and unpins next to FUSE listings, reads
// and writes of the same map (for the race detector and for deadlocks between kernel
// notifications and handlers).
func TestConcurrentPinsReadsWrites(t *testing.T) {
	s, p := mountTest(t)
	fd, err := p.MapCreate(&engine.MapCreateAttr{MapType: objects.MapTypeHash, KeySize: 4, ValueSize: 8, MaxEntries: 1024})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.ObjPin(fd, filepath.Join(s.Dir, "m"), 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(s.Dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	run := func(fn func(i int) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				if err := fn(i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	run(func(i int) error { // pins through the engine, unpins through FUSE
		name := filepath.Join(s.Dir, "d", "p"+strconv.Itoa(i%8))
		if err := p.ObjPin(fd, name, 0); err != nil && !errors.Is(err, unix.EEXIST) {
			return err
		}
		if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	})
	run(func(i int) error {
		_, err := os.ReadDir(filepath.Join(s.Dir, "d"))
		return err
	})
	run(func(i int) error {
		_, err := os.ReadFile(filepath.Join(s.Dir, "m"))
		return err
	})
	run(func(i int) error {
		return os.WriteFile(filepath.Join(s.Dir, "m"), []byte(strconv.Itoa(i%1000)+" "+strconv.Itoa(i)+"\n"), 0)
	})
	time.Sleep(time.Second)
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestUnpinOutsideDisappears: a name removed outside FUSE disappears at once, although the
// kernel cached its entry (entry timeout 1 s).
func TestUnpinOutsideDisappears(t *testing.T) {
	s, p := mountTest(t)
	fd, err := p.MapCreate(&engine.MapCreateAttr{MapType: objects.MapTypeArray, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(s.Dir, "d"), 0o755)
	path := filepath.Join(s.Dir, "d", "m")
	if err := p.ObjPin(fd, path, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil { // cache the entry
		t.Fatal(err)
	}
	if err := s.Tree.Unpin("d/m"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stat right after Unpin: %v", err)
	}
	if out := mustSh(t, s.Dir, "ls d"); out != "" {
		t.Fatalf("ls d: %q", out)
	}
	// Pin the same name again: it comes back.
	if err := p.ObjPin(fd, path, 0); err != nil {
		t.Fatal(err)
	}
	if out := mustSh(t, s.Dir, "cat d/m"); !strings.Contains(out, "00 00 00 00: 00 00 00 00") {
		t.Fatalf("cat after re-pin: %q", out)
	}
	if err := s.Tree.Unpin("d"); !errors.Is(err, unix.EISDIR) {
		t.Fatalf("Unpin of a dir: %v", err)
	}
}

// syncBuffer is a bytes.Buffer safe for go-fuse's concurrent debug logging.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *syncBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// TestReaderCloseSendsNoFlush checks, in go-fuse's request log, that closing a read-only map
// file sends no FLUSH to the daemon (FOPEN_NOFLUSH), while a writer's close still does: its
// last line without a newline is applied then.
func TestReaderCloseSendsNoFlush(t *testing.T) {
	requireFUSE(t)
	var logBuf syncBuffer
	log.SetOutput(&logBuf)
	t.Cleanup(func() { log.SetOutput(os.Stderr) })
	eng := engine.New(engine.Config{MemoryLimit: 64 << 20})
	s, err := Mount(t.TempDir(), Config{Engine: eng, Mode: 0o777, Debug: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Unmount() })
	p := eng.NewProcess(engine.Root())
	t.Cleanup(p.Exit)
	fd, err := p.MapCreate(&engine.MapCreateAttr{MapType: objects.MapTypeHash, KeySize: 4, ValueSize: 8, MaxEntries: 4})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.ObjPin(fd, filepath.Join(s.Dir, "m"), 0); err != nil {
		t.Fatal(err)
	}
	flushes := func() int { return strings.Count(logBuf.String(), ": FLUSH ") }

	before := flushes()
	if out := mustSh(t, s.Dir, "cat m; cat maps.debug >/dev/null"); !strings.HasPrefix(out, "# hash") {
		t.Fatalf("cat m: %q", out)
	}
	if n := flushes() - before; n != 0 {
		t.Errorf("closing read-only opens sent %d FLUSH requests, want 0", n)
	}
	before = flushes()
	mustSh(t, s.Dir, "printf '1 2' > m")
	if n := flushes() - before; n == 0 {
		t.Errorf("closing a writer sent no FLUSH")
	}
	var v [8]byte
	if err := p.MapLookupElem(fd, []byte{1, 0, 0, 0}, v[:], 0); err != nil || v[0] != 2 {
		t.Fatalf("the unterminated line was not applied at close: %v %v", v, err)
	}
}
