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
	"runtime/debug"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/bpffs-fuse/bpffs-fuse/engine"
	"github.com/bpffs-fuse/bpffs-fuse/engine/control"
	"github.com/bpffs-fuse/bpffs-fuse/objects"
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

	// prefetch is the info of the map the last mapParseFDs opened (nil: none).
	prefetch *prefetched

	// quiet suppresses perr and pinfo (the batch fast path's trial parse).
	quiet bool
	// batch is the state of a batch file's run of element commands.
	batch *batchRun
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
	if t.quiet {
		return
	}
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
	if t.quiet || t.json != nil {
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
// On a bad line it returns bpftool's error message instead (printed by the caller).
func (t *tool) makeArgs(line string, cmdNb int) ([]string, string) {
	out := make([]string, 0, 16)
	// isWS is make_args's separator set (" \t\r\n"), tested byte by byte: strings.TrimLeft
	// and IndexAny with a cutset cost a quarter of a batch file's run.
	isWS := func(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }
	for {
		i := 0
		for i < len(line) && isWS(line[i]) {
			i++
		}
		line = line[i:]
		if line == "" {
			return out, ""
		}
		if len(out) >= batchArgMax-1 {
			return nil, fmt.Sprintf("too many arguments to command %d", cmdNb)
		}
		if line[0] == '\'' || line[0] == '"' {
			q := line[0]
			end := strings.IndexByte(line[1:], q)
			if end < 0 {
				return nil, fmt.Sprintf("unterminated quoted string in command %d", cmdNb)
			}
			out = append(out, line[1:1+end])
			line = line[2+end:]
			// The character after the closing quote is consumed as a separator.
			if line != "" {
				line = line[1:]
			}
			continue
		}
		end := 0
		for end < len(line) && !isWS(line[end]) {
			end++
		}
		if end == len(line) {
			out = append(out, line)
			return out, ""
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
	// A batch allocates a few short-lived strings per line and keeps little: collecting less
	// often saves a tenth of a long run.
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	b := &batchRun{handles: map[string]*cachedMap{}}
	t.batch = b
	defer func() { t.batch = nil }()
	// fail reports a batch-file error once the commands before it have run (and stops at
	// one of those instead, when it failed).
	fail := func(format string, args ...any) int {
		if ret := t.flushElems(); ret != 0 {
			return ret
		}
		t.perr(format, args...)
		return -1
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
			return fail("reading batch file failed: %s", strerrno(unix.E2BIG))
		}
		for strings.Contains(buf, "\\\n") {
			cont, ok := readLine()
			if !ok || cont == "" {
				return fail("missing continuation line on command %d", lines)
			}
			if i := strings.IndexByte(cont, '#'); i >= 0 {
				cont = cont[:i]
			}
			if len(buf)+len(cont)+1 > batchLineMax {
				return fail("command %d is too long", lines)
			}
			buf = buf[:len(buf)-2] + cont
		}
		words, msg := t.makeArgs(buf, lines)
		if msg != "" {
			return fail("%s", msg)
		}
		if len(words) == 0 {
			continue
		}
		// Element commands on a map handle already open go to the queue, which runs them in
		// one round trip per chunk (batchFast's doc has the rules).
		queued, cacheArgs := t.batchFast(words)
		if queued {
			if b.failed != 0 {
				return b.failed
			}
			lines++
			continue
		}
		if ret := t.flushElems(); ret != 0 {
			return ret
		}
		if cacheArgs == nil {
			t.dropHandles()
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
		if cacheArgs != nil {
			t.cacheHandle(cacheArgs)
		}
	}
	if ret := t.flushElems(); ret != 0 {
		return ret
	}
	if t.json == nil {
		fmt.Fprintf(t.out, "processed %d commands\n", lines)
	}
	return 0
}

// batchRun is a batch file's fast path for element commands (map update, lookup, delete,
// push, pop, ... on `id N` or `pinned PATH`): the handles of such lines stay open across
// lines, and the commands queue up and run in order in one OpVector round trip per chunk,
// stopping at the first failure as bpftool does, with each line's output written in order
// once its outcome is known.
//
// bpftool opens the map again for each line. Keeping a handle open is the same as
// reopening it as long as nothing changes what the handle names, so every command that is
// not a queued element command (map create, pin, freeze, show, name handles, ...) first runs
// the queue, then closes every kept handle. What the fast path does not see: another process
// that moves, removes or replaces a pin, or frees a map by id, while the batch runs; the batch
// keeps using the map it opened first. (A bpftool batch is not atomic either: it sees such
// changes only at line boundaries.)
type batchRun struct {
	handles map[string]*cachedMap // "i"+N for id N, "p"+PATH for pinned PATH
	ops     []control.VecOp
	pend    []pendingElem
	slab    []byte // keys and values of the queued commands
	failed  int    // the status of a queued command that failed (the batch stops)
}

// cachedMap is a kept-open handle.
type cachedMap struct {
	fd   int
	info engine.MapInfo
}

// pendingElem is a queued command: what its output needs.
type pendingElem struct {
	words      []string // the command, for -j's "command" array
	kind       byte     // 'u' update, 'l' lookup, 'd' delete, 'p' pop
	info       *engine.MapInfo
	key, value []byte
}

// batchQueueMax is how many commands queue up before they run.
const batchQueueMax = 4096

// batchHandles caps the kept handles (a batch touching many maps reopens them).
const batchHandles = 64

// alloc returns n zeroed bytes from the slab, or nil for n == 0 (as allocKeyValue).
func (b *batchRun) alloc(n int) []byte {
	if n == 0 {
		return nil
	}
	if len(b.slab)+n > cap(b.slab) {
		b.slab = make([]byte, 0, max(64<<10, n))
	}
	v := b.slab[len(b.slab) : len(b.slab)+n : len(b.slab)+n]
	b.slab = b.slab[:len(b.slab)+n]
	clear(v)
	return v
}

// batchFast queues words when it is an element command on a kept handle and parses
// (reporting nothing: a line that does not parse runs the ordinary way, which prints its
// error). Otherwise it returns queued false and, when the line is an element command whose
// handle is not kept yet, the handle's words to keep after the line ran the ordinary way
// (nil: the line may change what handles name; the caller closes them all).
func (t *tool) batchFast(words []string) (queued bool, cacheArgs []string) {
	b := t.batch
	if t.helpFlag || len(words) < 4 || (words[0] != "m" && words[0] != "ma" && words[0] != "map") {
		return false, nil
	}
	var name string
	for _, c := range mapCommands {
		if isPrefix(words[1], c.name) {
			name = c.name
			break
		}
	}
	var kind byte
	switch name {
	case "update", "push", "enqueue":
		kind = 'u'
	case "lookup", "peek":
		kind = 'l'
	case "delete":
		kind = 'd'
	case "pop", "dequeue":
		kind = 'p'
	default:
		return false, nil
	}
	var hkey string
	switch h := words[2]; {
	case isPrefix(h, "id"):
		hkey = "i" + words[3]
	case isPrefix(h, "name"):
		return false, nil
	case isPrefix(h, "pinned"):
		hkey = "p" + words[3]
	default:
		return false, nil
	}
	m := b.handles[hkey]
	if m == nil {
		return false, words[2:4]
	}
	if isMapOfMaps(m.info.Type) || m.info.Type == objects.MapTypeProgArray {
		// Values name other objects: the ordinary path opens them.
		return false, nil
	}
	info := &m.info
	args := words[4:]
	p := pendingElem{kind: kind, info: info}
	op := control.VecOp{FD: m.fd}
	t.quiet = true
	ok := true
	switch kind {
	case 'u':
		p.key = b.alloc(int(info.KeySize))
		if info.ValueSize != 0 {
			p.value = b.alloc(t.valueBufSize(info))
		}
		flags := objects.Any
		valueFD := -1
		ok = t.parseElem(args, elemParse{info: info, key: p.key, value: p.value, keySize: info.KeySize,
			valueSize: info.ValueSize, flags: &flags, valueFD: &valueFD})
		op.Op, op.Flags = control.OpMapUpdateElem, flags
	case 'l', 'p':
		p.key = b.alloc(int(info.KeySize))
		if info.ValueSize != 0 {
			p.value = b.alloc(t.valueBufSize(info))
		}
		op.Op = control.OpMapLookupAndDeleteElem
		if kind == 'l' {
			ok = t.parseElem(args, elemParse{info: info, key: p.key, keySize: info.KeySize})
			op.Op = control.OpMapLookupElem
		}
	case 'd':
		// do_delete's key is malloc(key_size): not NULL even for size 0.
		p.key = b.alloc(int(info.KeySize))
		if p.key == nil {
			p.key = []byte{}
		}
		ok = t.parseElem(args, elemParse{info: info, key: p.key, keySize: info.KeySize})
		op.Op = control.OpMapDeleteElem
	}
	t.quiet = false
	if !ok {
		// The ordinary path prints the error (after the queue ran).
		return false, words[2:4]
	}
	op.Key, op.Value = p.key, p.value
	if t.json != nil {
		p.words = append([]string(nil), words...)
	}
	b.ops = append(b.ops, op)
	b.pend = append(b.pend, p)
	if len(b.ops) >= batchQueueMax {
		// Run the chunk now; the caller sees a failure in b.failed.
		t.flushElems()
	}
	return true, nil
}

// flushElems runs the queued commands and writes their outputs; on a failure it writes that
// command's error and returns its status, as the ordinary path would have (the commands
// after it do not run). A failure stays reported: later calls return it again and run nothing.
func (t *tool) flushElems() int {
	b := t.batch
	if b == nil || b.failed != 0 || len(b.pend) == 0 {
		if b == nil {
			return 0
		}
		return b.failed
	}
	n, err := t.cli.Vector(b.ops)
	for i := range b.pend {
		if i > n || (i == n && err == nil) {
			break
		}
		p := &b.pend[i]
		if t.json != nil {
			t.json.startObject()
			t.json.name("command")
			t.json.startArray()
			for _, w := range p.words {
				t.json.str(w)
			}
			t.json.endArray()
			t.json.name("output")
		}
		var e error
		if i == n {
			e = err
		}
		var ret int
		switch p.kind {
		case 'u':
			ret = t.updateDone(e)
		case 'd':
			ret = t.deleteDone(e)
		case 'l':
			ret = t.lookupDone(p.info, p.key, p.value, e)
		default:
			ret = t.popDone(p.info, p.key, p.value, e)
		}
		if t.json != nil {
			t.json.endObject()
		}
		if ret != 0 {
			b.failed = ret
		}
	}
	clear(b.pend)
	b.pend, b.ops = b.pend[:0], b.ops[:0]
	b.slab = b.slab[:0]
	return b.failed
}

// dropHandles closes every kept handle.
func (t *tool) dropHandles() {
	b := t.batch
	for k, m := range b.handles {
		t.cli.CloseNoWait(m.fd)
		delete(b.handles, k)
	}
}

// cacheHandle opens and keeps the handle hw (`id N` or `pinned PATH`) after a line that used
// it ran the ordinary way and succeeded. Failures are not reported (the next line reopens).
func (t *tool) cacheHandle(hw []string) {
	b := t.batch
	if t.cli == nil {
		return
	}
	if len(b.handles) >= batchHandles {
		t.dropHandles()
	}
	args := hw
	t.quiet = true
	m, ret := t.mapParseFDAndInfo(&args)
	t.quiet = false
	if ret != 0 {
		return
	}
	if isMapOfMaps(m.info.Type) || m.info.Type == objects.MapTypeProgArray {
		t.cli.CloseNoWait(m.fd)
		return
	}
	key := "i" + hw[1]
	if !isPrefix(hw[0], "id") {
		key = "p" + hw[1]
	}
	b.handles[key] = &cachedMap{fd: m.fd, info: m.info}
}
