package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// daemonBinary is the daemon side of bpffs-fuse (cmd/bpffs-fused): the FUSE server, the mount
// helper and the VM tools. It is a separate binary so that the CLI does not link go-fuse and
// the daemon, whose package initialization would slow down every CLI command.
const daemonBinary = "bpffs-fused"

// daemonCommands are the subcommands bpffs-fused runs; bpffs-fuse executes it for them.
var daemonCommands = []struct{ name, summary string }{
	{"mount", "mount a bpffs over FUSE (bpffs-fuse mount [-f] [-o OPTS] DIR)"},
	{"umount", "unmount a bpffs-fuse mount and stop its daemon"},
	{"bpffs", "mount helper form: bpffs-fuse bpffs DIR -o OPTS (as mount.fuse3 runs it)"},
	{"vm", "run eBPF programs in the VM"},
}

func init() {
	for _, c := range daemonCommands {
		name := c.name
		register(name, c.summary, func(args []string) int { return execDaemon(name, args) })
	}
	// Installed as /sbin/mount.fuse.bpffs-fuse (or mount.bpffs-fuse), mount(8) runs us as
	// "mount.fuse.bpffs-fuse SOURCE DIR [-o OPTS]".
	if base := filepath.Base(os.Args[0]); strings.HasPrefix(base, "mount.") {
		os.Args = append([]string{os.Args[0], "mount"}, os.Args[1:]...)
	}
}

// daemonPath finds bpffs-fused: next to this executable (symlinks resolved, so a
// /sbin/mount.fuse.bpffs-fuse link finds the real install directory), else on $PATH.
func daemonPath() (string, error) {
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), daemonBinary)
		if unix.Access(p, unix.X_OK) == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath(daemonBinary)
	if err != nil {
		return "", fmt.Errorf("%s (installed beside bpffs-fuse) not found: %w", daemonBinary, err)
	}
	return p, nil
}

// execDaemon replaces this process with "bpffs-fused NAME ARGS...": same pid, standard
// streams, environment and exit status.
func execDaemon(name string, args []string) int {
	p, err := daemonPath()
	if err == nil {
		err = unix.Exec(p, append([]string{p, name}, args...), os.Environ())
		err = fmt.Errorf("executing %s: %w", p, err)
	}
	fmt.Fprintf(os.Stderr, "Error: %s: %v\n", name, err)
	return 255
}
