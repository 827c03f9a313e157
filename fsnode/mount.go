package fsnode

import (
	"errors"
	"fmt"
	"os/exec"
	"sync"

	"golang.org/x/sys/unix"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/bpffs-fuse/bpffs-fuse/engine"
	"github.com/bpffs-fuse/bpffs-fuse/pinning"
)

// Config is what Mount needs.
type Config struct {
	// Engine holds the objects; the mount registers itself with Engine.AddMount so that
	// OBJ_PIN and OBJ_GET on paths under the mount land in its pin tree.
	Engine *engine.Engine
	// Mode, UID and GID are the root's mode (the sticky bit is added) and owner: the mount
	// options mode=, uid=, gid=.
	Mode     uint32
	UID, GID uint32
	// AllowOther lets users other than the mounter in (FUSE allow_other).
	AllowOther bool
	// ControlSocket is what the root's user.bpffs.control xattr answers; "" for none.
	ControlSocket string
	// Logger receives the daemon's log; nil discards it.
	Logger *slog.Logger
	// PID is what the root's user.bpffs.pid xattr answers (the daemon's pid); 0 for none.
	PID int
	// Debug logs every FUSE request (go-fuse's debug output, to the Logger's writer: stderr).
	Debug bool
}

// Server is a mounted bpffs.
type Server struct {
	*fuse.Server
	Dir  string
	Tree *pinning.Tree
	eng  *engine.Engine
	fs   *FS
	once sync.Once
}

// Mount mounts a bpffs on dir and starts serving it: as root with a direct mount(2), else
// through fusermount3. default_permissions is always on, so the kernel checks modes as it
// does on the real bpffs. It returns once the kernel has finished FUSE_INIT.
func Mount(dir string, cfg Config) (*Server, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	tree := pinning.New(pinning.Options{Mode: cfg.Mode, UID: cfg.UID, GID: cfg.GID,
		PreloadUID: uint32(os.Geteuid()), PreloadGID: uint32(os.Getegid()), MountDir: dir, Preload: true})
	f := &FS{eng: cfg.Engine, proc: cfg.Engine.NewProcess(engine.Root()), tree: tree, control: cfg.ControlSocket, log: log, pid: cfg.PID}
	root := &Node{fs: f, n: tree.Root()}
	f.root = root
	entry := entryTimeout
	var zero time.Duration
	opts := &fs.Options{
		EntryTimeout:    &entry,
		AttrTimeout:     &entry,
		NegativeTimeout: &zero,
		RootStableAttr:  &fs.StableAttr{Ino: pinning.RootIno},
		// Mode 0000 is a real mode on bpffs (chmod 0 works; a 0000 dir even relaxes the dot
		// rule): without this go-fuse reports it as 0755/0644.
		NullPermissions: true,
		// Options.UID/GID stay 0: go-fuse would report them for every node owned by root.
		MountOptions: fuse.MountOptions{
			Name:              "bpffs-fuse",
			FsName:            "bpffs",
			AllowOther:        cfg.AllowOther,
			Options:           []string{"default_permissions"},
			DirectMountStrict: os.Geteuid() == 0,
			MaxWrite:          1 << 20,
			ExtraCapabilities: fuse.CAP_ATOMIC_O_TRUNC,
			Debug:             cfg.Debug,
		},
	}
	srv, err := fs.Mount(dir, root, opts)
	if err != nil {
		f.proc.Exit()
		return nil, err
	}
	s := &Server{Server: srv, Dir: dir, Tree: tree, eng: cfg.Engine, fs: f}
	tree.OnChange(func(c pinning.Change) { s.notify(c) })
	cfg.Engine.AddMount(dir, tree)
	return s, nil
}

// notify tells the kernel that dir's entry name changed outside FUSE (a pin made or removed
// through the engine), if the kernel has dir cached at all. It runs without the tree's lock
// (pinning.Tree.OnChange).
func (s *Server) notify(c pinning.Change) {
	path, ok := s.Tree.PathOf(c.Dir)
	if !ok {
		return
	}
	ino := s.fs.rootInode()
	for _, name := range path {
		if ino = ino.GetChild(name); ino == nil {
			return // never looked up: nothing cached
		}
	}
	if child := ino.GetChild(c.Name); child != nil {
		// The kernel may hold the old entry: drop it (inotify sees a delete), and forget it
		// here too when the name is gone.
		ino.NotifyDelete(c.Name, child)
		if _, err := s.Tree.Lookup(c.Dir, c.Name); err != nil {
			ino.RmChild(c.Name)
		}
	} else {
		ino.NotifyEntry(c.Name)
	}
	// The directory's mtime, ctime and nlink changed too (bpf_mkobj_ops updates the parent's
	// times on every create); offset -1 invalidates its cached attributes only.
	ino.NotifyContent(-1, 0)
}

func (f *FS) rootInode() *fs.Inode {
	return f.root.EmbeddedInode()
}

// Close unregisters the mount from the engine, unpins everything (as unmounting a bpffs
// does) and closes the daemon's fds. Call it after the server has stopped.
func (s *Server) Close() {
	s.once.Do(func() {
		s.eng.RemoveMount(s.Dir)
		s.Tree.Close()
		s.fs.proc.Exit()
	})
}

// Unmount unmounts and stops serving, then Close. A busy mount is detached lazily.
func (s *Server) Unmount() error {
	err := s.Server.Unmount()
	if err != nil && (errors.Is(err, unix.EBUSY) || strings.Contains(err.Error(), "busy")) {
		err = UnmountDir(s.Dir, true)
	}
	s.Wait()
	s.Close()
	return err
}

// UnmountDir unmounts the FUSE mount on dir: umount2(2) as root, fusermount3 -u otherwise;
// lazy detaches a busy mount (MNT_DETACH, fusermount3 -z). It also works on a stale mount
// whose daemon is gone (ENOTCONN).
func UnmountDir(dir string, lazy bool) error {
	if os.Geteuid() == 0 {
		flags := 0
		if lazy {
			flags = unix.MNT_DETACH
		}
		if err := unix.Unmount(dir, flags); err != nil {
			return &os.PathError{Op: "umount", Path: dir, Err: err}
		}
		return nil
	}
	args := []string{"-u"}
	if lazy {
		args = append(args, "-z")
	}
	out, err := exec.Command("fusermount3", append(args, dir)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("fusermount3 -u %s: %v: %s", dir, err, strings.TrimSpace(string(out)))
	}
	return nil
}
