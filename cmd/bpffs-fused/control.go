package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/bpffs-fuse/bpffs-fuse/engine"
	"github.com/bpffs-fuse/bpffs-fuse/engine/control"
)

func init() {
	startControl = serveControl
}

// controlDir picks the directory for control sockets: $BPFFS_RUNTIME_DIR, else /run/bpffs-fuse
// as root, else $XDG_RUNTIME_DIR/bpffs-fuse, else /tmp/bpffs-fuse-UID.
func controlDir() string {
	if d := os.Getenv("BPFFS_RUNTIME_DIR"); d != "" {
		return d
	}
	if os.Geteuid() == 0 {
		return "/run/bpffs-fuse"
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "bpffs-fuse")
	}
	return fmt.Sprintf("/tmp/bpffs-fuse-%d", os.Geteuid())
}

// controlSocketName is a short hash of the mount directory, so each mount has its own socket
// and the path stays far below the 108-byte sun_path limit.
func controlSocketName(mountDir string) string {
	sum := sha256.Sum256([]byte(filepath.Clean(mountDir)))
	return hex.EncodeToString(sum[:8]) + ".sock"
}

// lookupGroup resolves control_group= (a group name or a numeric gid).
func lookupGroup(s string) (uint32, error) {
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		return uint32(n), nil
	}
	g, err := user.LookupGroup(s)
	if err != nil {
		return 0, fmt.Errorf("control_group=%s: %v: %w", s, err, unix.EINVAL)
	}
	n, err := strconv.ParseUint(g.Gid, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("control_group=%s: gid %q: %w", s, g.Gid, unix.EINVAL)
	}
	return uint32(n), nil
}

// serveControl creates the mount's control socket and serves eng on it (see package
// engine/control for the policy and the protocol). The socket is 0660, owned by the mount's
// uid and the control group (0666 with allow_other), in a 0755 directory, so that every user
// the policy admits can connect; the policy check on SO_PEERCRED is the authority.
func serveControl(eng *engine.Engine, mountDir string, opts MountOptions) (string, func(), error) {
	policy := control.Policy{OwnerUIDs: []uint32{opts.UID, uint32(os.Getuid())}}
	gid := opts.GID
	if opts.ControlGroup != "" {
		g, err := lookupGroup(opts.ControlGroup)
		if err != nil {
			return "", nil, err
		}
		policy.GroupID, policy.HasGroup = g, true
		gid = g
	}
	dir := controlDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, fmt.Errorf("control socket directory: %w", err)
	}
	os.Chmod(dir, 0o755)
	path := filepath.Join(dir, controlSocketName(mountDir))
	mode := os.FileMode(0o660)
	if opts.AllowOther {
		mode = 0o666
	}
	l, err := control.Listen(path, mode)
	if err != nil {
		return "", nil, fmt.Errorf("control socket: %w", err)
	}
	if os.Geteuid() == 0 {
		os.Chown(path, int(opts.UID), int(gid))
	}
	srv := control.NewServer(eng, policy)
	srv.Logf = func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, format+"\n", args...)
	}
	go srv.Serve(l)
	stop := func() {
		srv.Close()
		os.Remove(path)
	}
	return path, stop, nil
}
