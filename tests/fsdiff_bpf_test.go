package tests

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Raw bpf(2) helpers for the kernel side of the differential tests. They use the uapi layout of
// union bpf_attr directly, so the errnos seen are exactly the kernel's.

const (
	fsCmdMapCreate = 0
	fsCmdObjPin    = 6
	fsCmdObjGet    = 7

	fsMapTypeHash = 1

	fsFRdonly  = 1 << 3
	fsFWronly  = 1 << 4
	fsFPathFD  = 1 << 14
	fsAttrSize = 128
)

func fsBPF(cmd int, attr *[fsAttrSize]byte) (int, unix.Errno) {
	r, _, errno := unix.Syscall(unix.SYS_BPF, uintptr(cmd), uintptr(unsafe.Pointer(attr)), fsAttrSize)
	return int(r), errno
}

func fsPut32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}

// kernelMapCreate creates a kernel map (BPF_MAP_CREATE) and returns its fd.
func kernelMapCreate(mapType, keySize, valueSize, maxEntries uint32) (int, error) {
	var attr [fsAttrSize]byte
	fsPut32(attr[0:], mapType)
	fsPut32(attr[4:], keySize)
	fsPut32(attr[8:], valueSize)
	fsPut32(attr[12:], maxEntries)
	fd, errno := fsBPF(fsCmdMapCreate, &attr)
	if errno != 0 {
		return -1, errno
	}
	return fd, nil
}

// kernelObjPin pins fd at path (BPF_OBJ_PIN: pathname u64 at 0, bpf_fd u32 at 8, file_flags u32 at
// 12).
func kernelObjPin(fd int, path string, fileFlags uint32) error {
	p, err := unix.BytePtrFromString(path)
	if err != nil {
		return err
	}
	var attr [fsAttrSize]byte
	*(*uint64)(unsafe.Pointer(&attr[0])) = uint64(uintptr(unsafe.Pointer(p)))
	fsPut32(attr[8:], uint32(fd))
	fsPut32(attr[12:], fileFlags)
	_, errno := fsBPF(fsCmdObjPin, &attr)
	if errno != 0 {
		return errno
	}
	return nil
}

// kernelObjGet opens the object pinned at path (BPF_OBJ_GET) and returns the new fd.
func kernelObjGet(path string, fileFlags uint32) (int, error) {
	p, err := unix.BytePtrFromString(path)
	if err != nil {
		return -1, err
	}
	var attr [fsAttrSize]byte
	*(*uint64)(unsafe.Pointer(&attr[0])) = uint64(uintptr(unsafe.Pointer(p)))
	fsPut32(attr[12:], fileFlags)
	fd, errno := fsBPF(fsCmdObjGet, &attr)
	if errno != 0 {
		return -1, errno
	}
	return fd, nil
}

// kernelPinErr creates a small hash map and pins it at path on the kernel's bpffs, under the given
// umask (the kernel applies the caller's umask to the pin's mode).
func kernelPinErr(path string, umask int) error {
	fd, err := kernelMapCreate(fsMapTypeHash, 4, 8, 4)
	if err != nil {
		return fmt.Errorf("BPF_MAP_CREATE: %w", err)
	}
	defer unix.Close(fd)
	old := unix.Umask(umask)
	defer unix.Umask(old)
	return kernelObjPin(fd, path, 0)
}

// kernelGetErr opens the object pinned at path with BPF_OBJ_GET (file_flags 0).
func kernelGetErr(path string) error {
	fd, err := kernelObjGet(path, 0)
	if err == nil {
		unix.Close(fd)
	}
	return err
}
