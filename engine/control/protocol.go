package control

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/bpffs-fuse/bpffs-fuse/engine"
	"github.com/bpffs-fuse/bpffs-fuse/objects"
)

// Version is the newest wire protocol version this package speaks; servers also speak every
// older one (1: the bpf(2) commands; 2: adds OpVector).
const Version = 2

// Magic starts both handshake messages.
const Magic = "BPFFSCTL"

// MaxFrame is the largest frame length (the len field) either side accepts: 16 MiB.
const MaxFrame = 16 << 20

// MaxInFlight is how many requests of one connection the server runs at the same time.
const MaxInFlight = 32

const (
	helloLen   = len(Magic) + 4
	welcomeLen = len(Magic) + 12
	headerLen  = 8 // id, op, flags: the part of a frame after len and before the payload
)

// Op numbers: the bpf(2) command numbers of include/uapi/linux/bpf.h:enum bpf_cmd, plus
// operations on descriptors that are not bpf(2) commands.
const (
	OpMapCreate               uint16 = 0
	OpMapLookupElem           uint16 = 1
	OpMapUpdateElem           uint16 = 2
	OpMapDeleteElem           uint16 = 3
	OpMapGetNextKey           uint16 = 4
	OpObjPin                  uint16 = 6
	OpObjGet                  uint16 = 7
	OpMapGetNextID            uint16 = 12
	OpMapGetFDByID            uint16 = 14
	OpObjGetInfoByFD          uint16 = 15
	OpMapLookupAndDeleteElem  uint16 = 21
	OpMapFreeze               uint16 = 22
	OpMapLookupBatch          uint16 = 24
	OpMapLookupAndDeleteBatch uint16 = 25
	OpMapUpdateBatch          uint16 = 26
	OpMapDeleteBatch          uint16 = 27

	// OpClose is close(2) of a descriptor.
	OpClose uint16 = 0x100
	// OpDup is dup(2) of a descriptor.
	OpDup uint16 = 0x101
	// OpVector (protocol version 2) runs a sequence of requests in order and stops at the
	// first that fails: one round trip for many element operations.
	OpVector uint16 = 0x102
	// OpError marks the server's last response before it drops a connection whose stream
	// is broken (id 0).
	OpError uint16 = 0xffff
)

// FlagNoReply in a request's flags asks the server not to send a response.
const FlagNoReply uint16 = 1

// VecFlagPrevFD in the flags of a sub-request of OpVector makes the server replace the
// sub-request's leading fd field with the descriptor the previous sub-request returned (an
// OpObjGet, OpMapGetFDByID, OpMapCreate or OpDup that succeeded; EBADF otherwise).
const VecFlagPrevFD uint16 = 0x8000

// frame is one decoded frame.
type frame struct {
	id      uint32
	op      uint16
	flags   uint16
	payload []byte
}

// errFrameSize reports a len field outside [headerLen, MaxFrame].
var errFrameSize = fmt.Errorf("control: frame length out of range: %w", unix.EMSGSIZE)

// readFrame reads one frame from r. A len field out of range returns errFrameSize before
// anything is allocated.
func readFrame(r io.Reader) (frame, error) {
	var hdr [4 + headerLen]byte
	if _, err := io.ReadFull(r, hdr[:4]); err != nil {
		return frame{}, err
	}
	n := binary.LittleEndian.Uint32(hdr[:4])
	if n < headerLen || n > MaxFrame {
		return frame{}, errFrameSize
	}
	if _, err := io.ReadFull(r, hdr[4:]); err != nil {
		return frame{}, unexpectedEOF(err)
	}
	f := frame{
		id:    binary.LittleEndian.Uint32(hdr[4:8]),
		op:    binary.LittleEndian.Uint16(hdr[8:10]),
		flags: binary.LittleEndian.Uint16(hdr[10:12]),
	}
	if n > headerLen {
		f.payload = make([]byte, n-headerLen)
		if _, err := io.ReadFull(r, f.payload); err != nil {
			return frame{}, unexpectedEOF(err)
		}
	}
	return f, nil
}

func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// appendFrameHeader starts a frame in b; finishFrame fills in its length.
func appendFrameHeader(b []byte, id uint32, op uint16) []byte {
	return appendFrameHeaderFlags(b, id, op, 0)
}

func appendFrameHeaderFlags(b []byte, id uint32, op, flags uint16) []byte {
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint32(b, id)
	b = binary.LittleEndian.AppendUint16(b, op)
	return binary.LittleEndian.AppendUint16(b, flags)
}

// finishFrame sets the len field of the frame that starts at b[0].
func finishFrame(b []byte) []byte {
	binary.LittleEndian.PutUint32(b[:4], uint32(len(b)-4))
	return b
}

// enc appends payload fields.
type enc struct{ b []byte }

func (e *enc) u32(v uint32) { e.b = binary.LittleEndian.AppendUint32(e.b, v) }
func (e *enc) u64(v uint64) { e.b = binary.LittleEndian.AppendUint64(e.b, v) }

const nilLen = 0xffffffff

func (e *enc) bytes(v []byte) {
	if v == nil {
		e.u32(nilLen)
		return
	}
	e.u32(uint32(len(v)))
	e.b = append(e.b, v...)
}

func (e *enc) str(s string) {
	e.u32(uint32(len(s)))
	e.b = append(e.b, s...)
}

// errBadMsg is a payload that does not decode.
var errBadMsg = fmt.Errorf("control: malformed payload: %w", unix.EBADMSG)

// dec reads payload fields; the first short read sets err and every later read returns zero.
type dec struct {
	b   []byte
	err error
}

func (d *dec) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b) {
		d.err = errBadMsg
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *dec) u32() uint32 {
	if v := d.take(4); v != nil {
		return binary.LittleEndian.Uint32(v)
	}
	return 0
}

func (d *dec) u64() uint64 {
	if v := d.take(8); v != nil {
		return binary.LittleEndian.Uint64(v)
	}
	return 0
}

// bytes returns a copy, or nil for the nil marker.
func (d *dec) bytes() []byte {
	n := d.u32()
	if d.err != nil || n == nilLen {
		return nil
	}
	v := d.take(int(n))
	if v == nil {
		return nil
	}
	return append(make([]byte, 0, len(v)), v...)
}

func (d *dec) str() string {
	n := d.u32()
	if d.err != nil || n == nilLen {
		return ""
	}
	return string(d.take(int(n)))
}

// done reports the decode error, or EBADMSG when bytes are left over.
func (d *dec) done() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = errBadMsg
	}
	return d.err
}

func encodeCreateAttr(e *enc, a *engine.MapCreateAttr) {
	e.u32(uint32(a.MapType))
	e.u32(a.KeySize)
	e.u32(a.ValueSize)
	e.u32(a.MaxEntries)
	e.u32(a.MapFlags)
	e.u32(a.InnerMapFD)
	e.u32(a.NumaNode)
	e.str(a.MapName)
	e.u32(a.MapIfindex)
	e.u32(a.BTFFD)
	e.u32(a.BTFKeyTypeID)
	e.u32(a.BTFValueTypeID)
	e.u32(a.BTFVmlinuxValueTypeID)
	e.u64(a.MapExtra)
	e.u32(uint32(a.ValueTypeBTFObjFD))
	e.u32(uint32(a.MapTokenFD))
}

func decodeCreateAttr(d *dec) *engine.MapCreateAttr {
	return &engine.MapCreateAttr{
		MapType:               objects.MapType(d.u32()),
		KeySize:               d.u32(),
		ValueSize:             d.u32(),
		MaxEntries:            d.u32(),
		MapFlags:              d.u32(),
		InnerMapFD:            d.u32(),
		NumaNode:              d.u32(),
		MapName:               d.str(),
		MapIfindex:            d.u32(),
		BTFFD:                 d.u32(),
		BTFKeyTypeID:          d.u32(),
		BTFValueTypeID:        d.u32(),
		BTFVmlinuxValueTypeID: d.u32(),
		MapExtra:              d.u64(),
		ValueTypeBTFObjFD:     int32(d.u32()),
		MapTokenFD:            int32(d.u32()),
	}
}

func encodeInfo(e *enc, in *engine.MapInfo) {
	e.u32(uint32(in.Type))
	e.u32(in.ID)
	e.u32(in.KeySize)
	e.u32(in.ValueSize)
	e.u32(in.MaxEntries)
	e.u32(in.MapFlags)
	e.str(in.Name)
	e.u32(in.Ifindex)
	e.u32(in.BTFVmlinuxValueTypeID)
	e.u64(in.NetnsDev)
	e.u64(in.NetnsIno)
	e.u32(in.BTFID)
	e.u32(in.BTFKeyTypeID)
	e.u32(in.BTFValueTypeID)
	e.u32(in.BTFVmlinuxID)
	e.u64(in.MapExtra)
	frozen := uint32(0)
	if in.Frozen {
		frozen = 1
	}
	e.u32(frozen)
	e.u64(in.Memlock)
}

func decodeInfo(d *dec) engine.MapInfo {
	return engine.MapInfo{
		Type:                  objects.MapType(d.u32()),
		ID:                    d.u32(),
		KeySize:               d.u32(),
		ValueSize:             d.u32(),
		MaxEntries:            d.u32(),
		MapFlags:              d.u32(),
		Name:                  d.str(),
		Ifindex:               d.u32(),
		BTFVmlinuxValueTypeID: d.u32(),
		NetnsDev:              d.u64(),
		NetnsIno:              d.u64(),
		BTFID:                 d.u32(),
		BTFKeyTypeID:          d.u32(),
		BTFValueTypeID:        d.u32(),
		BTFVmlinuxID:          d.u32(),
		MapExtra:              d.u64(),
		Frozen:                d.u32() != 0,
		Memlock:               d.u64(),
	}
}

// encodeBatchIn writes the request side of a batch: every buffer with its contents (keys and
// values are inputs for update/delete and output space for lookups).
func encodeBatchIn(e *enc, a *engine.MapBatchAttr) {
	e.bytes(a.InBatch)
	e.bytes(a.OutBatch)
	e.bytes(a.Keys)
	e.bytes(a.Values)
	e.u32(a.Count)
	e.u64(a.ElemFlags)
	e.u64(a.Flags)
}

func decodeBatchIn(d *dec) *engine.MapBatchAttr {
	return &engine.MapBatchAttr{
		InBatch:   d.bytes(),
		OutBatch:  d.bytes(),
		Keys:      d.bytes(),
		Values:    d.bytes(),
		Count:     d.u32(),
		ElemFlags: d.u64(),
		Flags:     d.u64(),
	}
}

// Error is an error the daemon returned: its text and the errno it wraps.
type Error struct {
	Msg   string
	Errno unix.Errno

	version uint32 // handshake refusals: the version the daemon speaks
}

func (e *Error) Error() string {
	if e.Msg == "" {
		return e.Errno.Error()
	}
	if strings.HasSuffix(e.Msg, e.Errno.Error()) {
		return e.Msg
	}
	return e.Msg + ": " + e.Errno.Error()
}

// Unwrap returns the errno, so errors.Is(err, unix.ENOENT) works across the socket.
func (e *Error) Unwrap() error { return e.Errno }

// errnoOf extracts the errno an engine error wraps (EINVAL when it wraps none).
func errnoOf(err error) unix.Errno {
	var en unix.Errno
	if errors.As(err, &en) {
		return en
	}
	return unix.EINVAL
}
