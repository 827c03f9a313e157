package objects

import (
	"encoding/binary"
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

// fuzzReader hands out bytes of the fuzz input, then zeros.
type fuzzReader struct{ b []byte }

func (r *fuzzReader) byte() byte {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *fuzzReader) u32() uint32 {
	return uint32(r.byte()) | uint32(r.byte())<<8 | uint32(r.byte())<<16 | uint32(r.byte())<<24
}

func (r *fuzzReader) fill(p []byte) {
	n := copy(p, r.b)
	r.b = r.b[n:]
	clear(p[n:])
}

var fuzzTypes = []MapType{
	MapTypeHash, MapTypePercpuHash, MapTypeLRUHash, MapTypeLRUPercpuHash, MapTypeArray,
	MapTypePercpuArray, MapTypeProgArray, MapTypeArrayOfMaps, MapTypeHashOfMaps, MapTypeLPMTrie,
	MapTypeQueue, MapTypeStack, MapTypeBloomFilter, MapTypeRingbuf, MapTypeDevmap, 99,
}

// fuzzSize picks a size: mostly small and valid for some type, sometimes anything.
func fuzzSize(r *fuzzReader) uint32 {
	switch c := r.byte(); c >> 5 {
	case 0, 1, 2:
		return uint32(c & 15)
	case 3, 4:
		return []uint32{0, 4, 8, 5, 260, 261, 16, 1}[c&7]
	case 5:
		return uint32(c&31) * 4
	case 6:
		return uint32(r.byte()) << (c & 15)
	default:
		return r.u32()
	}
}

// fuzzCanonicalAttr builds an attr that is valid, or nearly, for attr.MapType, so that most
// inputs reach the element operations.
func fuzzCanonicalAttr(r *fuzzReader, attr *MapAttr, mode byte) {
	small := func() uint32 { return 1 + uint32(r.byte()%16) }
	attr.NumPossibleCPUs = 1 + int(mode&3)
	attr.ValueSize = small()
	attr.MaxEntries = small()
	switch attr.MapType {
	case MapTypeHash, MapTypePercpuHash, MapTypeLRUHash, MapTypeLRUPercpuHash:
		attr.KeySize = small()
		if mode&4 != 0 {
			if attr.MapType == MapTypeLRUHash || attr.MapType == MapTypeLRUPercpuHash {
				attr.MapFlags |= FNoCommonLRU
			} else {
				attr.MapFlags |= FNoPrealloc
			}
		}
		if mode&8 != 0 {
			attr.MapFlags |= FZeroSeed
			attr.Capable = true
		}
	case MapTypeArray, MapTypePercpuArray:
		attr.KeySize = 4
	case MapTypeProgArray, MapTypeArrayOfMaps:
		attr.KeySize, attr.ValueSize = 4, 4
	case MapTypeHashOfMaps:
		attr.KeySize, attr.ValueSize = small(), 4
		if mode&4 != 0 {
			attr.MapFlags |= FNoPrealloc
		}
	case MapTypeLPMTrie:
		attr.KeySize = 5 + uint32(r.byte()%12)
		if mode&4 != 0 {
			attr.KeySize = 260
		}
		attr.MaxEntries = 1 + uint32(r.byte()%64)
		attr.MapFlags = FNoPrealloc
	case MapTypeBloomFilter:
		attr.MapExtra = uint64(mode>>2) & 0xf
		if mode&0x40 != 0 {
			attr.MapFlags |= FZeroSeed
		}
	case MapTypeRingbuf:
		attr.ValueSize, attr.MaxEntries = 0, 4096<<(mode>>2&3)
	}
	if mode&0x40 != 0 && attr.MapType != MapTypeBloomFilter {
		attr.MapFlags |= FRdonly
	}
}

// fuzzRawAttr takes every attribute from the input.
func fuzzRawAttr(r *fuzzReader, attr *MapAttr) {
	attr.KeySize = fuzzSize(r)
	attr.ValueSize = fuzzSize(r)
	attr.MaxEntries = fuzzSize(r)
	attr.NumPossibleCPUs = 1 + int(r.byte()%4)
	fl := r.byte()
	attr.MapFlags = uint32(r.byte()) | uint32(fl&0x1f)<<8
	if fl&0x20 != 0 {
		attr.MapFlags |= FNoPrealloc
	}
	ex := r.byte()
	attr.MapExtra = uint64(ex & 0x1f)
	attr.Capable = ex&0x20 != 0
	if ex&0x40 != 0 {
		attr.NumaNode = 1
	}
}

// FuzzMapOps decodes a map type, a create attr and a sequence of element operations, and runs
// them. Nothing may panic; errors must be errnos; when the map is released every reference its
// slots took must be back.
func FuzzMapOps(f *testing.F) {
	for i := range fuzzTypes {
		for _, mode := range []byte{0, 5, 0x80} {
			seed := []byte{byte(i), mode, 3, 7, 3, 3, 0}
			x := uint32(i)*131 + uint32(mode)
			for j := 0; j < 120; j++ {
				x = x*1103515245 + 12345
				seed = append(seed, byte(x>>16))
			}
			f.Add(seed)
		}
	}
	// Hand-made seeds that reach deep paths: nested lpm prefixes and fd map slots.
	typeIdx := func(t MapType) byte {
		for i, ft := range fuzzTypes {
			if ft == t {
				return byte(i)
			}
		}
		panic(t)
	}
	k8 := func(plen, a byte) []byte { return []byte{0, 0, 0, 0, a, 0, 0, 0, plen} }
	var lpm []byte
	lpm = append(lpm, typeIdx(MapTypeLPMTrie), 0, 3, 7, 3, 30, 0)
	for _, k := range [][]byte{k8(1, 0x80), k8(8, 0x80), k8(16, 0x81), k8(2, 0), k8(0, 0), k8(32, 0x81), k8(9, 0x81)} {
		lpm = append(append(append(lpm, 0), k...), 1, 2, 3, 4)
	}
	for _, op := range []byte{2, 4, 3, 4, 0x84, 2, 3} {
		lpm = append(append(lpm, op), k8(byte(op)*3, 0x81)...)
		if op == 2 {
			lpm = append(lpm, 1, 2, 3, 4)
		}
	}
	f.Add(lpm)
	for _, tc := range []struct {
		t     MapType
		extra []byte
		fds   []byte
	}{
		{MapTypeArrayOfMaps, nil, []byte{0, 5, 0, 1, 9}},
		{MapTypeHashOfMaps, []byte{3}, []byte{0, 0, 5, 0, 1, 9}},
		{MapTypeProgArray, nil, []byte{6, 7, 6, 0, 10}},
	} {
		seed := append(append([]byte{typeIdx(tc.t), 0, 3, 1}, tc.extra...), 0)
		for i, fd := range tc.fds {
			seed = append(seed, 6, byte(i%2), 0, 0, 0, fd)
			seed = append(seed, 2, byte(i%2), 0, 0, 0, 0, 0, 0, 0)
		}
		seed = append(seed, 3, 0, 0, 0, 0, 7, 0x84, 0, 0, 0, 0, 9, 3, 1, 0, 0, 0)
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &fuzzReader{b: data}

		// A pool of objects the fd resolver knows, built fresh each run.
		pool := []Object{
			newTestMap(t, MapAttr{MapType: MapTypeArray, KeySize: 4, ValueSize: 4, MaxEntries: 4}),
			newTestMap(t, MapAttr{MapType: MapTypeArray, KeySize: 4, ValueSize: 4, MaxEntries: 8, MapFlags: FInnerMap}),
			newTestMap(t, MapAttr{MapType: MapTypeHash, KeySize: 4, ValueSize: 4, MaxEntries: 4}),
			newTestMap(t, MapAttr{MapType: MapTypeQueue, ValueSize: 4, MaxEntries: 4}),
			newTestMap(t, MapAttr{MapType: MapTypeProgArray, KeySize: 4, ValueSize: 4, MaxEntries: 4}),
			newTestMap(t, MapAttr{MapType: MapTypeArray, KeySize: 4, ValueSize: 4, MaxEntries: 8}),
			newFakeProg(7001), newFakeProg(7002),
		}
		pool = append(pool, newTestMap(t, MapAttr{MapType: MapTypeArrayOfMaps, KeySize: 4, ValueSize: 4, MaxEntries: 2, Inner: pool[0].(*Map)}))
		fds := fdTable{}
		for i, o := range pool {
			fds[uint32(i)] = o
		}

		attr := MapAttr{MapType: fuzzTypes[int(r.byte())%len(fuzzTypes)]}
		if mode := r.byte(); mode&0x80 == 0 {
			fuzzCanonicalAttr(r, &attr, mode)
		} else {
			fuzzRawAttr(r, &attr)
		}
		switch in := r.byte(); {
		case in < 0xc0:
			if mm, ok := pool[int(in)%len(pool)].(*Map); ok {
				attr.Inner = mm
			} else {
				attr.InnerErr = unix.EINVAL // an fd that is not a map
			}
		case in < 0xe0:
			attr.InnerErr = unix.EBADF
		}

		budget := int64(32 << 20)
		charge := func(d int64) error {
			if d > budget {
				return unix.ENOMEM
			}
			budget -= d
			return nil
		}
		m, err := NewMap(&attr, charge)
		if err != nil {
			var errno unix.Errno
			if !errors.As(err, &errno) {
				t.Fatalf("create error %v is not an errno", err)
			}
			return
		}
		m.SetID(nextTestID.Add(1))

		var key, next []byte
		if m.KeySize > 0 {
			key, next = make([]byte, m.KeySize), make([]byte, m.KeySize)
		}
		val := make([]byte, m.ValueBufSize())
		fillKey := func() {
			if key == nil {
				return
			}
			r.fill(key)
			if m.Type == MapTypeLPMTrie {
				binary.LittleEndian.PutUint32(key, uint32(r.byte())%(8*(m.KeySize-4)+8))
				// Few distinct addresses, so that prefixes nest and split.
				for i := 4; i < len(key); i++ {
					key[i] &= 0x81
				}
			} else if len(key) > 1 {
				// Few distinct keys, so that operations meet each other.
				for i := 1; i < len(key); i++ {
					key[i] &= 1
				}
			}
		}
		for ops := 0; ops < 256 && len(r.b) > 0; ops++ {
			op := r.byte()
			flags := uint64(op>>4) & 7
			switch op % 10 {
			case 0, 1:
				fillKey()
				r.fill(val)
				_ = m.Update(key, val, flags)
			case 2:
				fillKey()
				r.fill(val)
				_ = m.Lookup(key, val)
			case 3:
				fillKey()
				_ = m.Delete(key)
			case 4:
				fillKey()
				if op&0x80 != 0 {
					_ = m.GetNextKey(nil, next)
				} else {
					_ = m.GetNextKey(key, next)
				}
			case 5:
				fillKey()
				_ = m.LookupAndDelete(key, val, flags&1)
			case 6:
				fillKey()
				fd := make([]byte, 4)
				putU32(fd, uint32(r.byte()%uint8(len(pool)+2)))
				_ = m.UpdateObject(key, fd, flags, fds.resolve)
			case 7:
				if b, ok := m.Batcher(); ok {
					cnt := int(r.byte() % 8)
					keys := make([]byte, cnt*int(m.KeySize))
					vals := make([]byte, cnt*m.ValueBufSize())
					_, _, _ = b.LookupBatch(uint32(r.byte()), keys, vals, cnt, op&0x80 != 0)
				}
			case 8:
				n := 0
				_ = m.Values(func(v []byte) bool { n++; return n < int(op>>4) })
			case 9:
				if l := m.Len(); l < 0 || (m.Type != MapTypeQueue && m.Type != MapTypeStack && uint64(l) > uint64(m.MaxEntries)) {
					t.Fatalf("len %d with max_entries %d", l, m.MaxEntries)
				}
				if m.Type == MapTypeProgArray && op&0x80 != 0 {
					m.Inc()
					m.PutUser() // usercnt 0: prog_array_map_clear
					m.IncUser()
					m.Put()
				}
			}
		}
		m.PutUser()
		m.Release()
		for i, o := range pool {
			var refs int64
			switch o := o.(type) {
			case *Map:
				refs, _ = o.Refs()
			case *fakeProg:
				refs, _ = o.Refs()
			}
			if refs != 1 {
				t.Fatalf("pool object %d has refcnt %d after the map was released, want 1", i, refs)
			}
		}
	})
}
