package engine

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/bpffs-fuse/bpffs-fuse/objects"
)

// Pinner is a pin namespace: a bpffs mount (implemented by package pinning). Paths are
// relative to the mount's root, cleaned, without a leading slash.
type Pinner interface {
	// Pin creates a pin named rel for obj (kernel/bpf/inode.c:bpf_obj_do_pin) with cred's
	// ownership and umask rules. obj comes with a user reference the pin keeps on success;
	// on error the caller drops it.
	Pin(rel string, obj objects.Object, cred Cred) error
	// Get opens the pin at rel (kernel/bpf/inode.c:bpf_obj_do_get): it checks cred's access
	// for fileFlags (BPF_F_RDONLY: read, BPF_F_WRONLY: write, 0: both) and returns the object
	// with a new user reference.
	Get(rel string, cred Cred, fileFlags uint32) (objects.Object, error)
}

type mount struct {
	dir string
	pin Pinner
}

// AddMount makes the pin namespace p answer OBJ_PIN and OBJ_GET for paths under dir (an
// absolute path).
func (e *Engine) AddMount(dir string, p Pinner) {
	dir = filepath.Clean(dir)
	e.mountsMu.Lock()
	defer e.mountsMu.Unlock()
	e.mounts = append(e.mounts, mount{dir: dir, pin: p})
	// Longest prefix first, so nested mounts win.
	sort.SliceStable(e.mounts, func(i, j int) bool { return len(e.mounts[i].dir) > len(e.mounts[j].dir) })
}

// RemoveMount forgets the mount at dir.
func (e *Engine) RemoveMount(dir string) {
	dir = filepath.Clean(dir)
	e.mountsMu.Lock()
	defer e.mountsMu.Unlock()
	for i, m := range e.mounts {
		if m.dir == dir {
			e.mounts = append(e.mounts[:i], e.mounts[i+1:]...)
			return
		}
	}
}

// Mounts returns the directories of the registered mounts.
func (e *Engine) Mounts() []string {
	e.mountsMu.RLock()
	defer e.mountsMu.RUnlock()
	dirs := make([]string, len(e.mounts))
	for i, m := range e.mounts {
		dirs[i] = m.dir
	}
	return dirs
}

// resolvePath finds the mount holding path. A path outside every mount is not on a bpffs: the
// kernel answers EPERM for a pin there (the parent is not a bpf dir) and, for a get, whatever
// the path is (ENOENT if it is missing, EACCES if it is not a BPF object); the engine cannot
// look outside its mounts, so it reports ENOENT for a get.
func (e *Engine) resolvePath(path string) (Pinner, string, bool) {
	if !filepath.IsAbs(path) {
		return nil, "", false
	}
	path = filepath.Clean(path)
	e.mountsMu.RLock()
	defer e.mountsMu.RUnlock()
	for _, m := range e.mounts {
		if path == m.dir {
			return m.pin, "", true
		}
		if strings.HasPrefix(path, m.dir+"/") || m.dir == "/" {
			return m.pin, strings.TrimPrefix(strings.TrimPrefix(path, m.dir), "/"), true
		}
	}
	return nil, "", false
}

// ObjPin is BPF_OBJ_PIN (kernel/bpf/inode.c:bpf_obj_pin_user): pins the object behind fd at path,
// an absolute path inside one of the engine's mounts.
func (p *Process) ObjPin(fd int, path string, fileFlags uint32) error {
	const op = "obj pin"
	if err := p.checkBPF(); err != nil {
		return err
	}
	if fileFlags&^objects.FPathFD != 0 {
		return fmt.Errorf("%s: file_flags %#x: %w", op, fileFlags, unix.EINVAL)
	}
	if fileFlags != 0 {
		return fmt.Errorf("%s: BPF_F_PATH_FD is not supported yet: %w", op, unix.EOPNOTSUPP)
	}
	f, err := p.get(fd)
	if err != nil {
		// bpf_fd_probe_obj: a bad fd is "not a BPF object", EINVAL.
		return fmt.Errorf("%s: fd %d is not a BPF object: %w", op, fd, unix.EINVAL)
	}
	pin, rel, ok := p.eng.resolvePath(path)
	if !ok {
		return fmt.Errorf("%s: %s is not on a bpffs mount: %w", op, path, unix.EPERM)
	}
	if rel == "" {
		return fmt.Errorf("%s: %s exists: %w", op, path, unix.EEXIST)
	}
	f.obj.IncUser()
	if err := pin.Pin(rel, f.obj, p.cred); err != nil {
		f.obj.PutUser()
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// ObjGet is BPF_OBJ_GET (kernel/bpf/inode.c:bpf_obj_get_user): opens the pin at path and returns
// a new fd. fileFlags are BPF_F_RDONLY or BPF_F_WRONLY, or 0 for read-write.
func (p *Process) ObjGet(path string, fileFlags uint32) (int, error) {
	const op = "obj get"
	if err := p.checkBPF(); err != nil {
		return -1, err
	}
	if fileFlags&^(objects.FRdonly|objects.FWronly|objects.FPathFD) != 0 ||
		fileFlags&(objects.FRdonly|objects.FWronly) == objects.FRdonly|objects.FWronly {
		return -1, fmt.Errorf("%s: file_flags %#x: %w", op, fileFlags, unix.EINVAL)
	}
	if fileFlags&objects.FPathFD != 0 {
		return -1, fmt.Errorf("%s: BPF_F_PATH_FD is not supported yet: %w", op, unix.EOPNOTSUPP)
	}
	pin, rel, ok := p.eng.resolvePath(path)
	if !ok {
		return -1, fmt.Errorf("%s: %s is not on a bpffs mount: %w", op, path, unix.ENOENT)
	}
	if rel == "" {
		return -1, fmt.Errorf("%s: %s is a directory: %w", op, path, unix.EACCES)
	}
	obj, err := pin.Get(rel, p.cred, fileFlags)
	if err != nil {
		return -1, fmt.Errorf("%s: %w", op, err)
	}
	fd, err := p.InstallFD(obj, fileFlags)
	if err != nil {
		obj.PutUser()
		return -1, fmt.Errorf("%s: %w", op, err)
	}
	return fd, nil
}
