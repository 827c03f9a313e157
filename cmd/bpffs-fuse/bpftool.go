package main

// The bpftool-compatible front end: option parsing, command selection by prefix, error
// reporting and exit status as tools/bpf/bpftool/main.c (bpftool 7.1) does them, and the
// connection to the daemon of a mount.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/bpffs-fuse/bpffs-fuse/engine/control"
)

func init() {
	register("map", "inspect and manipulate maps (bpftool map)", func(args []string) int {
		return bpftoolMain(append([]string{"map"}, args...))
	})
	register("batch", "run a file of commands (bpftool batch file FILE)", func(args []string) int {
		return bpftoolMain(append([]string{"batch"}, args...))
	})
	for _, o := range []string{"prog", "link", "btf", "iter", "cgroup"} {
		register(o, o+" commands (not supported yet)", func(args []string) int {
			return bpftoolMain(append([]string{o}, args...))
		})
	}
	leadingOptions = bpftoolMain
}

// exitPanic unwinds to bpftoolMain with an exit status (bpftool's usage() and exit()).
type exitPanic struct{ code int }

// tool is one bpftool-style invocation.
type tool struct {
	out        *bufio.Writer
	json       *jsonWriter
	pretty     bool
	showPinned bool
	noMount    bool
	mountFlag  string
	helpFlag   bool

	cli      *control.Client
	mountDir string

	lastHelp func(args []string) int
	lastArgs []string
}

// cmd is one entry of a command table (main.h:struct cmd).
type cmd struct {
	name string
	fn   func(t *tool, args []string) int
}

// bpftoolMain runs a bpftool command line (main.c:main): options anywhere, as getopt_long
// permutes them, then OBJECT COMMAND ARGS.
func bpftoolMain(argv []string) (code int) {
	t := &tool{out: bufio.NewWriterSize(os.Stdout, 64<<10)}
	defer func() {
		if r := recover(); r != nil {
			ep, ok := r.(exitPanic)
			if !ok {
				panic(r)
			}
			code = ep.code
		}
		if t.json != nil {
			t.json.destroy()
		}
		t.out.Flush()
		if t.cli != nil {
			t.cli.Exit()
		}
	}()
	t.lastHelp = t.doHelp
	version := false
	var args []string
	for i := 0; i < len(argv); i++ {
		a := argv[i]
		if a == "--" {
			args = append(args, argv[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			args = append(args, a)
			continue
		}
		if strings.HasPrefix(a, "--") {
			name, val, hasVal := strings.Cut(a[2:], "=")
			switch name {
			case "json":
				t.setJSON(false)
			case "pretty":
				t.setJSON(true)
			case "bpffs":
				t.showPinned = true
			case "nomount":
				t.noMount = true
			case "help":
				t.helpFlag = true
			case "mapcompat", "debug", "use-loader", "legacy":
			case "mount", "base-btf":
				if !hasVal {
					if i+1 >= len(argv) {
						t.perr("option '--%s' requires an argument", name)
						return 255
					}
					i++
					val = argv[i]
				}
				if name == "mount" {
					t.mountFlag = val
				}
			case "version":
				version = true
			default:
				t.perr("unrecognized option '%s'", a)
				if t.json != nil {
					return 255
				}
				t.usage()
			}
			continue
		}
		for k := 1; k < len(a); k++ {
			switch a[k] {
			case 'j':
				t.setJSON(false)
			case 'p':
				t.setJSON(true)
			case 'f':
				t.showPinned = true
			case 'n':
				t.noMount = true
			case 'h':
				t.helpFlag = true
			case 'm', 'd', 'L', 'l':
			case 'V':
				version = true
			case 'B':
				if k == len(a)-1 {
					i++
				}
				k = len(a)
			default:
				t.perr("unrecognized option '%s'", a)
				if t.json != nil {
					return 255
				}
				t.usage()
			}
		}
	}
	if version {
		return t.doVersion(nil)
	}
	ret := t.cmdSelect(topCommands, args, (*tool).doHelp)
	return int(uint8(ret))
}

var topCommands []cmd

func init() {
	topCommands = []cmd{
		{"help", (*tool).doHelp},
		{"batch", (*tool).doBatch},
		{"prog", unsupported("prog")},
		{"map", (*tool).doMap},
		{"link", unsupported("link")},
		{"cgroup", unsupported("cgroup")},
		{"btf", unsupported("btf")},
		{"iter", unsupported("iter")},
		{"perf", unsupported("perf")},
		{"net", unsupported("net")},
		{"feature", unsupported("feature")},
		{"gen", unsupported("gen")},
		{"struct_ops", unsupported("struct_ops")},
		{"version", (*tool).doVersion},
	}
}

// versionText is what `version` and -V print.
const versionText = "bpffs-fuse (bpftool 7.1 command language)"

// doVersion is main.c:do_version.
func (t *tool) doVersion(args []string) int {
	if t.json != nil {
		t.json.startObject()
		t.json.name("version")
		t.json.printf(`"%s"`, versionText)
		t.json.endObject()
		return 0
	}
	fmt.Fprintln(t.out, versionText)
	return 0
}

func (t *tool) setJSON(pretty bool) {
	if t.json == nil {
		t.json = newJSONWriter(t.out)
	}
	if pretty {
		t.pretty = true
	}
	t.json.pretty = t.pretty
}

// isPrefix is main.c:is_prefix: pfx is a prefix of str.
func isPrefix(pfx, str string) bool { return strings.HasPrefix(str, pfx) }

// cmdSelect is main.c:cmd_select: no argument runs the first command, otherwise the first
// command the argument is a prefix of; nothing matching prints help and fails. With -h or
// --help anywhere, the selected object's help is printed instead (bpffs-fuse addition: every
// subcommand answers --help).
func (t *tool) cmdSelect(cmds []cmd, args []string, help func(*tool, []string) int) int {
	t.lastHelp = func(a []string) int { return help(t, a) }
	t.lastArgs = args
	if len(args) < 1 {
		if t.helpFlag {
			return help(t, nil)
		}
		return cmds[0].fn(t, args)
	}
	for _, c := range cmds {
		if isPrefix(args[0], c.name) {
			if t.helpFlag && c.name != "map" && c.name != "batch" && c.name != "help" {
				return help(t, nil)
			}
			return c.fn(t, args[1:])
		}
	}
	help(t, nil)
	return -1
}

// usage is main.c:usage: the current help, then exit status 255.
func (t *tool) usage() {
	if t.lastHelp != nil {
		t.lastHelp(nil)
	}
	panic(exitPanic{255})
}

// perr is common.c:p_err: `Error: ...` on stderr, or {"error":"..."} in JSON mode.
func (t *tool) perr(format string, args ...any) {
	if t.json != nil {
		t.json.startObject()
		t.json.name("error")
		t.json.enquote(format, args...)
		t.json.endObject()
		return
	}
	t.out.Flush()
	fmt.Fprintf(os.Stderr, "Error: "+format+"\n", args...)
}

// pinfo is common.c:p_info: a note on stderr, silent in JSON mode.
func (t *tool) pinfo(format string, args ...any) {
	if t.json != nil {
		return
	}
	t.out.Flush()
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

// strerror is glibc's strerror: Go's messages are glibc's with a lower-case first letter.
func strerror(err error) string {
	var en unix.Errno
	if !errors.As(err, &en) {
		return err.Error()
	}
	return strerrno(en)
}

func strerrno(en unix.Errno) string {
	s := en.Error()
	if strings.HasPrefix(s, "errno ") {
		return "Unknown error " + strings.TrimPrefix(s, "errno ")
	}
	if s != "" && s[0] >= 'a' && s[0] <= 'z' {
		s = string(s[0]-'a'+'A') + s[1:]
	}
	return s
}

// errnoRet is the value a failed syscall wrapper returns in bpftool: -errno (libbpf's
// convention), which becomes the exit status (-errno)&0xff.
func errnoRet(err error) int {
	var en unix.Errno
	if errors.As(err, &en) {
		return -int(en)
	}
	return -1
}

// strtoul is C's strtoul(s, &end, base) with the check bpftool makes (*end == 0): leading
// blanks and a sign are accepted, base 0 detects 0x and 0 prefixes, out-of-range values
// saturate, and the empty string is 0. ok is false when characters are left over.
func strtoul(s string, base int) (uint64, bool) {
	i := 0
	for i < len(s) && (s[i] == ' ' || (s[i] >= '\t' && s[i] <= '\r')) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	hexPrefix := i+1 < len(s) && s[i] == '0' && (s[i+1] == 'x' || s[i+1] == 'X') && i+2 < len(s) && digitVal(s[i+2]) < 16
	switch {
	case base == 0 && hexPrefix:
		base = 16
		i += 2
	case base == 0 && i < len(s) && s[i] == '0':
		base = 8
	case base == 0:
		base = 10
	case base == 16 && hexPrefix:
		i += 2
	}
	start := i
	var v uint64
	overflow := false
	for i < len(s) {
		d := digitVal(s[i])
		if d >= base {
			break
		}
		if v > (^uint64(0)-uint64(d))/uint64(base) {
			overflow = true
		}
		v = v*uint64(base) + uint64(d)
		i++
	}
	if i == start {
		// No digits: end points at the start of s.
		return 0, len(s) == 0
	}
	if overflow {
		return ^uint64(0), i == len(s)
	}
	if neg {
		v = -v
	}
	return v, i == len(s)
}

func digitVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'z':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'Z':
		return int(c-'A') + 10
	}
	return 99
}

// fprintHex is main.c:fprint_hex: bytes as %02x separated by sep, two spaces after every 8
// and a newline after every 16.
func fprintHex(w io.Writer, data []byte, sep string) {
	b := make([]byte, 0, len(data)*3)
	for i, c := range data {
		switch {
		case i == 0:
		case i%16 == 0:
			b = append(b, '\n')
		case i%8 == 0:
			b = append(b, ' ', ' ')
		default:
			b = append(b, sep...)
		}
		b = append(b, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&15])
	}
	w.Write(b)
}

// hexDataJSON is common.c:print_hex_data_json: ["0x01","0x02",...].
func (t *tool) hexDataJSON(data []byte) {
	t.json.startArray()
	for _, c := range data {
		t.json.printf(`"0x%02x"`, c)
	}
	t.json.endArray()
}

// connect returns the client for the daemon of the mount holding path ("" for commands that
// name no path: --mount, BPFFS_MOUNT or the only mount). One invocation talks to one daemon.
func (t *tool) connect(path string) (*control.Client, error) {
	var dir string
	var err error
	if path != "" {
		dir, _, err = mountOf(path)
	} else if t.cli != nil {
		return t.cli, nil
	} else {
		dir, err = chooseMount(t.mountFlag)
	}
	if err != nil {
		return nil, err
	}
	if t.cli != nil {
		if dir != t.mountDir {
			return nil, fmt.Errorf("%s is on mount %s, but this command already uses the daemon of %s: %w", path, dir, t.mountDir, unix.EXDEV)
		}
		return t.cli, nil
	}
	sock, err := controlSocket(dir)
	if err != nil {
		return nil, err
	}
	c, err := control.Dial(sock)
	if err != nil {
		var ce *control.Error
		if errors.As(err, &ce) {
			return nil, fmt.Errorf("daemon of %s: %s: %s", dir, ce.Msg, strerrno(ce.Errno))
		}
		return nil, fmt.Errorf("daemon of %s: %w", dir, err)
	}
	t.cli, t.mountDir = c, dir
	return c, nil
}

// doHelp is main.c:do_help.
func (t *tool) doHelp(args []string) int {
	if t.json != nil {
		t.json.null()
		return 0
	}
	t.out.Flush()
	fmt.Fprint(os.Stderr, `Usage: bpffs-fuse [OPTIONS] OBJECT { COMMAND | help }
       bpffs-fuse batch file FILE
       bpffs-fuse mount [-o OPTIONS] DIR
       bpffs-fuse umount DIR

       OBJECT := { map | prog | link | cgroup | btf | iter }
       OPTIONS := { {-j|--json} [{-p|--pretty}] | {-f|--bpffs} | {-n|--nomount} |
                    --mount DIR }

       Commands talk to the daemon of the bpffs-fuse mount that holds the paths they name;
       id- and name-based commands use --mount DIR, else $BPFFS_MOUNT, else the only mount.
       prog, link, cgroup, btf and iter are not supported yet. bpffs-fuse --help lists
       every command (mount, umount, vm, ...).
`)
	return 0
}

// unsupported answers for objects that arrive with later issues.
func unsupported(object string) func(t *tool, args []string) int {
	return func(t *tool, args []string) int {
		if t.helpFlag || (len(args) > 0 && isPrefix(args[0], "help")) {
			t.out.Flush()
			fmt.Fprintf(os.Stderr, "Usage: bpffs-fuse %s ...\n\n       bpffs-fuse %s commands are not supported yet.\n", object, object)
			return 0
		}
		t.perr("bpffs-fuse %s: not supported yet", object)
		return -int(unix.EOPNOTSUPP)
	}
}

// batchLineMax and batchArgMax are main.c's BATCH_LINE_LEN_MAX and BATCH_ARG_NB_MAX.
const (
	batchLineMax = 65536
	batchArgMax  = 4096
)

// makeArgs is main.c:make_args: split a batch line into words, with '...' and "..." quoting.
func (t *tool) makeArgs(line string, cmdNb int) ([]string, bool) {
	var out []string
	const ws = " \t\r\n"
	for {
		line = strings.TrimLeft(line, ws)
		if line == "" {
			return out, true
		}
		if len(out) >= batchArgMax-1 {
			t.perr("too many arguments to command %d", cmdNb)
			return nil, false
		}
		if line[0] == '\'' || line[0] == '"' {
			q := line[0]
			end := strings.IndexByte(line[1:], q)
			if end < 0 {
				t.perr("unterminated quoted string in command %d", cmdNb)
				return nil, false
			}
			out = append(out, line[1:1+end])
			line = line[2+end:]
			// The character after the closing quote is consumed as a separator.
			if line != "" {
				line = line[1:]
			}
			continue
		}
		end := strings.IndexAny(line, ws)
		if end < 0 {
			out = append(out, line)
			return out, true
		}
		out = append(out, line[:end])
		line = line[end+1:]
	}
}

// doBatch is main.c:do_batch: run each line of FILE ("-" for stdin) as a command, stop at the
// first failure, and report "processed N commands".
func (t *tool) doBatch(args []string) int {
	if t.helpFlag {
		return t.doHelp(nil)
	}
	switch {
	case len(args) < 2:
		t.perr("too few parameters for batch")
		return -1
	case len(args) > 2:
		t.perr("too many parameters for batch")
		return -1
	case !isPrefix(args[0], "file"):
		t.perr("expected 'file', got: %s", args[0])
		return -1
	}
	var in io.Reader
	if args[1] == "-" {
		in = os.Stdin
	} else {
		f, err := os.Open(args[1])
		if err != nil {
			t.perr("Can't open file (%s): %s", args[1], strerror(err))
			return -1
		}
		defer f.Close()
		in = f
	}
	r := bufio.NewReaderSize(in, batchLineMax)
	if t.json != nil {
		t.json.startArray()
	}
	defer func() {
		if t.json != nil {
			t.json.endArray()
		}
	}()
	lines := 0
	readLine := func() (string, bool) {
		s, err := r.ReadString('\n')
		if s == "" && err != nil {
			return "", false
		}
		return s, true
	}
	for {
		buf, ok := readLine()
		if !ok {
			break
		}
		if i := strings.IndexByte(buf, '#'); i >= 0 {
			buf = buf[:i]
		}
		if len(buf) >= batchLineMax-1 {
			t.perr("reading batch file failed: %s", strerrno(unix.E2BIG))
			return -1
		}
		for strings.Contains(buf, "\\\n") {
			cont, ok := readLine()
			if !ok || cont == "" {
				t.perr("missing continuation line on command %d", lines)
				return -1
			}
			if i := strings.IndexByte(cont, '#'); i >= 0 {
				cont = cont[:i]
			}
			if len(buf)+len(cont)+1 > batchLineMax {
				t.perr("command %d is too long", lines)
				return -1
			}
			buf = buf[:len(buf)-2] + cont
		}
		words, ok := t.makeArgs(buf, lines)
		if !ok {
			return -1
		}
		if len(words) == 0 {
			continue
		}
		if t.json != nil {
			t.json.startObject()
			t.json.name("command")
			t.json.startArray()
			for _, w := range words {
				t.json.str(w)
			}
			t.json.endArray()
			t.json.name("output")
		}
		err := t.cmdSelect(topCommands, words, (*tool).doHelp)
		if t.json != nil {
			t.json.endObject()
		}
		if err != 0 {
			return err
		}
		lines++
	}
	if t.json == nil {
		fmt.Fprintf(t.out, "processed %d commands\n", lines)
	}
	return 0
}
