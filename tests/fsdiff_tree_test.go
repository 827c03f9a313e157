package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fsTree is one bpffs under differential test: the kernel's or ours. pinErr and getErr are how
// pins are made and opened on that tree, switchable per tree (raw BPF_OBJ_PIN/BPF_OBJ_GET on the
// kernel; the CLI, or the daemon's control socket, on ours).
type fsTree struct {
	name string
	root string
	// pinErr creates a small hash map pinned at path under umask and returns the pin's error.
	pinErr func(path string, umask int) error
	// getErr opens the object pinned at path (BPF_OBJ_GET, file_flags 0) and returns the error.
	getErr func(path string) error
}

// pin is pinErr that fails the test on error.
func (tr *fsTree) pin(t testing.TB, path string, umask int) {
	t.Helper()
	if err := tr.pinErr(path, umask); err != nil {
		t.Fatalf("%s: pin %s: %v", tr.name, path, err)
	}
}

// kernelTree mounts a fresh kernel bpffs with the given mount options; pins are made with raw
// BPF_MAP_CREATE and BPF_OBJ_PIN.
func kernelTree(t testing.TB, opts string) *fsTree {
	return &fsTree{name: "kernel", root: mountKernelBPFFS(t, opts), pinErr: kernelPinErr, getErr: kernelGetErr}
}

// oursTree mounts a fresh bpffs-fuse with the given mount arguments. Pins are made with the CLI
// (bpffs-fuse map create PATH ..., under the umask given) once it has that subcommand, else through
// the daemon's control socket (MapCreate + ObjPin, as a Go program would).
func oursTree(t testing.TB, args ...string) *fsTree {
	requireDaemon(t)
	root := mountFS(t, args...)
	tr := &fsTree{name: "ours", root: root, pinErr: oursPinErr, getErr: oursGetErr}
	if !oursHaveCLI() {
		s := controlObjSide(oursControl(t, root))
		tr.pinErr = func(path string, umask int) error {
			fd, err := s.create()
			if err != nil {
				return fmt.Errorf("map create: %w", err)
			}
			defer s.close(fd)
			return s.pin(fd, path, 0)
		}
		tr.getErr = func(path string) error {
			fd, err := s.get(path, 0)
			if err == nil {
				s.close(fd)
			}
			return err
		}
	}
	return tr
}

// requireDaemon skips while the binary has no mount subcommand (the daemon is being built).
func requireDaemon(t testing.TB) {
	t.Helper()
	out, _ := exec.Command(bin, "help").CombinedOutput()
	if !strings.Contains(string(out), "\n  mount ") {
		skipOrFail(t, "BPFFS_REQUIRE_FUSE", "bpffs-fuse has no mount subcommand")
	}
}

// oursHaveCLI reports whether the CLI can create pinned maps (the map subcommand exists).
func oursHaveCLI() bool {
	out, _ := exec.Command(bin, "map", "help").CombinedOutput()
	return strings.Contains(string(out), "create")
}

// oursPinErr creates a small hash map pinned at path with the CLI, under the given umask.
func oursPinErr(path string, umask int) error {
	script := fmt.Sprintf("umask %04o && exec %q map create %q type hash key 4 value 8 entries 4 name m",
		umask, bin, path)
	return cliErr(exec.Command("sh", "-c", script))
}

// oursGetErr opens the pin at path with the CLI (map show pinned: BPF_OBJ_GET with flags 0).
func oursGetErr(path string) error {
	return cliErr(exec.Command(bin, "map", "show", "pinned", path))
}

// cliErr runs a bpftool-style command and turns a failure into the errno its stderr names
// ("Error: ...: Operation not permitted"); a failure without a recognisable errno is an error
// carrying the output.
func cliErr(cmd *exec.Cmd) error {
	out, err := cmd.CombinedOutput()
	if err == nil {
		return nil
	}
	text := strings.ToLower(string(out))
	best := unix.Errno(0)
	for e := unix.Errno(1); e < 134; e++ {
		s := strings.ToLower(e.Error())
		if strings.Contains(text, s) && (best == 0 || len(s) > len(best.Error())) {
			best = e
		}
	}
	if best == 0 && strings.Contains(text, "unknown error 524") {
		best = 524
	}
	if best != 0 {
		return best
	}
	return fmt.Errorf("%v: %s", err, out)
}

// requireOursPin skips until the CLI can create pinned maps (the map subcommand).
func requireOursPin(t testing.TB) {
	t.Helper()
	out, _ := exec.Command(bin, "map", "help").CombinedOutput()
	if !strings.Contains(string(out), "create") {
		t.Skipf("bpffs-fuse has no 'map create' yet (%s)", strings.TrimSpace(string(out)))
	}
}

// entry is one file of a tree snapshot, normalised so that two trees compare equal: inode numbers
// become ordinals in walk order, times become "changed by the operation" marks.
type entry struct {
	rel    string
	mode   os.FileMode
	nlink  uint64
	uid    uint32
	gid    uint32
	size   int64
	target string
	ino    uint64
	mtime  unix.Timespec
	ctime  unix.Timespec
}

// snapshot lists dir recursively (lstat, sorted by path).
func snapshot(t testing.TB, dir string) []entry {
	t.Helper()
	var out []entry
	var walk func(rel string)
	walk = func(rel string) {
		p := filepath.Join(dir, rel)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			out = append(out, entry{rel: rel, target: "lstat: " + err.Error()})
			return
		}
		e := entry{rel: rel, mode: modeOf(st.Mode), nlink: uint64(st.Nlink), uid: st.Uid, gid: st.Gid,
			size: st.Size, ino: st.Ino, mtime: st.Mtim, ctime: st.Ctim}
		if st.Mode&unix.S_IFMT == unix.S_IFLNK {
			e.target, _ = os.Readlink(p)
		}
		out = append(out, e)
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return
		}
		f, err := os.Open(p)
		if err != nil {
			out = append(out, entry{rel: rel + "/", target: "open: " + err.Error()})
			return
		}
		names, err := f.Readdirnames(-1)
		f.Close()
		if err != nil {
			out = append(out, entry{rel: rel + "/", target: "readdir: " + err.Error()})
		}
		sort.Strings(names)
		for _, n := range names {
			walk(filepath.Join(rel, n))
		}
	}
	walk(".")
	return out
}

func modeOf(m uint32) os.FileMode {
	fm := os.FileMode(m & 0o777)
	switch m & unix.S_IFMT {
	case unix.S_IFDIR:
		fm |= os.ModeDir
	case unix.S_IFLNK:
		fm |= os.ModeSymlink
	case unix.S_IFREG:
	default:
		fm |= os.ModeIrregular
	}
	if m&unix.S_ISVTX != 0 {
		fm |= os.ModeSticky
	}
	if m&unix.S_ISGID != 0 {
		fm |= os.ModeSetgid
	}
	if m&unix.S_ISUID != 0 {
		fm |= os.ModeSetuid
	}
	return fm
}

// render formats a snapshot taken after an operation; before is the snapshot taken just before it,
// used to mark inodes whose mtime or ctime the operation changed ("m+", "c+").
func render(before, after []entry, skipNames map[string]bool) string {
	prev := map[uint64]entry{}
	for _, e := range before {
		prev[e.ino] = e
	}
	ord := map[uint64]int{}
	var b strings.Builder
	for _, e := range after {
		if skipNames[e.rel] {
			continue
		}
		if e.ino == 0 {
			fmt.Fprintf(&b, "%s %s\n", e.rel, e.target)
			continue
		}
		n, ok := ord[e.ino]
		if !ok {
			n = len(ord)
			ord[e.ino] = n
		}
		marks := ""
		if p, ok := prev[e.ino]; ok {
			if p.mtime != e.mtime {
				marks += " m+"
			}
			if p.ctime != e.ctime {
				marks += " c+"
			}
		} else {
			marks = " new"
		}
		fmt.Fprintf(&b, "%s %v n=%d %d:%d size=%d ino#%d%s", e.rel, e.mode, e.nlink, e.uid, e.gid, e.size, n, marks)
		if e.target != "" {
			fmt.Fprintf(&b, " -> %s", e.target)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// applySetup builds a case's starting state in dir. Each step is one of
//
//	d PATH        mkdir PATH (mode 0777, under the test's umask 022)
//	p PATH        pin a map at PATH (umask 022)
//	s PATH TARGET symlink
//	h PATH OLD    hard link OLD as PATH
//	m PATH MODE   chmod PATH MODE (octal)
//	o PATH UID    chown PATH UID:UID
func applySetup(t testing.TB, tr *fsTree, dir string, steps []string) {
	t.Helper()
	for _, s := range steps {
		f := strings.Fields(s)
		p := filepath.Join(dir, f[1])
		var err error
		switch f[0] {
		case "d":
			err = unix.Mkdir(p, 0o777)
		case "p":
			tr.pin(t, p, 0o022)
		case "s":
			err = unix.Symlink(f[2], p)
		case "h":
			err = unix.Link(filepath.Join(dir, f[2]), p)
		case "o":
			var id int
			fmt.Sscanf(f[2], "%d", &id)
			err = unix.Lchown(p, id, id)
		case "m":
			var mode uint32
			fmt.Sscanf(f[2], "%o", &mode)
			err = unix.Chmod(p, mode)
		default:
			t.Fatalf("bad setup step %q", s)
		}
		if err != nil {
			t.Fatalf("%s setup %q: %v", tr.name, s, err)
		}
	}
}

// withUmask runs fn with the process umask set to m.
func withUmask(m int, fn func()) {
	old := unix.Umask(m)
	defer unix.Umask(old)
	fn()
}

// tick waits long enough for the kernel's coarse timestamps to advance, so that "changed by the
// operation" marks are reliable.
func tick() { time.Sleep(10 * time.Millisecond) }
