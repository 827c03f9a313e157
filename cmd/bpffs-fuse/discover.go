package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// controlXattr is the mount root's extended attribute that names the daemon's control socket.
const controlXattr = "user.bpffs.control"

// fuseMount is one bpffs-fuse mount seen in /proc/self/mountinfo.
type fuseMount struct {
	Dir string
}

// unescapeMountinfo undoes the octal escapes (\040 for a space, ...) of mountinfo paths.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// mountCache holds the mount table and resolved directories for one invocation: a batch
// file of 1e5 lines must not read /proc/self/mountinfo and walk symlinks 1e5 times.
var mountCache struct {
	mounts []fuseMount
	read   bool
	dirs   map[string]string // directory as written → real path
}

// bpffsFuseMounts lists the bpffs-fuse mounts of this mount namespace: mountinfo entries of
// fstype fuse.bpffs-fuse (or plain fuse with source bpffs-fuse). The table is read once per
// invocation.
func bpffsFuseMounts() ([]fuseMount, error) {
	if mountCache.read {
		return mountCache.mounts, nil
	}
	m, err := readMountinfo()
	if err == nil {
		mountCache.mounts, mountCache.read = m, true
	}
	return m, err
}

func readMountinfo() ([]fuseMount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []fuseMount
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, fl := range fields {
			if fl == "-" {
				sep = i
				break
			}
		}
		if sep < 5 || sep+2 >= len(fields) {
			continue
		}
		fstype, source := fields[sep+1], fields[sep+2]
		if fstype == "fuse.bpffs-fuse" || (strings.HasPrefix(fstype, "fuse") && source == "bpffs-fuse") {
			out = append(out, fuseMount{Dir: unescapeMountinfo(fields[4])})
		}
	}
	return out, sc.Err()
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
		if rp == m.Dir || strings.HasPrefix(rp, strings.TrimSuffix(m.Dir, "/")+"/") {
			if len(m.Dir) > len(best) {
				best = m.Dir
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
		return mounts[0].Dir, nil
	}
	dirs := make([]string, len(mounts))
	for i, m := range mounts {
		dirs[i] = m.Dir
	}
	return "", fmt.Errorf("%d bpffs-fuse mounts (%s): choose one with --mount DIR or BPFFS_MOUNT", len(mounts), strings.Join(dirs, ", "))
}
