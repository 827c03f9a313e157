package pinning

import (
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bpffs-fuse/bpffs-fuse/engine"
	"github.com/bpffs-fuse/bpffs-fuse/objects"
)

const mnt = "/bpffs-test-mnt"

// setup returns an engine with the tree mounted at mnt and a root process holding one hash
// map at fd.
func setup(t *testing.T, opts Options) (*Tree, *engine.Process, int, *objects.Map) {
	t.Helper()
	opts.MountDir = mnt
	tr := New(opts)
	eng := engine.New(engine.Config{MemoryLimit: 64 << 20})
	eng.AddMount(mnt, tr)
	p := eng.NewProcess(engine.Root())
	fd, err := p.MapCreate(&engine.MapCreateAttr{MapType: objects.MapTypeHash, KeySize: 4, ValueSize: 8, MaxEntries: 16})
	if err != nil {
		t.Fatal(err)
	}
	o, err := p.Object(fd)
	if err != nil {
		t.Fatal(err)
	}
	o.Put()
	t.Cleanup(func() { p.Exit(); tr.Close() })
	return tr, p, fd, o.(*objects.Map)
}

func wantErrno(t *testing.T, what string, err error, want unix.Errno) {
	t.Helper()
	if want == 0 {
		if err != nil {
			t.Fatalf("%s: %v, want success", what, err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("%s: %v, want %v", what, err, want)
	}
}

func userRefs(m *objects.Map) int64 { _, u := m.Refs(); return u }

func TestRootModeAndPreload(t *testing.T) {
	tr := New(Options{Mode: 0o700, UID: 5, GID: 6, PreloadUID: 9, PreloadGID: 10, Preload: true})
	a := tr.Root().Attr()
	if a.Mode != unix.S_IFDIR|unix.S_ISVTX|0o700 || a.UID != 5 || a.GID != 6 || a.Ino != RootIno || a.Nlink != 2 {
		t.Fatalf("root attr %+v", a)
	}
	es, _ := tr.Readdir(tr.Root())
	if len(es) != 2 || es[0].Name != "progs.debug" || es[1].Name != "maps.debug" { // newest first
		t.Fatalf("root entries %+v", es)
	}
	md, _ := tr.Lookup(tr.Root(), "maps.debug")
	if ma := md.Attr(); ma.Mode != unix.S_IFREG|0o400 || ma.UID != 9 || ma.GID != 10 {
		t.Fatalf("maps.debug attr %+v", ma)
	}
	wantErrno(t, "unlink maps.debug", tr.Unlink(tr.Root(), "maps.debug"), unix.EPERM)
	wantErrno(t, "rename maps.debug", tr.Rename(tr.Root(), "maps.debug", tr.Root(), "x", 0), unix.EPERM)
	wantErrno(t, "link maps.debug", tr.Link(md, tr.Root(), "x"), unix.EPERM)
}

func TestDotsAndNames(t *testing.T) {
	tr := New(Options{Mode: 0o777})
	r := tr.Root()
	c := Creator{UID: 1, GID: 2, Umask: 0o22}
	_, err := tr.Mkdir(r, "a.b", 0o755, c)
	wantErrno(t, "mkdir a.b", err, unix.EPERM)
	_, err = tr.Lookup(r, "a.b")
	wantErrno(t, "lookup a.b", err, unix.EPERM)
	_, err = tr.Lookup(r, "ab")
	wantErrno(t, "lookup ab", err, unix.ENOENT)
	_, err = tr.Symlink(r, "l.x", "t", c)
	wantErrno(t, "symlink l.x", err, unix.EPERM)
	d, err := tr.Mkdir(r, "d", 0o777, c)
	wantErrno(t, "mkdir d", err, 0)
	if a := d.Attr(); a.Mode != unix.S_IFDIR|0o755 || a.UID != 1 || a.GID != 2 || a.Nlink != 2 {
		t.Fatalf("d attr %+v", a)
	}
	if a := r.Attr(); a.Nlink != 3 {
		t.Fatalf("root nlink %d after mkdir, want 3", a.Nlink)
	}
	_, err = tr.Mkdir(r, "d", 0o777, c)
	wantErrno(t, "mkdir d again", err, unix.EEXIST)
	// A directory with mode 0 lets dotted names through (populate_bpffs relies on it).
	z, _ := tr.Mkdir(r, "z", 0, c)
	_, err = tr.Mkdir(z, "a.b", 0o700, c)
	wantErrno(t, "mkdir z/a.b", err, 0)
	// Setgid directories pass their group down.
	sg, _ := tr.Mkdir(r, "sg", 0o2777, Creator{UID: 3, GID: 30})
	sub, _ := tr.Mkdir(sg, "sub", 0o755, Creator{UID: 4, GID: 40})
	if a := sub.Attr(); a.GID != 30 || a.Mode&unix.S_ISGID == 0 {
		t.Fatalf("sub of setgid dir: %+v", a)
	}
	l, _ := tr.Symlink(r, "l", "../nowhere", c)
	if a := l.Attr(); a.Mode != unix.S_IFLNK|0o777 || a.Size != 0 || l.Target() != "../nowhere" {
		t.Fatalf("symlink attr %+v", a)
	}
}

func TestPinGetRefsAndModes(t *testing.T) {
	tr, p, fd, m := setup(t, Options{Mode: 0o777})
	base := userRefs(m) // the creating fd
	cred := engine.Root()
	cred.Umask = 0o22
	p2 := p.Engine().NewProcess(cred)
	defer p2.Exit()
	fd2, _ := p.Dup(fd)
	_ = fd2
	wantErrno(t, "pin", p.ObjPin(fd, mnt+"/m", 0), 0)
	if userRefs(m) != base+1 {
		t.Fatalf("user refs after pin %d, want %d", userRefs(m), base+1)
	}
	n, _ := tr.Lookup(tr.Root(), "m")
	if a := n.Attr(); a.Mode != unix.S_IFREG|0o600 || a.Nlink != 1 || a.Size != 0 {
		t.Fatalf("pin attr %+v", a)
	}
	wantErrno(t, "pin again", p.ObjPin(fd, mnt+"/m", 0), unix.EEXIST)
	wantErrno(t, "pin dotted", p.ObjPin(fd, mnt+"/m.x", 0), unix.EPERM)
	wantErrno(t, "pin missing parent", p.ObjPin(fd, mnt+"/nodir/m", 0), unix.ENOENT)
	wantErrno(t, "pin under file", p.ObjPin(fd, mnt+"/m/x", 0), unix.ENOTDIR)
	if userRefs(m) != base+1 {
		t.Fatalf("failed pins leaked references: %d", userRefs(m))
	}
	// umask 0277 gives 0400, as observed on the kernel.
	cred.Umask = 0o277
	p3 := p.Engine().NewProcess(cred)
	defer p3.Exit()
	fd3, err := p3.ObjGet(mnt+"/m", 0)
	wantErrno(t, "get", err, 0)
	wantErrno(t, "pin umask", p3.ObjPin(fd3, mnt+"/m2", 0), 0)
	n2, _ := tr.Lookup(tr.Root(), "m2")
	if a := n2.Attr(); a.Mode != unix.S_IFREG|0o400 {
		t.Fatalf("pin with umask 0277: mode %o", a.Mode)
	}
	// Get on a directory is EACCES, on a missing path ENOENT.
	tr.Mkdir(tr.Root(), "d", 0o755, Creator{})
	_, err = p.ObjGet(mnt+"/d", 0)
	wantErrno(t, "get dir", err, unix.EACCES)
	_, err = p.ObjGet(mnt+"/nope", 0)
	wantErrno(t, "get missing", err, unix.ENOENT)
	_, err = p.ObjGet(mnt+"/m", objects.FRdonly|objects.FWronly)
	wantErrno(t, "get rdonly|wronly", err, unix.EINVAL)
	// Unlinking both names drops both pins' references.
	p3.Close(fd3)
	wantErrno(t, "unlink m", tr.Unlink(tr.Root(), "m"), 0)
	wantErrno(t, "unlink m2", tr.Unlink(tr.Root(), "m2"), 0)
	if userRefs(m) != base {
		t.Fatalf("user refs after unpin %d, want %d", userRefs(m), base)
	}
}

// TestGetPermissions mirrors kernel-semantics a.7 as uid 65534.
func TestGetPermissions(t *testing.T) {
	tr, p, fd, _ := setup(t, Options{Mode: 0o777})
	wantErrno(t, "pin", p.ObjPin(fd, mnt+"/m", 0), 0)
	n, _ := tr.Lookup(tr.Root(), "m")
	nobody := p.Engine().NewProcess(engine.Cred{UID: 65534, GID: 65534, Caps: engine.CapBPF})
	defer nobody.Exit()
	for _, c := range []struct {
		mode       uint32
		rw, ro, wo unix.Errno
	}{
		{0o644, unix.EACCES, 0, unix.EACCES},
		{0o222, unix.EACCES, unix.EACCES, 0},
		{0o600, unix.EACCES, unix.EACCES, unix.EACCES},
		{0o666, 0, 0, 0},
	} {
		mode := c.mode
		tr.Setattr(n, SetAttr{Mode: &mode})
		for _, f := range []struct {
			flags uint32
			want  unix.Errno
		}{{0, c.rw}, {objects.FRdonly, c.ro}, {objects.FWronly, c.wo}} {
			nfd, err := nobody.ObjGet(mnt+"/m", f.flags)
			wantErrno(t, "get as nobody", err, f.want)
			if err == nil {
				nobody.Close(nfd)
			}
		}
	}
	// A parent without x for others: EACCES before anything else.
	d, _ := tr.Mkdir(tr.Root(), "d", 0o700, Creator{})
	wantErrno(t, "pin d/m", p.ObjPin(fd, mnt+"/d/m", 0), 0)
	_, err := nobody.ObjGet(mnt+"/d/m", objects.FRdonly)
	wantErrno(t, "get through 0700 dir", err, unix.EACCES)
	// Pin into a dir without write permission.
	nfd, err := nobody.ObjGet(mnt+"/m", 0)
	wantErrno(t, "get 0666", err, 0)
	wantErrno(t, "pin into 0700 dir as nobody", nobody.ObjPin(nfd, mnt+"/d/x", 0), unix.EACCES)
	mode := uint32(0o755)
	tr.Setattr(d, SetAttr{Mode: &mode})
	wantErrno(t, "pin into 0755 dir as nobody", nobody.ObjPin(nfd, mnt+"/d/x", 0), unix.EACCES)
	wantErrno(t, "pin into sticky root as nobody", nobody.ObjPin(nfd, mnt+"/x", 0), 0)
	n, _ = tr.Lookup(tr.Root(), "x")
	if a := n.Attr(); a.UID != 65534 || a.GID != 65534 {
		t.Fatalf("owner of nobody's pin %+v", a)
	}
}

func TestSymlinkFollow(t *testing.T) {
	tr, p, fd, _ := setup(t, Options{Mode: 0o777})
	c := Creator{}
	d, _ := tr.Mkdir(tr.Root(), "d", 0o755, c)
	wantErrno(t, "pin", p.ObjPin(fd, mnt+"/d/m", 0), 0)
	tr.Symlink(tr.Root(), "rel", "d/m", c)
	tr.Symlink(tr.Root(), "abs", mnt+"/d/m", c)
	tr.Symlink(d, "up", "../d/m", c)
	tr.Symlink(tr.Root(), "dl", "d", c)
	tr.Symlink(tr.Root(), "dangling", "nothing", c)
	tr.Symlink(tr.Root(), "loop", "loop", c)
	tr.Symlink(tr.Root(), "host", "/", c)
	for _, c := range []struct {
		path string
		want unix.Errno
	}{
		{"rel", 0}, {"abs", 0}, {"d/up", 0}, {"dl/m", 0}, {"dl/up", 0},
		{"dangling", unix.ENOENT}, {"loop", unix.ELOOP}, {"host", unix.EACCES},
		{"dl", unix.EACCES},
	} {
		nfd, err := p.ObjGet(mnt+"/"+c.path, 0)
		wantErrno(t, "get "+c.path, err, c.want)
		if err == nil {
			p.Close(nfd)
		}
	}
	wantErrno(t, "pin over dangling symlink", p.ObjPin(fd, mnt+"/dangling", 0), unix.EEXIST)
	wantErrno(t, "pin through dir symlink", p.ObjPin(fd, mnt+"/dl/m2", 0), 0)
	if _, err := tr.Lookup(d, "m2"); err != nil {
		t.Fatal(err)
	}
}

func TestRename(t *testing.T) {
	tr, p, fd, m := setup(t, Options{Mode: 0o777})
	r := tr.Root()
	c := Creator{}
	base := userRefs(m)
	pin := func(name string) {
		t.Helper()
		wantErrno(t, "pin "+name, p.ObjPin(fd, mnt+"/"+name, 0), 0)
	}
	pin("a")
	pin("b")
	d, _ := tr.Mkdir(r, "d", 0o755, c)
	e, _ := tr.Mkdir(r, "e", 0o755, c)
	sub, _ := tr.Mkdir(d, "sub", 0o755, c)
	_ = sub
	wantErrno(t, "whiteout", tr.Rename(r, "a", r, "z", RenameWhiteout), unix.EINVAL)
	wantErrno(t, "noreplace|exchange", tr.Rename(r, "a", r, "b", RenameNoreplace|RenameExchange), unix.EINVAL)
	wantErrno(t, "noreplace", tr.Rename(r, "a", r, "b", RenameNoreplace), unix.EEXIST)
	wantErrno(t, "exchange missing", tr.Rename(r, "a", r, "zz", RenameExchange), unix.ENOENT)
	wantErrno(t, "missing source", tr.Rename(r, "nope", r, "zz", 0), unix.ENOENT)
	wantErrno(t, "dotted target", tr.Rename(r, "a", r, "a.b", 0), unix.EPERM)
	wantErrno(t, "into own subtree", tr.Rename(r, "d", d, "x", 0), unix.EINVAL)
	wantErrno(t, "into own subtree deeper", tr.Rename(r, "d", sub, "x", 0), unix.EINVAL)
	wantErrno(t, "over ancestor", tr.Rename(d, "sub", r, "d", 0), unix.ENOTEMPTY)
	wantErrno(t, "dir over file", tr.Rename(r, "e", r, "a", 0), unix.ENOTDIR)
	wantErrno(t, "file over dir", tr.Rename(r, "a", r, "e", 0), unix.EISDIR)
	wantErrno(t, "dir over non-empty dir", tr.Rename(r, "e", r, "d", 0), unix.ENOTEMPTY)
	if userRefs(m) != base+2 {
		t.Fatalf("refs changed by failed renames: %d", userRefs(m))
	}
	// Over an existing pin: it is unpinned.
	wantErrno(t, "a over b", tr.Rename(r, "a", r, "b", 0), 0)
	if userRefs(m) != base+1 {
		t.Fatalf("refs after rename over a pin %d, want %d", userRefs(m), base+1)
	}
	if _, err := tr.Lookup(r, "a"); !errors.Is(err, unix.ENOENT) {
		t.Fatalf("a still there: %v", err)
	}
	// Exchange a file and a directory across directories.
	wantErrno(t, "exchange b and d/sub", tr.Rename(r, "b", d, "sub", RenameExchange), 0)
	if n, _ := tr.Lookup(r, "b"); n.Kind() != KindDir {
		t.Fatal("b is not the dir after exchange")
	}
	if n, _ := tr.Lookup(d, "sub"); n.Kind() != KindObject {
		t.Fatal("d/sub is not the pin after exchange")
	}
	if a := d.Attr(); a.Nlink != 2 {
		t.Fatalf("d nlink %d after exchange, want 2", a.Nlink)
	}
	// Move a dir into another dir; nlinks follow.
	wantErrno(t, "mv b e/b", tr.Rename(r, "b", e, "b", 0), 0)
	if a := e.Attr(); a.Nlink != 3 {
		t.Fatalf("e nlink %d, want 3", a.Nlink)
	}
	wantErrno(t, "mv e/b over empty dir d? no: d not empty", tr.Rename(e, "b", r, "d", 0), unix.ENOTEMPTY)
	// Hard links: rename over another name of the same pin is a no-op.
	n, _ := tr.Lookup(d, "sub")
	wantErrno(t, "link", tr.Link(n, r, "h"), 0)
	if n.Attr().Nlink != 2 {
		t.Fatal("nlink after link")
	}
	wantErrno(t, "rename over own hard link", tr.Rename(r, "h", d, "sub", 0), 0)
	if n.Attr().Nlink != 2 {
		t.Fatal("nlink after no-op rename")
	}
	wantErrno(t, "link dir", tr.Link(d, r, "dl"), unix.EPERM)
	wantErrno(t, "link existing", tr.Link(n, r, "h"), unix.EEXIST)
	wantErrno(t, "link dotted", tr.Link(n, r, "h.x"), unix.EPERM)
}

func TestUnlinkRmdirSetattr(t *testing.T) {
	tr, p, fd, m := setup(t, Options{Mode: 0o777})
	r := tr.Root()
	base := userRefs(m)
	wantErrno(t, "pin", p.ObjPin(fd, mnt+"/a", 0), 0)
	n, _ := tr.Lookup(r, "a")
	wantErrno(t, "link", tr.Link(n, r, "b"), 0)
	d, _ := tr.Mkdir(r, "d", 0o755, Creator{})
	wantErrno(t, "link into d", tr.Link(n, d, "c"), 0)
	wantErrno(t, "rmdir non-empty", tr.Rmdir(r, "d"), unix.ENOTEMPTY)
	wantErrno(t, "rmdir file", tr.Rmdir(r, "a"), unix.ENOTDIR)
	wantErrno(t, "unlink dir", tr.Unlink(r, "d"), unix.EISDIR)
	wantErrno(t, "unlink missing", tr.Unlink(r, "x"), unix.ENOENT)
	for _, name := range []string{"a", "b"} {
		wantErrno(t, "unlink "+name, tr.Unlink(r, name), 0)
		if userRefs(m) != base+1 {
			t.Fatalf("pin dropped before its last name: %d", userRefs(m))
		}
	}
	wantErrno(t, "unlink d/c", tr.Unlink(d, "c"), 0)
	if userRefs(m) != base {
		t.Fatalf("last name did not unpin: %d", userRefs(m))
	}
	wantErrno(t, "rmdir d", tr.Rmdir(r, "d"), 0)
	if a := r.Attr(); a.Nlink != 2 {
		t.Fatalf("root nlink %d", a.Nlink)
	}
	// chmod, chown, utimes, truncate.
	wantErrno(t, "pin", p.ObjPin(fd, mnt+"/a", 0), 0)
	n, _ = tr.Lookup(r, "a")
	mode, uid, gid, size := uint32(0o644), uint32(7), uint32(8), int64(10)
	when := time.Unix(1000, 0)
	a, err := tr.Setattr(n, SetAttr{Mode: &mode, UID: &uid, GID: &gid, Size: &size, Atime: &when, Mtime: &when})
	wantErrno(t, "setattr", err, 0)
	if a.Mode != unix.S_IFREG|0o644 || a.UID != 7 || a.GID != 8 || a.Size != 10 || !a.Mtime.Equal(when) || !a.Atime.Equal(when) {
		t.Fatalf("after setattr %+v", a)
	}
	d, _ = tr.Mkdir(r, "d", 0o755, Creator{})
	_, err = tr.Setattr(d, SetAttr{Size: &size})
	wantErrno(t, "truncate dir", err, unix.EISDIR)
	// truncate alone changes neither mtime nor ctime (do_truncate passes no time attrs).
	before := n.Attr()
	size = 20
	a, err = tr.Setattr(n, SetAttr{Size: &size})
	wantErrno(t, "truncate", err, 0)
	if a.Size != 20 || !a.Mtime.Equal(before.Mtime) || !a.Ctime.Equal(before.Ctime) {
		t.Fatalf("truncate changed times: before %+v after %+v", before, a)
	}
	// Close unpins everything.
	tr.Close()
	if userRefs(m) != base {
		t.Fatalf("close left refs: %d", userRefs(m))
	}
	wantErrno(t, "pin after close", p.ObjPin(fd, mnt+"/b", 0), unix.ENOENT)
}

func TestInodeNumbersAndTimes(t *testing.T) {
	now := time.Unix(100, 0)
	tr := New(Options{Mode: 0o777, Now: func() time.Time { return now }})
	r := tr.Root()
	a, _ := tr.Mkdir(r, "a", 0o755, Creator{})
	now = time.Unix(200, 0)
	b, _ := tr.Mkdir(r, "b", 0o755, Creator{})
	if a.Ino() == b.Ino() || a.Ino() == RootIno || b.Ino() == RootIno {
		t.Fatalf("inode numbers %d %d", a.Ino(), b.Ino())
	}
	if ra := r.Attr(); !ra.Mtime.Equal(now) || !ra.Ctime.Equal(now) {
		t.Fatalf("parent times not updated: %+v", ra)
	}
	if aa := a.Attr(); !aa.Mtime.Equal(time.Unix(100, 0)) {
		t.Fatalf("a mtime %v", aa.Mtime)
	}
}

func TestPathOfAndParentIno(t *testing.T) {
	tr := New(Options{Mode: 0o777})
	r := tr.Root()
	a, _ := tr.Mkdir(r, "a", 0o755, Creator{})
	b, _ := tr.Mkdir(a, "b", 0o755, Creator{})
	if p, ok := tr.PathOf(b); !ok || len(p) != 2 || p[0] != "a" || p[1] != "b" {
		t.Fatalf("PathOf(b) = %v %v", p, ok)
	}
	if p, ok := tr.PathOf(r); !ok || len(p) != 0 {
		t.Fatalf("PathOf(root) = %v %v", p, ok)
	}
	if tr.ParentIno(b) != a.Ino() || tr.ParentIno(r) != RootIno {
		t.Fatal("ParentIno")
	}
	wantErrno(t, "mv a/b c", tr.Rename(a, "b", r, "c", 0), 0)
	if p, ok := tr.PathOf(b); !ok || len(p) != 1 || p[0] != "c" {
		t.Fatalf("PathOf after rename = %v %v", p, ok)
	}
	wantErrno(t, "rmdir c", tr.Rmdir(r, "c"), 0)
	if _, ok := tr.PathOf(b); ok {
		t.Fatal("PathOf of a removed dir")
	}
}

// TestRemovedDirNlink: a directory removed by rmdir, or replaced by a rename over it, reports
// nlink 0 to whoever still holds it (fstat of an open fd), as simple_rmdir leaves it.
func TestRemovedDirNlink(t *testing.T) {
	tr := New(Options{Mode: 0o777})
	r := tr.Root()
	c := Creator{Umask: 0o22}
	a, _ := tr.Mkdir(r, "a", 0o777, c)
	if n := a.Attr().Nlink; n != 2 {
		t.Fatalf("new dir nlink %d", n)
	}
	wantErrno(t, "rmdir a", tr.Rmdir(r, "a"), 0)
	if n := a.Attr().Nlink; n != 0 {
		t.Fatalf("removed dir nlink %d, want 0", n)
	}
	b, _ := tr.Mkdir(r, "b", 0o777, c)
	tr.Mkdir(r, "x", 0o777, c)
	wantErrno(t, "rename x over b", tr.Rename(r, "x", r, "b", 0), 0)
	if n := b.Attr().Nlink; n != 0 {
		t.Fatalf("replaced dir nlink %d, want 0", n)
	}
	if n := r.Attr().Nlink; n != 3 {
		t.Fatalf("root nlink %d, want 3", n)
	}
}

// TestRelatime: reads move atime only past the last change or after a day, as a relatime mount.
func TestRelatime(t *testing.T) {
	now := time.Unix(1000, 0)
	tr := New(Options{Mode: 0o777, Now: func() time.Time { return now }})
	r := tr.Root()
	d, _ := tr.Mkdir(r, "d", 0o777, Creator{})
	now = now.Add(time.Second)
	tr.Readdir(d) // atime == mtime: updated
	if a := d.Attr(); !a.Atime.Equal(now) {
		t.Fatalf("first read: atime %v, want %v", a.Atime, now)
	}
	now = now.Add(time.Second)
	tr.Readdir(d) // atime after mtime and ctime: kept
	if a := d.Attr(); !a.Atime.Equal(now.Add(-time.Second)) {
		t.Fatalf("second read: atime %v, want %v", a.Atime, now.Add(-time.Second))
	}
	tr.Mkdir(d, "x", 0o777, Creator{}) // a change: the next read updates
	now = now.Add(time.Second)
	tr.Touch(d, true, false)
	if a := d.Attr(); !a.Atime.Equal(now) {
		t.Fatalf("read after a change: atime %v, want %v", a.Atime, now)
	}
	now = now.Add(25 * time.Hour)
	tr.Readdir(d) // a day later: updated
	if a := d.Attr(); !a.Atime.Equal(now) {
		t.Fatalf("read a day later: atime %v, want %v", a.Atime, now)
	}
}

// TestReaddirOrder: entries are listed newest first, as dcache_readdir walks d_children from
// the head; a rename or link puts the entry first, an exchange puts the source's new name first.
func TestReaddirOrder(t *testing.T) {
	tr := New(Options{Mode: 0o777})
	r := tr.Root()
	c := Creator{Umask: 0o22}
	names := func(d *Node) string {
		es, err := tr.Readdir(d)
		if err != nil {
			t.Fatal(err)
		}
		var s []string
		for _, e := range es {
			s = append(s, e.Name)
		}
		return strings.Join(s, " ")
	}
	tr.Mkdir(r, "c", 0o777, c)
	tr.Mkdir(r, "a", 0o777, c)
	tr.Symlink(r, "b", "x", c)
	if got := names(r); got != "b a c" {
		t.Fatalf("after creates: %q", got)
	}
	wantErrno(t, "rename c d", tr.Rename(r, "c", r, "d", 0), 0)
	if got := names(r); got != "d b a" {
		t.Fatalf("after rename: %q", got)
	}
	wantErrno(t, "exchange a b", tr.Rename(r, "a", r, "b", RenameExchange), 0)
	if got := names(r); got != "b a d" {
		t.Fatalf("after exchange: %q", got)
	}
	wantErrno(t, "rmdir d", tr.Rmdir(r, "d"), 0)
	tr.Mkdir(r, "d", 0o777, c)
	if got := names(r); got != "d b a" {
		t.Fatalf("after re-create: %q", got)
	}
}
