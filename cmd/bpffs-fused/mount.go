package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bpffs-fuse/bpffs-fuse/cmd/internal/mountinfo"
	"github.com/bpffs-fuse/bpffs-fuse/engine"
	"github.com/bpffs-fuse/bpffs-fuse/fsnode"
)

// startControl is set by control.go (helper C) in an init func; nil means no control socket.
// The daemon calls it before serving, with the engine, the mount directory and the parsed
// options; socketPath is what the mount root's "user.bpffs.control" xattr answers, and stop is
// called at unmount.
var startControl func(eng *engine.Engine, mountDir string, opts MountOptions) (socketPath string, stop func(), err error)

const mountUsage = `Usage: bpffs-fuse mount [-f] [-o OPTIONS] DIR
       bpffs-fuse umount DIR
       mount -t fuse.bpffs-fuse bpffs DIR [-o OPTIONS]   (mount helper form)

Mounts a bpffs over FUSE on DIR and serves it from a daemon. Without -f the command returns
once the mount is ready and the daemon keeps serving in the background; -f serves in the
foreground (SIGINT/SIGTERM unmount). OPTIONS, comma-separated:
  mode=OCTAL       mode of the root (default 0777; the sticky bit is always added)
  uid=N, gid=N     owner of the root (default: the caller)
  allow_other      let other users use the mount
  control_group=G  group allowed to use the control socket
  log=FILE         where the background daemon logs (default: nowhere)
  debug            log every FUSE request
Other options (rw, nosuid, ...) are accepted and ignored, as the kernel's bpffs does.
`

func init() {
	register("mount", mountMain)
	register("umount", umountMain)
	// The mount helper form: mount.fuse3 runs "bpffs-fuse SOURCE DIR -o OPTS" with the
	// source of "mount -t fuse.bpffs-fuse bpffs DIR"; "bpffs" is the source to use.
	register("bpffs", func(args []string) int { return mountMain(append([]string{"bpffs"}, args...)) })
	// Installed as /sbin/mount.fuse.bpffs-fuse (or mount.bpffs-fuse), mount(8) runs us as
	// "mount.fuse.bpffs-fuse SOURCE DIR [-o OPTS]" (bpffs-fuse does the same when the link
	// points at it).
	if base := filepath.Base(os.Args[0]); strings.HasPrefix(base, "mount.") {
		os.Args = append([]string{os.Args[0], "mount"}, os.Args[1:]...)
	}
}

// mountArgs is a parsed command line of mount.
type mountArgs struct {
	dir        string
	foreground bool
	readyFD    int
	opts       MountOptions
	raw        []string // the -o lists, for the re-exec
}

func parseMountArgs(args []string) (*mountArgs, error) {
	a := &mountArgs{readyFD: -1, opts: defaultMountOptions(uint32(os.Getuid()), uint32(os.Getgid()))}
	var pos []string
	for i := 0; i < len(args); i++ {
		arg := args[i]
		switch {
		case arg == "-f" || arg == "--foreground":
			a.foreground = true
		case arg == "-o":
			if i+1 >= len(args) {
				return nil, fmt.Errorf("-o needs an argument: %w", unix.EINVAL)
			}
			i++
			a.raw = append(a.raw, args[i])
		case strings.HasPrefix(arg, "-o"):
			a.raw = append(a.raw, arg[2:])
		case arg == "--ready-fd":
			if i+1 >= len(args) {
				return nil, fmt.Errorf("--ready-fd needs an argument: %w", unix.EINVAL)
			}
			i++
			fd, err := strconv.Atoi(args[i])
			if err != nil {
				return nil, fmt.Errorf("--ready-fd %q: %w", args[i], unix.EINVAL)
			}
			a.readyFD = fd
		case arg == "-t":
			i++ // mount(8) passes the type to helpers: ignored
		case arg == "-n" || arg == "-s" || arg == "-v":
			// mount(8) helper flags (no mtab, sloppy, verbose): nothing to do.
		case arg == "-h" || arg == "--help":
			return nil, errHelp
		case strings.HasPrefix(arg, "-") && arg != "-":
			return nil, fmt.Errorf("unknown flag %s: %w", arg, unix.EINVAL)
		default:
			pos = append(pos, arg)
		}
	}
	switch len(pos) {
	case 1:
		a.dir = pos[0]
	case 2: // SOURCE DIR (mount helper form); the source is ignored
		a.dir = pos[1]
	default:
		return nil, fmt.Errorf("expected one mount directory: %w", unix.EINVAL)
	}
	for _, s := range a.raw {
		if err := parseMountOptions(&a.opts, s); err != nil {
			return nil, err
		}
	}
	dir, err := canonical(a.dir)
	if err != nil {
		return nil, err
	}
	a.dir = dir
	return a, nil
}

// canonical returns dir as an absolute path with the symlinks of its parent resolved, as
// /proc/self/mountinfo shows mount points. The last component is not resolved: on a dead
// mount it cannot be.
func canonical(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if parent, err := filepath.EvalSymlinks(filepath.Dir(dir)); err == nil {
		dir = filepath.Join(parent, filepath.Base(dir))
	}
	return dir, nil
}

var errHelp = errors.New("help")

func mountMain(args []string) int {
	a, err := parseMountArgs(args)
	if errors.Is(err, errHelp) {
		fmt.Fprint(os.Stdout, mountUsage)
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "Error: mount: %v\n%s", err, mountUsage)
		return 255
	}
	if err := prepareMountDir(a.dir); err != nil {
		fmt.Fprintf(os.Stderr, "Error: mount: %v\n", err)
		return 1
	}
	if !a.foreground {
		return spawnDaemon(a)
	}
	return runDaemon(a)
}

// prepareMountDir checks that dir is a directory, cleaning up a stale FUSE mount left there by
// a daemon that died. Only a request the kernel must send shows a dead mount (ENOTCONN):
// stat can be answered from the attribute cache, statfs cannot. A request that was in flight
// while the dead daemon's /dev/fuse was being closed fails with ECONNABORTED instead
// (fs/fuse/dev.c:fuse_abort_conn).
func prepareMountDir(dir string) error {
	for i := 0; i < 8 && isFuseMount(dir); i++ {
		var sf unix.Statfs_t
		if err := unix.Statfs(dir, &sf); !errors.Is(err, unix.ENOTCONN) && !errors.Is(err, unix.ECONNABORTED) {
			break
		}
		if uerr := fsnode.UnmountDir(dir, true); uerr != nil {
			return fmt.Errorf("%s: stale mount: %v", dir, uerr)
		}
	}
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("%s: %w", dir, unix.ENOTDIR)
	}
	return nil
}

// spawnDaemon re-executes the binary with -f in a new session and waits until it reports
// that the mount is ready (or why it failed) through a pipe.
func spawnDaemon(a *mountArgs) int {
	r, w, err := os.Pipe()
	if err != nil {
		fmt.Fprintf(os.Stderr, "Error: mount: %v\n", err)
		return 1
	}
	exe, err := os.Executable()
	if err != nil {
		exe = "/proc/self/exe"
	}
	args := []string{"mount", "-f", "--ready-fd", "3"}
	for _, o := range a.raw {
		args = append(args, "-o", o)
	}
	args = append(args, a.dir)
	cmd := exec.Command(exe, args...)
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Dir = "/"
	// The daemon must not hold our stdout/stderr: callers wait for them to close.
	var logf *os.File
	if a.opts.Log != "" {
		logf, err = os.OpenFile(a.opts.Log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			fmt.Fprintf(os.Stderr, "Error: mount: log file: %v\n", err)
			return 1
		}
		defer logf.Close()
		cmd.Stdout, cmd.Stderr = logf, logf
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "Error: mount: starting the daemon: %v\n", err)
		return 1
	}
	w.Close()
	msg, _ := io.ReadAll(bufio.NewReader(r))
	r.Close()
	if string(msg) == "ok\n" {
		cmd.Process.Release()
		return 0
	}
	cmd.Wait()
	text := strings.TrimSpace(string(msg))
	if text == "" {
		text = "the daemon exited before the mount was ready"
	}
	fmt.Fprintf(os.Stderr, "Error: mount: %s\n", text)
	return 1
}

// runDaemon mounts and serves until the mount goes away (bpffs-fuse umount, fusermount3 -u,
// umount) or SIGINT/SIGTERM, which unmount (lazily if the mount is busy).
func runDaemon(a *mountArgs) int {
	var ready *os.File
	if a.readyFD >= 0 {
		ready = os.NewFile(uintptr(a.readyFD), "ready")
	}
	fail := func(err error) int {
		if ready != nil {
			fmt.Fprintf(ready, "%v\n", err)
			ready.Close()
		}
		fmt.Fprintf(os.Stderr, "Error: mount: %v\n", err)
		return 1
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("mount", a.dir)
	for _, o := range a.opts.Ignored {
		log.Info("ignoring mount option", "option", o)
	}
	// Signals are caught from before the mount exists: a SIGTERM that arrives as soon as the
	// mount shows in /proc/self/mountinfo must unmount, not kill the daemon and leave a dead
	// mount behind.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	eng := engine.New(engine.Config{})
	var socket string
	stop := func() {}
	if startControl != nil {
		s, st, err := startControl(eng, a.dir, a.opts)
		if err != nil {
			return fail(err)
		}
		socket, stop = s, st
	}
	srv, err := fsnode.Mount(a.dir, fsnode.Config{
		Engine: eng, Mode: a.opts.Mode, UID: a.opts.UID, GID: a.opts.GID,
		AllowOther: a.opts.AllowOther, ControlSocket: socket, Logger: log,
		PID: os.Getpid(), Debug: a.opts.Debug,
	})
	if err != nil {
		stop()
		return fail(err)
	}
	log.Info("mounted", "options", a.opts.String(), "control", socket, "pid", os.Getpid())
	detached := make(chan struct{})
	go func() {
		sig := <-sigs
		log.Info("unmounting", "signal", sig.String())
		if err := fsnode.UnmountDir(a.dir, false); err != nil {
			// Busy: detach it lazily and stop serving; processes still inside get ENOTCONN,
			// as with umount -l of any FUSE mount whose daemon exits.
			log.Warn("unmount failed; detaching lazily", "error", err)
			if err := fsnode.UnmountDir(a.dir, true); err != nil {
				log.Error("lazy unmount failed", "error", err)
				return
			}
			close(detached)
		}
	}()
	if ready != nil {
		ready.WriteString("ok\n")
		ready.Close()
	}
	served := make(chan struct{})
	go func() { srv.Wait(); close(served) }()
	select {
	case <-served:
	case <-detached:
	}
	srv.Close()
	stop()
	log.Info("unmounted")
	return 0
}

func umountMain(args []string) int {
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		fmt.Fprint(os.Stderr, mountUsage)
		return 255
	}
	dir, err := canonical(args[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "Error: umount: %v\n", err)
		return 1
	}
	// The daemon's pid, to wait for it; a stale mount has none.
	pid := 0
	buf := make([]byte, 32)
	if n, err := unix.Getxattr(dir, fsnode.XattrPID, buf); err == nil {
		pid, _ = strconv.Atoi(string(buf[:n]))
	}
	if !isFuseMount(dir) {
		fmt.Fprintf(os.Stderr, "Error: umount: %s is not a bpffs-fuse mount\n", dir)
		return 1
	}
	err = fsnode.UnmountDir(dir, false)
	if err != nil && errors.Is(err, unix.EBUSY) {
		err = fsnode.UnmountDir(dir, true)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "Error: umount: %v\n", err)
		return 1
	}
	if pid > 0 {
		deadline := time.Now().Add(10 * time.Second)
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	return 0
}

// alive reports whether process pid is running: it exists and is not a zombie (the daemon is
// reparented when its starter exits, and its new parent may reap it late).
func alive(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 || i+2 >= len(data) {
		return false
	}
	return data[i+2] != 'Z' && data[i+2] != 'X'
}

// isFuseMount reports whether dir is the mount point of a bpffs-fuse mount (live or stale),
// from /proc/self/mountinfo.
func isFuseMount(dir string) bool {
	// Read afresh, not through the CLI's per-invocation cache: mount and umount
	// change the table they look at.
	mounts, err := mountinfo.Dirs()
	if err != nil {
		return false
	}
	for _, m := range mounts {
		if m == dir {
			return true
		}
	}
	return false
}
