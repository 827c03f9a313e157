package control

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/bpffs-fuse/bpffs-fuse/engine"
)

// Client is one connection to a daemon: a remote engine.Process. Its methods have the names
// and signatures of engine.Process's, and return the daemon's errors as *Error values that
// wrap the unix.Errno (errors.Is works). A Client is safe for concurrent use; concurrent calls
// run concurrently in the daemon.
//
// Transport: there is no reader goroutine. A caller waiting for its response reads frames
// itself when no other caller is reading (and hands frames for other requests to their
// callers), so an uncontended call costs one write and one read on the calling goroutine,
// with no handoff between goroutines.
type Client struct {
	conn    *os.File
	ncpu    int
	version uint32 // the protocol version of the connection

	wmu      sync.Mutex
	wb       []byte
	deferred []byte // no-reply frames not sent yet (CloseNoWait)

	nextID  atomic.Uint32
	mu      sync.Mutex
	cond    sync.Cond
	pending map[uint32]*waiter
	reading bool // a caller is reading frames
	r       *bufio.Reader
	err     error // set when the connection is gone
	closed  bool  // Exit was called
	fdFree  bool  // the descriptor has been closed
}

type waiter struct {
	done bool
	f    frame
}

// ErrClosed wraps the error calls return after the connection is gone.
var ErrClosed = errors.New("control: connection closed")

// Dial connects to the daemon's control socket at socketPath and performs the handshake. A
// caller the daemon's policy refuses gets an error wrapping EPERM.
func Dial(socketPath string) (*Client, error) {
	c, err := dialVersion(socketPath, Version)
	var ce *Error
	if errors.As(err, &ce) && ce.Errno == unix.EPROTONOSUPPORT && ce.version >= 1 && ce.version < Version {
		// An older daemon: speak its version (Vector then runs its ops one by one).
		return dialVersion(socketPath, ce.version)
	}
	return c, err
}

func dialVersion(socketPath string, version uint32) (*Client, error) {
	conn, err := dialUnix(socketPath)
	if err != nil {
		var en unix.Errno
		if errors.As(err, &en) {
			return nil, fmt.Errorf("connect %s: %w", socketPath, en)
		}
		return nil, err
	}
	hello := binary.LittleEndian.AppendUint32([]byte(Magic), version)
	if _, err := conn.Write(hello); err != nil {
		conn.Close()
		return nil, fmt.Errorf("control handshake: %w", err)
	}
	var w [welcomeLen]byte
	if _, err := io.ReadFull(conn, w[:]); err != nil {
		conn.Close()
		return nil, fmt.Errorf("control handshake: %v: %w", err, unix.ECONNRESET)
	}
	if !bytes.Equal(w[:len(Magic)], []byte(Magic)) {
		conn.Close()
		return nil, fmt.Errorf("control handshake: %s is not a bpffs-fuse control socket: %w", socketPath, unix.EPROTO)
	}
	if st := unix.Errno(binary.LittleEndian.Uint32(w[len(Magic)+4:])); st != 0 {
		conn.Close()
		v := binary.LittleEndian.Uint32(w[len(Magic):])
		if st == unix.EPERM {
			return nil, &Error{Msg: "control: the daemon refused this user (not root, the mount's owner or in its control group)", Errno: st}
		}
		return nil, &Error{Msg: fmt.Sprintf("control: daemon speaks protocol %d, we speak %d", v, version), Errno: st, version: v}
	}
	c := &Client{
		conn:    conn,
		version: binary.LittleEndian.Uint32(w[len(Magic):]),
		ncpu:    int(binary.LittleEndian.Uint32(w[len(Magic)+8:])),
		pending: map[uint32]*waiter{},
		r:       bufio.NewReaderSize(conn, 8<<10), // large frames bypass the buffer
	}
	c.cond.L = &c.mu
	return c, nil
}

// NumPossibleCPUs is the daemon engine's num_possible_cpus(): the slots in a per-CPU value.
func (c *Client) NumPossibleCPUs() int { return c.ncpu }

// Exit closes the connection; the daemon closes every fd the client still has open, as
// process exit does (engine.Process.Exit). Calls in progress fail with ErrClosed.
func (c *Client) Exit() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	if c.err == nil {
		c.err = fmt.Errorf("%w: %w", ErrClosed, unix.ECONNRESET)
	}
	c.conn.Close()
	c.cond.Broadcast()
}

// fail records the connection's end. Called with mu held.
func (c *Client) fail(err error) {
	if c.err == nil {
		var ce *Error
		if errors.As(err, &ce) {
			c.err = fmt.Errorf("%w: %w", ErrClosed, ce)
		} else if err == io.EOF {
			c.err = fmt.Errorf("%w: %w", ErrClosed, unix.ECONNRESET)
		} else {
			c.err = fmt.Errorf("%w: %v: %w", ErrClosed, err, unix.ECONNRESET)
		}
	}
	c.conn.Close()
	c.cond.Broadcast()
}

// await waits for w's response, reading frames itself when nobody else is. Called and
// returns with mu held.
func (c *Client) await(w *waiter) {
	for !w.done && c.err == nil {
		if c.reading {
			c.cond.Wait()
			continue
		}
		c.reading = true
		c.mu.Unlock()
		f, err := readFrame(c.r)
		c.mu.Lock()
		c.reading = false
		switch {
		case err != nil:
			c.fail(err)
		case f.op == OpError && f.id == 0:
			d := &dec{b: f.payload}
			en := unix.Errno(d.u32())
			c.fail(&Error{Msg: d.str(), Errno: en})
		default:
			if pw := c.pending[f.id]; pw != nil {
				delete(c.pending, f.id)
				pw.f, pw.done = f, true
			}
		}
		c.cond.Broadcast()
	}
}

// call sends one request and waits for its response. It returns the decoder positioned after
// the status and the daemon's error (nil on success).
func (c *Client) call(op uint16, payload func(*enc)) (*dec, error) {
	id := c.nextID.Add(1)
	if id == 0 {
		id = c.nextID.Add(1)
	}
	w := &waiter{}
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return nil, err
	}
	c.pending[id] = w
	c.mu.Unlock()

	c.wmu.Lock()
	// Deferred no-reply frames (CloseNoWait) go out in the same write, ahead of this one.
	start := len(c.deferred)
	e := enc{b: appendFrameHeader(append(c.wb[:0], c.deferred...), id, op)}
	payload(&e)
	var err error
	if n := len(e.b) - start - 4; n > MaxFrame {
		err = fmt.Errorf("control: request of %d bytes exceeds the %d-byte frame limit: %w", n, MaxFrame, unix.E2BIG)
	} else {
		binary.LittleEndian.PutUint32(e.b[start:], uint32(n))
		_, err = c.conn.Write(e.b)
		c.deferred = c.deferred[:0]
	}
	if cap(e.b) <= 1<<20 {
		c.wb = e.b
	}
	c.wmu.Unlock()

	c.mu.Lock()
	if err != nil {
		delete(c.pending, id)
		if !errors.Is(err, unix.E2BIG) {
			c.fail(err)
			err = c.err
		}
		c.mu.Unlock()
		return nil, err
	}
	c.await(w)
	if !w.done {
		delete(c.pending, id)
		err := c.err
		c.mu.Unlock()
		return nil, err
	}
	c.mu.Unlock()
	d := &dec{b: w.f.payload}
	en := unix.Errno(d.u32())
	msg := d.str()
	if d.err != nil {
		return nil, fmt.Errorf("control: short response: %w", unix.EBADMSG)
	}
	if en != 0 {
		return d, &Error{Msg: msg, Errno: en}
	}
	return d, nil
}

// finish checks that a successful response decoded completely.
func finish(d *dec, err error) error {
	if err != nil {
		return err
	}
	if derr := d.done(); derr != nil {
		return fmt.Errorf("control: malformed response: %w", unix.EBADMSG)
	}
	return nil
}

// MapCreate is BPF_MAP_CREATE (engine.Process.MapCreate) in the daemon.
func (c *Client) MapCreate(a *engine.MapCreateAttr) (int, error) {
	d, err := c.call(OpMapCreate, func(e *enc) { encodeCreateAttr(e, a) })
	if err != nil {
		return -1, err
	}
	fd := int(d.u32())
	return fd, finish(d, nil)
}

// MapLookupElem is BPF_MAP_LOOKUP_ELEM (engine.Process.MapLookupElem): value receives the
// element (its contents are sent too: bloom_filter lookups read it).
func (c *Client) MapLookupElem(fd int, key, value []byte, flags uint64) error {
	return c.lookup(OpMapLookupElem, fd, key, value, flags)
}

// MapLookupAndDeleteElem is BPF_MAP_LOOKUP_AND_DELETE_ELEM (engine.Process.MapLookupAndDeleteElem).
func (c *Client) MapLookupAndDeleteElem(fd int, key, value []byte, flags uint64) error {
	return c.lookup(OpMapLookupAndDeleteElem, fd, key, value, flags)
}

func (c *Client) lookup(op uint16, fd int, key, value []byte, flags uint64) error {
	d, err := c.call(op, func(e *enc) {
		e.u32(uint32(fd))
		e.bytes(key)
		e.bytes(value)
		e.u64(flags)
	})
	if err != nil {
		return err
	}
	copy(value, d.bytes())
	return finish(d, nil)
}

// MapUpdateElem is BPF_MAP_UPDATE_ELEM (engine.Process.MapUpdateElem).
func (c *Client) MapUpdateElem(fd int, key, value []byte, flags uint64) error {
	d, err := c.call(OpMapUpdateElem, func(e *enc) {
		e.u32(uint32(fd))
		e.bytes(key)
		e.bytes(value)
		e.u64(flags)
	})
	return finish(d, err)
}

// MapDeleteElem is BPF_MAP_DELETE_ELEM (engine.Process.MapDeleteElem).
func (c *Client) MapDeleteElem(fd int, key []byte) error {
	d, err := c.call(OpMapDeleteElem, func(e *enc) {
		e.u32(uint32(fd))
		e.bytes(key)
	})
	return finish(d, err)
}

// MapGetNextKey is BPF_MAP_GET_NEXT_KEY (engine.Process.MapGetNextKey); a nil key asks for
// the first key.
func (c *Client) MapGetNextKey(fd int, key, next []byte) error {
	d, err := c.call(OpMapGetNextKey, func(e *enc) {
		e.u32(uint32(fd))
		e.bytes(key)
		e.u32(uint32(len(next)))
	})
	if err != nil {
		return err
	}
	copy(next, d.bytes())
	return finish(d, nil)
}

// MapFreeze is BPF_MAP_FREEZE (engine.Process.MapFreeze).
func (c *Client) MapFreeze(fd int) error {
	d, err := c.call(OpMapFreeze, func(e *enc) { e.u32(uint32(fd)) })
	return finish(d, err)
}

func (c *Client) batch(op uint16, fd int, a *engine.MapBatchAttr) error {
	d, err := c.call(op, func(e *enc) {
		e.u32(uint32(fd))
		encodeBatchIn(e, a)
	})
	if d == nil {
		return err
	}
	a.Count = d.u32()
	copy(a.OutBatch, d.bytes())
	copy(a.Keys, d.bytes())
	copy(a.Values, d.bytes())
	if derr := d.done(); derr != nil && err == nil {
		return fmt.Errorf("control: malformed response: %w", unix.EBADMSG)
	}
	return err
}

// MapLookupBatch is BPF_MAP_LOOKUP_BATCH (engine.Process.MapLookupBatch).
func (c *Client) MapLookupBatch(fd int, a *engine.MapBatchAttr) error {
	return c.batch(OpMapLookupBatch, fd, a)
}

// MapLookupAndDeleteBatch is BPF_MAP_LOOKUP_AND_DELETE_BATCH.
func (c *Client) MapLookupAndDeleteBatch(fd int, a *engine.MapBatchAttr) error {
	return c.batch(OpMapLookupAndDeleteBatch, fd, a)
}

// MapUpdateBatch is BPF_MAP_UPDATE_BATCH (engine.Process.MapUpdateBatch).
func (c *Client) MapUpdateBatch(fd int, a *engine.MapBatchAttr) error {
	return c.batch(OpMapUpdateBatch, fd, a)
}

// MapDeleteBatch is BPF_MAP_DELETE_BATCH (engine.Process.MapDeleteBatch).
func (c *Client) MapDeleteBatch(fd int, a *engine.MapBatchAttr) error {
	return c.batch(OpMapDeleteBatch, fd, a)
}

// ObjPin is BPF_OBJ_PIN (engine.Process.ObjPin): path is absolute and inside one of the
// daemon's mounts.
func (c *Client) ObjPin(fd int, path string, fileFlags uint32) error {
	d, err := c.call(OpObjPin, func(e *enc) {
		e.u32(uint32(fd))
		e.str(path)
		e.u32(fileFlags)
	})
	return finish(d, err)
}

// ObjGet is BPF_OBJ_GET (engine.Process.ObjGet).
func (c *Client) ObjGet(path string, fileFlags uint32) (int, error) {
	d, err := c.call(OpObjGet, func(e *enc) {
		e.str(path)
		e.u32(fileFlags)
	})
	if err != nil {
		return -1, err
	}
	fd := int(d.u32())
	return fd, finish(d, nil)
}

// MapGetNextID is BPF_MAP_GET_NEXT_ID (engine.Process.MapGetNextID).
func (c *Client) MapGetNextID(startID uint32) (uint32, error) {
	d, err := c.call(OpMapGetNextID, func(e *enc) { e.u32(startID) })
	if err != nil {
		return 0, err
	}
	id := d.u32()
	return id, finish(d, nil)
}

// MapGetFDByID is BPF_MAP_GET_FD_BY_ID (engine.Process.MapGetFDByID).
func (c *Client) MapGetFDByID(id uint32, openFlags uint32) (int, error) {
	d, err := c.call(OpMapGetFDByID, func(e *enc) {
		e.u32(id)
		e.u32(openFlags)
	})
	if err != nil {
		return -1, err
	}
	fd := int(d.u32())
	return fd, finish(d, nil)
}

// MapGetInfoByFD is BPF_OBJ_GET_INFO_BY_FD on a map fd (engine.Process.MapGetInfoByFD).
func (c *Client) MapGetInfoByFD(fd int) (engine.MapInfo, error) {
	d, err := c.call(OpObjGetInfoByFD, func(e *enc) { e.u32(uint32(fd)) })
	if err != nil {
		return engine.MapInfo{}, err
	}
	info := decodeInfo(d)
	return info, finish(d, nil)
}

// Close is close(2) of fd in the daemon (engine.Process.Close). To close the connection,
// use Exit.
func (c *Client) Close(fd int) error {
	d, err := c.call(OpClose, func(e *enc) { e.u32(uint32(fd)) })
	return finish(d, err)
}

// CloseNoWait closes fd in the daemon without waiting for the outcome (the request carries
// FlagNoReply): for descriptors a caller is done with, it saves a round trip. The request is
// sent together with the client's next request (or once several have accumulated); Exit
// closes the descriptor anyway. Errors are not reported.
func (c *Client) CloseNoWait(fd int) error {
	c.mu.Lock()
	err := c.err
	c.mu.Unlock()
	if err != nil {
		return err
	}
	id := c.nextID.Add(1)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	start := len(c.deferred)
	c.deferred = appendFrameHeaderFlags(c.deferred, id, OpClose, FlagNoReply)
	c.deferred = binary.LittleEndian.AppendUint32(c.deferred, uint32(fd))
	binary.LittleEndian.PutUint32(c.deferred[start:], uint32(len(c.deferred)-start-4))
	if len(c.deferred) >= 4096 {
		_, err = c.conn.Write(c.deferred)
		c.deferred = c.deferred[:0]
		if err != nil {
			c.mu.Lock()
			c.fail(err)
			err = c.err
			c.mu.Unlock()
		}
	}
	return err
}

// Dup is dup(2) of fd in the daemon (engine.Process.Dup).
func (c *Client) Dup(fd int) (int, error) {
	d, err := c.call(OpDup, func(e *enc) { e.u32(uint32(fd)) })
	if err != nil {
		return -1, err
	}
	nfd := int(d.u32())
	return nfd, finish(d, nil)
}

// ProtocolVersion is the wire protocol version the connection speaks (see the package doc).
func (c *Client) ProtocolVersion() int { return int(c.version) }

// VecOp is one element operation of a Vector call.
type VecOp struct {
	// Op is OpMapLookupElem, OpMapLookupAndDeleteElem, OpMapUpdateElem or OpMapDeleteElem.
	Op uint16
	FD int
	// Key is the element's key (nil for maps without keys: queue, stack, bloom_filter).
	Key []byte
	// Value is the value to store (update) or the buffer that receives the element
	// (lookups; its contents are sent too, as MapLookupElem does).
	Value []byte
	// Flags are the update or lookup flags (BPF_ANY, BPF_F_LOCK, ...).
	Flags uint64
}

// Vector limits: a chunk of a Vector call holds at most this many ops, and stops growing
// once its request or its expected response passes vectorChunkBytes.
const (
	vectorChunkOps   = 4096
	vectorChunkBytes = 1 << 20
)

// Vector runs ops in order in the daemon, as calling MapLookupElem, MapUpdateElem, ... for
// each would, and stops at the first op that fails. It returns how many ops succeeded and,
// when n < len(ops), the error of ops[n]. The ops travel in chunks (one round trip each) as
// OpVector requests; a daemon speaking protocol 1 gets them one by one.
func (c *Client) Vector(ops []VecOp) (int, error) {
	for i := range ops {
		switch ops[i].Op {
		case OpMapLookupElem, OpMapLookupAndDeleteElem, OpMapUpdateElem, OpMapDeleteElem:
		default:
			return i, fmt.Errorf("control: op %d in Vector: %w", ops[i].Op, unix.EINVAL)
		}
	}
	if c.version < 2 {
		for i := range ops {
			if err := c.single(&ops[i]); err != nil {
				return i, err
			}
		}
		return len(ops), nil
	}
	done := 0
	for done < len(ops) {
		// One chunk: ops[done:end].
		end, reqBytes, respBytes := done, 0, 0
		for end < len(ops) && end-done < vectorChunkOps && reqBytes < vectorChunkBytes && respBytes < vectorChunkBytes {
			op := &ops[end]
			reqBytes += 32 + len(op.Key) + len(op.Value)
			respBytes += 16
			if op.Op == OpMapLookupElem || op.Op == OpMapLookupAndDeleteElem {
				respBytes += len(op.Value)
			}
			end++
		}
		chunk := ops[done:end]
		d, err := c.call(OpVector, func(e *enc) {
			e.u32(uint32(len(chunk)))
			for i := range chunk {
				op := &chunk[i]
				e.u32(uint32(op.Op))
				at := len(e.b)
				e.u32(0)
				e.u32(uint32(op.FD))
				e.bytes(op.Key)
				if op.Op != OpMapDeleteElem {
					e.bytes(op.Value)
					e.u64(op.Flags)
				}
				binary.LittleEndian.PutUint32(e.b[at:], uint32(len(e.b)-at-4))
			}
		})
		if err != nil {
			return done, err
		}
		n := d.u32()
		if d.err != nil || n > uint32(len(chunk)) || n == 0 {
			return done, fmt.Errorf("control: malformed vector response: %w", unix.EBADMSG)
		}
		for i := range n {
			op := &chunk[i]
			r := &dec{b: d.take(int(d.u32()))}
			if d.err != nil {
				return done, fmt.Errorf("control: malformed vector response: %w", unix.EBADMSG)
			}
			en := unix.Errno(r.u32())
			msg := r.str()
			if r.err != nil {
				return done, fmt.Errorf("control: malformed vector response: %w", unix.EBADMSG)
			}
			if en != 0 {
				return done, &Error{Msg: msg, Errno: en}
			}
			if op.Op == OpMapLookupElem || op.Op == OpMapLookupAndDeleteElem {
				v := r.u32()
				if v != nilLen {
					copy(op.Value, r.take(int(v)))
				}
			}
			if r.done() != nil {
				return done, fmt.Errorf("control: malformed vector response: %w", unix.EBADMSG)
			}
			done++
		}
		if d.done() != nil {
			return done, fmt.Errorf("control: malformed vector response: %w", unix.EBADMSG)
		}
		// n < len(chunk) without an error: the daemon stopped at its response limit; the
		// next chunk starts at the first op it did not run.
	}
	return done, nil
}

// single runs one VecOp as its own request.
func (c *Client) single(op *VecOp) error {
	switch op.Op {
	case OpMapLookupElem:
		return c.MapLookupElem(op.FD, op.Key, op.Value, op.Flags)
	case OpMapLookupAndDeleteElem:
		return c.MapLookupAndDeleteElem(op.FD, op.Key, op.Value, op.Flags)
	case OpMapUpdateElem:
		return c.MapUpdateElem(op.FD, op.Key, op.Value, op.Flags)
	default:
		return c.MapDeleteElem(op.FD, op.Key)
	}
}

// ObjGetMapInfo is ObjGet of path followed by MapGetInfoByFD of the new descriptor (what a
// tool does to open a pinned map), in one round trip on protocol 2. err is ObjGet's error
// (fd is -1 then, and the info was not asked for); infoErr is MapGetInfoByFD's, with the
// descriptor open.
func (c *Client) ObjGetMapInfo(path string, fileFlags uint32) (fd int, info engine.MapInfo, infoErr, err error) {
	return c.openInfo(OpObjGet, func(e *enc) {
		e.str(path)
		e.u32(fileFlags)
	}, func() (int, error) { return c.ObjGet(path, fileFlags) })
}

// MapGetFDByIDInfo is MapGetFDByID followed by MapGetInfoByFD of the new descriptor, in one
// round trip on protocol 2; the results are as ObjGetMapInfo's.
func (c *Client) MapGetFDByIDInfo(id, openFlags uint32) (fd int, info engine.MapInfo, infoErr, err error) {
	return c.openInfo(OpMapGetFDByID, func(e *enc) {
		e.u32(id)
		e.u32(openFlags)
	}, func() (int, error) { return c.MapGetFDByID(id, openFlags) })
}

func (c *Client) openInfo(op uint16, payload func(*enc), v1 func() (int, error)) (int, engine.MapInfo, error, error) {
	if c.version < 2 {
		fd, err := v1()
		if err != nil {
			return -1, engine.MapInfo{}, nil, err
		}
		info, err := c.MapGetInfoByFD(fd)
		return fd, info, err, nil
	}
	d, err := c.call(OpVector, func(e *enc) {
		e.u32(2)
		e.u32(uint32(op))
		at := len(e.b)
		e.u32(0)
		payload(e)
		binary.LittleEndian.PutUint32(e.b[at:], uint32(len(e.b)-at-4))
		e.u32(uint32(OpObjGetInfoByFD) | uint32(VecFlagPrevFD)<<16)
		e.u32(4)
		e.u32(0)
	})
	if err != nil {
		return -1, engine.MapInfo{}, nil, err
	}
	bad := fmt.Errorf("control: malformed vector response: %w", unix.EBADMSG)
	n := d.u32()
	if d.err != nil || n < 1 || n > 2 {
		return -1, engine.MapInfo{}, nil, bad
	}
	sub := func() (*dec, error) {
		r := &dec{b: d.take(int(d.u32()))}
		en := unix.Errno(r.u32())
		msg := r.str()
		if d.err != nil || r.err != nil {
			return nil, bad
		}
		if en != 0 {
			return r, &Error{Msg: msg, Errno: en}
		}
		return r, nil
	}
	r, err := sub()
	if err != nil {
		return -1, engine.MapInfo{}, nil, err
	}
	fd := int(r.u32())
	if r.done() != nil || n != 2 {
		return -1, engine.MapInfo{}, nil, bad
	}
	r, infoErr := sub()
	if r == nil {
		return -1, engine.MapInfo{}, nil, infoErr
	}
	if infoErr != nil {
		return fd, engine.MapInfo{}, infoErr, nil
	}
	info := decodeInfo(r)
	if r.done() != nil || d.done() != nil {
		return fd, engine.MapInfo{}, nil, bad
	}
	return fd, info, nil, nil
}
