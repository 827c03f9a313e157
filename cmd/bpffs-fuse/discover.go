package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/bpffs-fuse/bpffs-fuse/cmd/internal/mountinfo"
)

// controlXattr is the mount root's extended attribute that names the daemon's control socket.
const controlXattr = "user.bpffs.control"

// mountCache holds the mount table and resolved directories for one invocation: a batch
// file of 1e5 lines must not read /proc/self/mountinfo and walk symlinks 1e5 times.
var mountCache struct {
	mounts []string
	read   bool
	dirs   map[string]string // directory as written → real path
}

// bpffsFuseMounts lists the mount points of the bpffs-fuse mounts of this mount namespace;
// the table is read once per invocation.
func bpffsFuseMounts() ([]string, error) {
	if mountCache.read {
		return mountCache.mounts, nil
	}
	m, err := mountinfo.Dirs()
	if err == nil {
		mountCache.mounts, mountCache.read = m, true
	}
	return m, err
}

// realPath makes p absolute and resolves symlinks in its longest existing prefix, so that it
// compares with mountinfo's paths (the final component may not exist yet: map create).
func realPath(p string) string {
	dir, base := filepath.Split(p)
	if dir == "" || base == "" || base == "." || base == ".." {
		return realPathUncached(p)
	}
	// The directory's resolution is cached; the final component is sent as written: a
	// symlink there (or anywhere inside the mount) is followed by the daemon's pin tree, as
	// the kernel's LOOKUP_FOLLOW does.
	if mountCache.dirs == nil {
		mountCache.dirs = map[string]string{}
	}
	rd, ok := mountCache.dirs[dir]
	if !ok {
		rd = realPathUncached(dir)
		mountCache.dirs[dir] = rd
	}
	return filepath.Join(rd, base)
}

func realPathUncached(p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		return filepath.Clean(p)
	}
	rest := ""
	cur := abs
	for {
		if r, err := filepath.EvalSymlinks(cur); err == nil {
			if rest == "" {
				return r
			}
			return filepath.Join(r, rest)
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return abs
		}
		rest = filepath.Join(filepath.Base(cur), rest)
		cur = parent
	}
}

// mountOf finds the bpffs-fuse mount holding path (the longest mount point that is a prefix
// of it). It returns the mount dir and the real path.
func mountOf(path string) (string, string, error) {
	rp := realPath(path)
	mounts, err := bpffsFuseMounts()
	if err != nil {
		return "", rp, err
	}
	best := ""
	for _, m := range mounts {
		if rp == m || strings.HasPrefix(rp, strings.TrimSuffix(m, "/")+"/") {
			if len(m) > len(best) {
				best = m
			}
		}
	}
	if best == "" {
		return "", rp, fmt.Errorf("%s is not on a bpffs-fuse mount", path)
	}
	return best, rp, nil
}

// controlSocket reads the control socket path from the mount root's xattr.
func controlSocket(mountDir string) (string, error) {
	buf := make([]byte, 4096)
	n, err := unix.Getxattr(mountDir, controlXattr, buf)
	if err != nil {
		return "", fmt.Errorf("%s: reading xattr %s: %w", mountDir, controlXattr, err)
	}
	return string(buf[:n]), nil
}

// errNoMount is returned when no mount can be chosen for an id-based command.
var errNoMount = errors.New("no bpffs-fuse mount found: mount one with `bpffs-fuse mount DIR`, or name one with --mount DIR or BPFFS_MOUNT")

// chooseMount picks the mount for commands that name no path: --mount, else $BPFFS_MOUNT,
// else the only bpffs-fuse mount.
func chooseMount(flag string) (string, error) {
	if flag == "" {
		flag = os.Getenv("BPFFS_MOUNT")
	}
	if flag != "" {
		// The mount point itself may be a symlink's name: resolve every component.
		dir, _, err := mountOf(realPathUncached(flag))
		if err != nil {
			return "", err
		}
		return dir, nil
	}
	mounts, err := bpffsFuseMounts()
	if err != nil {
		return "", err
	}
	switch len(mounts) {
	case 0:
		return "", errNoMount
	case 1:
		return mounts[0], nil
	}
	return "", fmt.Errorf("%d bpffs-fuse mounts (%s): choose one with --mount DIR or BPFFS_MOUNT", len(mounts), strings.Join(mounts, ", "))
}
