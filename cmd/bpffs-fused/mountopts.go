package main

import (
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// MountOptions are the parsed -o options of `bpffs-fuse mount`.
type MountOptions struct {
	// Mode is the permission bits of the mount root (mode=, octal, masked with 07777); the
	// sticky bit is always added, as kernel/bpf/inode.c:bpf_fill_super does. Default 0777.
	Mode uint32
	// UID and GID own the mount root (uid=, gid=). Default: the caller's.
	UID, GID uint32
	// AllowOther lets other users than the mounter use the mount (FUSE allow_other).
	AllowOther bool
	// ControlGroup is the raw control_group= value ("" if unset): who may use the control socket.
	ControlGroup string
	// Debug turns on go-fuse's request log (debug).
	Debug bool
	// Log is the file the background daemon logs to (log=); "" means no log file.
	Log string
	// Ignored lists the options accepted and ignored: generic mount(8) options (rw, nosuid,
	// ...) and unknown ones, which the kernel's bpffs ignores too.
	Ignored []string
}

// defaultMountOptions returns the options of a mount without -o: the root is 0777 (shown as
// 1777) and owned by uid and gid.
func defaultMountOptions(uid, gid uint32) MountOptions {
	return MountOptions{Mode: 0o777, UID: uid, GID: gid}
}

// parseMountOptions parses a comma-separated -o list on top of o, like
// kernel/bpf/inode.c:bpf_parse_param: mode is octal and masked with 07777, uid and gid are
// decimal ids (-1 is not a valid id: EINVAL), and unknown options are ignored as the kernel
// ignores them. Several -o lists may be parsed in turn; later values win.
func parseMountOptions(o *MountOptions, s string) error {
	for _, opt := range strings.Split(s, ",") {
		if opt == "" {
			continue
		}
		key, val, hasVal := strings.Cut(opt, "=")
		switch key {
		case "mode":
			m, err := strconv.ParseUint(val, 8, 32)
			if !hasVal || err != nil {
				return fmt.Errorf("bad value for 'mode': %q: %w", val, unix.EINVAL)
			}
			o.Mode = uint32(m) & 0o7777
		case "uid", "gid":
			id, err := strconv.ParseUint(val, 10, 32)
			if !hasVal || err != nil || id == 0xffffffff {
				return fmt.Errorf("bad value for '%s': %q: %w", key, val, unix.EINVAL)
			}
			if key == "uid" {
				o.UID = uint32(id)
			} else {
				o.GID = uint32(id)
			}
		case "allow_other":
			if hasVal {
				return fmt.Errorf("allow_other takes no value: %w", unix.EINVAL)
			}
			o.AllowOther = true
		case "control_group":
			if !hasVal || val == "" {
				return fmt.Errorf("control_group needs a group name or id: %w", unix.EINVAL)
			}
			o.ControlGroup = val
		case "debug":
			o.Debug = true
		case "log":
			if !hasVal || val == "" {
				return fmt.Errorf("log needs a file name: %w", unix.EINVAL)
			}
			o.Log = val
		default:
			// kernel/bpf/inode.c:bpf_parse_param: "We might like to report bad mount
			// options here, but the traditional behaviour is to ignore them" (also
			// delegate_*, which need BPF tokens: not supported yet).
			o.Ignored = append(o.Ignored, opt)
		}
	}
	return nil
}

// String formats the options as /proc/mounts shows a bpffs's (kernel/bpf/inode.c:
// bpf_show_options): uid and gid when not 0, mode when not 0777.
func (o MountOptions) String() string {
	var parts []string
	if o.UID != 0 {
		parts = append(parts, "uid="+strconv.FormatUint(uint64(o.UID), 10))
	}
	if o.GID != 0 {
		parts = append(parts, "gid="+strconv.FormatUint(uint64(o.GID), 10))
	}
	if o.Mode != 0o777 {
		parts = append(parts, "mode="+strconv.FormatUint(uint64(o.Mode), 8))
	}
	if o.AllowOther {
		parts = append(parts, "allow_other")
	}
	if o.ControlGroup != "" {
		parts = append(parts, "control_group="+o.ControlGroup)
	}
	return strings.Join(parts, ",")
}
