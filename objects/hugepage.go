package objects

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// hugePageSize is the x86-64 and arm64 (4 KiB granule) transparent huge page size.
const hugePageSize = 2 << 20

// adviseHugePages asks Linux to back the 2 MiB-aligned interior of a large buffer with
// transparent huge pages (madvise MADV_HUGEPAGE; it takes effect where the pages are first
// touched afterwards, so call it right after allocating). Random lookups in a table of
// millions of elements otherwise miss the TLB on nearly every access. Small buffers, and
// kernels without THP, are left alone; the advice is only a hint.
func adviseHugePages(p unsafe.Pointer, n uintptr) {
	if n < 2*hugePageSize {
		return
	}
	start := (uintptr(p) + hugePageSize - 1) &^ (hugePageSize - 1)
	end := (uintptr(p) + n) &^ (hugePageSize - 1)
	if end <= start {
		return
	}
	_ = unix.Madvise(unsafe.Slice((*byte)(unsafe.Add(p, start-uintptr(p))), end-start), unix.MADV_HUGEPAGE)
}

// makeHugeBytes returns a zeroed n-byte buffer advised for huge pages when it is large.
func makeHugeBytes(n int) []byte {
	b := make([]byte, n)
	if n > 0 {
		adviseHugePages(unsafe.Pointer(&b[0]), uintptr(n))
	}
	return b
}

// makeHugeU32s returns a zeroed []uint32 of n elements advised for huge pages when it is large.
func makeHugeU32s(n int) []uint32 {
	b := make([]uint32, n)
	if n > 0 {
		adviseHugePages(unsafe.Pointer(&b[0]), uintptr(n)*4)
	}
	return b
}

// makeHugeLinks returns n zeroed hash chain links advised for huge pages when large.
func makeHugeLinks(n int) []htabLink {
	b := make([]htabLink, n)
	if n > 0 {
		adviseHugePages(unsafe.Pointer(&b[0]), uintptr(n)*unsafe.Sizeof(htabLink{}))
	}
	return b
}
