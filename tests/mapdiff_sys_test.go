package tests

import (
	"encoding/binary"
	"errors"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/bpffs-fuse/bpffs-fuse/engine"
	"github.com/bpffs-fuse/bpffs-fuse/objects"
)

// This file gives the map differential tests two interchangeable bpf(2) back ends: the running
// kernel through raw bpf(2) syscalls with a hand-laid union bpf_attr (so NULL pointers and exact
// errnos are under the test's control), and the engine through a Process. Both take and return
// plain byte slices; a nil slice is a NULL pointer.

// bpf(2) command numbers (enum bpf_cmd, include/uapi/linux/bpf.h).
const (
	cmdMapCreate             = 0
	cmdMapLookupElem         = 1
	cmdMapUpdateElem         = 2
	cmdMapDeleteElem         = 3
	cmdMapGetNextKey         = 4
	cmdMapGetNextID          = 12
	cmdMapGetFDByID          = 14
	cmdObjGetInfoByFD        = 15
	cmdMapLookupAndDelete    = 21
	cmdMapFreeze             = 22
	cmdMapLookupBatch        = 24
	cmdMapLookupAndDelBatch  = 25
	cmdMapUpdateBatch        = 26
	cmdMapDeleteBatch        = 27
	bpfAttrSize              = 128 // ≤ sizeof(union bpf_attr): the kernel zero-fills the rest
	kernelScratch            = 1 << 16
	mapInfoSize              = 104 // sizeof(struct bpf_map_info) in 6.18
	mapInfoNameOff           = 24
	mapInfoExtraOff          = 80
	createNameOff            = 28
	createExtraOff           = 64
	createInnerFDOff         = 20
	createNumaOff            = 24
	createFlagsOff           = 16
	batchCountOff            = 32
	elemKeyOff, elemValueOff = 8, 16
)

// createAttr is the BPF_MAP_CREATE attr the differential tests use (the fields they vary).
type createAttr struct {
	Type       objects.MapType
	KeySize    uint32
	ValueSize  uint32
	MaxEntries uint32
	Flags      uint32
	InnerFD    uint32 // this back end's fd
	NumaNode   uint32
	Name       string
	Extra      uint64
}

// batchArgs is a batch command's attr; Count is in/out. InBatch nil is NULL.
type batchArgs struct {
	InBatch, OutBatch, Keys, Values []byte
	Count                           uint32
	ElemFlags, Flags                uint64
}

// mapInfo is the part of bpf_map_info the tests compare.
type mapInfo struct {
	Type                               objects.MapType
	ID, KeySize, ValueSize, MaxEntries uint32
	Flags                              uint32
	Name                               string
	Extra                              uint64
}

// backend is one implementation of the map commands of bpf(2).
type backend interface {
	name() string
	create(a createAttr) (int, unix.Errno)
	// elem runs lookup, update, delete, get_next_key or lookup_and_delete. key nil is NULL;
	// value is the value or next_key buffer.
	elem(cmd, fd int, key, value []byte, flags uint64) unix.Errno
	batch(cmd, fd int, b *batchArgs) unix.Errno
	freeze(fd int) unix.Errno
	nextID(start uint32) (uint32, unix.Errno)
	fdByID(id, openFlags uint32) (int, unix.Errno)
	info(fd int) (mapInfo, unix.Errno)
	close(fd int)
}

// kernelBackend is the running kernel. Every buffer the kernel reads or writes is a heap scratch
// buffer owned by the back end, so no pointer handed to the kernel can move.
type kernelBackend struct {
	attr                            *[bpfAttrSize]byte
	key, val, in, out, keys, values []byte
	fds                             map[int]bool
}

func newKernelBackend(t testing.TB) *kernelBackend {
	k := &kernelBackend{
		attr: new([bpfAttrSize]byte),
		key:  make([]byte, kernelScratch), val: make([]byte, kernelScratch),
		in: make([]byte, kernelScratch), out: make([]byte, kernelScratch),
		keys: make([]byte, kernelScratch), values: make([]byte, kernelScratch),
		fds: map[int]bool{},
	}
	t.Cleanup(func() {
		for fd := range k.fds {
			unix.Close(fd)
		}
	})
	return k
}

func (k *kernelBackend) name() string { return "kernel" }

func (k *kernelBackend) reset() { *k.attr = [bpfAttrSize]byte{} }

func (k *kernelBackend) put32(off int, v uint32) { binary.LittleEndian.PutUint32(k.attr[off:], v) }
func (k *kernelBackend) put64(off int, v uint64) { binary.LittleEndian.PutUint64(k.attr[off:], v) }

// ptr copies b into the scratch buffer (grown as needed) and returns its address, or 0 for nil.
func ptr(scratch *[]byte, b []byte) uint64 {
	if b == nil {
		return 0
	}
	if len(b) > len(*scratch) {
		*scratch = make([]byte, len(b))
	}
	copy(*scratch, b)
	return uint64(uintptr(unsafe.Pointer(&(*scratch)[0])))
}

func (k *kernelBackend) sys(cmd int) (uintptr, unix.Errno) {
	r, _, errno := unix.Syscall(unix.SYS_BPF, uintptr(cmd), uintptr(unsafe.Pointer(k.attr)), bpfAttrSize)
	runtime.KeepAlive(k)
	return r, errno
}

func (k *kernelBackend) create(a createAttr) (int, unix.Errno) {
	k.reset()
	k.put32(0, uint32(a.Type))
	k.put32(4, a.KeySize)
	k.put32(8, a.ValueSize)
	k.put32(12, a.MaxEntries)
	k.put32(createFlagsOff, a.Flags)
	k.put32(createInnerFDOff, a.InnerFD)
	k.put32(createNumaOff, a.NumaNode)
	copy(k.attr[createNameOff:createNameOff+16], a.Name) // no NUL within 16 bytes: EINVAL
	k.put64(createExtraOff, a.Extra)
	fd, errno := k.sys(cmdMapCreate)
	if errno != 0 {
		return -1, errno
	}
	k.fds[int(fd)] = true
	return int(fd), 0
}

func (k *kernelBackend) elem(cmd, fd int, key, value []byte, flags uint64) unix.Errno {
	k.reset()
	k.put32(0, uint32(fd))
	k.put64(elemKeyOff, ptr(&k.key, key))
	if cmd != cmdMapDeleteElem {
		// BPF_MAP_DELETE_ELEM_LAST_FIELD is key: a value pointer would fail CHECK_ATTR.
		k.put64(elemValueOff, ptr(&k.val, value))
	}
	if cmd != cmdMapDeleteElem && cmd != cmdMapGetNextKey {
		k.put64(24, flags)
	}
	_, errno := k.sys(cmd)
	if value != nil {
		copy(value, k.val)
	}
	return errno
}

func (k *kernelBackend) batch(cmd, fd int, b *batchArgs) unix.Errno {
	k.reset()
	k.put64(0, ptr(&k.in, b.InBatch))
	k.put64(8, ptr(&k.out, b.OutBatch))
	k.put64(16, ptr(&k.keys, b.Keys))
	k.put64(24, ptr(&k.values, b.Values))
	k.put32(batchCountOff, b.Count)
	k.put32(36, uint32(fd))
	k.put64(40, b.ElemFlags)
	k.put64(48, b.Flags)
	_, errno := k.sys(cmd)
	copy(b.OutBatch, k.out)
	copy(b.Keys, k.keys)
	copy(b.Values, k.values)
	b.Count = binary.LittleEndian.Uint32(k.attr[batchCountOff:])
	return errno
}

func (k *kernelBackend) freeze(fd int) unix.Errno {
	k.reset()
	k.put32(0, uint32(fd))
	_, errno := k.sys(cmdMapFreeze)
	return errno
}

func (k *kernelBackend) nextID(start uint32) (uint32, unix.Errno) {
	k.reset()
	k.put32(0, start)
	_, errno := k.sys(cmdMapGetNextID)
	return binary.LittleEndian.Uint32(k.attr[4:]), errno
}

func (k *kernelBackend) fdByID(id, openFlags uint32) (int, unix.Errno) {
	k.reset()
	k.put32(0, id)
	k.put32(8, openFlags)
	fd, errno := k.sys(cmdMapGetFDByID)
	if errno != 0 {
		return -1, errno
	}
	k.fds[int(fd)] = true
	return int(fd), 0
}

func (k *kernelBackend) info(fd int) (mapInfo, unix.Errno) {
	k.reset()
	clear(k.val[:mapInfoSize])
	k.put32(0, uint32(fd))
	k.put32(4, mapInfoSize)
	k.put64(8, ptr(&k.val, k.val[:mapInfoSize]))
	if _, errno := k.sys(cmdObjGetInfoByFD); errno != 0 {
		return mapInfo{}, errno
	}
	v := k.val
	name := v[mapInfoNameOff : mapInfoNameOff+16]
	if i := strings.IndexByte(string(name), 0); i >= 0 {
		name = name[:i]
	}
	return mapInfo{
		Type: objects.MapType(le32(v[0:])), ID: le32(v[4:]), KeySize: le32(v[8:]),
		ValueSize: le32(v[12:]), MaxEntries: le32(v[16:]), Flags: le32(v[20:]),
		Name: string(name), Extra: binary.LittleEndian.Uint64(v[mapInfoExtraOff:]),
	}, 0
}

func (k *kernelBackend) close(fd int) {
	delete(k.fds, fd)
	unix.Close(fd)
}

func le32(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }

// engineBackend is the engine, through one Process with root's credentials.
type engineBackend struct {
	t   testing.TB
	eng *engine.Engine
	p   *engine.Process
}

// newEngineBackend returns an engine with the default configuration: its NumPossibleCPUs must
// be the host's num_possible_cpus() by itself.
func newEngineBackend(t testing.TB) *engineBackend {
	eng := engine.New(engine.Config{})
	p := eng.NewProcess(engine.Root())
	t.Cleanup(p.Exit)
	return &engineBackend{t: t, eng: eng, p: p}
}

func (e *engineBackend) name() string { return "engine" }

// errno extracts the unix.Errno an engine error wraps; an error without one fails the test.
func (e *engineBackend) errno(err error) unix.Errno {
	if err == nil {
		return 0
	}
	var en unix.Errno
	if !errors.As(err, &en) {
		e.t.Fatalf("engine error without an errno: %v", err)
	}
	return en
}

func (e *engineBackend) create(a createAttr) (int, unix.Errno) {
	fd, err := e.p.MapCreate(&engine.MapCreateAttr{
		MapType: a.Type, KeySize: a.KeySize, ValueSize: a.ValueSize, MaxEntries: a.MaxEntries,
		MapFlags: a.Flags, InnerMapFD: a.InnerFD, NumaNode: a.NumaNode, MapName: a.Name,
		MapExtra: a.Extra,
	})
	return fd, e.errno(err)
}

func (e *engineBackend) elem(cmd, fd int, key, value []byte, flags uint64) unix.Errno {
	var err error
	switch cmd {
	case cmdMapLookupElem:
		err = e.p.MapLookupElem(fd, key, value, flags)
	case cmdMapUpdateElem:
		err = e.p.MapUpdateElem(fd, key, value, flags)
	case cmdMapDeleteElem:
		err = e.p.MapDeleteElem(fd, key)
	case cmdMapGetNextKey:
		err = e.p.MapGetNextKey(fd, key, value)
	case cmdMapLookupAndDelete:
		err = e.p.MapLookupAndDeleteElem(fd, key, value, flags)
	default:
		e.t.Fatalf("engine back end: command %d is not an element command", cmd)
	}
	return e.errno(err)
}

func (e *engineBackend) batch(cmd, fd int, b *batchArgs) unix.Errno {
	a := &engine.MapBatchAttr{
		InBatch: b.InBatch, OutBatch: b.OutBatch, Keys: b.Keys, Values: b.Values,
		Count: b.Count, ElemFlags: b.ElemFlags, Flags: b.Flags,
	}
	var err error
	switch cmd {
	case cmdMapLookupBatch:
		err = e.p.MapLookupBatch(fd, a)
	case cmdMapLookupAndDelBatch:
		err = e.p.MapLookupAndDeleteBatch(fd, a)
	case cmdMapUpdateBatch:
		err = e.p.MapUpdateBatch(fd, a)
	case cmdMapDeleteBatch:
		err = e.p.MapDeleteBatch(fd, a)
	}
	b.Count = a.Count
	return e.errno(err)
}

func (e *engineBackend) freeze(fd int) unix.Errno { return e.errno(e.p.MapFreeze(fd)) }

func (e *engineBackend) nextID(start uint32) (uint32, unix.Errno) {
	id, err := e.p.MapGetNextID(start)
	return id, e.errno(err)
}

func (e *engineBackend) fdByID(id, openFlags uint32) (int, unix.Errno) {
	fd, err := e.p.MapGetFDByID(id, openFlags)
	return fd, e.errno(err)
}

func (e *engineBackend) info(fd int) (mapInfo, unix.Errno) {
	mi, err := e.p.MapGetInfoByFD(fd)
	if err != nil {
		return mapInfo{}, e.errno(err)
	}
	return mapInfo{
		Type: mi.Type, ID: mi.ID, KeySize: mi.KeySize, ValueSize: mi.ValueSize,
		MaxEntries: mi.MaxEntries, Flags: mi.MapFlags, Name: mi.Name, Extra: mi.MapExtra,
	}, 0
}

func (e *engineBackend) close(fd int) { _ = e.p.Close(fd) }

// possibleCPUs is num_possible_cpus() from /sys/devices/system/cpu/possible ("0-1", "0,2-3").
func possibleCPUs(t testing.TB) int {
	b, err := os.ReadFile("/sys/devices/system/cpu/possible")
	if err != nil {
		t.Fatalf("reading possible CPUs: %v", err)
	}
	n := 0
	for _, part := range strings.Split(strings.TrimSpace(string(b)), ",") {
		lo, hi, found := strings.Cut(part, "-")
		a, err1 := strconv.Atoi(lo)
		z := a
		var err2 error
		if found {
			z, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || z < a {
			t.Fatalf("parsing /sys/devices/system/cpu/possible %q", b)
		}
		n += z - a + 1
	}
	return n
}
