package control

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/bpffs-fuse/bpffs-fuse/engine"
)

// Policy decides who may use the engine (see the package doc).
type Policy struct {
	// OwnerUIDs are allowed besides root: the mount's owner (uid= at mount time) and the
	// uid the daemon runs as.
	OwnerUIDs []uint32
	// GroupID, when HasGroup is set, is a group whose members are allowed.
	GroupID  uint32
	HasGroup bool
}

// PeerCred is what the kernel says about the other end of a unix socket.
type PeerCred struct {
	PID      int32
	UID, GID uint32
	Groups   []uint32
}

// Allows reports whether the policy admits the caller.
func (p Policy) Allows(c PeerCred) bool {
	if c.UID == 0 {
		return true
	}
	for _, u := range p.OwnerUIDs {
		if c.UID == u {
			return true
		}
	}
	if !p.HasGroup {
		return false
	}
	if c.GID == p.GroupID {
		return true
	}
	for _, g := range c.Groups {
		if g == p.GroupID {
			return true
		}
	}
	return false
}

// Server serves one engine on any number of unix listeners.
type Server struct {
	eng    *engine.Engine
	policy Policy
	// Logf, when set, receives one line per refused or broken connection.
	Logf func(format string, args ...any)

	mu        sync.Mutex
	closed    bool
	listeners map[*Listener]struct{}
	conns     map[*os.File]struct{}
	wg        sync.WaitGroup
}

// NewServer returns a server for eng that admits callers by policy.
func NewServer(eng *engine.Engine, policy Policy) *Server {
	return &Server{
		eng:       eng,
		policy:    policy,
		listeners: map[*Listener]struct{}{},
		conns:     map[*os.File]struct{}{},
	}
}

// Serve accepts connections on l until l is closed or the server is closed.
func (s *Server) Serve(l *Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return os.ErrClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()
	var delay time.Duration
	for {
		c, err := l.accept()
		if err != nil {
			if errors.Is(err, os.ErrClosed) {
				return nil
			}
			// EMFILE and friends: back off instead of spinning.
			if delay == 0 {
				delay = 5 * time.Millisecond
			} else if delay < time.Second {
				delay *= 2
			}
			s.logf("control: accept: %v", err)
			time.Sleep(delay)
			continue
		}
		delay = 0
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return nil
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.serveConn(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// Close stops every listener, drops every connection (closing their fds) and waits for the
// connections' requests to finish.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for l := range s.listeners {
		l.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

func (s *Server) logf(format string, args ...any) {
	if s.Logf != nil {
		s.Logf(format, args...)
	}
}

// peerCred reads SO_PEERCRED and SO_PEERGROUPS of c.
func peerCred(c *os.File) (PeerCred, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return PeerCred{}, err
	}
	var pc PeerCred
	var serr error
	err = raw.Control(func(fd uintptr) {
		uc, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		if err != nil {
			serr = err
			return
		}
		pc = PeerCred{PID: uc.Pid, UID: uc.Uid, GID: uc.Gid}
		// SO_PEERGROUPS (Linux 4.13): the supplementary groups at connect time.
		buf := make([]uint32, 64)
		for range 3 {
			n := uint32(len(buf) * 4)
			_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.SOL_SOCKET, unix.SO_PEERGROUPS,
				uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)), 0)
			if e == unix.ERANGE {
				buf = make([]uint32, n/4+1)
				continue
			}
			if e == 0 {
				pc.Groups = append([]uint32(nil), buf[:n/4]...)
			}
			break
		}
	})
	if err == nil {
		err = serr
	}
	return pc, err
}

// serveConn runs one connection: handshake, policy, then frames until the peer goes away.
func (s *Server) serveConn(c *os.File) {
	defer c.Close()
	pc, err := peerCred(c)
	if err != nil {
		s.logf("control: SO_PEERCRED: %v", err)
		return
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var hello [helloLen]byte
	if _, err := io.ReadFull(c, hello[:]); err != nil {
		return
	}
	c.SetReadDeadline(time.Time{})
	// The umask is read before the handshake completes, so that a client that changes its
	// umask right after Dial returns has the one it connected with.
	// CapEff comes from the same read of /proc/PID/status (peerCaps).
	umask, umaskOK, capEff, capOK := peerStatus(pc.PID)
	if !umaskOK {
		umask = defaultUmask
	}
	caps := capsFor(capEff, capOK, pc.UID)
	status := unix.Errno(0)
	// Versions 1 to Version are spoken; the connection speaks the client's (2 adds OpVector).
	version := binary.LittleEndian.Uint32(hello[len(Magic):])
	switch {
	case !bytes.Equal(hello[:len(Magic)], []byte(Magic)) || version < 1 || version > Version:
		status = unix.EPROTONOSUPPORT
		version = Version
	case !s.policy.Allows(pc):
		status = unix.EPERM
		s.logf("control: refused pid %d uid %d gid %d: not root, the owner or in the control group", pc.PID, pc.UID, pc.GID)
	}
	welcome := append([]byte(Magic), make([]byte, 12)...)
	binary.LittleEndian.PutUint32(welcome[len(Magic):], version)
	binary.LittleEndian.PutUint32(welcome[len(Magic)+4:], uint32(status))
	binary.LittleEndian.PutUint32(welcome[len(Magic)+8:], uint32(s.eng.Config().NumPossibleCPUs))
	if _, err := c.Write(welcome); err != nil || status != 0 {
		return
	}

	// The umask is read once, at connect: pins the connection makes get 0600 &^ umask as the
	// kernel gives its caller (a CLI run is one connection, so this is its umask at pin time).
	proc := s.eng.NewProcess(engine.Cred{UID: pc.UID, GID: pc.GID, Groups: pc.Groups, Caps: caps,
		Umask: umask})
	// A connection is a process with stdin, stdout and stderr open: its BPF fds start at 3, and
	// fd 0 (an unset inner_map_fd) is not a map, as for bpftool on Linux.
	proc.OpenStdio()
	cs := &connState{conn: c, proc: proc, sem: make(chan struct{}, MaxInFlight), version: version}
	// Large frames bypass the buffer (bufio reads them straight into the payload), so a
	// small one does: a connection's setup does not zero 64 KiB.
	r := bufio.NewReaderSize(c, 8<<10)
	for {
		f, err := readFrame(r)
		if err != nil {
			if errors.Is(err, errFrameSize) {
				cs.send(errorFrame(0, OpError, errFrameSize))
				s.logf("control: pid %d: %v; closing", pc.PID, err)
			}
			break
		}
		// A short command with nothing queued behind it, or one whose answer nobody waits
		// for (a close sent with FlagNoReply, usually followed at once by the next request),
		// runs on the reader goroutine: the handoff to another goroutine (often a thread
		// wakeup) would double its latency.
		// Everything else runs on its own goroutine, so that requests queued behind a slow
		// one, or arriving while it runs, proceed concurrently.
		if quick(f.op) && (r.Buffered() == 0 || f.flags&FlagNoReply != 0) {
			cs.reply(f, cs.handle(f))
			continue
		}
		cs.sem <- struct{}{}
		cs.wg.Add(1)
		go func() {
			defer func() { <-cs.sem; cs.wg.Done() }()
			cs.reply(f, cs.handle(f))
		}()
	}
	cs.wg.Wait()
	proc.Exit()
}

// mountSpelling rewrites a path whose mount prefix is spelled with symlinks resolved (as
// /proc/self/mountinfo shows mount points, and so as clients find them) into the spelling the
// mount was registered with, when the two differ (a mount made through a symlinked path such
// as /var/run/x). Only paths under no registered mount take this slow path; resolving the
// mount point stats the mount root, which this daemon answers from another goroutine.
func mountSpelling(eng *engine.Engine, path string) string {
	mounts := eng.Mounts()
	for _, m := range mounts {
		if path == m || strings.HasPrefix(path, m+"/") {
			return path
		}
	}
	for _, m := range mounts {
		real, err := filepath.EvalSymlinks(m)
		if err != nil || real == m {
			continue
		}
		if path == real || strings.HasPrefix(path, real+"/") {
			return m + path[len(real):]
		}
	}
	return path
}

// quick reports ops that do a bounded amount of work (one element, one fd, one info).
func quick(op uint16) bool {
	switch op {
	case OpMapLookupElem, OpMapUpdateElem, OpMapDeleteElem, OpMapGetNextKey, OpObjPin, OpObjGet,
		OpMapGetNextID, OpMapGetFDByID, OpObjGetInfoByFD, OpMapLookupAndDeleteElem, OpMapFreeze,
		OpClose, OpDup:
		return true
	}
	return false
}

type connState struct {
	conn    *os.File
	proc    *engine.Process
	version uint32 // the protocol version the client asked for
	sem     chan struct{}
	wg      sync.WaitGroup
	wmu     sync.Mutex
}

// reply sends the response to f unless f asked for none.
func (cs *connState) reply(f frame, b []byte) {
	if f.flags&FlagNoReply != 0 {
		return
	}
	cs.send(b)
}

func (cs *connState) send(b []byte) {
	cs.wmu.Lock()
	defer cs.wmu.Unlock()
	cs.conn.Write(b)
}

// errorFrame is a response carrying only err.
func errorFrame(id uint32, op uint16, err error) []byte {
	e := enc{b: appendFrameHeader(nil, id, op)}
	e.u32(uint32(errnoOf(err)))
	e.str(err.Error())
	return finishFrame(e.b)
}

// handle runs one request of the connection: OpVector on version 2 connections, everything
// else as handle does.
func (cs *connState) handle(f frame) []byte {
	if f.op == OpVector && cs.version >= 2 {
		return handleVector(cs.proc, f)
	}
	return handle(cs.proc, f)
}

// handle runs one request on proc and returns the response frame.
func handle(proc *engine.Process, f frame) []byte {
	return handleBuf(proc, f, make([]byte, 0, 64))
}

// vectorReplyLimit is the response size after which a vector stops early (without error): the
// client sends the rest again, and no response can exceed MaxFrame.
const vectorReplyLimit = MaxFrame / 2

// handleVector runs the sub-requests of an OpVector request in order on proc, stopping after
// the first one that fails (or when the response has grown past vectorReplyLimit), and
// returns one response holding each executed sub-request's response payload.
func handleVector(proc *engine.Process, f frame) []byte {
	if f.flags&^FlagNoReply != 0 {
		return errorFrame(f.id, f.op, fmt.Errorf("control: frame flags %#x: %w", f.flags, unix.EINVAL))
	}
	d := &dec{b: f.payload}
	count := d.u32()
	if d.err == nil && uint64(count)*8 > uint64(len(d.b)) {
		// Each sub-request takes at least 8 bytes: count cannot be right (and must not size
		// an allocation).
		d.err = errBadMsg
	}
	if d.err != nil {
		return errorFrame(f.id, f.op, d.err)
	}
	// Decode every sub-request before running any: a malformed vector runs nothing.
	subs := make([]frame, 0, count)
	for i := uint32(0); i < count && d.err == nil; i++ {
		v := d.u32()
		op, flags := uint16(v), uint16(v>>16)
		n := d.u32()
		if n == nilLen {
			d.err = errBadMsg
			break
		}
		payload := d.take(int(n))
		if d.err == nil && (op == OpVector || op == OpError) {
			return errorFrame(f.id, f.op, fmt.Errorf("control: op %d inside a vector: %w", op, unix.EINVAL))
		}
		subs = append(subs, frame{id: f.id, op: op, flags: flags, payload: payload})
	}
	if err := d.done(); err != nil {
		return errorFrame(f.id, f.op, err)
	}
	e := enc{b: appendFrameHeader(make([]byte, 0, 64+16*len(subs)), f.id, f.op)}
	e.u32(0)
	e.str("")
	nAt := len(e.b)
	e.u32(0)
	var scratch []byte
	n := uint32(0)
	lastFD := int64(-1) // the fd the previous sub-request returned
	for _, sub := range subs {
		if len(e.b) > vectorReplyLimit {
			break
		}
		var r []byte
		if sub.flags&VecFlagPrevFD != 0 {
			// The sub-request's leading fd field is the fd the previous one returned.
			sub.flags &^= VecFlagPrevFD
			if lastFD < 0 || len(sub.payload) < 4 {
				r = errorFrame(f.id, sub.op, fmt.Errorf("control: no descriptor from the previous request: %w", unix.EBADF))[4+headerLen:]
			} else {
				p := append([]byte(nil), sub.payload...)
				binary.LittleEndian.PutUint32(p, uint32(lastFD))
				sub.payload = p
			}
		}
		if r == nil {
			scratch = handleBuf(proc, sub, scratch[:0])
			r = scratch[4+headerLen:]
		}
		e.bytes(r)
		n++
		if binary.LittleEndian.Uint32(r) != 0 {
			break
		}
		lastFD = -1
		switch sub.op {
		case OpObjGet, OpMapGetFDByID, OpMapCreate, OpDup:
			// status, empty error text, fd
			if len(r) >= 12 {
				lastFD = int64(binary.LittleEndian.Uint32(r[8:12]))
			}
		}
	}
	binary.LittleEndian.PutUint32(e.b[nAt:], n)
	return finishFrame(e.b)
}

// handleBuf is handle appending the response frame to buf (which it may reuse).
func handleBuf(proc *engine.Process, f frame, buf []byte) []byte {
	d := &dec{b: f.payload}
	e := &enc{b: appendFrameHeader(buf, f.id, f.op)}
	var err error
	// results appends the op's results after the status; nil when there are none.
	var results func()
	// always marks ops whose results are sent also on error (batches).
	always := false
	if f.flags&^FlagNoReply != 0 {
		return errorFrame(f.id, f.op, fmt.Errorf("control: frame flags %#x: %w", f.flags, unix.EINVAL))
	}
	switch f.op {
	case OpMapCreate:
		a := decodeCreateAttr(d)
		if err = d.done(); err == nil {
			var fd int
			fd, err = proc.MapCreate(a)
			results = func() { e.u32(uint32(fd)) }
		}
	case OpMapLookupElem, OpMapLookupAndDeleteElem:
		fd, key, value, flags := int(int32(d.u32())), d.bytes(), d.bytes(), d.u64()
		if err = d.done(); err == nil {
			if f.op == OpMapLookupElem {
				err = proc.MapLookupElem(fd, key, value, flags)
			} else {
				err = proc.MapLookupAndDeleteElem(fd, key, value, flags)
			}
			results = func() { e.bytes(value) }
		}
	case OpMapUpdateElem:
		fd, key, value, flags := int(int32(d.u32())), d.bytes(), d.bytes(), d.u64()
		if err = d.done(); err == nil {
			err = proc.MapUpdateElem(fd, key, value, flags)
		}
	case OpMapDeleteElem:
		fd, key := int(int32(d.u32())), d.bytes()
		if err = d.done(); err == nil {
			err = proc.MapDeleteElem(fd, key)
		}
	case OpMapGetNextKey:
		fd, key, nextLen := int(int32(d.u32())), d.bytes(), d.u32()
		if err = d.done(); err == nil {
			if nextLen > MaxFrame {
				err = fmt.Errorf("control: next key length %d: %w", nextLen, unix.EINVAL)
				break
			}
			next := make([]byte, nextLen)
			err = proc.MapGetNextKey(fd, key, next)
			results = func() { e.bytes(next) }
		}
	case OpMapFreeze:
		fd := int(int32(d.u32()))
		if err = d.done(); err == nil {
			err = proc.MapFreeze(fd)
		}
	case OpMapLookupBatch, OpMapLookupAndDeleteBatch, OpMapUpdateBatch, OpMapDeleteBatch:
		fd := int(int32(d.u32()))
		a := decodeBatchIn(d)
		if err = d.done(); err == nil {
			switch f.op {
			case OpMapLookupBatch:
				err = proc.MapLookupBatch(fd, a)
			case OpMapLookupAndDeleteBatch:
				err = proc.MapLookupAndDeleteBatch(fd, a)
			case OpMapUpdateBatch:
				err = proc.MapUpdateBatch(fd, a)
			default:
				err = proc.MapDeleteBatch(fd, a)
			}
			always = true
			results = func() {
				e.u32(a.Count)
				e.bytes(a.OutBatch)
				// Keys and values go back only where the kernel writes them.
				if f.op == OpMapLookupBatch || f.op == OpMapLookupAndDeleteBatch {
					e.bytes(a.Keys)
					e.bytes(a.Values)
				} else {
					e.bytes(nil)
					e.bytes(nil)
				}
			}
		}
	case OpObjPin:
		fd, path, flags := int(int32(d.u32())), d.str(), d.u32()
		if err = d.done(); err == nil {
			err = proc.ObjPin(fd, mountSpelling(proc.Engine(), path), flags)
		}
	case OpObjGet:
		path, flags := d.str(), d.u32()
		if err = d.done(); err == nil {
			var fd int
			fd, err = proc.ObjGet(mountSpelling(proc.Engine(), path), flags)
			results = func() { e.u32(uint32(fd)) }
		}
	case OpMapGetNextID:
		start := d.u32()
		if err = d.done(); err == nil {
			var id uint32
			id, err = proc.MapGetNextID(start)
			results = func() { e.u32(id) }
		}
	case OpMapGetFDByID:
		id, flags := d.u32(), d.u32()
		if err = d.done(); err == nil {
			var fd int
			fd, err = proc.MapGetFDByID(id, flags)
			results = func() { e.u32(uint32(fd)) }
		}
	case OpObjGetInfoByFD:
		fd := int(int32(d.u32()))
		if err = d.done(); err == nil {
			var info engine.MapInfo
			info, err = proc.MapGetInfoByFD(fd)
			results = func() { encodeInfo(e, &info) }
		}
	case OpClose:
		fd := int(int32(d.u32()))
		if err = d.done(); err == nil {
			err = proc.Close(fd)
		}
	case OpDup:
		fd := int(int32(d.u32()))
		if err = d.done(); err == nil {
			var nfd int
			nfd, err = proc.Dup(fd)
			results = func() { e.u32(uint32(nfd)) }
		}
	default:
		err = fmt.Errorf("control: unknown op %d: %w", f.op, unix.EINVAL)
	}
	if err != nil {
		e.u32(uint32(errnoOf(err)))
		e.str(err.Error())
		if always && results != nil {
			results()
		}
		return finishFrame(e.b)
	}
	e.u32(0)
	e.str("")
	if results != nil {
		results()
	}
	return finishFrame(e.b)
}
