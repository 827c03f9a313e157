package text

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/bpffs-fuse/bpffs-fuse/objects"
)

// OpKind says what a parsed line does.
type OpKind uint8

// Operation kinds. Update, Insert and Replace are BPF_MAP_UPDATE_ELEM with BPF_ANY,
// BPF_NOEXIST and BPF_EXIST; Delete is BPF_MAP_DELETE_ELEM; Push is BPF_MAP_UPDATE_ELEM with
// no key on a queue, stack or bloom filter (BPF_ANY, or BPF_EXIST to overwrite the oldest
// value of a full queue or stack).
const (
	OpUpdate OpKind = iota + 1
	OpInsert
	OpReplace
	OpDelete
	OpPush
	opKinds
)

var opNames = [opKinds]string{"", "update", "insert", "replace", "delete", "push"}

// String returns the verb that writes the kind.
func (k OpKind) String() string {
	if k < opKinds && k > 0 {
		return opNames[k]
	}
	return "op " + strconv.Itoa(int(k))
}

// Op is one parsed operation. Nothing is applied by the parser: the caller applies ops in
// order, e.g. m.Update(op.Key, op.Value, op.Flags) for every kind but OpDelete.
type Op struct {
	Kind OpKind
	// Key is KeySize bytes; nil for OpPush.
	Key []byte
	// Value is ValueBufSize bytes laid out as bpf(2) takes it: per-CPU maps have a slot
	// every Shape.Stride bytes (padding zero); fd maps hold the object's id as a u32 in
	// host (little-endian) order, which the caller resolves to an object. Nil for OpDelete.
	Value []byte
	// Flags are the BPF_MAP_UPDATE_ELEM flags (objects.Any, NoExist, Exist); 0 for OpDelete.
	Flags uint64
	// Line is the 1-based number of the line the op came from (for a per-CPU block, the
	// line with the key).
	Line int
}

// SyntaxError describes a line that cannot be parsed or whose fields have the wrong size.
// It wraps unix.EINVAL: errors.Is(err, unix.EINVAL) holds.
type SyntaxError struct {
	// Line is the 1-based line number, counted from the Parser's first Feed.
	Line int
	// Text is the line, without its newline, cut to 200 bytes.
	Text string
	// Reason says what is wrong, e.g. `value: "zz" is not a hex byte or integer`.
	Reason string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("line %d: %q: %s", e.Line, e.Text, e.Reason)
}

// Unwrap returns unix.EINVAL.
func (e *SyntaxError) Unwrap() error { return unix.EINVAL }

const maxErrText = 200

// Parse parses a whole text (the last line need not end in a newline) into ops without
// applying anything. It is NewParser(s) followed by Feed(data) and Flush, as one step. The
// error, if any, is a *SyntaxError.
func Parse(s Shape, data []byte) ([]Op, error) {
	p := NewParser(s)
	ops, _, err := p.parse(data, 1, true)
	return ops, err
}

// Parser parses the text a file receives over several write(2) calls. Each Feed parses the
// complete lines it has (the carried-over start of a line or of a per-CPU block first) and
// validates all of them before returning any op, so that a write with a bad line can be
// failed whole; a line cut by the end of a write, and a per-CPU "{" block not yet closed, are
// kept for the next Feed. Flush parses what is left at close.
//
// A Parser is not safe for concurrent use.
type Parser struct {
	s      Shape
	vb     int
	stride int
	ncpu   int
	limit  int
	line   int // number of the first carried line
	carry  []byte
	buf    []byte // carry + data
	arena  []byte
	ops    []Op
	toks   []span
	ln     []byte // the current line
	lineNo int
	seen   []uint64
	blk    block
}

// block is a per-CPU "KEY: {" block being parsed.
type block struct {
	open  bool
	off   int // offset of its first line in the text
	line  int
	text  []byte // its first line
	kind  OpKind
	flags uint64
	key   []byte
	value []byte
}

type span struct{ lo, hi int }

// NewParser returns a parser for maps of shape s, its line count at 1.
func NewParser(s Shape) *Parser {
	p := &Parser{s: s, vb: s.ValueBufSize(), stride: s.Stride(), ncpu: s.CPUs(), line: 1}
	// The longest line (or block) carried between writes: generous for every form.
	p.limit = 1<<20 + 8*(s.KeySize+p.vb) + 16*p.ncpu
	p.seen = make([]uint64, (p.ncpu+63)/64)
	return p
}

// Reset forgets carried text and restarts the line count at 1.
func (p *Parser) Reset() {
	p.carry = p.carry[:0]
	p.line = 1
}

// Pending is the number of bytes carried over to the next Feed (an unterminated line or an
// unclosed per-CPU block).
func (p *Parser) Pending() int { return len(p.carry) }

// Feed parses the complete lines of data, after the text carried over from the previous
// Feed, and returns their ops. On error it returns a *SyntaxError (wrapping unix.EINVAL) and
// no ops, and the parser is left as it was before the call, as if data had not been written.
// The ops and their Key and Value slices stay valid until the next call on p.
func (p *Parser) Feed(data []byte) ([]Op, error) {
	text := data
	if len(p.carry) > 0 {
		p.buf = append(append(p.buf[:0], p.carry...), data...)
		text = p.buf
	}
	ops, rest, err := p.parse(text, p.line, false)
	if err != nil {
		return nil, err
	}
	if len(rest.text) > p.limit {
		return nil, &SyntaxError{Line: rest.line, Text: cut(rest.text),
			Reason: fmt.Sprintf("line too long: %d bytes without a newline (at most %d)", len(rest.text), p.limit)}
	}
	p.carry = append(p.carry[:0], rest.text...)
	p.line = rest.line
	return ops, nil
}

// Flush parses the carried-over text as final: a last line without a newline is parsed as
// if it had one; a per-CPU block still open is an error. The parser is then empty (its line
// count goes on). Call it when the file is released.
func (p *Parser) Flush() ([]Op, error) {
	if len(p.carry) == 0 {
		return nil, nil
	}
	ops, rest, err := p.parse(p.carry, p.line, true)
	if err != nil {
		return nil, err
	}
	p.carry = p.carry[:0]
	p.line = rest.line
	return ops, nil
}

type remainder struct {
	text []byte
	line int
}

// parse parses text whose first line is number first. Unless final, the last line without a
// newline (and an open block) is returned as the remainder instead.
func (p *Parser) parse(text []byte, first int, final bool) ([]Op, remainder, error) {
	p.ops = p.ops[:0]
	p.arena = p.arena[:0]
	p.blk = block{}
	p.lineNo = first
	pos := 0
	for pos < len(text) {
		end, next := len(text), len(text)
		if nl := bytes.IndexByte(text[pos:], '\n'); nl >= 0 {
			end, next = pos+nl, pos+nl+1
		} else if !final {
			break
		}
		p.ln = text[pos:end]
		if !p.blk.open {
			p.blk.off = pos
		}
		if err := p.parseLine(); err != nil {
			return nil, remainder{}, err
		}
		pos = next
		p.lineNo++
	}
	if p.blk.open {
		if final {
			return nil, remainder{}, &SyntaxError{Line: p.blk.line, Text: cut(p.blk.text),
				Reason: "per-CPU block not closed with }"}
		}
		return p.ops, remainder{text[p.blk.off:], p.blk.line}, nil
	}
	return p.ops, remainder{text[pos:], p.lineNo}, nil
}

func cut(b []byte) string {
	if len(b) > maxErrText {
		return string(b[:maxErrText]) + "..."
	}
	return string(b)
}

func (p *Parser) errf(format string, args ...any) error {
	return &SyntaxError{Line: p.lineNo, Text: cut(p.ln), Reason: fmt.Sprintf(format, args...)}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f' }

func isPunct(c byte) bool { return c == ':' || c == '{' || c == '}' }

// tokenize splits the current line into tokens: runs of non-blank bytes, with ':', '{' and
// '}' tokens of their own. A '#' starting a token starts a comment.
func (p *Parser) tokenize() {
	ln := p.ln
	p.toks = p.toks[:0]
	for i := 0; i < len(ln); {
		c := ln[i]
		switch {
		case isSpace(c):
			i++
		case c == '#':
			return
		case isPunct(c):
			p.toks = append(p.toks, span{i, i + 1})
			i++
		default:
			j := i + 1
			for j < len(ln) && !isSpace(ln[j]) && !isPunct(ln[j]) {
				j++
			}
			p.toks = append(p.toks, span{i, j})
			i = j
		}
	}
}

func (p *Parser) tok(t span) []byte { return p.ln[t.lo:t.hi] }

func (p *Parser) is(t span, s string) bool { return string(p.ln[t.lo:t.hi]) == s }

func (p *Parser) find(toks []span, s string) int {
	for i, t := range toks {
		if p.is(t, s) {
			return i
		}
	}
	return -1
}

// alloc returns n zero bytes from the arena.
func (p *Parser) alloc(n int) []byte {
	l := len(p.arena)
	p.arena = append(p.arena, make([]byte, n)...)
	return p.arena[l : l+n : l+n]
}

func (p *Parser) emit(kind OpKind, flags uint64, key, value []byte) {
	p.ops = append(p.ops, Op{Kind: kind, Key: key, Value: value, Flags: flags, Line: p.lineNo})
}

func (p *Parser) typ() string { return p.s.Type.String() }

func (p *Parser) parseLine() error {
	p.tokenize()
	toks := p.toks
	if len(toks) == 0 {
		return nil
	}
	if p.blk.open {
		return p.blockBody(toks)
	}
	if ok, why := p.s.Writable(); !ok {
		return p.errf("%s", why)
	}
	kind, flags, hasVerb := OpUpdate, objects.Any, true
	switch string(p.tok(toks[0])) {
	case "update":
	case "insert":
		kind, flags = OpInsert, objects.NoExist
	case "replace":
		kind, flags = OpReplace, objects.Exist
	case "delete":
		kind = OpDelete
	case "push", "enqueue":
		kind = OpPush
	case "overwrite":
		kind, flags = OpPush, objects.Exist
	default:
		hasVerb = false
	}
	var verb []byte
	if hasVerb {
		verb = p.tok(toks[0])
		toks = toks[1:]
		if len(toks) == 0 {
			return p.errf("%s: nothing follows", verb)
		}
	}
	if p.s.Keyless() {
		switch kind {
		case OpUpdate:
			kind = OpPush
		case OpInsert, OpReplace, OpDelete:
			return p.errf("%s: %s maps have no keys; write the value alone to push it (overwrite VALUE to push over the oldest)", verb, p.typ())
		}
	} else if kind == OpPush {
		return p.errf("%s: only queue, stack and bloom_filter maps are pushed to; %s maps take KEY VALUE", verb, p.typ())
	}
	if p.is(toks[0], "key") || p.is(toks[0], "value") {
		return p.bpftool(kind, flags, verb, toks)
	}
	return p.native(kind, flags, toks)
}

// native parses the forms Encoder prints and "KEY VALUE" without a colon.
func (p *Parser) native(kind OpKind, flags uint64, toks []span) error {
	colon := p.find(toks, ":")
	brace := p.find(toks, "{")
	if p.s.Keyless() {
		if colon >= 0 || brace >= 0 {
			return p.errf("%s maps have no keys: write the value alone", p.typ())
		}
		v := p.alloc(p.vb)
		if err := p.value(v, toks, "value"); err != nil {
			return err
		}
		p.emit(OpPush, flags, nil, v)
		return nil
	}
	key := p.alloc(p.s.KeySize)
	if kind == OpDelete {
		kt := toks
		if colon >= 0 {
			if colon != len(toks)-1 {
				return p.errf("delete takes a key only")
			}
			kt = toks[:colon]
		}
		if err := p.field(key, kt, "key"); err != nil {
			return err
		}
		p.emit(kind, 0, key, nil)
		return nil
	}
	if brace >= 0 {
		if !p.s.Percpu() {
			return p.errf("{ } blocks are for per-CPU maps; %s values are written after KEY:", p.typ())
		}
		kt := toks[:brace]
		if colon >= 0 {
			if colon != brace-1 {
				return p.errf("expected KEY: { cpu0: VALUE ... }")
			}
			kt = toks[:colon]
		}
		if err := p.field(key, kt, "key"); err != nil {
			return err
		}
		p.blk = block{open: true, off: p.blk.off, line: p.lineNo, text: p.ln, kind: kind, flags: flags,
			key: key, value: p.alloc(p.vb)}
		clear(p.seen)
		return p.blockBody(toks[brace+1:])
	}
	value := p.alloc(p.vb)
	if colon >= 0 {
		if colon == 0 {
			return p.errf("key missing before ':'")
		}
		if err := p.field(key, toks[:colon], "key"); err != nil {
			return err
		}
		if err := p.value(value, toks[colon+1:], "value"); err != nil {
			return err
		}
		p.emit(kind, flags, key, value)
		return nil
	}
	return p.split(kind, flags, key, value, toks)
}

// split parses "KEY VALUE" without a colon: the key is either one integer or KeySize hex
// bytes, the value takes the rest. Both splits are tried; two that parse are ambiguous.
func (p *Parser) split(kind OpKind, flags uint64, key, value []byte, toks []span) error {
	n := len(toks)
	cands := [3]int{1, p.s.KeySize, n}
	var firstErr error
	found := -1
	for i, kc := range cands {
		if kc > n || kc < 1 || (i > 0 && kc == cands[0]) || (i > 1 && kc == cands[1]) {
			continue
		}
		if !p.keyCount(kc) || !p.valueCount(n-kc) {
			continue
		}
		if found >= 0 {
			k2, v2 := p.alloc(len(key)), p.alloc(len(value))
			if p.field(k2, toks[:kc], "key") == nil && p.value(v2, toks[kc:], "value") == nil {
				return p.errf("ambiguous: the fields split into key and value in two ways; write KEY: VALUE")
			}
			continue
		}
		err := p.field(key, toks[:kc], "key")
		if err == nil {
			err = p.value(value, toks[kc:], "value")
		}
		if err == nil {
			found = kc
		} else if firstErr == nil {
			firstErr = err
		}
	}
	if found >= 0 {
		p.emit(kind, flags, key, value)
		return nil
	}
	if firstErr != nil {
		return firstErr
	}
	if n == 1 {
		return p.errf("value missing: expected KEY VALUE or KEY: VALUE")
	}
	return p.errf("expected KEY VALUE: key as %s, value as %s; got %d fields",
		describe(p.s.KeySize), p.describeValue(), n)
}

func describe(n int) string {
	switch {
	case n == 1:
		return "one integer"
	case n <= 8:
		return fmt.Sprintf("%d hex bytes or one integer", n)
	}
	return fmt.Sprintf("%d hex bytes", n)
}

func (p *Parser) describeValue() string {
	if p.s.FdMap() {
		return "an id"
	}
	return describe(p.s.ValueSize)
}

func (p *Parser) keyCount(n int) bool {
	k := p.s.KeySize
	return n == k || n == 1 && k <= 8
}

func (p *Parser) valueCount(n int) bool {
	if p.s.FdMap() {
		return n == 1 || n == 2 || n == 4
	}
	v := p.s.ValueSize
	return n == v || n == 1 && v >= 1 && v <= 8
}

// value parses a value field into dst (ValueBufSize bytes): an id for fd maps, a value
// replicated to every CPU for per-CPU maps.
func (p *Parser) value(dst []byte, toks []span, name string) error {
	if p.s.FdMap() {
		return p.id(dst, toks, name)
	}
	v := p.s.ValueSize
	if err := p.field(dst[:v], toks, name); err != nil {
		return err
	}
	for off := p.stride; off+v <= len(dst) && p.s.Percpu(); off += p.stride {
		copy(dst[off:off+v], dst[:v])
	}
	return nil
}

// id parses an fd map's value: "ID", "id ID" or four hex bytes.
func (p *Parser) id(dst []byte, toks []span, name string) error {
	if len(toks) == 2 && p.is(toks[0], "id") {
		toks = toks[1:]
	}
	if len(toks) == 1 {
		t := p.tok(toks[0])
		mag, neg, ok := parseInt(t)
		if !ok || neg || mag > 1<<32-1 {
			return p.errf("%s: %q is not an id (a decimal number up to 4294967295)", name, t)
		}
		binary.LittleEndian.PutUint32(dst, uint32(mag))
		return nil
	}
	if len(toks) == 4 {
		return p.field(dst[:4], toks, name)
	}
	if len(toks) > 0 && (p.is(toks[0], "pinned") || p.is(toks[0], "name") || p.is(toks[0], "tag") || p.is(toks[0], "fd")) {
		return p.errf("%s: only \"id N\" can be written as text; use the CLI for %s", name, p.tok(toks[0]))
	}
	return p.errf("%s: expected an id (N or id N), got %d field%s", name, len(toks), plural(len(toks)))
}

// field parses a field of len(dst) bytes: len(dst) hex bytes, or one integer stored
// little-endian when the field is 1 to 8 bytes.
func (p *Parser) field(dst []byte, toks []span, name string) error {
	n := len(dst)
	if len(toks) == 1 && n >= 1 && n <= 8 {
		t := p.tok(toks[0])
		mag, neg, ok := parseInt(t)
		if !ok {
			if n == 1 {
				return p.errf("%s: %q is not an integer (a 1-byte field is one integer: 42 or 0x2a)", name, t)
			}
			return p.errf("%s: %q is not a hex byte or integer", name, t)
		}
		return p.putInt(dst, mag, neg, t, name)
	}
	if len(toks) != n {
		return p.errf("%s: expected %s, got %d field%s", name, describe(n), len(toks), plural(len(toks)))
	}
	for i, t := range toks {
		b, ok := hexByte(p.tok(t))
		if !ok {
			return p.errf("%s: %q is not a hex byte (byte %d of %d: two hex digits, or 0x and one or two)", name, p.tok(t), i+1, n)
		}
		dst[i] = b
	}
	return nil
}

// putInt stores ±mag little-endian in dst, checking that it fits.
func (p *Parser) putInt(dst []byte, mag uint64, neg bool, t []byte, name string) error {
	n := len(dst)
	bitsN := uint(8 * n)
	var v uint64
	if neg {
		if mag > 1<<(bitsN-1) {
			return p.errf("%s: %s does not fit in %d byte%s (%s)", name, t, n, plural(n), rangeOf(n))
		}
		v = -mag
	} else {
		if bitsN < 64 && mag >= 1<<bitsN {
			return p.errf("%s: %s does not fit in %d byte%s (%s)", name, t, n, plural(n), rangeOf(n))
		}
		v = mag
	}
	for i := range dst {
		dst[i] = byte(v >> (8 * i))
	}
	return nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func rangeOf(n int) string {
	b := uint(8 * n)
	lo := "-" + strconv.FormatUint(1<<(b-1), 10)
	hi := uint64(1<<b - 1)
	if b == 64 {
		hi = ^uint64(0)
	}
	return lo + ".." + strconv.FormatUint(hi, 10)
}

// parseInt parses a decimal or 0x hex integer with an optional '-'.
func parseInt(t []byte) (mag uint64, neg bool, ok bool) {
	if len(t) > 0 && t[0] == '-' {
		neg, t = true, t[1:]
	}
	if len(t) > 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X') {
		return parseHex(t[2:], neg)
	}
	if len(t) == 0 {
		return 0, false, false
	}
	for _, c := range t {
		if c < '0' || c > '9' {
			return 0, false, false
		}
		hi, lo := bits.Mul64(mag, 10)
		lo, carry := bits.Add64(lo, uint64(c-'0'), 0)
		if hi != 0 || carry != 0 {
			return 0, false, false
		}
		mag = lo
	}
	return mag, neg, true
}

func parseHex(t []byte, neg bool) (uint64, bool, bool) {
	var mag uint64
	for _, c := range t {
		d := unhex(c)
		if d > 15 || mag>>60 != 0 {
			return 0, false, false
		}
		mag = mag<<4 | uint64(d)
	}
	return mag, neg, true
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10
	}
	return 255
}

// hexByte parses a byte of a native byte list: two hex digits, or 0x and one or two.
func hexByte(t []byte) (byte, bool) {
	if len(t) > 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X') {
		t = t[2:]
		if len(t) == 1 {
			d := unhex(t[0])
			return d, d < 16
		}
	}
	if len(t) != 2 {
		return 0, false
	}
	h, l := unhex(t[0]), unhex(t[1])
	return h<<4 | l, h < 16 && l < 16
}

// cpuLabel parses "cpuN".
func cpuLabel(t []byte) (int, bool) {
	if len(t) < 4 || string(t[:3]) != "cpu" || len(t) > 12 {
		return 0, false
	}
	n := 0
	for _, c := range t[3:] {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func (p *Parser) isLabel(toks []span, i int) bool {
	_, ok := cpuLabel(p.tok(toks[i]))
	return ok && i+1 < len(toks) && p.is(toks[i+1], ":")
}

// blockBody parses tokens inside a per-CPU block: "cpuN: VALUE" items and the closing '}'.
func (p *Parser) blockBody(toks []span) error {
	b := &p.blk
	for i := 0; i < len(toks); {
		if p.is(toks[i], "}") {
			if i != len(toks)-1 {
				return p.errf("text after }")
			}
			b.open = false
			p.ops = append(p.ops, Op{Kind: b.kind, Key: b.key, Value: b.value, Flags: b.flags, Line: b.line})
			return nil
		}
		if !p.isLabel(toks, i) {
			return p.errf("expected \"cpuN: VALUE\" or \"}\", got %q", p.tok(toks[i]))
		}
		cpu, _ := cpuLabel(p.tok(toks[i]))
		if cpu >= p.ncpu {
			return p.errf("cpu%d: the map has %d possible CPUs (cpu0..cpu%d)", cpu, p.ncpu, p.ncpu-1)
		}
		if p.seen[cpu/64]&(1<<(cpu%64)) != 0 {
			return p.errf("cpu%d is given twice", cpu)
		}
		p.seen[cpu/64] |= 1 << (cpu % 64)
		i += 2
		j := i
		for j < len(toks) && !p.is(toks[j], "}") && !p.isLabel(toks, j) {
			j++
		}
		off := cpu * p.stride
		if err := p.field(b.value[off:off+p.s.ValueSize], toks[i:j], "cpu"+strconv.Itoa(cpu)); err != nil {
			return err
		}
		i = j
	}
	return nil
}

// bpftool parses bpftool's "[VERB] key [hex] BYTES value [hex] BYTES [any|exist|noexist]".
func (p *Parser) bpftool(kind OpKind, flags uint64, verb []byte, toks []span) error {
	var keyT, valT []span
	hasKey, hasVal, keyHex, valHex := false, false, false, false
	i := 0
	if p.is(toks[0], "key") {
		hasKey = true
		i = 1
		if i < len(toks) && p.is(toks[i], "hex") {
			keyHex = true
			i++
		}
		j := i
		for j < len(toks) && !p.is(toks[j], "value") {
			j++
		}
		keyT, i = toks[i:j], j
	}
	if i < len(toks) {
		hasVal = true
		i++
		if i < len(toks) && p.is(toks[i], "hex") {
			valHex = true
			i++
		}
		j := len(toks)
		if j > i {
			f, isFlag := uint64(0), true
			switch string(p.tok(toks[j-1])) {
			case "any":
				f = objects.Any
			case "noexist":
				f = objects.NoExist
			case "exist":
				f = objects.Exist
			default:
				isFlag = false
			}
			if isFlag {
				switch string(verb) {
				case "", "update", "push", "enqueue":
				default:
					if f != flags {
						return p.errf("%s: conflicts with the flag %s", verb, p.tok(toks[j-1]))
					}
				}
				if kind == OpPush && f == objects.NoExist {
					return p.errf("noexist: %s maps are pushed with any or exist", p.typ())
				}
				flags = f
				if kind != OpPush {
					kind = [...]OpKind{OpUpdate, OpInsert, OpReplace}[f]
				}
				j--
			}
		}
		valT = toks[i:j]
	}
	switch {
	case p.s.Keyless() && hasKey:
		return p.errf("%s maps have no keys: write value BYTES", p.typ())
	case !p.s.Keyless() && !hasKey:
		return p.errf("key missing: %s maps take key BYTES value BYTES", p.typ())
	case kind == OpDelete && hasVal:
		return p.errf("delete takes a key only")
	case kind != OpDelete && !hasVal:
		return p.errf("value missing")
	}
	var key, value []byte
	if hasKey {
		key = p.alloc(p.s.KeySize)
		if err := p.bytes(key, keyT, keyHex, "key"); err != nil {
			return err
		}
	}
	if hasVal {
		value = p.alloc(p.vb)
		var err error
		switch {
		case p.s.FdMap() && !valHex:
			err = p.id(value, valT, "value")
		default:
			v := p.s.ValueSize
			if p.s.FdMap() {
				v = 4
			}
			err = p.bytes(value[:v], valT, valHex, "value")
			for off := p.stride; err == nil && p.s.Percpu() && off+v <= len(value); off += p.stride {
				copy(value[off:off+v], value[:v])
			}
		}
		if err != nil {
			return err
		}
	}
	if kind == OpDelete {
		flags = 0
	}
	p.emit(kind, flags, key, value)
	return nil
}

// bytes parses bpftool's BYTES: len(dst) numbers as C's strtoul reads them (base 0: 0x hex,
// leading-0 octal, decimal; base 16 after "hex"), each at most 255. One integer fills a field
// of 2 to 8 bytes little-endian (an extension; bpftool wants every byte).
func (p *Parser) bytes(dst []byte, toks []span, hex bool, name string) error {
	n := len(dst)
	if len(toks) == 1 && n >= 2 && n <= 8 && !hex {
		return p.field(dst, toks, name)
	}
	if len(toks) != n {
		return p.errf("%s: expected %d bytes, got %d", name, n, len(toks))
	}
	for i, t := range toks {
		s := p.tok(t)
		v, ok := strtoul(s, hex)
		if !ok || v > 255 {
			return p.errf("%s: %q is not a byte (byte %d of %d: 0..255 or 0x00..0xff)", name, s, i+1, n)
		}
		dst[i] = byte(v)
	}
	return nil
}

// strtoul reads a number as C's strtoul does with base 0 (or 16 when hex), without sign.
func strtoul(s []byte, hex bool) (uint64, bool) {
	base := uint64(10)
	switch {
	case len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'):
		base, s = 16, s[2:]
	case hex:
		base = 16
	case len(s) > 1 && s[0] == '0':
		base, s = 8, s[1:]
	}
	if len(s) == 0 || len(s) > 8 {
		return 0, false
	}
	var v uint64
	for _, c := range s {
		d := uint64(unhex(c))
		if d >= base {
			return 0, false
		}
		v = v*base + d
	}
	return v, true
}
