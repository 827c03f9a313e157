package pinning

import (
	"fmt"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/bpffs-fuse/bpffs-fuse/engine"
	"github.com/bpffs-fuse/bpffs-fuse/objects"
)

var _ engine.Pinner = (*Tree)(nil)

// Access bits for permission checks (include/linux/fs.h MAY_*).
const (
	mayExec  = 1
	mayWrite = 2
	mayRead  = 4
)

const capDacReadSearch = engine.Caps(1) << unix.CAP_DAC_READ_SEARCH

// permission is fs/namei.c:generic_permission for cred on n: the owner's, the group's or the
// others' bits, then CAP_DAC_OVERRIDE (read and write always, exec if a directory or any x
// bit is set) and CAP_DAC_READ_SEARCH (read, and search of directories).
func permission(n *Node, cred engine.Cred, mask uint32) error {
	mode := n.mode
	var bits uint32
	switch {
	case cred.UID == n.uid:
		bits = mode >> 6
	case cred.InGroup(n.gid):
		bits = mode >> 3
	default:
		bits = mode
	}
	if mask&^bits&7 == 0 {
		return nil
	}
	isDir := n.kind == KindDir
	if cred.Has(engine.CapDacOverride) {
		if mask&mayExec == 0 || isDir || mode&0o111 != 0 {
			return nil
		}
	}
	if cred.Has(capDacReadSearch) {
		if mask == mayRead || isDir && mask&mayWrite == 0 {
			return nil
		}
	}
	return unix.EACCES
}

// maxSymlinks is fs/namei.c's MAXSYMLINKS.
const maxSymlinks = 40

// errOutside says that a path left the tree through an absolute symlink; target is the host
// path it points to.
type errOutside struct{ target string }

func (e *errOutside) Error() string { return "symlink out of the mount to " + e.target }

// walkLocked resolves the directory components of rel from the root, following symlinks
// inside the tree, checking search (x) permission on every directory it goes through
// (fs/namei.c:link_path_walk → may_lookup), and returns the parent directory and the last
// name. depth counts symlinks followed so far.
func (t *Tree) walkLocked(rel string, cred engine.Cred, depth *int) (*Node, string, error) {
	dir := t.root
	parts := strings.Split(rel, "/")
	for i := 0; i < len(parts)-1; i++ {
		name := parts[i]
		if err := permission(dir, cred, mayExec); err != nil {
			return nil, "", err
		}
		switch name {
		case "", ".":
			continue
		case "..":
			dir = dir.parent
			continue
		}
		n, err := t.lookupLocked(dir, name)
		if err != nil {
			return nil, "", err
		}
		n, _, err = t.followLocked(dir, n, cred, depth)
		if err != nil {
			return nil, "", err
		}
		if n.kind != KindDir {
			return nil, "", unix.ENOTDIR
		}
		dir = n
	}
	if err := permission(dir, cred, mayExec); err != nil {
		return nil, "", err
	}
	return dir, parts[len(parts)-1], nil
}

// followLocked resolves n while it is a symlink (fs/namei.c:pick_link), relative to dir. It
// returns the node reached and the directory holding it.
func (t *Tree) followLocked(dir, n *Node, cred engine.Cred, depth *int) (*Node, *Node, error) {
	for n.kind == KindSymlink {
		*depth++
		if *depth > maxSymlinks {
			return nil, nil, unix.ELOOP
		}
		target := n.target
		start := dir
		if path.IsAbs(target) {
			md := t.opts.MountDir
			switch {
			case md != "" && (target == md || strings.HasPrefix(target, md+"/") || md == "/"):
				target = strings.TrimPrefix(strings.TrimPrefix(target, md), "/")
				start = t.root
			default:
				return nil, nil, &errOutside{target: target}
			}
		}
		if strings.Trim(target, "/") == "" || target == "." {
			n = start
			continue
		}
		// Resolve the target's components relative to start.
		saveRoot := start
		parts := strings.Split(target, "/")
		cur := saveRoot
		for i, name := range parts {
			last := i == len(parts)-1
			if err := permission(cur, cred, mayExec); err != nil {
				return nil, nil, err
			}
			switch name {
			case "", ".":
				if last {
					n, dir = cur, cur.parent
				}
				continue
			case "..":
				cur = cur.parent
				if last {
					n, dir = cur, cur.parent
				}
				continue
			}
			c, err := t.lookupLocked(cur, name)
			if err != nil {
				return nil, nil, err
			}
			if last {
				n, dir = c, cur
				break
			}
			c, _, err = t.followLocked(cur, c, cred, depth)
			if err != nil {
				return nil, nil, err
			}
			if c.kind != KindDir {
				return nil, nil, unix.ENOTDIR
			}
			cur = c
		}
	}
	return n, dir, nil
}

func cleanRel(rel string) (string, error) {
	if rel == "" || path.IsAbs(rel) {
		return "", unix.EINVAL
	}
	return rel, nil
}

// Pin is BPF_OBJ_PIN's path half (kernel/bpf/inode.c:bpf_obj_do_pin via user_path_create):
// the parent directories must exist (ENOENT), be directories (ENOTDIR) and be searchable
// (EACCES); a dotted new name is EPERM, an existing name (even a dangling symlink) EEXIST,
// and the parent needs write and search permission (EACCES, fs/namei.c:may_create). The pin
// is S_IFREG|(0600 &^ umask), owned by cred. obj comes with a user reference the pin keeps on
// success. The change is reported to the OnChange function.
func (t *Tree) Pin(rel string, obj objects.Object, cred engine.Cred) error {
	rel, err := cleanRel(rel)
	if err != nil {
		return err
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return fmt.Errorf("mount is gone: %w", unix.ENOENT)
	}
	depth := 0
	dir, name, err := t.walkLocked(rel, cred, &depth)
	if err != nil {
		t.mu.Unlock()
		if o, ok := err.(*errOutside); ok {
			// The parent is on the host, not a bpffs dir (kernel/bpf/inode.c:bpf_obj_do_pin).
			if _, serr := os.Stat(o.target); serr != nil {
				return fmt.Errorf("%s: %s: %w", rel, o.target, unix.ENOENT)
			}
			return fmt.Errorf("%s: %s is not on this bpffs: %w", rel, o.target, unix.EPERM)
		}
		return pathErr(rel, err)
	}
	if err := checkNewName(dir, name); err != nil {
		t.mu.Unlock()
		return pathErr(rel, err)
	}
	if err := permission(dir, cred, mayWrite|mayExec); err != nil {
		t.mu.Unlock()
		return pathErr(rel, err)
	}
	_, err = t.pinAtLocked(dir, name, obj, Creator{UID: cred.UID, GID: cred.GID, Umask: cred.Umask})
	t.mu.Unlock()
	if err != nil {
		return pathErr(rel, err)
	}
	t.changed(Change{Dir: dir, Name: name})
	return nil
}

// Get is BPF_OBJ_GET's path half (kernel/bpf/inode.c:bpf_obj_do_get): the path is resolved
// following symlinks (LOOKUP_FOLLOW; missing or dangling: ENOENT), the caller needs search
// permission on every directory and, on the object, read for BPF_F_RDONLY, write for
// BPF_F_WRONLY and both for 0 (fs/namei.c:path_permission → EACCES); then anything but a
// pinned object is EACCES (bpf_inode_type). The object comes back with a new user reference.
// On success the pin's atime is touched.
//
// A symlink to an absolute path outside the mount is followed on the host: a path that
// exists there is not a BPF object of this engine (EACCES), a missing one is ENOENT. The
// kernel would find a kernel bpffs object there; the engine cannot hold kernel objects.
func (t *Tree) Get(rel string, cred engine.Cred, fileFlags uint32) (objects.Object, error) {
	rel, err := cleanRel(rel)
	if err != nil {
		return nil, err
	}
	var mask uint32
	switch fileFlags & (objects.FRdonly | objects.FWronly) {
	case objects.FRdonly:
		mask = mayRead
	case objects.FWronly:
		mask = mayWrite
	default:
		mask = mayRead | mayWrite
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	depth := 0
	dir, name, err := t.walkLocked(rel, cred, &depth)
	if err != nil {
		return nil, getErr(rel, err)
	}
	var n *Node
	switch name {
	case "", ".":
		n = dir
	case "..":
		n = dir.parent
	default:
		n, err = t.lookupLocked(dir, name)
		if err != nil {
			return nil, getErr(rel, err)
		}
		n, _, err = t.followLocked(dir, n, cred, &depth)
		if err != nil {
			return nil, getErr(rel, err)
		}
	}
	if err := permission(n, cred, mask); err != nil {
		return nil, pathErr(rel, err)
	}
	if n.kind != KindObject || n.obj == nil {
		return nil, fmt.Errorf("%s is not a BPF object: %w", rel, unix.EACCES)
	}
	if !n.obj.TryIncUser() {
		return nil, fmt.Errorf("%s: %w", rel, unix.ENOENT)
	}
	n.atime = t.opts.Now()
	return n.obj, nil
}

func pathErr(rel string, err error) error {
	return fmt.Errorf("%s: %w", rel, err)
}

// getErr maps a walk out of the tree to the host's answer (see Get).
func getErr(rel string, err error) error {
	if o, ok := err.(*errOutside); ok {
		if _, serr := os.Stat(o.target); serr != nil {
			return fmt.Errorf("%s: %s: %w", rel, o.target, unix.ENOENT)
		}
		return fmt.Errorf("%s: %s is not a BPF object of this engine: %w", rel, o.target, unix.EACCES)
	}
	return pathErr(rel, err)
}

// Unpin removes the name rel from outside FUSE (the daemon or the Go API; bpf(2) has no
// unpin, users unlink): directories are EISDIR, the preload files EPERM; symlinks in the
// directory part are followed. The last name of a pin drops its reference. No permission
// check: callers act as the mount's owner. The change is reported to the OnChange function.
func (t *Tree) Unpin(rel string) error {
	rel, err := cleanRel(rel)
	if err != nil {
		return err
	}
	t.mu.Lock()
	depth := 0
	dir, name, err := t.walkLocked(rel, engine.Root(), &depth)
	t.mu.Unlock()
	if err != nil {
		return getErr(rel, err)
	}
	if err := t.Unlink(dir, name); err != nil {
		return pathErr(rel, err)
	}
	t.changed(Change{Dir: dir, Name: name})
	return nil
}
