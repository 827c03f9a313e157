package control

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/bpffs-fuse/bpffs-fuse/engine"
	"github.com/bpffs-fuse/bpffs-fuse/objects"
)

// TestVector: a vector runs its ops in order, stops at the first failure (later ops are not
// applied) and returns lookups' values; on a protocol-1 connection the same call gives the
// same results op by op.
func TestVector(t *testing.T) {
	_, path := startServer(t, Policy{})
	for _, version := range []uint32{1, Version} {
		c, err := dialVersion(path, version)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Exit()
		if c.ProtocolVersion() != int(version) {
			t.Fatalf("version %d: connection speaks %d", version, c.ProtocolVersion())
		}
		fd, err := c.MapCreate(&engine.MapCreateAttr{MapType: objects.MapTypeHash, KeySize: 4, ValueSize: 8, MaxEntries: 16})
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 8)
		ops := []VecOp{
			{Op: OpMapUpdateElem, FD: fd, Key: le32(1), Value: le64(10)},
			{Op: OpMapUpdateElem, FD: fd, Key: le32(2), Value: le64(20), Flags: objects.NoExist},
			{Op: OpMapLookupElem, FD: fd, Key: le32(1), Value: got},
			{Op: OpMapDeleteElem, FD: fd, Key: le32(2)},
			{Op: OpMapUpdateElem, FD: fd, Key: le32(1), Value: le64(11), Flags: objects.NoExist},
			{Op: OpMapUpdateElem, FD: fd, Key: le32(3), Value: le64(30)},
		}
		n, err := c.Vector(ops)
		if n != 4 || !errors.Is(err, unix.EEXIST) {
			t.Fatalf("version %d: Vector = %d, %v; want 4, EEXIST", version, n, err)
		}
		if !bytes.Equal(got, le64(10)) {
			t.Fatalf("version %d: lookup in vector got %x", version, got)
		}
		if err := c.MapLookupElem(fd, le32(3), make([]byte, 8), 0); !errors.Is(err, unix.ENOENT) {
			t.Fatalf("version %d: op after the failure was applied: %v", version, err)
		}
		if err := c.MapLookupElem(fd, le32(2), make([]byte, 8), 0); !errors.Is(err, unix.ENOENT) {
			t.Fatalf("version %d: delete in vector: %v", version, err)
		}
		// Many ops span several chunks.
		var many []VecOp
		for i := range 10000 {
			many = append(many, VecOp{Op: OpMapUpdateElem, FD: fd, Key: le32(uint32(i % 16)), Value: le64(uint64(i))})
		}
		if n, err := c.Vector(many); n != len(many) || err != nil {
			t.Fatalf("version %d: 10000 ops: %d, %v", version, n, err)
		}
		if err := c.MapLookupElem(fd, le32(9999%16), got, 0); err != nil || !bytes.Equal(got, le64(9999)) {
			t.Fatalf("version %d: last op of many: %x %v", version, got, err)
		}
		// A bad fd fails like the single call.
		if n, err := c.Vector([]VecOp{{Op: OpMapDeleteElem, FD: 999, Key: le32(1)}}); n != 0 || !errors.Is(err, unix.EBADF) {
			t.Fatalf("version %d: bad fd: %d, %v", version, n, err)
		}
		if n, err := c.Vector([]VecOp{{Op: OpMapFreeze, FD: fd}}); n != 0 || !errors.Is(err, unix.EINVAL) {
			t.Fatalf("version %d: unsupported op: %d, %v", version, n, err)
		}
	}
}

// TestVectorMalformed: a malformed vector runs none of its ops and leaves the connection
// usable; a protocol-1 connection does not know OpVector.
func TestVectorMalformed(t *testing.T) {
	_, path := startServer(t, Policy{})
	for _, payload := range [][]byte{
		le32(1),                                 // count 1, no op
		append(le32(1), le32(2)...),             // op without length
		append(le32(2), 2, 0, 0, 0, 0, 0, 0, 0), // second op missing
		append(append(le32(1), le32(uint32(OpVector))...), le32(0)...), // nested vector
	} {
		c := rawConn(t, path)
		e := enc{b: appendFrameHeader(nil, 7, OpVector)}
		e.b = append(e.b, payload...)
		c.Write(finishFrame(e.b))
		if _, en := readResp(t, c); en != unix.EBADMSG && en != unix.EINVAL {
			t.Fatalf("payload %x: errno %v", payload, en)
		}
	}
	// Version 1 connections answer OpVector as an unknown op.
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(binary.LittleEndian.AppendUint32([]byte(Magic), 1))
	var w [welcomeLen]byte
	if _, err := io.ReadFull(c, w[:]); err != nil {
		t.Fatal(err)
	}
	if v := binary.LittleEndian.Uint32(w[len(Magic):]); v != 1 {
		t.Fatalf("version 1 hello answered with version %d", v)
	}
	c.Write(finishFrame(append(appendFrameHeader(nil, 1, OpVector), le32(0)...)))
	if _, en := readResp(t, c); en != unix.EINVAL {
		t.Fatalf("OpVector on version 1: errno %v", en)
	}
}

// BenchmarkVectorUpdate: element updates through Vector, per op, beside one round trip each.
func BenchmarkVectorUpdate(b *testing.B) {
	_, path := startServer(b, Policy{})
	c := dial(b, path)
	fd, err := c.MapCreate(&engine.MapCreateAttr{MapType: objects.MapTypeHash, KeySize: 4, ValueSize: 8, MaxEntries: 4096})
	if err != nil {
		b.Fatal(err)
	}
	ops := make([]VecOp, 4096)
	for i := range ops {
		ops[i] = VecOp{Op: OpMapUpdateElem, FD: fd, Key: le32(uint32(i)), Value: le64(uint64(i))}
	}
	for b.Loop() {
		if n, err := c.Vector(ops); err != nil || n != len(ops) {
			b.Fatal(n, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(ops)), "ns/op-in-vector")
}

// TestOpenInfo: the one-round-trip open + info gives what the two calls give, on both
// protocol versions, including their errors.
func TestOpenInfo(t *testing.T) {
	_, path := startServer(t, Policy{})
	for _, version := range []uint32{1, Version} {
		c, err := dialVersion(path, version)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Exit()
		fd, err := c.MapCreate(&engine.MapCreateAttr{MapType: objects.MapTypeArray, KeySize: 4, ValueSize: 8, MaxEntries: 3, MapName: "oi"})
		if err != nil {
			t.Fatal(err)
		}
		want, err := c.MapGetInfoByFD(fd)
		if err != nil {
			t.Fatal(err)
		}
		fd2, info, infoErr, err := c.MapGetFDByIDInfo(want.ID, 0)
		if err != nil || infoErr != nil || info != want || fd2 < 0 || fd2 == fd {
			t.Fatalf("version %d: MapGetFDByIDInfo = %d, %+v, %v, %v; want info %+v", version, fd2, info, infoErr, err, want)
		}
		if got, err := c.MapGetInfoByFD(fd2); err != nil || got != want {
			t.Fatalf("version %d: the returned fd %d is not the map: %+v %v", version, fd2, got, err)
		}
		_, wantErr := c.MapGetFDByID(1<<30, 0)
		if fd3, _, _, err := c.MapGetFDByIDInfo(1<<30, 0); fd3 != -1 || !errors.Is(err, unix.ENOENT) || err.Error() != wantErr.Error() {
			t.Fatalf("version %d: bad id: %d, %v; want %v", version, fd3, err, wantErr)
		}
		_, wantErr = c.ObjGet("/nonexistent/x", 0)
		if fd3, _, _, err := c.ObjGetMapInfo("/nonexistent/x", 0); fd3 != -1 || err == nil || err.Error() != wantErr.Error() {
			t.Fatalf("version %d: bad path: %d, %v; want %v", version, fd3, err, wantErr)
		}
	}
	// A sub-request asking for the previous fd when there is none fails with EBADF.
	c := dial(t, path)
	d, err := c.call(OpVector, func(e *enc) {
		e.u32(1)
		e.u32(uint32(OpObjGetInfoByFD) | uint32(VecFlagPrevFD)<<16)
		e.u32(4)
		e.u32(0)
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := d.u32(); n != 1 {
		t.Fatalf("ran %d", n)
	}
	r := &dec{b: d.bytes()}
	if en := unix.Errno(r.u32()); en != unix.EBADF {
		t.Fatalf("no previous fd: errno %v", en)
	}
}
