package objects

import (
	"encoding/binary"
	"testing"
)

func benchLPM(b *testing.B, n int) (*Map, [][]byte) {
	m := newTestMap(b, MapAttr{MapType: MapTypeLPMTrie, KeySize: 8, ValueSize: 8, MaxEntries: uint32(n), MapFlags: FNoPrealloc})
	keys := make([][]byte, 0, n)
	x := uint32(12345)
	for i := 0; i < n; i++ {
		x = x*1664525 + 1013904223
		k := make([]byte, 8)
		binary.LittleEndian.PutUint32(k, 8+x%25)
		binary.BigEndian.PutUint32(k[4:], x)
		if m.Update(k, u64(uint64(i)), Any) == nil {
			keys = append(keys, k)
		}
	}
	return m, keys
}

// BenchmarkLPMLookup measures longest-prefix lookups of /32 addresses in a trie of 64k prefixes.
func BenchmarkLPMLookup(b *testing.B) {
	m, keys := benchLPM(b, 1<<16)
	v := make([]byte, 8)
	q := make([]byte, 8)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		copy(q, keys[i%len(keys)])
		binary.LittleEndian.PutUint32(q, 32)
		_ = m.Lookup(q, v)
	}
}

func BenchmarkLPMLookupParallel(b *testing.B) {
	m, keys := benchLPM(b, 1<<16)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		v, q := make([]byte, 8), make([]byte, 8)
		for i := 0; pb.Next(); i++ {
			copy(q, keys[i%len(keys)])
			binary.LittleEndian.PutUint32(q, 32)
			_ = m.Lookup(q, v)
		}
	})
}

func BenchmarkLPMUpdate(b *testing.B) {
	m, keys := benchLPM(b, 1<<16)
	v := make([]byte, 8)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = m.Update(keys[i%len(keys)], v, Exist)
	}
}

func BenchmarkLPMGetNextKey(b *testing.B) {
	m, keys := benchLPM(b, 1<<16)
	next := make([]byte, 8)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = m.GetNextKey(keys[i%len(keys)], next)
	}
}

func BenchmarkQueuePushPop(b *testing.B) {
	m := newTestMap(b, MapAttr{MapType: MapTypeQueue, ValueSize: 8, MaxEntries: 1024})
	v := make([]byte, 8)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_ = m.Update(nil, v, Any)
		_ = m.LookupAndDelete(nil, v, 0)
	}
}

func BenchmarkBloomPeek(b *testing.B) {
	m := newTestMap(b, MapAttr{MapType: MapTypeBloomFilter, ValueSize: 8, MaxEntries: 1 << 16})
	for i := 0; i < 1<<16; i++ {
		_ = m.Update(nil, u64(uint64(i)), Any)
	}
	v := make([]byte, 8)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		binary.LittleEndian.PutUint64(v, uint64(i))
		_ = m.Lookup(nil, v)
	}
}

func BenchmarkHashLookupMiss(b *testing.B) {
	m := newTestMap(b, MapAttr{MapType: MapTypeHash, KeySize: 4, ValueSize: 8, MaxEntries: 1024})
	v := make([]byte, 8)
	k := make([]byte, 4)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		putU32(k, uint32(i))
		_ = m.Lookup(k, v)
	}
}
