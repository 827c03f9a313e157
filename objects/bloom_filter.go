package objects

import (
	"fmt"
	"math/bits"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// BPF_MAP_TYPE_BLOOM_FILTER (kernel/bpf/bloom_filter.c).

const bloomCreateFlags = FNumaNode | FZeroSeed | accessFlagsMask

var (
	errBloomAbsent = fmt.Errorf("value not in the bloom filter: %w", unix.ENOENT)
	errBloomFlags  = fmt.Errorf("bloom filter push takes BPF_ANY only: %w", unix.EINVAL)
	errBloomOp     = fmt.Errorf("bloom filters support only push and peek: %w", unix.EOPNOTSUPP)
	errBloomKeyed  = fmt.Errorf("bloom filters have no keys: %w", unix.EINVAL)
)

func init() {
	registerMapType(MapTypeBloomFilter, &mapType{
		allocCheck:     bloomAllocCheck,
		allocAttrCheck: bloomAttrCheck,
		alloc:          bloomAlloc,
		memUsage:       bloomMemUsage,
	})
}

// bloomAllocCheck is kernel/bpf/bloom_filter.c:bloom_map_alloc_check.
func bloomAllocCheck(attr *MapAttr) error {
	if attr.ValueSize > kmallocMaxSize {
		return fmt.Errorf("value_size larger than KMALLOC_MAX_SIZE: %w", unix.E2BIG)
	}
	return nil
}

// bloomAttrCheck is the attribute check of kernel/bpf/bloom_filter.c:bloom_map_alloc (its
// bpf_capable() test is the engine's permission step). The low 4 bits of map_extra are the
// number of hash functions; any other bit is EINVAL.
//
// BPF_F_ZERO_SEED needs no CAP_SYS_ADMIN here, unlike for hash maps: bloom_map_alloc does not
// check it.
func bloomAttrCheck(attr *MapAttr) error {
	if attr.KeySize != 0 || attr.ValueSize == 0 || attr.MaxEntries == 0 ||
		attr.MapFlags&^bloomCreateFlags != 0 || !flagsAccessOK(attr.MapFlags) ||
		attr.MapExtra&^0xF != 0 {
		return fmt.Errorf("bloom_filter needs key_size 0, value_size > 0, max_entries > 0, valid flags and map_extra <= 15: %w",
			unix.EINVAL)
	}
	return nil
}

// bloomGeometry computes the hash-function count and the bit mask as
// kernel/bpf/bloom_filter.c:bloom_map_alloc does: nr_bits = max_entries * nr_hash_funcs / 5 * 7
// (7/5 approximating 1/ln 2), rounded up to a power of two and at least 64; on u32 overflow or
// above 2^31, 2^32 bits.
func bloomGeometry(maxEntries uint32, extra uint64) (nrHash uint32, mask uint32, nBits uint64) {
	nrHash = uint32(extra & 0xF)
	if nrHash == 0 {
		nrHash = 5
	}
	prod := uint64(maxEntries) * uint64(nrHash)
	if prod > 1<<32-1 || prod/5*7 > 1<<32-1 || prod/5*7 > 1<<31 {
		return nrHash, 1<<32 - 1, 1 << 32
	}
	n := prod / 5 * 7
	if n <= 64 {
		n = 64
	} else {
		n = 1 << bits.Len64(n-1)
	}
	return nrHash, uint32(n - 1), n
}

func bloomMemUsage(m *Map) uint64 {
	_, _, n := bloomGeometry(m.MaxEntries, m.Extra)
	return 64 + n/8
}

// bloomFilter is struct bpf_bloom_filter. The bit set is updated with atomic ORs and read with
// atomic loads, so push and peek need no lock (the kernel uses set_bit and test_bit).
type bloomFilter struct {
	bitset    []uint64
	mask      uint32
	seed      uint32
	nrHash    uint32
	valueSize int
	aligned   bool // value_size % 4 == 0: jhash2 over u32 words, else jhash over bytes
}

// bloomAlloc is kernel/bpf/bloom_filter.c:bloom_map_alloc.
func bloomAlloc(m *Map, attr *MapAttr) (mapOps, error) {
	nrHash, mask, n := bloomGeometry(attr.MaxEntries, attr.MapExtra)
	b := &bloomFilter{
		bitset:    make([]uint64, n/64),
		mask:      mask,
		nrHash:    nrHash,
		valueSize: int(attr.ValueSize),
		aligned:   attr.ValueSize%4 == 0,
	}
	if attr.MapFlags&FZeroSeed == 0 {
		b.seed = randomU32()
	}
	return b, nil
}

// hash is kernel/bpf/bloom_filter.c:hash: bit index of value for hash function i.
func (b *bloomFilter) hash(value []byte, i uint32) uint32 {
	var h uint32
	if b.aligned {
		h = jhash2(value, b.seed+i)
	} else {
		h = jhash(value, b.seed+i)
	}
	return h & b.mask
}

// lookup is kernel/bpf/bloom_filter.c:bloom_map_peek_elem: value is the input; 0 if it may be
// present, ENOENT if it certainly is not. value is not written.
func (b *bloomFilter) lookup(key, value []byte) error {
	if len(key) != 0 {
		return errBloomKeyed
	}
	for i := uint32(0); i < b.nrHash; i++ {
		h := b.hash(value, i)
		if atomic.LoadUint64(&b.bitset[h/64])&(1<<(h%64)) == 0 {
			return errBloomAbsent
		}
	}
	return nil
}

// update is kernel/bpf/bloom_filter.c:bloom_map_push_elem: flags must be BPF_ANY. A bloom
// filter never fills up.
func (b *bloomFilter) update(key, value []byte, flags uint64) error {
	if len(key) != 0 {
		return errBloomKeyed
	}
	if flags != Any {
		return errBloomFlags
	}
	for i := uint32(0); i < b.nrHash; i++ {
		h := b.hash(value, i)
		atomic.OrUint64(&b.bitset[h/64], 1<<(h%64))
	}
	return nil
}

// delete is kernel/bpf/bloom_filter.c:bloom_map_delete_elem.
func (b *bloomFilter) delete(key []byte) error { return errBloomOp }

// getNextKey is kernel/bpf/bloom_filter.c:bloom_map_get_next_key.
func (b *bloomFilter) getNextKey(key, next []byte) error { return errBloomOp }

// lookupAndDelete: kernel/bpf/syscall.c:map_lookup_and_delete_elem rejects the bloom filter
// with ENOTSUPP before bloom_map_pop_elem (EOPNOTSUPP) could run.
func (b *bloomFilter) lookupAndDelete(key, value []byte, flags uint64) error { return errNotSupp }

// count is 0: a bloom filter does not know how many values it holds.
func (b *bloomFilter) count() int { return 0 }
func (b *bloomFilter) free()      {}
