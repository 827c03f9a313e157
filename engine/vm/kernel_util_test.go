package vm_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/bpffs-fuse/bpffs-fuse/engine/vm"
)

// Raw bpf(2) for the kernel differential tests and benchmarks: no library
// rewrites the instructions between us and the kernel.
// include/uapi/linux/bpf.h: union bpf_attr (BPF_PROG_LOAD, BPF_PROG_TEST_RUN).
const (
	bpfProgLoad       = 5
	bpfProgTestRun    = 10
	progTypeSocketFlt = 1
	progTypeXDP       = 6
)

func bpfSys(cmd int, attr []byte) (uintptr, error) {
	r, _, errno := unix.Syscall(unix.SYS_BPF, uintptr(cmd), uintptr(unsafe.Pointer(&attr[0])), uintptr(len(attr)))
	runtime.KeepAlive(attr)
	if errno != 0 {
		return 0, errno
	}
	return r, nil
}

func put32(b []byte, off int, v uint32) { *(*uint32)(unsafe.Pointer(&b[off])) = v }
func put64(b []byte, off int, v uint64) { *(*uint64)(unsafe.Pointer(&b[off])) = v }
func get32(b []byte, off int) uint32    { return *(*uint32)(unsafe.Pointer(&b[off])) }

// kernelVerifierError is a PROG_LOAD rejection with the verifier log.
type kernelVerifierError struct {
	Errno unix.Errno
	Log   string
}

func (e *kernelVerifierError) Error() string {
	return fmt.Sprintf("kernel: %v: %s", e.Errno, e.Log)
}

// kernelLoad loads raw instructions; the returned fd must be closed. Like
// libbpf it loads without a log first and asks for the log only on failure
// (a log can overflow on long verifications: ENOSPC).
func kernelLoad(progType uint32, insns []vm.Insn) (int, error) {
	fd, err := kernelLoadLog(progType, insns, 0)
	if err == nil {
		return fd, nil
	}
	return kernelLoadLog(progType, insns, 1)
}

func kernelLoadLog(progType uint32, insns []vm.Insn, level uint32) (int, error) {
	fd, _, err := kernelLoadWithLog(progType, insns, level)
	return fd, err
}

// kernelLoadWithLog loads with the given log level and returns the log too.
func kernelLoadWithLog(progType uint32, insns []vm.Insn, level uint32) (int, string, error) {
	code := vm.Encode(insns)
	lic := []byte("GPL\x00")
	logBuf := make([]byte, 1<<20)
	attr := make([]byte, 128)
	put32(attr, 0, progType)
	put32(attr, 4, uint32(len(insns)))
	put64(attr, 8, uint64(uintptr(unsafe.Pointer(&code[0]))))
	put64(attr, 16, uint64(uintptr(unsafe.Pointer(&lic[0]))))
	if level > 0 {
		put32(attr, 24, level)
		put32(attr, 28, uint32(len(logBuf)))
		put64(attr, 32, uint64(uintptr(unsafe.Pointer(&logBuf[0]))))
	}
	fd, err := bpfSys(bpfProgLoad, attr)
	// EAGAIN is transient (the kernel asks to retry, e.g. under memory
	// pressure from concurrent loads); libbpf retries too.
	for try := 0; err == unix.EAGAIN && try < 5; try++ {
		fd, err = bpfSys(bpfProgLoad, attr)
	}
	runtime.KeepAlive(code)
	runtime.KeepAlive(lic)
	runtime.KeepAlive(logBuf)
	if err != nil {
		if i := bytes.IndexByte(logBuf, 0); i >= 0 {
			logBuf = logBuf[:i]
		}
		return -1, string(logBuf), &kernelVerifierError{Errno: err.(unix.Errno), Log: string(logBuf)}
	}
	if i := bytes.IndexByte(logBuf, 0); i >= 0 {
		logBuf = logBuf[:i]
	}
	return int(fd), string(logBuf), nil
}

// kernelTestRun runs BPF_PROG_TEST_RUN; it returns retval and the average
// duration in ns reported by the kernel.
func kernelTestRun(fd int, data []byte, repeat uint32) (uint32, uint32, error) {
	out := make([]byte, len(data)+256)
	attr := make([]byte, 128)
	put32(attr, 0, uint32(fd))
	put32(attr, 8, uint32(len(data)))
	put32(attr, 12, uint32(len(out)))
	put64(attr, 16, uint64(uintptr(unsafe.Pointer(&data[0]))))
	put64(attr, 24, uint64(uintptr(unsafe.Pointer(&out[0]))))
	put32(attr, 32, repeat)
	_, err := bpfSys(bpfProgTestRun, attr)
	runtime.KeepAlive(data)
	runtime.KeepAlive(out)
	if err != nil {
		return 0, 0, err
	}
	return get32(attr, 4), get32(attr, 36), nil
}

var (
	kernelOnce sync.Once
	kernelErr  error
)

// requireKernel skips (or with BPFFS_REQUIRE_KERNEL=1 fails) unless this
// process can load and test-run an XDP program.
func requireKernel(t testing.TB) {
	t.Helper()
	kernelOnce.Do(func() {
		fd, err := kernelLoad(progTypeXDP, []vm.Insn{{Op: vm.ClassALU64 | vm.AluMov, Imm: 2}, {Op: vm.ClassJMP | vm.JmpExit}})
		if err != nil {
			kernelErr = err
			return
		}
		defer unix.Close(fd)
		if _, _, err := kernelTestRun(fd, make([]byte, 64), 1); err != nil {
			kernelErr = fmt.Errorf("BPF_PROG_TEST_RUN: %w", err)
		}
	})
	if kernelErr == nil {
		return
	}
	reason := fmt.Sprintf("kernel BPF unavailable (need root/CAP_BPF+CAP_NET_ADMIN): %v", kernelErr)
	var ve *kernelVerifierError
	if errors.As(kernelErr, &ve) {
		reason = fmt.Sprintf("kernel BPF unavailable: %v", ve.Errno)
	}
	if os.Getenv("BPFFS_REQUIRE_KERNEL") == "1" {
		t.Fatal(reason)
	}
	t.Skip(reason)
}
