// Package fsnode serves a pinning.Tree over FUSE with go-fuse's fs package: directories,
// symlinks and pinned objects behave as on the kernel's bpffs (kernel/bpf/inode.c), and map
// files can be read with cat and written with echo in the fsnode/text format.
//
// Every node is a Node; what it does depends on the pinning node behind it (pinning.Kind).
// The pin tree is the source of truth: go-fuse's Inode tree is only a cache of what the
// kernel has looked up.
//
// # Deadlocks
//
//   - The kernel must be told of changes made outside FUSE (a pin made through the engine)
//     with NotifyEntry. A notification waits for the kernel, which may wait for a FUSE
//     request that needs the tree's lock: notifications are therefore sent by the
//     pinning.Tree change callback only after the tree's lock is dropped, never from inside a
//     FUSE handler.
//   - Writes apply to maps through the engine while the file handle's lock is held; the
//     engine never calls back into FUSE, so no FUSE request waits on a handle lock from
//     inside the engine.
//   - Unlink and Rmdir succeed silently in go-fuse when not implemented; every Node
//     implements both so the pin tree decides.
//   - Returning ENOSYS from Open, Flush, Getxattr and the like makes the kernel stop asking
//     for the whole mount; no handler returns ENOSYS.
package fsnode

import (
	"context"
	"log/slog"
	"strconv"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/bpffs-fuse/bpffs-fuse/engine"
	"github.com/bpffs-fuse/bpffs-fuse/objects"
	"github.com/bpffs-fuse/bpffs-fuse/pinning"
)

// Xattr names the filesystem answers.
const (
	// XattrControl, on the mount root, is the path of the daemon's control socket.
	XattrControl = "user.bpffs.control"
	// XattrError, on a map file, is the text of the last failed write: line number, line
	// and reason.
	XattrError = "user.bpffs.error"
	// XattrPID, on the mount root, is the daemon's process id (bpffs-fuse umount waits for it).
	XattrPID = "user.bpffs.pid"
)

// entryTimeout is how long the kernel may cache names and directory attributes. Object
// files get no attribute caching: a direct-I/O write makes the kernel grow its cached
// i_size (fs/fuse/file.c:fuse_write_update_attr), and st_size of a pin must stay 0.
const entryTimeout = time.Second

// FS is what all nodes of one mount share.
type FS struct {
	eng     *engine.Engine
	proc    *engine.Process // the daemon's own process: open map files are fds in it
	tree    *pinning.Tree
	control string
	log     *slog.Logger
	root    *Node
	pid     int
}

// Node is one file, directory or symlink of the mount.
type Node struct {
	fs.Inode
	fs *FS
	n  *pinning.Node
}

var (
	_ = (fs.NodeLookuper)((*Node)(nil))
	_ = (fs.NodeReaddirer)((*Node)(nil))
	_ = (fs.NodeGetattrer)((*Node)(nil))
	_ = (fs.NodeSetattrer)((*Node)(nil))
	_ = (fs.NodeMkdirer)((*Node)(nil))
	_ = (fs.NodeMknoder)((*Node)(nil))
	_ = (fs.NodeCreater)((*Node)(nil))
	_ = (fs.NodeSymlinker)((*Node)(nil))
	_ = (fs.NodeReadlinker)((*Node)(nil))
	_ = (fs.NodeLinker)((*Node)(nil))
	_ = (fs.NodeUnlinker)((*Node)(nil))
	_ = (fs.NodeRmdirer)((*Node)(nil))
	_ = (fs.NodeRenamer)((*Node)(nil))
	_ = (fs.NodeOpener)((*Node)(nil))
	_ = (fs.NodeStatfser)((*Node)(nil))
	_ = (fs.NodeGetxattrer)((*Node)(nil))
	_ = (fs.NodeSetxattrer)((*Node)(nil))
	_ = (fs.NodeListxattrer)((*Node)(nil))
	_ = (fs.NodeRemovexattrer)((*Node)(nil))
	_ = (fs.NodeFsyncer)((*Node)(nil))
)

func errno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	var e unix.Errno
	if asErrno(err, &e) {
		return syscall.Errno(e)
	}
	return syscall.EIO
}

func fillAttr(a pinning.Attr, out *fuse.Attr) {
	out.Ino = a.Ino
	out.Mode = a.Mode
	out.Nlink = a.Nlink
	out.Uid, out.Gid = a.UID, a.GID
	out.Size = uint64(a.Size)
	out.Blksize = 4096
	out.SetTimes(&a.Atime, &a.Mtime, &a.Ctime)
}

func attrTimeout(k pinning.Kind) time.Duration {
	if k == pinning.KindObject || k == pinning.KindPreload {
		return 0
	}
	return entryTimeout
}

// child returns the go-fuse inode for pinning node c, creating it if the kernel has not
// seen it (an inode number already known gives the existing inode: hard links).
func (n *Node) child(ctx context.Context, c *pinning.Node, out *fuse.EntryOut) *fs.Inode {
	a := c.Attr()
	fillAttr(a, &out.Attr)
	out.SetEntryTimeout(entryTimeout)
	out.SetAttrTimeout(attrTimeout(c.Kind()))
	return n.NewInode(ctx, &Node{fs: n.fs, n: c}, fs.StableAttr{Mode: a.Mode & unix.S_IFMT, Ino: a.Ino})
}

func creator(ctx context.Context) pinning.Creator {
	if c, ok := fuse.FromContext(ctx); ok {
		// The kernel applied the umask to the mode already (fs/fuse/dir.c:fuse_mkdir,
		// no FUSE_DONT_MASK).
		return pinning.Creator{UID: c.Uid, GID: c.Gid}
	}
	return pinning.Creator{}
}

// Lookup implements fs.NodeLookuper (kernel/bpf/inode.c:bpf_lookup).
func (n *Node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	c, err := n.fs.tree.Lookup(n.n, name)
	if err != nil {
		return nil, errno(err)
	}
	return n.child(ctx, c, out), 0
}

// Readdir implements fs.NodeReaddirer (fs/libfs.c:dcache_readdir).
func (n *Node) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	es, err := n.fs.tree.Readdir(n.n)
	if err != nil {
		return nil, errno(err)
	}
	list := make([]fuse.DirEntry, 0, len(es)+2)
	list = append(list, fuse.DirEntry{Name: ".", Ino: n.n.Ino(), Mode: unix.S_IFDIR},
		fuse.DirEntry{Name: "..", Ino: n.fs.tree.ParentIno(n.n), Mode: unix.S_IFDIR})
	for _, e := range es {
		list = append(list, fuse.DirEntry{Name: e.Name, Ino: e.Ino, Mode: e.Mode})
	}
	return fs.NewListDirStream(list), 0
}

// Getattr implements fs.NodeGetattrer.
func (n *Node) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	fillAttr(n.n.Attr(), &out.Attr)
	out.SetTimeout(attrTimeout(n.n.Kind()))
	return 0
}

// Setattr implements fs.NodeSetattrer (fs/libfs.c:simple_setattr; bpffs has no setattr):
// chmod, chown, utimes and truncate are stored. The kernel checked the caller's rights.
func (n *Node) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	var sa pinning.SetAttr
	if m, ok := in.GetMode(); ok {
		sa.Mode = &m
	}
	if u, ok := in.GetUID(); ok {
		sa.UID = &u
	}
	if g, ok := in.GetGID(); ok {
		sa.GID = &g
	}
	if s, ok := in.GetSize(); ok {
		sz := int64(s)
		sa.Size = &sz
	}
	if in.Valid&fuse.FATTR_ATIME != 0 {
		if in.Valid&fuse.FATTR_ATIME_NOW != 0 {
			sa.AtimeToNow = true
		} else {
			t := time.Unix(int64(in.Atime), int64(in.Atimensec))
			sa.Atime = &t
		}
	}
	if in.Valid&fuse.FATTR_MTIME != 0 {
		if in.Valid&fuse.FATTR_MTIME_NOW != 0 {
			sa.MtimeToNow = true
		} else {
			t := time.Unix(int64(in.Mtime), int64(in.Mtimensec))
			sa.Mtime = &t
		}
	}
	a, err := n.fs.tree.Setattr(n.n, sa)
	if err != nil {
		return errno(err)
	}
	fillAttr(a, &out.Attr)
	out.SetTimeout(attrTimeout(n.n.Kind()))
	return 0
}

// Mkdir implements fs.NodeMkdirer (kernel/bpf/inode.c:bpf_mkdir).
func (n *Node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	c, err := n.fs.tree.Mkdir(n.n, name, mode, creator(ctx))
	if err != nil {
		return nil, errno(err)
	}
	return n.child(ctx, c, out), 0
}

// Mknod implements fs.NodeMknoder: bpffs has no mknod, so vfs_mknod refuses with EPERM; and no
// create, so mknod(S_IFREG), which the kernel turns into vfs_create (fs/namei.c:do_mknodat) and
// FUSE into FUSE_MKNOD, fails with EACCES.
func (n *Node) Mknod(ctx context.Context, name string, mode uint32, dev uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if _, err := n.fs.tree.Lookup(n.n, name); err == nil {
		return nil, syscall.EEXIST
	} else if errno(err) == syscall.EPERM {
		return nil, syscall.EPERM
	}
	if mode&syscall.S_IFMT == syscall.S_IFREG || mode&syscall.S_IFMT == 0 {
		return nil, syscall.EACCES
	}
	return nil, syscall.EPERM
}

// Create implements fs.NodeCreater: bpffs has no create, so open(O_CREAT) of a new name fails
// with EACCES (fs/namei.c:lookup_open without ->create).
func (n *Node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, syscall.EACCES
}

// Symlink implements fs.NodeSymlinker (kernel/bpf/inode.c:bpf_symlink).
func (n *Node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	c, err := n.fs.tree.Symlink(n.n, name, target, creator(ctx))
	if err != nil {
		return nil, errno(err)
	}
	return n.child(ctx, c, out), 0
}

// Readlink implements fs.NodeReadlinker.
func (n *Node) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	if n.n.Kind() != pinning.KindSymlink {
		return nil, syscall.EINVAL
	}
	return []byte(n.n.Target()), 0
}

// Link implements fs.NodeLinker (fs/libfs.c:simple_link).
func (n *Node) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	t, ok := target.(*Node)
	if !ok {
		return nil, syscall.EXDEV
	}
	if err := n.fs.tree.Link(t.n, n.n, name); err != nil {
		return nil, errno(err)
	}
	return n.child(ctx, t.n, out), 0
}

// Unlink implements fs.NodeUnlinker (fs/libfs.c:simple_unlink).
func (n *Node) Unlink(ctx context.Context, name string) syscall.Errno {
	return errno(n.fs.tree.Unlink(n.n, name))
}

// Rmdir implements fs.NodeRmdirer (fs/libfs.c:simple_rmdir).
func (n *Node) Rmdir(ctx context.Context, name string) syscall.Errno {
	return errno(n.fs.tree.Rmdir(n.n, name))
}

// Rename implements fs.NodeRenamer (fs/libfs.c:simple_rename).
func (n *Node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	np, ok := newParent.(*Node)
	if !ok {
		return syscall.EXDEV
	}
	return errno(n.fs.tree.Rename(n.n, name, np.n, newName, flags))
}

// Statfs implements fs.NodeStatfser (fs/libfs.c:simple_statfs): block size 4096, names up
// to 255 bytes, no block or inode counts. f_type stays FUSE's magic.
func (n *Node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	*out = fuse.StatfsOut{}
	out.Bsize = 4096
	out.Frsize = 4096
	out.NameLen = 255
	return 0
}

// Getxattr implements fs.NodeGetxattrer: user.bpffs.control on the root and user.bpffs.error
// on map files; nothing else exists (ENODATA). The kernel's bpffs has no xattrs at all; these
// two are this filesystem's own.
func (n *Node) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	var val string
	switch {
	case attr == XattrControl && n.n.Ino() == pinning.RootIno && n.fs.control != "":
		val = n.fs.control
	case attr == XattrPID && n.n.Ino() == pinning.RootIno && n.fs.pid != 0:
		val = strconv.Itoa(n.fs.pid)
	case attr == XattrError && n.n.Kind() == pinning.KindObject:
		s, ok := n.n.Note()
		if !ok {
			return 0, syscall.ENODATA
		}
		val = s
	default:
		return 0, syscall.ENODATA
	}
	if len(dest) == 0 {
		return uint32(len(val)), 0
	}
	if len(dest) < len(val) {
		return uint32(len(val)), syscall.ERANGE
	}
	return uint32(copy(dest, val)), 0
}

// Setxattr implements fs.NodeSetxattrer: bpffs has no xattr handlers (EOPNOTSUPP).
func (n *Node) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	return syscall.EOPNOTSUPP
}

// Removexattr implements fs.NodeRemovexattrer: EOPNOTSUPP, as Setxattr.
func (n *Node) Removexattr(ctx context.Context, attr string) syscall.Errno {
	return syscall.EOPNOTSUPP
}

// Listxattr implements fs.NodeListxattrer: an empty list, as the kernel's bpffs gives.
func (n *Node) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	return 0, 0
}

// Open implements fs.NodeOpener: map files and the preload files. Object files open with
// FOPEN_DIRECT_IO (size 0, content generated per open). O_TRUNC is accepted and ignored:
// writing never clears a map.
//
// Read-only opens also get FOPEN_NOFLUSH: only a writer has anything to do at close (a last
// line without a newline), and without it every close(2) of a reader (cat's, a shell's dup'ed
// descriptors) would wait for a FLUSH round trip to the daemon that does nothing.
func (n *Node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	const readerFlags = fuse.FOPEN_DIRECT_IO | fuse.FOPEN_NOFLUSH
	switch n.n.Kind() {
	case pinning.KindPreload:
		if flags&syscall.O_ACCMODE != syscall.O_RDONLY {
			return nil, 0, syscall.EACCES
		}
		return &bytesHandle{data: preloadText(n.fs.eng, n.n.PreloadName())}, readerFlags, 0
	case pinning.KindObject:
	default:
		return nil, 0, syscall.EISDIR
	}
	obj := n.n.Object()
	if obj == nil || !obj.TryIncUser() {
		return nil, 0, syscall.ENOENT
	}
	m, ok := obj.(*objects.Map)
	if !ok {
		obj.PutUser()
		return nil, 0, syscall.EOPNOTSUPP
	}
	h, err := newMapHandle(n.fs, n.n, m, flags)
	if err != nil {
		return nil, 0, errno(err)
	}
	if flags&syscall.O_ACCMODE == syscall.O_RDONLY {
		return h, readerFlags, 0
	}
	return h, fuse.FOPEN_DIRECT_IO, 0
}

// Fsync implements fs.NodeFsyncer. Directories: fs/libfs.c:noop_fsync. Map files: the kernel's
// bpffs_map_fops has no fsync (EINVAL), but its map files cannot be written either; here a
// write is applied before write(2) returns, so there is nothing to sync and fsync succeeds
// (dd conv=fsync, editors). go-fuse's default would be ENOTSUP.
func (n *Node) Fsync(ctx context.Context, f fs.FileHandle, flags uint32) syscall.Errno {
	return 0
}
