package fsnode

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/bpffs-fuse/bpffs-fuse/engine"
	"github.com/bpffs-fuse/bpffs-fuse/fsnode/text"
	"github.com/bpffs-fuse/bpffs-fuse/objects"
	"github.com/bpffs-fuse/bpffs-fuse/pinning"
)

func asErrno(err error, e *unix.Errno) bool { return errors.As(err, e) }

// chunk is how many elements one read step fetches from the map: enough to amortize the
// batch call, small enough to keep a handle's memory bounded (a few hundred KiB).
const chunk = 4096

// mapHandle is an open map file: an fd of the daemon's process opened with the file's
// access mode, so that the engine applies the kernel's checks (frozen maps, read-only maps)
// to every write, plus the read and write state of this open file description.
type mapHandle struct {
	fs   *FS
	node *pinning.Node
	m    *objects.Map
	fd   int
	enc  *text.Encoder

	rmu sync.Mutex
	rd  reader

	wmu      sync.Mutex
	parser   *text.Parser
	carry    []byte // the bytes the parser carries (a mirror, to quote failing lines)
	nextLine int    // number of the first line in carry
}

var (
	_ = (fs.FileReader)((*mapHandle)(nil))
	_ = (fs.FileWriter)((*mapHandle)(nil))
	_ = (fs.FileFlusher)((*mapHandle)(nil))
	_ = (fs.FileReleaser)((*mapHandle)(nil))
)

// newMapHandle opens m for a FUSE open with flags. The caller's user reference on m goes to
// the new fd (or is dropped on error).
func newMapHandle(f *FS, node *pinning.Node, m *objects.Map, flags uint32) (*mapHandle, error) {
	var ff uint32
	switch flags & syscall.O_ACCMODE {
	case syscall.O_RDONLY:
		ff = objects.FRdonly
	case syscall.O_WRONLY:
		ff = objects.FWronly
	}
	fd, err := f.proc.InstallFD(m, ff)
	if err != nil {
		m.PutUser()
		return nil, err
	}
	s := text.ShapeOf(m)
	h := &mapHandle{fs: f, node: node, m: m, fd: fd, enc: text.NewEncoder(s), nextLine: 1}
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY {
		h.parser = text.NewParser(s)
	}
	h.rd.h = h
	return h, nil
}

// Release implements fs.FileReleaser: closes the handle's fd.
func (h *mapHandle) Release(ctx context.Context) syscall.Errno {
	h.wmu.Lock()
	if h.parser != nil && h.parser.Pending() > 0 {
		// Flush normally ran at close(2); this covers a release without one.
		h.flushLocked()
	}
	h.wmu.Unlock()
	h.rmu.Lock()
	h.rd.reset()
	h.rmu.Unlock()
	h.fs.proc.Close(h.fd)
	return 0
}

// Read implements fs.FileReader: the listing is generated as it is read, a chunk of
// elements at a time, so memory stays bounded for any map size. A read at offset 0 after the
// reader has moved on starts a new listing (fs/seq_file.c:seq_read → traverse); a read at any
// other unexpected offset regenerates the listing up to that offset.
func (h *mapHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h.rmu.Lock()
	defer h.rmu.Unlock()
	r := &h.rd
	if off < r.bufOff+int64(r.pos) || (off == 0 && r.started) {
		r.reset()
	}
	for {
		// Skip what lies before off (only a seek forward leaves anything here).
		if skip := off - r.bufOff - int64(r.pos); skip > 0 {
			if skip >= int64(len(r.buf)-r.pos) {
				r.bufOff += int64(len(r.buf))
				r.buf, r.pos = r.buf[:0], 0
			} else {
				r.pos += int(skip)
			}
		}
		if len(r.buf)-r.pos >= len(dest) || r.done {
			break
		}
		// Move the unread tail to the front before appending more.
		if r.pos > 0 {
			n := copy(r.buf, r.buf[r.pos:])
			r.bufOff += int64(r.pos)
			r.buf, r.pos = r.buf[:n], 0
		}
		if err := r.fill(); err != nil {
			return nil, errno(err)
		}
	}
	n := 0
	if off == r.bufOff+int64(r.pos) {
		n = copy(dest, r.buf[r.pos:])
		r.pos += n
	}
	h.fs.tree.Touch(h.node, true, false)
	return fuse.ReadResultData(dest[:n]), 0
}

// reader generates a listing.
type reader struct {
	h       *mapHandle
	buf     []byte // generated text; buf[0] is at file offset bufOff
	bufOff  int64
	pos     int // buf[:pos] has been read
	started bool
	done    bool

	// iteration state
	queued   bool // queue or stack: values[:count*valueLen] is the snapshot, next the next to list
	next     int
	batch    bool   // use MapLookupBatch
	token    []byte // batch in/out token
	haveKey  bool   // prevKey holds the last key listed (get_next_key walk)
	prevKey  []byte
	keys     []byte
	values   []byte
	count    int
	ncount   uint32
	valueLen int
}

func (r *reader) reset() {
	*r = reader{h: r.h, buf: r.buf[:0]}
}

// fill appends the next part of the listing to buf.
func (r *reader) fill() error {
	h := r.h
	m := h.m
	if !r.started {
		r.started = true
		r.buf = h.enc.AppendHeader(r.buf)
		if ok, _ := h.enc.Shape().Listable(); !ok {
			r.done = true
			return nil
		}
		r.valueLen = m.ValueBufSize()
		if m.Keyless() {
			// Queue and stack: listed oldest first without popping (objects.Map.Values).
			// The values are copied out under the map's lock in one go, so the listing is one
			// consistent state of the queue (its raw size, at most max_entries × value_size,
			// not its text), and formatted a chunk per fill like the other types.
			r.queued = true
			r.values = r.values[:0]
			return m.Values(func(v []byte) bool {
				r.values = append(r.values, v...)
				r.count++
				return true
			})
		}
		r.prevKey = make([]byte, m.KeySize)
		r.batch = !m.IsFdMap()
		r.count = chunk
		return nil
	}
	if r.queued {
		for i := 0; i < chunk && r.next < r.count; i++ {
			r.buf = h.enc.AppendEntry(r.buf, nil, r.values[r.next*r.valueLen:(r.next+1)*r.valueLen])
			r.next++
		}
		if r.next == r.count {
			r.done = true
			r.values = nil
		}
		return nil
	}
	if r.batch {
		first := r.token == nil
		err := r.fillBatch()
		if first && (errors.Is(err, unix.EINVAL) || errors.Is(err, objects.ENOTSUPP) || errors.Is(err, unix.EOPNOTSUPP)) {
			// The type has no batch ops: walk with get_next_key.
			r.batch = false
			return nil
		}
		return err
	}
	return r.fillNextKey()
}

func (r *reader) fillBatch() error {
	h := r.h
	ks := int(h.m.KeySize)
	for {
		if cap(r.keys) < r.count*ks {
			r.keys = make([]byte, r.count*ks)
			r.values = make([]byte, r.count*r.valueLen)
		}
		out := make([]byte, max(ks, 4))
		a := &engine.MapBatchAttr{InBatch: r.token, OutBatch: out, Keys: r.keys[:r.count*ks],
			Values: r.values[:r.count*r.valueLen], Count: uint32(r.count)}
		err := h.fs.proc.MapLookupBatch(h.fd, a)
		if errors.Is(err, unix.ENOSPC) && a.Count == 0 {
			r.count *= 2 // a bucket larger than the batch
			continue
		}
		for i := 0; i < int(a.Count); i++ {
			r.buf = h.enc.AppendEntry(r.buf, r.keys[i*ks:(i+1)*ks], r.values[i*r.valueLen:(i+1)*r.valueLen])
		}
		if errors.Is(err, unix.ENOENT) {
			r.done = true
			return nil
		}
		if err != nil {
			return err
		}
		r.token = out
		return nil
	}
}

func (r *reader) fillNextKey() error {
	h := r.h
	ks := int(h.m.KeySize)
	next := make([]byte, ks)
	val := make([]byte, r.valueLen)
	for i := 0; i < chunk; i++ {
		var prev []byte
		if r.haveKey {
			prev = r.prevKey
		}
		err := h.fs.proc.MapGetNextKey(h.fd, prev, next)
		if errors.Is(err, unix.ENOENT) {
			r.done = true
			return nil
		}
		if err != nil {
			return err
		}
		copy(r.prevKey, next)
		r.haveKey = true
		// kernel/bpf/inode.c:map_seq_show: an element that vanished meanwhile is skipped.
		if err := h.fs.proc.MapLookupElem(h.fd, next, val, 0); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			return err
		}
		r.buf = h.enc.AppendEntry(r.buf, next, val)
	}
	return nil
}

// Write implements fs.FileWriter. Each write(2) is parsed whole first (text.Parser.Feed); a
// syntax or size error fails it with EINVAL and applies nothing. Then its lines apply at once
// and in order through the engine, so a long-running writer updates the map live; the first
// line that fails fails the write with its errno (EEXIST, ENOENT, E2BIG, EPERM, ...) and
// the lines after it are not applied. A line cut by the end of the write is kept for the
// next one. The offset is ignored: the file is a command stream, as with O_APPEND.
func (h *mapHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	h.wmu.Lock()
	defer h.wmu.Unlock()
	if h.parser == nil {
		return 0, syscall.EBADF
	}
	ops, err := h.parser.Feed(data)
	if err != nil {
		h.fail(err)
		return 0, errno(err)
	}
	old := h.carry
	first := h.nextLine
	h.advance(data)
	if err := h.apply(ops); err != nil {
		h.failOp(err, first, old, data)
		return 0, errno(err)
	}
	return uint32(len(data)), 0
}

// Flush implements fs.FileFlusher: close(2) completes a last line without a newline.
func (h *mapHandle) Flush(ctx context.Context) syscall.Errno {
	h.wmu.Lock()
	defer h.wmu.Unlock()
	if h.parser == nil || h.parser.Pending() == 0 {
		return 0
	}
	return errno(h.flushLocked())
}

func (h *mapHandle) flushLocked() error {
	old := h.carry
	first := h.nextLine
	ops, err := h.parser.Flush()
	h.carry = nil
	h.nextLine = first + bytes.Count(old, []byte{'\n'}) + 1
	if err != nil {
		h.fail(err)
		return err
	}
	if err := h.apply(ops); err != nil {
		h.failOp(err, first, old, nil)
		return err
	}
	return nil
}

// advance updates the mirror of the parser's carried text after a successful Feed.
func (h *mapHandle) advance(data []byte) {
	pending := h.parser.Pending()
	consumedOld := len(h.carry)
	var rest []byte
	if pending <= len(data) {
		rest = append([]byte(nil), data[len(data)-pending:]...)
		consumedOld = len(h.carry)
	} else {
		keep := pending - len(data)
		rest = append(append([]byte(nil), h.carry[len(h.carry)-keep:]...), data...)
		consumedOld = len(h.carry) - keep
	}
	nl := bytes.Count(h.carry[:consumedOld], []byte{'\n'})
	if pending <= len(data) {
		nl += bytes.Count(data[:len(data)-pending], []byte{'\n'})
	}
	h.nextLine += nl
	h.carry = rest
}

// apply applies ops in order and stops at the first error, which carries the op's line.
func (h *mapHandle) apply(ops []text.Op) error {
	p := h.fs.proc
	fdMap := h.m.IsFdMap()
	for i := range ops {
		op := &ops[i]
		var err error
		switch op.Kind {
		case text.OpDelete:
			err = p.MapDeleteElem(h.fd, op.Key)
		default:
			if fdMap {
				err = h.updateFdMap(op)
			} else {
				err = p.MapUpdateElem(h.fd, op.Key, op.Value, op.Flags)
			}
		}
		if err != nil {
			return &opError{line: op.Line, err: err}
		}
	}
	if len(ops) > 0 {
		h.fs.tree.Touch(h.node, false, true)
	}
	return nil
}

// updateFdMap writes an fd map's slot: the text holds the object's id, bpf(2) takes an fd,
// so the id is opened as an fd of the daemon's process for the update (what a user would do
// with BPF_MAP_GET_FD_BY_ID) and closed afterwards. A missing id is EBADF, as a bad fd is.
func (h *mapHandle) updateFdMap(op *text.Op) error {
	id := binary.LittleEndian.Uint32(op.Value)
	obj, err := h.fs.eng.ObjectByID(id)
	if err != nil {
		return err
	}
	obj.IncUser()
	obj.Put()
	fd, err := h.fs.proc.InstallFD(obj, 0)
	if err != nil {
		obj.PutUser()
		return err
	}
	defer h.fs.proc.Close(fd)
	var v [4]byte
	binary.LittleEndian.PutUint32(v[:], uint32(fd))
	return h.fs.proc.MapUpdateElem(h.fd, op.Key, v[:], op.Flags)
}

type opError struct {
	line int
	err  error
}

func (e *opError) Error() string { return e.err.Error() }
func (e *opError) Unwrap() error { return e.err }

// lineText returns line number n from text whose first line is number first.
func lineText(text []byte, first, n int) string {
	for i := first; i < n; i++ {
		j := bytes.IndexByte(text, '\n')
		if j < 0 {
			return ""
		}
		text = text[j+1:]
	}
	if j := bytes.IndexByte(text, '\n'); j >= 0 {
		text = text[:j]
	}
	if len(text) > 200 {
		text = text[:200]
	}
	return string(bytes.TrimRight(text, "\r"))
}

// fail records a syntax error (it names its line itself).
func (h *mapHandle) fail(err error) {
	h.record(err.Error())
}

// failOp records an apply error with the failing line's number and text.
func (h *mapHandle) failOp(err error, first int, carry, data []byte) {
	var oe *opError
	if !errors.As(err, &oe) {
		h.record(err.Error())
		return
	}
	all := append(append([]byte(nil), carry...), data...)
	msg := "line " + strconv.Itoa(oe.line) + ": " + strconv.Quote(lineText(all, first, oe.line)) + ": " + describe(oe.err)
	h.record(msg)
}

// describe names the errno of err with the engine's context.
func describe(err error) string {
	var e unix.Errno
	if errors.As(err, &e) {
		return fmt.Sprintf("%v (%s)", err, unix.ErrnoName(e))
	}
	return err.Error()
}

func (h *mapHandle) record(msg string) {
	h.node.SetNote(msg)
	h.fs.log.Warn("map write failed", "map_id", h.m.ID(), "map", h.m.Name, "ino", h.node.Ino(), "error", msg)
}

// bytesHandle serves fixed content generated at open (the preload files).
type bytesHandle struct {
	data []byte
}

var _ = (fs.FileReader)((*bytesHandle)(nil))

// Read implements fs.FileReader.
func (b *bytesHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if off >= int64(len(b.data)) {
		return fuse.ReadResultData(nil), 0
	}
	return fuse.ReadResultData(b.data[off:min(int64(len(b.data)), off+int64(len(dest)))]), 0
}

// preloadText renders maps.debug or progs.debug as the kernel's preloaded iterators print
// them (kernel/bpf/preload/iterators/iterators.bpf.c: dump_bpf_map, dump_bpf_prog).
func preloadText(eng *engine.Engine, name string) []byte {
	var b []byte
	switch name {
	case "maps.debug":
		b = append(b, "  id name             max_entries  cur_entries\n"...)
		eng.Maps(func(m *objects.Map) bool {
			// bpf_map_sum_elem_count: only hash maps count their elements.
			var cur int64
			switch m.Type {
			case objects.MapTypeHash, objects.MapTypeLRUHash, objects.MapTypePercpuHash,
				objects.MapTypeLRUPercpuHash, objects.MapTypeHashOfMaps:
				cur = int64(m.Len())
			}
			b = fmt.Appendf(b, "%4d %-16s  %10d   %10d\n", m.ID(), m.Name, m.MaxEntries, cur)
			return true
		})
	case "progs.debug":
		// No programs exist yet.
		b = append(b, "  id name             attached\n"...)
	}
	return b
}
