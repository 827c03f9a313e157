package text

import (
	"encoding/binary"
	"io"
	"slices"
	"strconv"

	"github.com/bpffs-fuse/bpffs-fuse/objects"
)

const hexDigits = "0123456789abcdef"

// Encoder formats a map's elements as text lines (see the package documentation for the
// format). It holds only precomputed, read-only state: one Encoder may be used from many
// goroutines at once. The Append methods never allocate when dst has room for the line
// (MaxEntryLen bytes).
type Encoder struct {
	s       Shape
	vb      int
	stride  int
	ncpu    int
	maxLine int
	labels  [][]byte // "\tcpuN: " for each possible CPU
	verbs   [opKinds][]byte
}

// NewEncoder returns an encoder for maps of shape s.
func NewEncoder(s Shape) *Encoder {
	e := &Encoder{s: s, vb: s.ValueBufSize(), stride: s.Stride(), ncpu: s.CPUs()}
	if s.Percpu() {
		e.labels = make([][]byte, e.ncpu)
		for i := range e.labels {
			e.labels[i] = append(strconv.AppendInt([]byte("\tcpu"), int64(i), 10), ':', ' ')
		}
	}
	e.verbs[OpInsert] = []byte("insert ")
	e.verbs[OpReplace] = []byte("replace ")
	e.verbs[OpDelete] = []byte("delete ")
	e.maxLine = e.computeMaxEntryLen()
	return e
}

// Shape returns the shape the encoder was made for.
func (e *Encoder) Shape() Shape { return e.s }

// fieldLen is the length of a formatted field of n bytes.
func fieldLen(n int) int {
	switch n {
	case 0:
		return 0
	case 1:
		return 4 // 0x2a
	}
	return 3*n - 1
}

func (e *Encoder) computeMaxEntryLen() int {
	k := fieldLen(e.s.KeySize)
	switch {
	case e.s.Keyless():
		return fieldLen(e.s.ValueSize) + 1
	case e.s.FdMap():
		return k + 2 + 10 + 1
	case e.s.Percpu():
		n := k + 4 + 2 // ": {\n" and "}\n"
		for _, l := range e.labels {
			n += len(l) + fieldLen(e.s.ValueSize) + 1
		}
		return n
	}
	return k + 2 + fieldLen(e.s.ValueSize) + 1
}

// MaxEntryLen is the largest number of bytes AppendEntry writes for one element. AppendOp
// writes at most len("replace ") more.
func (e *Encoder) MaxEntryLen() int { return e.maxLine }

// AppendHeader appends the comment line that starts a listing, e.g.
//
//	# hash name counters key 4 value 8 max_entries 1024
//
// For a map that cannot be listed (Shape.Listable) the line also says why, and it is the
// whole listing. Input ignores it like any '#' line.
func (e *Encoder) AppendHeader(dst []byte) []byte {
	s := e.s
	dst = append(dst, "# "...)
	dst = append(dst, s.Type.String()...)
	if s.Name != "" {
		dst = append(dst, " name "...)
		dst = append(dst, s.Name...)
	}
	if !s.Keyless() {
		dst = append(dst, " key "...)
		dst = strconv.AppendInt(dst, int64(s.KeySize), 10)
	}
	dst = append(dst, " value "...)
	dst = strconv.AppendInt(dst, int64(s.ValueSize), 10)
	dst = append(dst, " max_entries "...)
	dst = strconv.AppendUint(dst, uint64(s.MaxEntries), 10)
	if s.Percpu() {
		dst = append(dst, " cpus "...)
		dst = strconv.AppendInt(dst, int64(e.ncpu), 10)
	}
	if ok, why := s.Listable(); !ok {
		dst = append(dst, ": cannot be listed: "...)
		dst = append(dst, why...)
	} else if s.FdMap() {
		if s.Type == objects.MapTypeProgArray {
			dst = append(dst, " (values are program ids)"...)
		} else {
			dst = append(dst, " (values are map ids)"...)
		}
	}
	return append(dst, '\n')
}

// AppendEntry appends the text of one element: key is KeySize bytes (ignored for keyless
// maps), value is ValueBufSize bytes as bpf(2) returns it (per-CPU: every possible CPU's slot;
// fd maps: the object's u32 id). It panics if key or value is shorter.
func (e *Encoder) AppendEntry(dst []byte, key, value []byte) []byte {
	dst = slices.Grow(dst, e.maxLine)
	switch {
	case e.s.Keyless():
		dst = appendField(dst, value[:e.s.ValueSize])
		return append(dst, '\n')
	case e.s.FdMap():
		dst = appendField(dst, key[:e.s.KeySize])
		dst = append(dst, ':', ' ')
		dst = strconv.AppendUint(dst, uint64(binary.LittleEndian.Uint32(value[:4])), 10)
		return append(dst, '\n')
	case e.s.Percpu():
		dst = appendField(dst, key[:e.s.KeySize])
		dst = append(dst, ": {\n"...)
		_ = value[:e.vb]
		for cpu, l := range e.labels {
			dst = append(dst, l...)
			off := cpu * e.stride
			dst = appendField(dst, value[off:off+e.s.ValueSize])
			dst = append(dst, '\n')
		}
		return append(dst, "}\n"...)
	}
	if e.s.ValueSize == 0 {
		dst = appendField(dst, key[:e.s.KeySize])
		return append(dst, ':', '\n')
	}
	if e.s.KeySize < 2 || e.s.ValueSize < 2 {
		dst = appendField(dst, key[:e.s.KeySize])
		dst = append(dst, ':', ' ')
		dst = appendField(dst, value[:e.s.ValueSize])
		return append(dst, '\n')
	}
	// The common case, written in place: "kk kk: vv vv\n" is 3 bytes per byte, plus one.
	n := len(dst)
	dst = dst[:n+3*(e.s.KeySize+e.s.ValueSize)+1]
	out := dst[n:]
	putHex(out, key[:e.s.KeySize])
	o := 3 * e.s.KeySize
	out[o-1] = ':'
	out[o] = ' '
	putHex(out[o+1:], value[:e.s.ValueSize])
	out[len(out)-1] = '\n'
	return dst
}

// putHex writes b as "xx " per byte into out (3*len(b) bytes).
func putHex(out []byte, b []byte) {
	out = out[:3*len(b)]
	for i, c := range b {
		o := out[3*i : 3*i+3 : 3*i+3]
		o[0] = hexDigits[c>>4]
		o[1] = hexDigits[c&15]
		o[2] = ' '
	}
}

// AppendOp appends a line (or per-CPU block) that parses back to op: the entry form for
// updates, prefixed with insert or replace for those, "delete KEY", and for pushes the value
// alone or "overwrite VALUE" (BPF_EXIST).
func (e *Encoder) AppendOp(dst []byte, op Op) []byte {
	switch op.Kind {
	case OpDelete:
		dst = append(dst, e.verbs[OpDelete]...)
		dst = appendField(dst, op.Key[:e.s.KeySize])
		return append(dst, '\n')
	case OpPush:
		if op.Flags == objects.Exist {
			dst = append(dst, "overwrite "...)
		}
		return e.AppendEntry(dst, nil, op.Value)
	case OpInsert, OpReplace:
		dst = append(dst, e.verbs[op.Kind]...)
	}
	return e.AppendEntry(dst, op.Key, op.Value)
}

// appendField appends b as space-separated two-digit hex bytes in memory order, or as 0x2a
// when b is a single byte (a lone token is always read back as an integer).
func appendField(dst []byte, b []byte) []byte {
	switch len(b) {
	case 0:
		return dst
	case 1:
		return append(dst, '0', 'x', hexDigits[b[0]>>4], hexDigits[b[0]&15])
	}
	n := len(dst)
	need := 3*len(b) - 1
	dst = slices.Grow(dst, need)[:n+need]
	out := dst[n:]
	for i, c := range b[:len(b)-1] {
		o := out[3*i : 3*i+3]
		o[0] = hexDigits[c>>4]
		o[1] = hexDigits[c&15]
		o[2] = ' '
	}
	c := b[len(b)-1]
	out[need-2] = hexDigits[c>>4]
	out[need-1] = hexDigits[c&15]
	return dst
}

// Writer streams a listing to an io.Writer through a buffer of bufSize bytes.
type Writer struct {
	enc *Encoder
	w   io.Writer
	buf []byte
	err error
}

const bufSize = 64 << 10

// NewWriter returns a Writer formatting maps of shape s onto w.
func NewWriter(w io.Writer, s Shape) *Writer {
	return &Writer{enc: NewEncoder(s), w: w, buf: make([]byte, 0, bufSize)}
}

// Header writes the header line (Encoder.AppendHeader).
func (w *Writer) Header() error {
	w.buf = w.enc.AppendHeader(w.buf)
	return w.maybeFlush()
}

// Entry writes one element (Encoder.AppendEntry).
func (w *Writer) Entry(key, value []byte) error {
	w.buf = w.enc.AppendEntry(w.buf, key, value)
	return w.maybeFlush()
}

func (w *Writer) maybeFlush() error {
	if w.err != nil {
		return w.err
	}
	if len(w.buf) >= bufSize-w.enc.maxLine {
		return w.Flush()
	}
	return nil
}

// Flush writes out what is buffered. After a write error every call returns that error.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	if len(w.buf) > 0 {
		_, w.err = w.w.Write(w.buf)
		w.buf = w.buf[:0]
	}
	return w.err
}
