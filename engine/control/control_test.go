package control

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bpffs-fuse/bpffs-fuse/engine"
	"github.com/bpffs-fuse/bpffs-fuse/objects"
)

// startServer runs a server for a fresh engine on a socket in a temp dir.
func startServer(t testing.TB, policy Policy) (*engine.Engine, string) {
	t.Helper()
	eng := engine.New(engine.Config{NumPossibleCPUs: 2})
	dir, err := os.MkdirTemp("", "ctl-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	path := filepath.Join(dir, "s.sock")
	l, err := Listen(path, 0o777)
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(eng, policy)
	go srv.Serve(l)
	t.Cleanup(func() {
		srv.Close()
		os.RemoveAll(dir)
	})
	return eng, path
}

func dial(t testing.TB, path string) *Client {
	t.Helper()
	c, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Exit)
	return c
}

func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
func le64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

// TestClientMirrorsProcess runs the same command sequence on an in-process engine.Process and
// through the socket, and requires identical results and errnos.
func TestClientMirrorsProcess(t *testing.T) {
	_, path := startServer(t, Policy{})
	c := dial(t, path)
	local := engine.New(engine.Config{NumPossibleCPUs: 2}).NewProcess(engine.Root())
	local.OpenStdio() // as every connection's process has

	type api interface {
		MapCreate(*engine.MapCreateAttr) (int, error)
		MapLookupElem(int, []byte, []byte, uint64) error
		MapUpdateElem(int, []byte, []byte, uint64) error
		MapDeleteElem(int, []byte) error
		MapGetNextKey(int, []byte, []byte) error
		MapLookupAndDeleteElem(int, []byte, []byte, uint64) error
		MapFreeze(int) error
		MapLookupBatch(int, *engine.MapBatchAttr) error
		MapUpdateBatch(int, *engine.MapBatchAttr) error
		MapDeleteBatch(int, *engine.MapBatchAttr) error
		MapLookupAndDeleteBatch(int, *engine.MapBatchAttr) error
		MapGetNextID(uint32) (uint32, error)
		MapGetFDByID(uint32, uint32) (int, error)
		MapGetInfoByFD(int) (engine.MapInfo, error)
		Close(int) error
		Dup(int) (int, error)
	}
	script := func(p api) []string {
		var log []string
		rec := func(what string, err error, extra ...any) {
			en := unix.Errno(0)
			if err != nil && !errors.As(err, &en) {
				en = 9999
			}
			log = append(log, fmt.Sprintf("%s: %d %v", what, en, extra))
		}
		fd, err := p.MapCreate(&engine.MapCreateAttr{MapType: objects.MapTypeHash, KeySize: 4, ValueSize: 8, MaxEntries: 2, MapName: "h"})
		rec("create", err, fd)
		_, err = p.MapCreate(&engine.MapCreateAttr{MapType: objects.MapTypeHash, KeySize: 0, ValueSize: 8, MaxEntries: 2})
		rec("create bad", err)
		_, err = p.MapCreate(&engine.MapCreateAttr{MapType: objects.MapTypeHash, KeySize: 4, ValueSize: 8, MaxEntries: 2, MapName: "bad-name"})
		rec("create bad name", err)
		rec("update", p.MapUpdateElem(fd, le32(1), le64(10), 0))
		rec("update noexist", p.MapUpdateElem(fd, le32(1), le64(11), objects.NoExist))
		rec("update 2", p.MapUpdateElem(fd, le32(2), le64(20), 0))
		rec("update full", p.MapUpdateElem(fd, le32(3), le64(30), 0))
		v := make([]byte, 8)
		err = p.MapLookupElem(fd, le32(1), v, 0)
		rec("lookup", err, v)
		rec("lookup miss", p.MapLookupElem(fd, le32(9), v, 0))
		rec("lookup short", p.MapLookupElem(fd, le32(1), v[:4], 0))
		rec("lookup nil key", p.MapLookupElem(fd, nil, v, 0))
		next := make([]byte, 4)
		err = p.MapGetNextKey(fd, nil, next)
		rec("next first", err)
		var keys [][]byte
		var k []byte
		for p.MapGetNextKey(fd, k, next) == nil {
			k = append([]byte(nil), next...)
			keys = append(keys, k)
		}
		rec("keys", nil, len(keys))
		b := &engine.MapBatchAttr{OutBatch: make([]byte, 4), Keys: make([]byte, 16), Values: make([]byte, 32), Count: 4}
		err = p.MapLookupBatch(fd, b)
		rec("lookup batch", err, b.Count)
		rec("delete", p.MapDeleteElem(fd, le32(2)))
		rec("delete miss", p.MapDeleteElem(fd, le32(2)))
		err = p.MapLookupAndDeleteElem(fd, le32(1), v, 0)
		rec("lookup_and_delete", err, v)
		ub := &engine.MapBatchAttr{Keys: append(le32(5), le32(6)...), Values: append(le64(5), le64(6)...), Count: 2}
		rec("update batch", p.MapUpdateBatch(fd, ub), ub.Count)
		db := &engine.MapBatchAttr{Keys: append(le32(5), le32(7)...), Count: 2}
		rec("delete batch", p.MapDeleteBatch(fd, db), db.Count)
		info, err := p.MapGetInfoByFD(fd)
		rec("info", err, info.Type, info.KeySize, info.ValueSize, info.MaxEntries, info.Name, info.Frozen, info.Memlock)
		rec("freeze", p.MapFreeze(fd))
		rec("freeze again", p.MapFreeze(fd))
		rec("update frozen", p.MapUpdateElem(fd, le32(1), le64(1), 0))
		info, err = p.MapGetInfoByFD(fd)
		rec("info frozen", err, info.Frozen)
		id, err := p.MapGetNextID(0)
		rec("next id", err, id)
		fd2, err := p.MapGetFDByID(id, objects.FRdonly)
		rec("fd by id", err, fd2)
		_, err = p.MapGetFDByID(9999, 0)
		rec("fd by bad id", err)
		fd3, err := p.Dup(fd)
		rec("dup", err, fd3)
		rec("close", p.Close(fd))
		rec("close again", p.Close(fd))
		_, err = p.MapGetInfoByFD(fd)
		rec("info closed", err)
		q, err := p.MapCreate(&engine.MapCreateAttr{MapType: objects.MapTypeQueue, ValueSize: 4, MaxEntries: 2})
		rec("queue", err, q)
		rec("push", p.MapUpdateElem(q, nil, le32(7), 0))
		qv := make([]byte, 4)
		rec("pop", p.MapLookupAndDeleteElem(q, nil, qv, 0), qv)
		rec("pop empty", p.MapLookupAndDeleteElem(q, nil, qv, 0))
		bl, err := p.MapCreate(&engine.MapCreateAttr{MapType: objects.MapTypeBloomFilter, ValueSize: 4, MaxEntries: 8})
		rec("bloom", err, bl)
		rec("bloom push", p.MapUpdateElem(bl, nil, le32(42), 0))
		rec("bloom hit", p.MapLookupElem(bl, nil, le32(42), 0))
		pa, err := p.MapCreate(&engine.MapCreateAttr{MapType: objects.MapTypePercpuArray, KeySize: 4, ValueSize: 4, MaxEntries: 2})
		rec("percpu", err, pa)
		rec("percpu update", p.MapUpdateElem(pa, le32(1), append(le64(3), le64(4)...), 0))
		pv := make([]byte, 16)
		rec("percpu lookup", p.MapLookupElem(pa, le32(1), pv, 0), pv)
		return log
	}
	want := script(local)
	got := script(c)
	if len(want) != len(got) {
		t.Fatalf("lengths differ")
	}
	for i := range want {
		if want[i] != got[i] {
			t.Errorf("step %d: in-process %q, over the socket %q", i, want[i], got[i])
		}
	}
	if c.NumPossibleCPUs() != 2 {
		t.Errorf("NumPossibleCPUs = %d", c.NumPossibleCPUs())
	}
}

// TestDisconnectReleasesFDs checks that a second connection's fds go away when it
// disconnects: the map it alone held vanishes (its id is gone), while the first
// connection's map stays.
func TestDisconnectReleasesFDs(t *testing.T) {
	eng, path := startServer(t, Policy{})
	a := dial(t, path)
	keep, err := a.MapCreate(&engine.MapCreateAttr{MapType: objects.MapTypeArray, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, err := b.MapCreate(&engine.MapCreateAttr{MapType: objects.MapTypeHash, KeySize: 4, ValueSize: 4, MaxEntries: 1}); err != nil {
			t.Fatal(err)
		}
	}
	// b also opens a's map by id: that fd must go too, without freeing the map.
	info, _ := a.MapGetInfoByFD(keep)
	if _, err := b.MapGetFDByID(info.ID, 0); err != nil {
		t.Fatal(err)
	}
	count := func() int {
		n := 0
		eng.Maps(func(*objects.Map) bool { n++; return true })
		return n
	}
	if n := count(); n != 6 {
		t.Fatalf("%d maps before disconnect, want 6", n)
	}
	b.Exit()
	deadline := time.Now().Add(5 * time.Second)
	for count() != 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := count(); n != 1 {
		t.Fatalf("%d maps after disconnect, want 1", n)
	}
	if _, err := a.MapGetInfoByFD(keep); err != nil {
		t.Fatalf("first connection's fd: %v", err)
	}
	if _, err := b.MapGetNextID(0); !errors.Is(err, ErrClosed) || !errors.Is(err, unix.ECONNRESET) {
		t.Fatalf("call after Exit: %v", err)
	}
}

// TestConcurrentRequests issues many requests at once on one connection; each must get its
// own answer.
func TestConcurrentRequests(t *testing.T) {
	_, path := startServer(t, Policy{})
	c := dial(t, path)
	fd, err := c.MapCreate(&engine.MapCreateAttr{MapType: objects.MapTypeHash, KeySize: 4, ValueSize: 4, MaxEntries: 4096})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				k := uint32(g*1000 + i)
				if err := c.MapUpdateElem(fd, le32(k), le32(k*3), 0); err != nil {
					errs <- err
					return
				}
				v := make([]byte, 4)
				if err := c.MapLookupElem(fd, le32(k), v, 0); err != nil || binary.LittleEndian.Uint32(v) != k*3 {
					errs <- fmt.Errorf("lookup %d: %v %x", k, err, v)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// rawConn dials and completes the handshake by hand.
func rawConn(t *testing.T, path string) net.Conn {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.Write(binary.LittleEndian.AppendUint32([]byte(Magic), Version))
	var w [welcomeLen]byte
	if _, err := io.ReadFull(c, w[:]); err != nil {
		t.Fatal(err)
	}
	if st := binary.LittleEndian.Uint32(w[len(Magic)+4:]); st != 0 {
		t.Fatalf("handshake status %d", st)
	}
	return c
}

func readResp(t *testing.T, c net.Conn) (frame, unix.Errno) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	f, err := readFrame(c)
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	d := &dec{b: f.payload}
	return f, unix.Errno(d.u32())
}

// TestMalformedFrames sends broken requests: bad payloads and unknown ops get an error reply
// and the connection keeps working; an oversized or undersized frame gets EMSGSIZE and a close.
func TestMalformedFrames(t *testing.T) {
	_, path := startServer(t, Policy{})
	c := rawConn(t, path)
	send := func(id uint32, op uint16, flags uint16, payload []byte) {
		b := appendFrameHeader(nil, id, op)
		binary.LittleEndian.PutUint16(b[10:], flags)
		c.Write(finishFrame(append(b, payload...)))
	}
	send(7, OpMapCreate, 0, []byte{1, 2, 3})
	if f, en := readResp(t, c); f.id != 7 || en != unix.EBADMSG {
		t.Fatalf("truncated create: id %d errno %v", f.id, en)
	}
	send(8, 999, 0, nil)
	if f, en := readResp(t, c); f.id != 8 || en != unix.EINVAL {
		t.Fatalf("unknown op: id %d errno %v", f.id, en)
	}
	send(9, OpMapGetNextID, 2, le32(0))
	if f, en := readResp(t, c); f.id != 9 || en != unix.EINVAL {
		t.Fatalf("flags: id %d errno %v", f.id, en)
	}
	send(10, OpMapGetNextKey, 0, append(append(le32(0), le32(nilLen)...), le32(0xfffffff0)...))
	if f, en := readResp(t, c); f.id != 10 || en == 0 {
		t.Fatalf("huge next key: id %d errno %v", f.id, en)
	}
	// Still alive.
	send(11, OpMapGetNextID, 0, le32(0))
	if f, en := readResp(t, c); f.id != 11 || en != unix.ENOENT {
		t.Fatalf("after errors: id %d errno %v", f.id, en)
	}
	// Oversized: EMSGSIZE then close.
	c.Write(le32(MaxFrame + 1))
	if f, en := readResp(t, c); f.id != 0 || f.op != OpError || en != unix.EMSGSIZE {
		t.Fatalf("oversized: id %d op %d errno %v", f.id, f.op, en)
	}
	if _, err := readFrame(c); err == nil {
		t.Fatal("connection still open after an oversized frame")
	}

	c2 := rawConn(t, path)
	c2.Write(le32(3))
	if _, en := readResp(t, c2); en != unix.EMSGSIZE {
		t.Fatalf("undersized: errno %v", en)
	}
	// A bad handshake is refused with EPROTONOSUPPORT.
	c3, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	c3.Write(binary.LittleEndian.AppendUint32([]byte(Magic), 99))
	var w [welcomeLen]byte
	if _, err := io.ReadFull(c3, w[:]); err != nil {
		t.Fatal(err)
	}
	if st := unix.Errno(binary.LittleEndian.Uint32(w[len(Magic)+4:])); st != unix.EPROTONOSUPPORT {
		t.Fatalf("version 99: %v", st)
	}
	// The server survived all of it.
	dial(t, path)
}

func TestPolicy(t *testing.T) {
	p := Policy{OwnerUIDs: []uint32{1000}, GroupID: 50, HasGroup: true}
	for _, tc := range []struct {
		c    PeerCred
		want bool
	}{
		{PeerCred{UID: 0, GID: 0}, true},
		{PeerCred{UID: 1000, GID: 1000}, true},
		{PeerCred{UID: 1001, GID: 50}, true},
		{PeerCred{UID: 1001, GID: 1001, Groups: []uint32{7, 50}}, true},
		{PeerCred{UID: 1001, GID: 1001, Groups: []uint32{7}}, false},
		{PeerCred{UID: 65534, GID: 65534}, false},
	} {
		if got := p.Allows(tc.c); got != tc.want {
			t.Errorf("Allows(%+v) = %v", tc.c, got)
		}
	}
	if (Policy{OwnerUIDs: []uint32{1000}}).Allows(PeerCred{UID: 1001, GID: 50}) {
		t.Error("no group configured, gid 50 allowed")
	}
}

// TestUnauthorizedUIDRefused runs a client as uid 65534 in a child process (this test binary,
// copied where nobody can execute it); the daemon must answer EPERM and keep serving others.
func TestUnauthorizedUIDRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a child as uid 65534")
	}
	_, path := startServer(t, Policy{OwnerUIDs: []uint32{0}})
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "ctl-child-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	data, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	child := filepath.Join(dir, "control.test")
	if err := os.WriteFile(child, data, 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(uid uint32) (string, error) {
		cmd := exec.Command(child, "-test.run=^TestChildDial$")
		cmd.Env = append(os.Environ(), "CONTROL_CHILD_SOCKET="+path)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run(65534)
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !bytes.Contains([]byte(out), []byte("DIAL: errno 1 ")) {
		t.Fatalf("uid 65534 was not refused with EPERM:\n%s", out)
	}
	out, err = run(0)
	if err != nil || !bytes.Contains([]byte(out), []byte("DIAL: ok")) {
		t.Fatalf("uid 0 refused: %v\n%s", err, out)
	}
}

// TestChildDial is the child side of TestUnauthorizedUIDRefused.
func TestChildDial(t *testing.T) {
	path := os.Getenv("CONTROL_CHILD_SOCKET")
	if path == "" {
		t.Skip("only runs as TestUnauthorizedUIDRefused's child")
	}
	c, err := Dial(path)
	if err != nil {
		var en unix.Errno
		errors.As(err, &en)
		fmt.Printf("DIAL: errno %d %v\n", int(en), err)
		return
	}
	defer c.Exit()
	if _, err := c.MapGetNextID(0); err != nil && !errors.Is(err, unix.ENOENT) {
		fmt.Printf("DIAL: call failed %v\n", err)
		return
	}
	fmt.Println("DIAL: ok")
}

func FuzzDecodeFrame(f *testing.F) {
	f.Add(finishFrame(appendFrameHeader(nil, 1, OpMapGetNextID)))
	e := enc{b: appendFrameHeader(nil, 2, OpMapCreate)}
	encodeCreateAttr(&e, &engine.MapCreateAttr{MapType: objects.MapTypeHash, KeySize: 4, ValueSize: 4, MaxEntries: 4, MapName: "x"})
	f.Add(finishFrame(e.b))
	e = enc{b: appendFrameHeader(nil, 3, OpMapUpdateBatch)}
	e.u32(0)
	encodeBatchIn(&e, &engine.MapBatchAttr{Keys: []byte{1, 2, 3, 4}, Values: []byte{5, 6, 7, 8}, Count: 1})
	f.Add(finishFrame(e.b))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{3, 0, 0, 0})
	eng := engine.New(engine.Config{NumPossibleCPUs: 2, MemoryLimit: 64 << 20})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		proc := eng.NewProcess(engine.Root())
		defer proc.Exit()
		for {
			fr, err := readFrame(r)
			if err != nil {
				return
			}
			resp := handle(proc, fr)
			got, err := readFrame(bytes.NewReader(resp))
			if err != nil || got.id != fr.id || got.op != fr.op {
				t.Fatalf("response does not frame: %v", err)
			}
		}
	})
}

// FuzzServe writes arbitrary bytes (after a valid handshake) to a live server, then checks
// that the server still serves a new connection.
func FuzzServe(f *testing.F) {
	f.Add(finishFrame(appendFrameHeader(nil, 1, OpMapGetNextID)))
	f.Add(append(le32(12), 1, 0, 0, 0, 0, 0, 0, 0, 9, 9, 9, 9))
	f.Add(le32(MaxFrame + 1))
	e := enc{b: appendFrameHeader(nil, 2, OpMapCreate)}
	encodeCreateAttr(&e, &engine.MapCreateAttr{MapType: objects.MapTypeArray, KeySize: 4, ValueSize: 4, MaxEntries: 4})
	f.Add(finishFrame(e.b))
	v := enc{b: appendFrameHeader(nil, 3, OpVector)}
	v.u32(2)
	v.u32(uint32(OpMapGetFDByID))
	v.u32(8)
	v.u32(1)
	v.u32(0)
	v.u32(uint32(OpObjGetInfoByFD) | uint32(VecFlagPrevFD)<<16)
	v.u32(4)
	v.u32(0)
	f.Add(finishFrame(v.b))
	_, path := startServer(f, Policy{})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		c.Write(binary.LittleEndian.AppendUint32([]byte(Magic), Version))
		c.Write(data)
		c.(*net.UnixConn).CloseWrite()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		io.Copy(io.Discard, c)
		c.Close()
		cl, err := Dial(path)
		if err != nil {
			t.Fatalf("server gone after %x: %v", data, err)
		}
		if _, err := cl.MapGetNextID(1 << 30); !errors.Is(err, unix.ENOENT) {
			t.Fatalf("server broken after %x: %v", data, err)
		}
		cl.Exit()
	})
}

// TestCloseNoWait: a close without a response still closes the fd, and the connection keeps
// answering the requests after it.
func TestCloseNoWait(t *testing.T) {
	_, path := startServer(t, Policy{})
	c := dial(t, path)
	fd, err := c.MapCreate(&engine.MapCreateAttr{MapType: objects.MapTypeArray, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CloseNoWait(fd); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := c.MapGetInfoByFD(fd)
		if errors.Is(err, unix.EBADFD) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fd still open after CloseNoWait: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := c.MapGetNextID(0); !errors.Is(err, unix.ENOENT) {
		t.Fatalf("after CloseNoWait: %v", err)
	}
}
