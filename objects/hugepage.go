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

// makeHugeArena returns a zeroed n-byte buffer, 8-byte aligned. A large one starts on a huge
// page boundary (up to one huge page more is allocated for that; the slack is never touched,
// so never backed by memory) and is advised for huge pages, so that all of it but the tail can
// be: random lookups in a table of millions of elements otherwise miss the TLB on nearly every
// access, and under virtualisation each miss is a two-level page walk.
func makeHugeArena(n int) []byte {
	if n < 2*hugePageSize {
		b := make([]uint64, (n+7)/8)
		if n == 0 {
			return nil
		}
		return unsafe.Slice((*byte)(unsafe.Pointer(&b[0])), n)
	}
	b := make([]byte, n+hugePageSize)
	off := int((hugePageSize - uintptr(unsafe.Pointer(&b[0]))%hugePageSize) % hugePageSize)
	b = b[off : off+n : off+n]
	adviseHugePages(unsafe.Pointer(&b[0]), uintptr(n))
	return b
}
