// Package pinning is the pin namespace of one bpffs mount: a tree of directories, pinned
// objects and symbolic links with the rules of the kernel's bpffs (kernel/bpf/inode.c and the
// fs/libfs.c simple_* operations it uses). It holds the pins' object references and knows
// nothing of FUSE: package fsnode serves a Tree over FUSE, and the engine reaches it for
// BPF_OBJ_PIN and BPF_OBJ_GET through the engine.Pinner interface.
//
// Permission checks: operations that come through FUSE are checked by the kernel
// (default_permissions), so the Tree does not check them again; Pin and Get, which come from
// the engine, check DAC permissions themselves as the kernel's path walk does.
//
// Concurrency: a Tree is safe for concurrent use; one mutex guards it. Objects are released
// and the change callback is called after the mutex is dropped.
package pinning

import (
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bpffs-fuse/bpffs-fuse/objects"
)

// Kind is what a Node is.
type Kind uint8

// Node kinds: bpffs has only directories, regular files (pinned objects, and the preloaded
// maps.debug and progs.debug) and symbolic links (kernel/bpf/inode.c:bpf_get_inode).
const (
	KindDir Kind = iota + 1
	KindObject
	KindSymlink
	// KindPreload is a kernel-made iterator file: maps.debug or progs.debug.
	KindPreload
)

// RootIno is the inode number of the root directory (FUSE's root node id).
const RootIno = 1

// Node is a directory, a pinned object, a symlink or a preload file. Its fields are guarded
// by the Tree's mutex; use the accessor methods.
type Node struct {
	tree     *Tree
	ino      uint64
	kind     Kind
	mode     uint32 // permission bits (07777)
	uid, gid uint32
	nlink    uint32
	size     int64
	atime    time.Time
	mtime    time.Time
	ctime    time.Time

	obj      objects.Object    // KindObject
	target   string            // KindSymlink
	preload  string            // KindPreload: its name
	children map[string]*Node  // KindDir
	parent   *Node             // KindDir: the directory holding it (the root: itself)
	subdirs  int               // KindDir: children that are directories
	order    map[string]uint64 // KindDir: when each entry was linked in (Readdir: newest first)

	// note is free text kept with the node (the last write error of a map file).
	note atomic.Pointer[string]
}

// Attr is a node's stat(2) attributes.
type Attr struct {
	Ino   uint64
	Mode  uint32 // with the S_IFMT type bits
	Nlink uint32
	UID   uint32
	GID   uint32
	Size  int64
	Atime time.Time
	Mtime time.Time
	Ctime time.Time
}

// Options configure a Tree: the bpffs mount options (kernel-semantics a.3).
type Options struct {
	// Mode is the root's permission bits (mode=, masked with 07777); the sticky bit is
	// always added (kernel/bpf/inode.c:bpf_fill_super).
	Mode uint32
	// UID and GID own the root.
	UID, GID uint32
	// PreloadUID and PreloadGID own the preload files: the mounter's fsuid and fsgid, which
	// populate_bpffs runs as, whatever uid= and gid= say.
	PreloadUID, PreloadGID uint32
	// MountDir is the absolute path the tree is mounted on; Get follows absolute symlinks
	// that point inside it. Empty: absolute symlinks are followed on the host only.
	MountDir string
	// Preload creates maps.debug and progs.debug in the root (bpf_fill_super with
	// CONFIG_BPF_PRELOAD: populate_bpffs).
	Preload bool
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Change describes a change made outside FUSE (by Pin): the directory dir gained, lost or
// replaced its entry name. FUSE servers use it to invalidate the kernel's caches.
type Change struct {
	Dir  *Node
	Name string
}

// Tree is one mount's pin namespace.
type Tree struct {
	mu      sync.Mutex
	root    *Node
	nextIno uint64
	linkSeq uint64 // last sequence number given to a directory entry (Node.order)
	opts    Options
	closed  bool

	onChange atomic.Pointer[func(Change)]
}

// New returns a tree holding only its root directory (and the preload files if
// opts.Preload), as a fresh bpffs mount (kernel/bpf/inode.c:bpf_fill_super).
func New(opts Options) *Tree {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	t := &Tree{opts: opts, nextIno: RootIno}
	now := opts.Now()
	t.root = &Node{tree: t, ino: RootIno, kind: KindDir, mode: unix.S_ISVTX | opts.Mode&0o7777,
		uid: opts.UID, gid: opts.GID, nlink: 2, atime: now, mtime: now, ctime: now,
		children: map[string]*Node{}}
	t.root.parent = t.root
	if opts.Preload {
		// kernel/bpf/preload/bpf_preload_kern.c via bpf_iter_link_pin_kernel: S_IFREG|0400,
		// owned by the mounter.
		for _, name := range []string{"maps.debug", "progs.debug"} {
			n := t.newNode(KindPreload, 0o400, opts.PreloadUID, opts.PreloadGID)
			n.preload = name
			t.root.children[name] = n
			t.linkedLocked(t.root, name)
		}
	}
	return t
}

// OnChange sets the function told about changes made outside FUSE (see Change). It is
// called without the tree's lock held, after the change is visible.
func (t *Tree) OnChange(fn func(Change)) {
	t.onChange.Store(&fn)
}

func (t *Tree) changed(c Change) {
	if fn := t.onChange.Load(); fn != nil && *fn != nil {
		(*fn)(c)
	}
}

// Root returns the root directory.
func (t *Tree) Root() *Node { return t.root }

// Close unpins everything, as unmounting a bpffs does (kernel/bpf/inode.c:bpf_kill_super →
// kill_litter_super): every pin's reference is dropped. The tree is empty afterwards and
// refuses new pins with ENOENT.
func (t *Tree) Close() {
	t.mu.Lock()
	var drop []objects.Object
	var walk func(d *Node)
	walk = func(d *Node) {
		for name, c := range d.children {
			delete(d.children, name)
			switch c.kind {
			case KindDir:
				walk(c)
			case KindObject:
				c.nlink--
				if c.nlink == 0 && c.obj != nil {
					drop = append(drop, c.obj)
					c.obj = nil
				}
			}
		}
		d.subdirs = 0
		d.order = nil
	}
	walk(t.root)
	t.closed = true
	t.mu.Unlock()
	for _, o := range drop {
		o.PutUser()
	}
}

func (t *Tree) newNode(kind Kind, mode, uid, gid uint32) *Node {
	t.nextIno++
	now := t.opts.Now()
	n := &Node{tree: t, ino: t.nextIno, kind: kind, mode: mode & 0o7777, uid: uid, gid: gid,
		nlink: 1, atime: now, mtime: now, ctime: now}
	if kind == KindDir {
		n.nlink = 2
		n.children = map[string]*Node{}
	}
	return n
}

// Ino returns the node's inode number.
func (n *Node) Ino() uint64 { return n.ino }

// Kind returns what the node is.
func (n *Node) Kind() Kind { return n.kind }

// Object returns the pinned object (KindObject), nil otherwise or once unpinned. The caller
// takes its own reference (TryIncUser) if it keeps it.
func (n *Node) Object() objects.Object {
	n.tree.mu.Lock()
	defer n.tree.mu.Unlock()
	return n.obj
}

// PreloadName returns "maps.debug" or "progs.debug" for a preload file.
func (n *Node) PreloadName() string { return n.preload }

// Target returns a symlink's target.
func (n *Node) Target() string {
	n.tree.mu.Lock()
	defer n.tree.mu.Unlock()
	n.accessedLocked(n.tree.opts.Now())
	return n.target
}

// accessedLocked records a read of n at now with the relatime rule, the default of a bpffs mount
// (fs/inode.c:relatime_need_update): atime moves only when it is not after mtime or ctime, or
// is a day old, so repeated reads of an unchanged file leave it alone.
func (n *Node) accessedLocked(now time.Time) {
	if !n.atime.After(n.mtime) || !n.atime.After(n.ctime) || now.Sub(n.atime) >= 24*time.Hour {
		n.atime = now
	}
}

// SetNote keeps free text with the node (a map file's last write error).
func (n *Node) SetNote(s string) { n.note.Store(&s) }

// Note returns the text kept by SetNote, and whether there is any.
func (n *Node) Note() (string, bool) {
	p := n.note.Load()
	if p == nil {
		return "", false
	}
	return *p, true
}

// Attr returns the node's attributes.
func (n *Node) Attr() Attr {
	n.tree.mu.Lock()
	defer n.tree.mu.Unlock()
	return n.attrLocked()
}

func (n *Node) attrLocked() Attr {
	a := Attr{Ino: n.ino, Mode: n.mode, Nlink: n.nlink, UID: n.uid, GID: n.gid, Size: n.size,
		Atime: n.atime, Mtime: n.mtime, Ctime: n.ctime}
	switch n.kind {
	case KindDir:
		a.Mode |= unix.S_IFDIR
		if n.nlink != 0 { // a removed directory keeps 0 (fs/libfs.c:simple_rmdir drops both)
			a.Nlink = 2 + uint32(n.subdirs)
		}
	case KindSymlink:
		// st_size stays 0, as on bpffs: kernel/bpf/inode.c:bpf_symlink stores the target in
		// i_link and never sets i_size (readlink does not need it).
		a.Mode |= unix.S_IFLNK
	default:
		a.Mode |= unix.S_IFREG
	}
	return a
}

// DirEntry is one entry of a directory listing.
type DirEntry struct {
	Name string
	Ino  uint64
	Mode uint32 // S_IFMT bits only
}

// Readdir lists dir's entries newest first, in the order the kernel's dcache_readdir gives
// (fs/libfs.c: the head of d_children is the entry linked in last; a rename links the moved
// entry in anew). It sets dir's atime.
func (t *Tree) Readdir(dir *Node) ([]DirEntry, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if dir.kind != KindDir {
		return nil, unix.ENOTDIR
	}
	out := make([]DirEntry, 0, len(dir.children))
	for name, c := range dir.children {
		out = append(out, DirEntry{Name: name, Ino: c.ino, Mode: c.attrLocked().Mode & unix.S_IFMT})
	}
	sort.Slice(out, func(i, j int) bool {
		oi, oj := dir.order[out[i].Name], dir.order[out[j].Name]
		if oi != oj {
			return oi > oj
		}
		return out[i].Name < out[j].Name
	})
	dir.accessedLocked(t.opts.Now())
	return out, nil
}

// Lookup finds name in dir (kernel/bpf/inode.c:bpf_lookup): a missing name containing '.'
// is EPERM, unless dir's mode is 0, else ENOENT.
func (t *Tree) Lookup(dir *Node, name string) (*Node, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lookupLocked(dir, name)
}

func (t *Tree) lookupLocked(dir *Node, name string) (*Node, error) {
	if dir.kind != KindDir {
		return nil, unix.ENOTDIR
	}
	if c, ok := dir.children[name]; ok {
		return c, nil
	}
	if err := dotCheck(dir, name); err != nil {
		return nil, err
	}
	return nil, unix.ENOENT
}

// dotCheck is kernel/bpf/inode.c:bpf_lookup's rule for names not yet in the dcache: a name
// containing '.' is refused with EPERM, except in a directory whose mode is 0, where
// populate_bpffs creates the preload files.
func dotCheck(dir *Node, name string) error {
	if strings.Contains(name, ".") && dir.mode&0o7777 != 0 {
		return unix.EPERM
	}
	return nil
}

// Creator is who creates a node: the owner and umask of the new node.
type Creator struct {
	UID, GID uint32
	Umask    uint32
}

// owner is fs/inode.c:inode_init_owner: the creator's fsuid, and its fsgid unless the parent
// directory is setgid, in which case the parent's group (and new directories inherit the
// setgid bit).
func owner(dir *Node, c Creator, mode uint32, isDir bool) (uid, gid, m uint32) {
	uid, gid, m = c.UID, c.GID, mode
	if dir.mode&unix.S_ISGID != 0 {
		gid = dir.gid
		if isDir {
			m |= unix.S_ISGID
		}
	}
	return uid, gid, m
}

// checkNewName runs the checks every new-name operation of bpffs goes through: the lookup of
// the name (EPERM for a dotted name, kernel/bpf/inode.c:bpf_lookup) and then EEXIST.
func checkNewName(dir *Node, name string) error {
	if dir.kind != KindDir {
		return unix.ENOTDIR
	}
	if dir.tree.closed {
		return unix.ENOENT
	}
	if name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
		return unix.EINVAL
	}
	if _, ok := dir.children[name]; ok {
		return unix.EEXIST
	}
	if len(name) > 255 {
		return unix.ENAMETOOLONG
	}
	return dotCheck(dir, name)
}

func (t *Tree) touchDir(dir *Node) {
	now := t.opts.Now()
	dir.mtime, dir.ctime = now, now
}

// linkedLocked records that name was just linked into dir: the kernel's dcache puts a new or
// moved dentry at the head of its parent's d_children list (fs/dcache.c:d_alloc, __d_move),
// and dcache_readdir lists from the head, so a listing shows the newest entry first.
func (t *Tree) linkedLocked(dir *Node, name string) {
	if dir.order == nil {
		dir.order = map[string]uint64{}
	}
	t.linkSeq++
	dir.order[name] = t.linkSeq
}

func (t *Tree) insertLocked(dir *Node, name string, n *Node) {
	dir.children[name] = n
	t.linkedLocked(dir, name)
	if n.kind == KindDir {
		n.parent = dir
		dir.subdirs++
	}
	t.touchDir(dir)
}

// Mkdir creates directory name in dir (kernel/bpf/inode.c:bpf_mkdir) with mode, to which
// the caller (the kernel, for a FUSE mkdir) has already applied the umask; c.Umask is applied
// again here, which changes nothing for a mode already masked.
func (t *Tree) Mkdir(dir *Node, name string, mode uint32, c Creator) (*Node, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := checkNewName(dir, name); err != nil {
		return nil, err
	}
	uid, gid, m := owner(dir, c, mode&0o7777&^c.Umask, true)
	n := t.newNode(KindDir, m, uid, gid)
	t.insertLocked(dir, name, n)
	return n, nil
}

// Symlink creates a symbolic link name in dir to target (kernel/bpf/inode.c:bpf_symlink):
// mode 0777, target kept verbatim, which may dangle.
func (t *Tree) Symlink(dir *Node, name, target string, c Creator) (*Node, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := checkNewName(dir, name); err != nil {
		return nil, err
	}
	if target == "" {
		return nil, unix.ENOENT
	}
	uid, gid, _ := owner(dir, c, 0, false)
	n := t.newNode(KindSymlink, 0o777, uid, gid)
	n.target = target
	t.insertLocked(dir, name, n)
	return n, nil
}

// PinAt pins obj as name in dir (kernel/bpf/inode.c:bpf_obj_do_pin → bpf_mkobj_ops): mode
// 0600 &^ umask, owned by c. The pin takes over the user reference the caller holds on obj;
// on error the caller keeps it. No permission check (FUSE callers are checked by the kernel;
// Pin checks for engine callers).
func (t *Tree) PinAt(dir *Node, name string, obj objects.Object, c Creator) (*Node, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pinAtLocked(dir, name, obj, c)
}

func (t *Tree) pinAtLocked(dir *Node, name string, obj objects.Object, c Creator) (*Node, error) {
	if err := checkNewName(dir, name); err != nil {
		return nil, err
	}
	uid, gid, m := owner(dir, c, 0o600&^c.Umask, false)
	n := t.newNode(KindObject, m, uid, gid)
	n.obj = obj
	t.insertLocked(dir, name, n)
	return n, nil
}

// Link makes name in dir another name of node (fs/libfs.c:simple_link): the same object,
// nlink+1. Directories cannot be linked (EPERM, fs/namei.c:vfs_link), nor the preload files
// (EPERM, observed on 6.18).
func (t *Tree) Link(node, dir *Node, name string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := checkNewName(dir, name); err != nil {
		return err
	}
	switch node.kind {
	case KindDir, KindPreload:
		return unix.EPERM
	}
	if node.nlink == 0 {
		// fs/namei.c:vfs_link: an unlinked inode gets no new name.
		return unix.ENOENT
	}
	node.nlink++
	node.ctime = t.opts.Now()
	t.insertLocked(dir, name, node)
	return nil
}

// removeLocked takes name out of dir and returns the object to release if it was the
// node's last name (fs/libfs.c:simple_unlink; the reference is dropped when the inode dies,
// kernel/bpf/inode.c:bpf_free_inode).
func (t *Tree) removeLocked(dir *Node, name string, n *Node) objects.Object {
	delete(dir.children, name)
	delete(dir.order, name)
	t.touchDir(dir)
	n.ctime = dir.mtime
	if n.kind == KindDir {
		dir.subdirs--
		n.nlink = 0
		return nil
	}
	n.nlink--
	if n.nlink == 0 && n.obj != nil {
		o := n.obj
		n.obj = nil
		return o
	}
	return nil
}

func putUser(o objects.Object) {
	if o != nil {
		o.PutUser()
	}
}

// Unlink removes name from dir (fs/libfs.c:simple_unlink): EISDIR for a directory, EPERM
// for the preload files (observed on 6.18). The last name of a pin drops its reference.
func (t *Tree) Unlink(dir *Node, name string) error {
	t.mu.Lock()
	n, err := t.lookupLocked(dir, name)
	if err != nil {
		t.mu.Unlock()
		return err
	}
	switch n.kind {
	case KindDir:
		t.mu.Unlock()
		return unix.EISDIR
	case KindPreload:
		t.mu.Unlock()
		return unix.EPERM
	}
	o := t.removeLocked(dir, name, n)
	t.mu.Unlock()
	putUser(o)
	return nil
}

// Rmdir removes the empty directory name from dir (fs/libfs.c:simple_rmdir): ENOTEMPTY if it
// has entries, ENOTDIR if it is not a directory.
func (t *Tree) Rmdir(dir *Node, name string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	n, err := t.lookupLocked(dir, name)
	if err != nil {
		return err
	}
	if n.kind != KindDir {
		return unix.ENOTDIR
	}
	if len(n.children) != 0 {
		return unix.ENOTEMPTY
	}
	t.removeLocked(dir, name, n)
	return nil
}

// Rename flags (include/uapi/linux/fs.h).
const (
	RenameNoreplace = unix.RENAME_NOREPLACE
	RenameExchange  = unix.RENAME_EXCHANGE
	RenameWhiteout  = unix.RENAME_WHITEOUT
)

// isAncestor reports whether a is d or one of d's ancestors.
func isAncestor(a, d *Node) bool {
	for {
		if d == a {
			return true
		}
		if d.parent == d || d.parent == nil {
			return false
		}
		d = d.parent
	}
}

// Rename moves oldName in oldDir to newName in newDir (fs/namei.c:vfs_rename and
// fs/libfs.c:simple_rename, with the errno order of do_renameat2): flags other than
// RENAME_NOREPLACE and RENAME_EXCHANGE are EINVAL (simple_rename refuses RENAME_WHITEOUT),
// both together EINVAL; a dotted new name is EPERM (bpf_lookup); NOREPLACE over an existing
// name EEXIST; EXCHANGE swaps two existing names (ENOENT if the target is missing); a
// directory cannot move into its own subtree (EINVAL) nor over its ancestor (ENOTEMPTY); a
// directory over a file ENOTDIR, a file over a directory EISDIR, over a non-empty directory
// ENOTEMPTY. A replaced pin is unpinned (its last name drops the reference).
func (t *Tree) Rename(oldDir *Node, oldName string, newDir *Node, newName string, flags uint32) error {
	if flags&^(RenameNoreplace|RenameExchange|RenameWhiteout) != 0 ||
		flags&(RenameNoreplace|RenameExchange) == RenameNoreplace|RenameExchange ||
		flags&RenameWhiteout != 0 && flags&RenameExchange != 0 {
		return unix.EINVAL // fs/namei.c:do_renameat2
	}
	t.mu.Lock()
	src, err := t.lookupLocked(oldDir, oldName)
	if err != nil {
		t.mu.Unlock()
		return err
	}
	if newDir.kind != KindDir {
		t.mu.Unlock()
		return unix.ENOTDIR
	}
	dst, exists := newDir.children[newName]
	if !exists {
		if err := dotCheck(newDir, newName); err != nil {
			t.mu.Unlock()
			return err
		}
		if strings.Contains(newName, "/") || newName == "" || newName == "." || newName == ".." {
			t.mu.Unlock()
			return unix.EINVAL
		}
	}
	if flags&RenameNoreplace != 0 && exists {
		t.mu.Unlock()
		return unix.EEXIST
	}
	if flags&RenameExchange != 0 && !exists {
		t.mu.Unlock()
		return unix.ENOENT
	}
	// fs/namei.c:do_renameat2: the source may not be an ancestor of the target ("trap":
	// EINVAL), the target may not be an ancestor of the source (ENOTEMPTY).
	if src.kind == KindDir && isAncestor(src, newDir) {
		t.mu.Unlock()
		return unix.EINVAL
	}
	if exists && dst.kind == KindDir && isAncestor(dst, oldDir) {
		t.mu.Unlock()
		if flags&RenameExchange != 0 {
			return unix.EINVAL
		}
		return unix.ENOTEMPTY
	}
	if exists && src == dst {
		// fs/namei.c:vfs_rename: source and target are the same inode: nothing to do.
		t.mu.Unlock()
		return nil
	}
	if exists && flags&RenameExchange == 0 {
		// fs/namei.c:may_delete of the target.
		switch {
		case src.kind == KindDir && dst.kind != KindDir:
			t.mu.Unlock()
			return unix.ENOTDIR
		case src.kind != KindDir && dst.kind == KindDir:
			t.mu.Unlock()
			return unix.EISDIR
		}
	}
	if src.kind == KindPreload || exists && dst.kind == KindPreload {
		t.mu.Unlock()
		return unix.EPERM // observed on 6.18: the preload files cannot be renamed
	}
	if flags&RenameWhiteout != 0 {
		// fs/libfs.c:simple_rename: only NOREPLACE and EXCHANGE are supported.
		t.mu.Unlock()
		return unix.EINVAL
	}
	now := t.opts.Now()
	if flags&RenameExchange != 0 {
		oldDir.children[oldName], newDir.children[newName] = dst, src
		// __d_move with exchange: the target goes to the head of the old parent, then the
		// source to the head of the new one.
		t.linkedLocked(oldDir, oldName)
		t.linkedLocked(newDir, newName)
		if oldDir != newDir {
			if src.kind == KindDir {
				oldDir.subdirs--
				newDir.subdirs++
				src.parent = newDir
			}
			if dst.kind == KindDir {
				newDir.subdirs--
				oldDir.subdirs++
				dst.parent = oldDir
			}
		}
		oldDir.mtime, oldDir.ctime, newDir.mtime, newDir.ctime = now, now, now, now
		src.ctime, dst.ctime = now, now
		t.mu.Unlock()
		return nil
	}
	var drop objects.Object
	if exists {
		if dst.kind == KindDir && len(dst.children) != 0 {
			t.mu.Unlock()
			return unix.ENOTEMPTY // fs/libfs.c:simple_rename: simple_empty
		}
		drop = t.removeLocked(newDir, newName, dst)
	}
	delete(oldDir.children, oldName)
	delete(oldDir.order, oldName)
	if src.kind == KindDir {
		oldDir.subdirs--
	}
	t.insertLocked(newDir, newName, src)
	oldDir.mtime, oldDir.ctime = now, now
	src.ctime = now
	t.mu.Unlock()
	putUser(drop)
	return nil
}

// SetAttr is a setattr(2) request: nil fields are left alone.
type SetAttr struct {
	Mode       *uint32
	UID, GID   *uint32
	Size       *int64
	Atime      *time.Time
	Mtime      *time.Time
	AtimeToNow bool
	MtimeToNow bool
}

// Setattr changes a node's attributes (fs/libfs.c:simple_setattr, as bpffs has no setattr
// of its own): chmod, chown and utimes are stored and change later BPF_OBJ_GET permission
// checks; truncate of a pinned object stores st_size and does nothing else. Directories
// and symlinks cannot be truncated (EISDIR / EINVAL, fs/open.c:vfs_truncate).
func (t *Tree) Setattr(n *Node, a SetAttr) (Attr, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if a.Size != nil {
		switch {
		case n.kind == KindDir:
			return Attr{}, unix.EISDIR
		case n.kind != KindObject && n.kind != KindPreload:
			return Attr{}, unix.EINVAL
		case *a.Size < 0:
			return Attr{}, unix.EINVAL
		}
	}
	now := t.opts.Now()
	if a.Mode != nil {
		n.mode = *a.Mode & 0o7777
	}
	if a.UID != nil {
		n.uid = *a.UID
	}
	if a.GID != nil {
		n.gid = *a.GID
	}
	if a.Size != nil {
		// truncate(2) asks for ATTR_SIZE only (fs/open.c:vfs_truncate → do_truncate with no
		// time attrs) and simple_setattr does not touch the times for it.
		n.size = *a.Size
	}
	if a.Atime != nil {
		n.atime = *a.Atime
	}
	if a.AtimeToNow {
		n.atime = now
	}
	if a.Mtime != nil {
		n.mtime = *a.Mtime
	}
	if a.MtimeToNow {
		n.mtime = now
	}
	// Every other change carries ATTR_CTIME (chmod_common, chown_common, vfs_utimes).
	if a.Mode != nil || a.UID != nil || a.GID != nil || a.Atime != nil || a.Mtime != nil || a.AtimeToNow || a.MtimeToNow {
		n.ctime = now
	}
	return n.attrLocked(), nil
}

// Touch records a read (atime, with the relatime rule) or a write (mtime and ctime) at now.
func (t *Tree) Touch(n *Node, atime, mtime bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.opts.Now()
	if atime {
		n.accessedLocked(now)
	}
	if mtime {
		n.mtime, n.ctime = now, now
	}
}

// PathOf returns the names leading from the root to directory dir (nil for the root), or
// nil and false if dir is no longer in the tree.
func (t *Tree) PathOf(dir *Node) ([]string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var names []string
	for d := dir; d != t.root; d = d.parent {
		p := d.parent
		if p == nil || d.nlink == 0 {
			return nil, false
		}
		found := false
		for name, c := range p.children {
			if c == d {
				names = append(names, name)
				found = true
				break
			}
		}
		if !found {
			return nil, false
		}
	}
	for i, j := 0, len(names)-1; i < j; i, j = i+1, j-1 {
		names[i], names[j] = names[j], names[i]
	}
	return names, true
}

// ParentIno returns the inode number of dir's parent (the root's own for the root).
func (t *Tree) ParentIno(dir *Node) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if dir.parent == nil {
		return dir.ino
	}
	return dir.parent.ino
}
