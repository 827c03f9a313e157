package objects

import (
	"encoding/binary"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

const (
	raceWriters = 4
	raceKeys    = 64 // per writer
	raceRounds  = 30
)

// keyed maps: each writer owns keys w*raceKeys .. (w+1)*raceKeys-1 and writes round r's value;
// at the end every key holds its writer's last round. Readers run lookups, get_next_key walks
// and batches meanwhile.
func TestConcurrentKeyedMaps(t *testing.T) {
	for _, attr := range []MapAttr{
		{MapType: MapTypeHash, KeySize: 4, ValueSize: 8, MaxEntries: raceWriters * raceKeys},
		{MapType: MapTypeHash, KeySize: 4, ValueSize: 8, MaxEntries: raceWriters * raceKeys, MapFlags: FNoPrealloc},
		{MapType: MapTypePercpuHash, KeySize: 4, ValueSize: 8, MaxEntries: raceWriters * raceKeys},
		{MapType: MapTypeLRUHash, KeySize: 4, ValueSize: 8, MaxEntries: raceWriters * raceKeys},
		{MapType: MapTypeLRUPercpuHash, KeySize: 4, ValueSize: 8, MaxEntries: raceWriters * raceKeys},
		{MapType: MapTypeArray, KeySize: 4, ValueSize: 8, MaxEntries: raceWriters * raceKeys},
		{MapType: MapTypePercpuArray, KeySize: 4, ValueSize: 8, MaxEntries: raceWriters * raceKeys},
		{MapType: MapTypeLPMTrie, KeySize: 8, ValueSize: 8, MaxEntries: raceWriters * raceKeys, MapFlags: FNoPrealloc},
	} {
		t.Run(attr.MapType.String(), func(t *testing.T) {
			m := newTestMap(t, attr)
			lpm := attr.MapType == MapTypeLPMTrie
			key := func(k uint32) []byte {
				if lpm {
					// Distinct /32s plus, for every 4th key, a covering /30 of its own.
					b := make([]byte, 8)
					plen := uint32(32)
					if k%4 == 3 {
						plen = 30
					}
					binary.LittleEndian.PutUint32(b, plen)
					binary.BigEndian.PutUint32(b[4:], 10<<24|k<<2)
					return b
				}
				return u32(k)
			}
			vs := m.ValueBufSize()
			hashLike := attr.MapType != MapTypeArray && attr.MapType != MapTypePercpuArray
			var stop atomic.Bool
			var wg, rg sync.WaitGroup
			errc := make(chan error, 64)
			for w := 0; w < raceWriters; w++ {
				wg.Add(1)
				go func(w uint32) {
					defer wg.Done()
					val := make([]byte, vs)
					for r := uint32(0); r < raceRounds; r++ {
						for i := uint32(0); i < raceKeys; i++ {
							k := w*raceKeys + i
							for o := 0; o+8 <= vs; o += 8 {
								binary.LittleEndian.PutUint64(val[o:], uint64(k)<<32|uint64(r))
							}
							if err := m.Update(key(k), val, Any); err != nil {
								errc <- err
								return
							}
							// Delete and re-insert some keys to exercise free lists.
							if hashLike && r%3 == 1 && i%5 == 0 && r != raceRounds-1 {
								if err := m.Delete(key(k)); err != nil {
									errc <- err
									return
								}
								if err := m.Update(key(k), val, NoExist); err != nil {
									errc <- err
									return
								}
							}
						}
					}
				}(uint32(w))
			}
			for rd := 0; rd < 4; rd++ {
				rg.Add(1)
				go func(rd int) {
					defer rg.Done()
					val := make([]byte, vs)
					next := make([]byte, m.KeySize)
					for !stop.Load() {
						for k := uint32(0); k < raceWriters*raceKeys; k += 7 {
							if err := m.Lookup(key(k), val); err != nil && !errors.Is(err, unix.ENOENT) {
								errc <- err
								return
							}
							if err := m.Lookup(key(k), val); err == nil && !lpm {
								// A value is one write, never torn: each 8-byte word names the key.
								got := binary.LittleEndian.Uint64(val)
								if got>>32 != uint64(k) && !(got == 0 && !hashLike) { // arrays start zeroed
									errc <- errors.New("torn or foreign value")
									return
								}
							}
						}
						var cur []byte
						for i := 0; i < 2*raceWriters*raceKeys; i++ {
							if err := m.GetNextKey(cur, next); err != nil {
								break
							}
							cur = append(cur[:0], next...)
						}
						if b, ok := m.Batcher(); ok {
							keys := make([]byte, 16*int(m.KeySize))
							vals := make([]byte, 16*vs)
							_, _, _ = b.LookupBatch(uint32(rd), keys, vals, 16, false)
						}
					}
				}(rd)
			}
			wg.Wait()
			stop.Store(true)
			rg.Wait()
			close(errc)
			for err := range errc {
				t.Fatal(err)
			}
			val := make([]byte, vs)
			for k := uint32(0); k < raceWriters*raceKeys; k++ {
				wantErrno(t, "final lookup", m.Lookup(key(k), val), 0)
				for o := 0; o+8 <= vs; o += 8 {
					if got, want := binary.LittleEndian.Uint64(val[o:]), uint64(k)<<32|raceRounds-1; got != want {
						t.Fatalf("key %d: value %#x, want %#x (lost update)", k, got, want)
					}
				}
			}
			if m.Len() != raceWriters*raceKeys {
				t.Fatalf("len %d", m.Len())
			}
		})
	}
}

// Queue and stack: concurrent pushers and poppers; every pushed value is popped exactly once.
func TestConcurrentQueueStack(t *testing.T) {
	for _, tp := range []MapType{MapTypeQueue, MapTypeStack} {
		t.Run(tp.String(), func(t *testing.T) {
			m := newTestMap(t, MapAttr{MapType: tp, ValueSize: 8, MaxEntries: 64})
			const perWriter = 2000
			var seen sync.Map
			var popped atomic.Int64
			var wg sync.WaitGroup
			pop := func(v []byte) bool {
				if m.LookupAndDelete(nil, v, 0) != nil {
					return false
				}
				if _, dup := seen.LoadOrStore(binary.LittleEndian.Uint64(v), true); dup {
					t.Errorf("value %#x popped twice", binary.LittleEndian.Uint64(v))
				}
				popped.Add(1)
				return true
			}
			for w := 0; w < raceWriters; w++ {
				wg.Add(2)
				go func(w uint64) {
					defer wg.Done()
					for i := uint64(0); i < perWriter; i++ {
						for m.Update(nil, u64(w<<32|i), Any) != nil { // full: wait for poppers
							runtime.Gosched()
						}
					}
				}(uint64(w))
				go func() {
					defer wg.Done()
					v := make([]byte, 8)
					for n := 0; popped.Load() < raceWriters*perWriter; n++ {
						pop(v)
						_ = m.Lookup(nil, v)
						if n%64 == 0 {
							_ = m.Values(func([]byte) bool { return true })
						}
					}
				}()
			}
			wg.Wait()
			if popped.Load() != raceWriters*perWriter || m.Len() != 0 {
				t.Fatalf("popped %d of %d, %d left", popped.Load(), raceWriters*perWriter, m.Len())
			}
		})
	}
}

// Bloom filter: concurrent pushes are never lost (no false negatives afterwards).
func TestConcurrentBloom(t *testing.T) {
	m := newTestMap(t, MapAttr{MapType: MapTypeBloomFilter, ValueSize: 8, MaxEntries: 4096})
	var wg sync.WaitGroup
	for w := 0; w < raceWriters; w++ {
		wg.Add(2)
		go func(w uint64) {
			defer wg.Done()
			for i := uint64(0); i < 1000; i++ {
				if err := m.Update(nil, u64(w<<32|i), Any); err != nil {
					t.Error(err)
					return
				}
			}
		}(uint64(w))
		go func() {
			defer wg.Done()
			for i := uint64(0); i < 1000; i++ {
				_ = m.Lookup(nil, u64(i))
			}
		}()
	}
	wg.Wait()
	for w := uint64(0); w < raceWriters; w++ {
		for i := uint64(0); i < 1000; i++ {
			wantErrno(t, "lookup", m.Lookup(nil, u64(w<<32|i)), 0)
		}
	}
}

// Fd maps: writers own slots and churn inner maps or programs; at the end each slot holds
// its writer's last object and every reference is accounted for.
func TestConcurrentFdMaps(t *testing.T) {
	tmpl := newTestMap(t, MapAttr{MapType: MapTypeHash, KeySize: 4, ValueSize: 4, MaxEntries: 4})
	inner := make([]*Map, raceWriters*2)
	progs := make([]*fakeProg, raceWriters*2)
	fds := fdTable{}
	for i := range inner {
		inner[i] = newTestMap(t, MapAttr{MapType: MapTypeHash, KeySize: 4, ValueSize: 4, MaxEntries: 4})
		progs[i] = newFakeProg(uint32(1000 + i))
		fds[uint32(10+i)] = inner[i]
		fds[uint32(100+i)] = progs[i]
	}
	for _, attr := range []MapAttr{
		{MapType: MapTypeArrayOfMaps, KeySize: 4, ValueSize: 4, MaxEntries: raceWriters * raceKeys, Inner: tmpl},
		{MapType: MapTypeHashOfMaps, KeySize: 4, ValueSize: 4, MaxEntries: raceWriters * raceKeys, Inner: tmpl},
		{MapType: MapTypeProgArray, KeySize: 4, ValueSize: 4, MaxEntries: raceWriters * raceKeys},
	} {
		t.Run(attr.MapType.String(), func(t *testing.T) {
			m := newTestMap(t, attr)
			base := uint32(10)
			if attr.MapType == MapTypeProgArray {
				base = 100
			}
			var stop atomic.Bool
			var wg, rg sync.WaitGroup
			for w := uint32(0); w < raceWriters; w++ {
				wg.Add(1)
				go func(w uint32) {
					defer wg.Done()
					for r := uint32(0); r < raceRounds; r++ {
						for i := uint32(0); i < raceKeys; i++ {
							fd := base + 2*w + r%2
							if err := m.UpdateObject(u32(w*raceKeys+i), u32(fd), Any, fds.resolve); err != nil {
								t.Error(err)
								return
							}
							if r%4 == 2 && i%3 == 0 {
								if err := m.Delete(u32(w*raceKeys + i)); err != nil {
									t.Error(err)
									return
								}
							}
						}
					}
				}(w)
			}
			for rd := 0; rd < 2; rd++ {
				rg.Add(1)
				go func() {
					defer rg.Done()
					v := make([]byte, 4)
					for !stop.Load() {
						for k := uint32(0); k < raceWriters*raceKeys; k++ {
							_ = m.Lookup(u32(k), v)
						}
						_ = m.Len()
					}
				}()
			}
			wg.Wait()
			stop.Store(true)
			rg.Wait()
			v := make([]byte, 4)
			for w := uint32(0); w < raceWriters; w++ {
				var want uint32
				if attr.MapType == MapTypeProgArray {
					want = progs[2*w+(raceRounds-1)%2].ID()
				} else {
					want = inner[2*w+(raceRounds-1)%2].ID()
				}
				for i := uint32(0); i < raceKeys; i++ {
					wantErrno(t, "lookup", m.Lookup(u32(w*raceKeys+i), v), 0)
					if getU32(v) != want {
						t.Fatalf("slot %d holds %d, want %d", w*raceKeys+i, getU32(v), want)
					}
				}
			}
			m.Release()
			for i := range inner {
				if r, _ := inner[i].Refs(); r != 1 {
					t.Fatalf("inner map %d refcnt %d after release, want 1", i, r)
				}
				if r, _ := progs[i].Refs(); r != 1 {
					t.Fatalf("prog %d refcnt %d after release, want 1", i, r)
				}
			}
		})
	}
}
