package tests

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestFSNamespaceRules checks kernel-semantics a.1 on a bpffs-fuse mount with real commands
// and syscalls: dotted names, touch, mknod, mkdir/rmdir, symlink, hard link, unlink, rename
// with each flag, chmod/chown/utimes/truncate, xattrs.
func TestFSNamespaceRules(t *testing.T) {
	d := mountFS(t)
	mkmap(t, d+"/m", "hash", 4, 8, 16)
	mkmap(t, d+"/n", "array", 4, 4, 2)

	for _, c := range []struct {
		script string
		errMsg string // "" means success
	}{
		{"mkdir a.b", "Operation not permitted"},
		{"touch new", "Permission denied"},
		{"touch x.y", "Operation not permitted"},
		{"mknod p p", "Operation not permitted"},
		{"mkfifo f", "Operation not permitted"},
		{"ln -s m l.x", "Operation not permitted"},
		{"mv m m.x", "Operation not permitted"},
		{"ln m m.x", "Operation not permitted"},
		{"mkdir dir && mkdir dir/sub && rmdir dir", "Directory not empty"},
		{"rmdir m", "Not a directory"},
		{"rm dir", "Is a directory"},
		{"ln dir dirlink", "hard link not allowed for directory"},
		{"rm maps.debug", "Operation not permitted"},
		{"mv progs.debug pd", "Operation not permitted"},
		{"setfattr -n user.x -v 1 m", "Operation not supported"},
		{"mkdir dir", "File exists"},
		{"ln -s nowhere dangling && ln m m2 && ln -s m sl && rmdir dir/sub", ""},
	} {
		r := sh(t, d, c.script)
		if c.errMsg == "" {
			if r.Code != 0 {
				t.Errorf("%s: exit %d: %s", c.script, r.Code, r.Stderr)
			}
		} else if r.Code == 0 || !strings.Contains(r.Stderr, c.errMsg) {
			t.Errorf("%s: exit %d, stderr %q, want %q", c.script, r.Code, r.Stderr, c.errMsg)
		}
	}
	// Hard links share the pin; symlinks are 0777 and kept verbatim.
	var st1, st2 unix.Stat_t
	unix.Stat(d+"/m", &st1)
	unix.Stat(d+"/m2", &st2)
	if st1.Ino != st2.Ino || st1.Nlink != 2 {
		t.Errorf("hard link: ino %d/%d nlink %d", st1.Ino, st2.Ino, st1.Nlink)
	}
	var lst unix.Stat_t
	unix.Lstat(d+"/dangling", &lst)
	if lst.Mode != unix.S_IFLNK|0o777 {
		t.Errorf("symlink mode %o", lst.Mode)
	}
	if tg, _ := os.Readlink(d + "/dangling"); tg != "nowhere" {
		t.Errorf("readlink %q", tg)
	}
	// Reading through a symlink reaches the map.
	if got := mustSh(t, d, "echo '1 2' > sl && cat m"); !strings.Contains(got, "01 00 00 00: 02 00") {
		t.Errorf("write through symlink: %q", got)
	}
	// nlink of directories counts subdirectories.
	var dst unix.Stat_t
	unix.Stat(d+"/dir", &dst)
	if dst.Nlink != 2 {
		t.Errorf("dir nlink %d, want 2", dst.Nlink)
	}
	mustSh(t, d, "mkdir dir/a dir/b")
	unix.Stat(d+"/dir", &dst)
	if dst.Nlink != 4 {
		t.Errorf("dir nlink %d after two mkdirs, want 4", dst.Nlink)
	}

	// Rename flags through renameat2(2).
	ren := func(old, new string, flags uint) error {
		return unix.Renameat2(unix.AT_FDCWD, d+"/"+old, unix.AT_FDCWD, d+"/"+new, flags)
	}
	expectErrno(t, "RENAME_NOREPLACE over existing", ren("m", "n", unix.RENAME_NOREPLACE), unix.EEXIST)
	expectErrno(t, "RENAME_WHITEOUT", ren("m", "w", unix.RENAME_WHITEOUT), unix.EINVAL)
	expectErrno(t, "RENAME_EXCHANGE missing", ren("m", "missing", unix.RENAME_EXCHANGE), unix.ENOENT)
	expectErrno(t, "dir into itself", ren("dir", "dir/a/x", 0), unix.EINVAL)
	expectErrno(t, "file over dir", ren("m", "dir", 0), unix.EISDIR)
	expectErrno(t, "dir over file", ren("dir", "m", 0), unix.ENOTDIR)
	expectErrno(t, "dir over non-empty dir", ren("dir/a", "dir", 0), unix.ENOTEMPTY)
	expectErrno(t, "RENAME_EXCHANGE m n", ren("m", "n", unix.RENAME_EXCHANGE), 0)
	if !strings.HasPrefix(mustSh(t, d, "head -1 m"), "# array") {
		t.Errorf("exchange did not swap m and n")
	}
	expectErrno(t, "RENAME_EXCHANGE back", ren("m", "n", unix.RENAME_EXCHANGE), 0)
	// Rename over an existing pin unpins it: m2 was m's hard link, n is the array.
	expectErrno(t, "rename n over m2", ren("n", "m2", 0), 0)
	unix.Stat(d+"/m", &st1)
	if st1.Nlink != 1 {
		t.Errorf("m nlink %d after its other name was replaced, want 1", st1.Nlink)
	}
	if !strings.HasPrefix(mustSh(t, d, "head -1 m2"), "# array") {
		t.Errorf("m2 is not the array after rename")
	}

	// chmod, chown, utimes, truncate (kernel: stored; truncate sets st_size).
	mustSh(t, d, "chmod 0644 m && chown 12:34 m && truncate -s 0 m && touch -d @1000000000 m")
	var st unix.Stat_t
	unix.Stat(d+"/m", &st)
	if st.Mode != unix.S_IFREG|0o644 || st.Uid != 12 || st.Gid != 34 || st.Mtim.Sec != 1000000000 || st.Size != 0 {
		t.Errorf("after chmod/chown/touch/truncate: mode %o uid %d gid %d mtime %d size %d", st.Mode, st.Uid, st.Gid, st.Mtim.Sec, st.Size)
	}
	// open(O_CREAT|O_EXCL) of an existing name: EEXIST.
	_, err := unix.Open(d+"/m", unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY, 0o600)
	expectErrno(t, "O_CREAT|O_EXCL existing", err, unix.EEXIST)
	// open(O_DIRECTORY) of a pin: ENOTDIR.
	_, err = unix.Open(d+"/m", unix.O_DIRECTORY|unix.O_RDONLY, 0)
	expectErrno(t, "O_DIRECTORY on a pin", err, unix.ENOTDIR)
	// No xattrs listed; user.bpffs.error is absent until a write fails.
	if n, err := unix.Listxattr(d+"/m", make([]byte, 256)); n != 0 || err != nil {
		t.Errorf("listxattr: %d %v", n, err)
	}
	_, err = unix.Getxattr(d+"/m", "user.bpffs.error", make([]byte, 256))
	expectErrno(t, "getxattr user.bpffs.error before any failure", err, unix.ENODATA)
}

// TestFSModesAndOwners checks kernel-semantics a.2: pins 0600&~umask, dirs 0777&~umask, the
// root 1777 plus mode=/uid=/gid=, owners from the caller.
func TestFSModesAndOwners(t *testing.T) {
	d := mountFS(t, "-o", "mode=0750,uid=1234,gid=2345")
	var st unix.Stat_t
	if err := unix.Stat(d, &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode != unix.S_IFDIR|unix.S_ISVTX|0o750 || st.Uid != 1234 || st.Gid != 2345 || st.Ino != 1 {
		t.Errorf("root: mode %o uid %d gid %d ino %d", st.Mode, st.Uid, st.Gid, st.Ino)
	}
	unix.Stat(d+"/maps.debug", &st)
	// The preload files belong to the mounter, not to uid= (populate_bpffs runs as the mounter).
	if st.Mode != unix.S_IFREG|0o400 || st.Uid != uint32(os.Geteuid()) {
		t.Errorf("maps.debug: mode %o uid %d", st.Mode, st.Uid)
	}
	mustSh(t, d, "umask 077 && mkdir d1 && umask 022 && mkdir d2")
	unix.Stat(d+"/d1", &st)
	if st.Mode != unix.S_IFDIR|0o700 || st.Uid != 0 || st.Nlink != 2 {
		t.Errorf("d1: mode %o uid %d nlink %d", st.Mode, st.Uid, st.Nlink)
	}
	unix.Stat(d+"/d2", &st)
	if st.Mode != unix.S_IFDIR|0o755 {
		t.Errorf("d2: mode %o", st.Mode)
	}
	mkmap(t, d+"/d2/m", "array", 4, 8, 4)
	unix.Stat(d+"/d2/m", &st)
	if st.Mode != unix.S_IFREG|0o600 || st.Nlink != 1 || st.Size != 0 || st.Blksize != 4096 {
		t.Errorf("pin: mode %o nlink %d size %d blksize %d", st.Mode, st.Nlink, st.Size, st.Blksize)
	}
	// Every node has its own inode number.
	seen := map[uint64]string{}
	filepath.Walk(d, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return nil
		}
		ino := fi.Sys().(*syscall.Stat_t).Ino
		if prev, dup := seen[ino]; dup {
			t.Errorf("inode %d shared by %s and %s", ino, prev, p)
		}
		seen[ino] = p
		return nil
	})
	// statfs: bsize 4096, namelen 255.
	var sf unix.Statfs_t
	if err := unix.Statfs(d, &sf); err != nil {
		t.Fatal(err)
	}
	if sf.Bsize != 4096 || sf.Namelen != 255 || sf.Blocks != 0 || sf.Files != 0 {
		t.Errorf("statfs: %+v", sf)
	}
	// /proc/mounts: fuse.bpffs-fuse, default_permissions on.
	typ, ok := mounted(d)
	if !ok || typ != "fuse.bpffs-fuse" {
		t.Errorf("mountinfo type %q %v", typ, ok)
	}
	mounts, _ := os.ReadFile("/proc/mounts")
	for _, l := range strings.Split(string(mounts), "\n") {
		if strings.Contains(l, " "+d+" ") && (!strings.HasPrefix(l, "bpffs ") || !strings.Contains(l, "default_permissions")) {
			t.Errorf("/proc/mounts line: %s", l)
		}
	}
}

// TestFSPermissionsAsOtherUser checks that default_permissions makes the kernel enforce
// modes: a non-root user (via setpriv) cannot read a 0600 pin, can read a 0644 one (with
// allow_other), and cannot create in a 0755 directory.
func TestFSPermissionsAsOtherUser(t *testing.T) {
	if _, err := os.Stat("/usr/bin/setpriv"); err != nil {
		t.Skip("setpriv not installed")
	}
	d := mountFS(t, "-o", "allow_other")
	mkmap(t, d+"/m", "hash", 4, 4, 4)
	mustSh(t, d, "echo '1 1' > m && mkdir sub && chmod 0755 sub")
	as := func(script string) shResult {
		return sh(t, d, "setpriv --reuid=65534 --regid=65534 --clear-groups sh -c "+shQuote(script))
	}
	if r := as("cat m"); r.Code == 0 || !strings.Contains(r.Stderr, "Permission denied") {
		t.Errorf("cat 0600 as nobody: %d %s", r.Code, r.Stderr)
	}
	mustSh(t, d, "chmod 0644 m")
	if r := as("cat m"); r.Code != 0 || !strings.Contains(r.Stdout, "01 00 00 00: 01 00 00 00") {
		t.Errorf("cat 0644 as nobody: %d %s %s", r.Code, r.Stdout, r.Stderr)
	}
	if r := as("echo '2 2' > m"); r.Code == 0 {
		t.Errorf("write 0644 as nobody succeeded")
	}
	if r := as("mkdir sub/x"); r.Code == 0 || !strings.Contains(r.Stderr, "Permission denied") {
		t.Errorf("mkdir in 0755 dir as nobody: %d %s", r.Code, r.Stderr)
	}
	// The sticky root: nobody can make a dir, but not remove root's.
	if r := as("mkdir mine && rmdir mine"); r.Code != 0 {
		t.Errorf("mkdir/rmdir in the 1777 root as nobody: %s", r.Stderr)
	}
	if r := as("rmdir sub"); r.Code == 0 {
		t.Errorf("nobody removed root's dir from the sticky root")
	}
}
