package engine_test

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/bpffs-fuse/bpffs-fuse/engine"
	"github.com/bpffs-fuse/bpffs-fuse/objects"
)

// Benchmarks of the engine's map commands side by side with the running kernel's bpf(2), in the
// same run: sub-benchmarks are named OP/SIZE/engine and OP/SIZE/kernel. Maps have 4-byte keys
// and 8-byte values. The kernel side is a raw bpf(2) syscall with a preallocated attr (the
// cheapest path a Go program has); the engine side is a Process method call. Both sides visit
// the keys 0..n-1 in the same pseudo-random order (a full-period LCG over the map's size), the
// order they were inserted in. Kernel sub-benchmarks skip, with the reason, when bpf(2) is
// unavailable.
//
//	go test ./engine -run '^$' -bench . -count 5

// benchSizes are the element counts of the benchmarked maps.
var benchSizes = []struct {
	name string
	n    int
}{{"1e3", 1000}, {"1e6", 1000000}}

// ---- the kernel side: raw bpf(2) with a heap attr ----

const (
	bpfMapCreate       = 0
	bpfMapLookupElem   = 1
	bpfMapUpdateElem   = 2
	bpfMapDeleteElem   = 3
	bpfMapGetNextKey   = 4
	bpfMapLookupBatch  = 24
	bpfMapUpdateBatch  = 26
	kernelAttrSize     = 128
	benchBatchCount    = 1024
	benchValueSize     = 8
	benchKeySize       = 4
	benchArrayMaxBatch = benchBatchCount
)

type kattr [kernelAttrSize]byte

// heapBufs keeps every buffer handed to the kernel reachable from a global, so it lives on the
// heap (which does not move) rather than on a goroutine stack (which can, between taking its
// address and the syscall).
var heapBufs [][]byte

func heapBuf(n int) []byte {
	b := make([]byte, n)
	heapBufs = append(heapBufs, b)
	return b
}

func (a *kattr) u32(off int, v uint32) { binary.LittleEndian.PutUint32(a[off:], v) }
func (a *kattr) u64(off int, v uint64) { binary.LittleEndian.PutUint64(a[off:], v) }
func (a *kattr) ptr(off int, b []byte) {
	if b == nil {
		a.u64(off, 0)
		return
	}
	a.u64(off, uint64(uintptr(unsafe.Pointer(&b[0]))))
}

func bpfSys(cmd int, a *kattr) (uintptr, unix.Errno) {
	r, _, e := unix.Syscall(unix.SYS_BPF, uintptr(cmd), uintptr(unsafe.Pointer(a)), kernelAttrSize)
	return r, e
}

// kernelMap is a kernel map with heap buffers for its element commands.
type kernelMap struct {
	fd         int
	attr       *kattr
	key, value []byte
}

var (
	kernelOnce   sync.Once
	kernelReason string
)

// kernelUnavailable says why the kernel benchmarks cannot run ("" if they can).
func kernelUnavailable() string {
	kernelOnce.Do(func() {
		m, err := newKernelMap(objects.MapTypeArray, 1)
		if err != nil {
			kernelReason = "bpf(BPF_MAP_CREATE): " + err.Error()
			return
		}
		unix.Close(m.fd)
	})
	return kernelReason
}

func newKernelMap(typ objects.MapType, n int) (*kernelMap, error) {
	a := new(kattr)
	a.u32(0, uint32(typ))
	a.u32(4, benchKeySize)
	a.u32(8, benchValueSize)
	a.u32(12, uint32(n))
	fd, e := bpfSys(bpfMapCreate, a)
	if e != 0 {
		return nil, e
	}
	return &kernelMap{fd: int(fd), attr: new(kattr), key: heapBuf(64), value: heapBuf(64)}, nil
}

func (k *kernelMap) elem(cmd int, key []byte, value []byte, flags uint64) unix.Errno {
	a := k.attr
	*a = kattr{}
	a.u32(0, uint32(k.fd))
	a.ptr(8, key)
	if cmd != bpfMapDeleteElem {
		a.ptr(16, value)
	}
	if cmd == bpfMapLookupElem || cmd == bpfMapUpdateElem {
		a.u64(24, flags)
	}
	_, e := bpfSys(cmd, a)
	return e
}

func (k *kernelMap) batch(cmd int, in, out, keys, values []byte, count uint32) (uint32, unix.Errno) {
	a := k.attr
	*a = kattr{}
	a.ptr(0, in)
	a.ptr(8, out)
	a.ptr(16, keys)
	a.ptr(24, values)
	a.u32(32, count)
	a.u32(36, uint32(k.fd))
	_, e := bpfSys(cmd, a)
	return binary.LittleEndian.Uint32(a[32:]), e
}

// memlock reads the map's memlock line from /proc/self/fdinfo.
func (k *kernelMap) memlock() (uint64, error) {
	f, err := os.Open("/proc/self/fdinfo/" + strconv.Itoa(k.fd))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "memlock:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, errors.New("no memlock line in fdinfo")
}

// ---- fixtures: one filled map per (type, size, side), shared by every benchmark ----

type fixture struct {
	typ objects.MapType
	n   int
	// flat holds the keys back to back in visiting order (a permutation of 0..n-1, also the
	// order they were inserted in), so fetching the next key costs the harness nothing.
	flat []byte

	p   *engine.Process
	efd int
	k   *kernelMap
}

var (
	fixturesMu sync.Mutex
	fixtures   = map[string]*fixture{}
)

// permutation returns 0..n-1 in a full-period LCG order (Hull-Dobell: modulus a power of two
// ≥ n, multiplier ≡ 1 mod 4, odd increment), skipping values ≥ n.
func permutation(n int) []uint32 {
	m := uint64(1)
	for m < uint64(n) {
		m <<= 1
	}
	out := make([]uint32, 0, n)
	x := uint64(0)
	for range m {
		x = (x*1103515245 + 12345) & (m - 1)
		if x < uint64(n) {
			out = append(out, uint32(x))
		}
	}
	return out
}

// next returns the index after j in visiting order, wrapping to 0 (no division in the loop).
func (f *fixture) next(j int) int {
	if j++; j == f.n {
		return 0
	}
	return j
}

// key returns the i-th key in visiting order.
func (f *fixture) key(i int) []byte {
	return f.flat[i*benchKeySize : (i+1)*benchKeySize : (i+1)*benchKeySize]
}

func getFixture(b *testing.B, typ objects.MapType, n int, kernel bool) *fixture {
	b.Helper()
	if kernel {
		if r := kernelUnavailable(); r != "" {
			b.Skip("kernel BPF unavailable: " + r)
		}
	}
	fixturesMu.Lock()
	defer fixturesMu.Unlock()
	name := fmt.Sprintf("%s/%d", typ, n)
	f := fixtures[name]
	if f == nil {
		f = &fixture{typ: typ, n: n}
		for _, k := range permutation(n) {
			f.flat = binary.LittleEndian.AppendUint32(f.flat, k)
		}
		fixtures[name] = f
	}
	if !kernel && f.p == nil {
		f.p = engine.New(engine.Config{}).NewProcess(engine.Root())
		fd, err := f.p.MapCreate(&engine.MapCreateAttr{MapType: typ, KeySize: benchKeySize, ValueSize: benchValueSize, MaxEntries: uint32(n)})
		if err != nil {
			b.Fatal(err)
		}
		f.efd = fd
		v := make([]byte, benchValueSize)
		for i := range f.n {
			k := f.key(i)
			binary.LittleEndian.PutUint64(v, uint64(i))
			if err := f.p.MapUpdateElem(fd, k, v, objects.Any); err != nil {
				b.Fatal(err)
			}
		}
	}
	if kernel && f.k == nil {
		k, err := newKernelMap(typ, n)
		if err != nil {
			b.Fatalf("kernel map create: %v", err)
		}
		f.k = k
		// Fill with update batches (one syscall per 1024 elements).
		keys := heapBuf(benchBatchCount * benchKeySize)
		vals := heapBuf(benchBatchCount * benchValueSize)
		for i := 0; i < n; i += benchBatchCount {
			c := min(benchBatchCount, n-i)
			for j := range c {
				copy(keys[j*benchKeySize:], f.key(i+j))
				binary.LittleEndian.PutUint64(vals[j*benchValueSize:], uint64(i+j))
			}
			if done, e := k.batch(bpfMapUpdateBatch, nil, nil, keys, vals, uint32(c)); e != 0 || int(done) != c {
				b.Fatalf("kernel fill: %v after %d", e, done)
			}
		}
	}
	return f
}

// runSides runs fn as OP/SIZE/engine and OP/SIZE/kernel for each size.
func runSides(b *testing.B, typ objects.MapType, engineFn func(b *testing.B, f *fixture), kernelFn func(b *testing.B, f *fixture)) {
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) {
			b.Run("engine", func(b *testing.B) {
				f := getFixture(b, typ, s.n, false)
				b.ReportAllocs()
				b.ResetTimer()
				engineFn(b, f)
			})
			b.Run("kernel", func(b *testing.B) {
				f := getFixture(b, typ, s.n, true)
				b.ReportAllocs()
				b.ResetTimer()
				kernelFn(b, f)
			})
		})
	}
}

func benchLookup(b *testing.B, typ objects.MapType) {
	runSides(b, typ, func(b *testing.B, f *fixture) {
		v := make([]byte, benchValueSize)
		for i, j := 0, 0; i < b.N; i, j = i+1, f.next(j) {
			if err := f.p.MapLookupElem(f.efd, f.key(j), v, 0); err != nil {
				b.Fatal(err)
			}
		}
	}, func(b *testing.B, f *fixture) {
		k := f.k
		for i, j := 0, 0; i < b.N; i, j = i+1, f.next(j) {
			copy(k.key, f.key(j))
			if e := k.elem(bpfMapLookupElem, k.key, k.value, 0); e != 0 {
				b.Fatal(e)
			}
		}
	})
}

func benchUpdate(b *testing.B, typ objects.MapType) {
	runSides(b, typ, func(b *testing.B, f *fixture) {
		v := make([]byte, benchValueSize)
		for i, j := 0, 0; i < b.N; i, j = i+1, f.next(j) {
			v[0] = byte(i)
			if err := f.p.MapUpdateElem(f.efd, f.key(j), v, objects.Any); err != nil {
				b.Fatal(err)
			}
		}
	}, func(b *testing.B, f *fixture) {
		k := f.k
		for i, j := 0, 0; i < b.N; i, j = i+1, f.next(j) {
			copy(k.key, f.key(j))
			k.value[0] = byte(i)
			if e := k.elem(bpfMapUpdateElem, k.key, k.value, objects.Any); e != 0 {
				b.Fatal(e)
			}
		}
	})
}

func benchGetNextKey(b *testing.B, typ objects.MapType) {
	runSides(b, typ, func(b *testing.B, f *fixture) {
		next := make([]byte, benchKeySize)
		for i, j := 0, 0; i < b.N; i, j = i+1, f.next(j) {
			if err := f.p.MapGetNextKey(f.efd, f.key(j), next); err != nil && !errors.Is(err, unix.ENOENT) {
				b.Fatal(err)
			}
		}
	}, func(b *testing.B, f *fixture) {
		k := f.k
		for i, j := 0, 0; i < b.N; i, j = i+1, f.next(j) {
			copy(k.key, f.key(j))
			if e := k.elem(bpfMapGetNextKey, k.key, k.value, 0); e != 0 && e != unix.ENOENT {
				b.Fatal(e)
			}
		}
	})
}

// BenchmarkHashLookup is BPF_MAP_LOOKUP_ELEM of present keys.
func BenchmarkHashLookup(b *testing.B) { benchLookup(b, objects.MapTypeHash) }

// BenchmarkHashUpdate is BPF_MAP_UPDATE_ELEM (BPF_ANY) of present keys.
func BenchmarkHashUpdate(b *testing.B) { benchUpdate(b, objects.MapTypeHash) }

// BenchmarkHashGetNextKey is BPF_MAP_GET_NEXT_KEY from present keys.
func BenchmarkHashGetNextKey(b *testing.B) { benchGetNextKey(b, objects.MapTypeHash) }

// BenchmarkHashDelete is BPF_MAP_DELETE_ELEM of present keys; the map is refilled, with the
// timer stopped, whenever every key has been deleted.
func BenchmarkHashDelete(b *testing.B) {
	refill := func(b *testing.B, f *fixture, upTo int, kernel bool) {
		b.StopTimer()
		v := make([]byte, benchValueSize)
		for i := range upTo {
			key := f.key(i)
			if kernel {
				copy(f.k.key, key)
				copy(f.k.value, v)
				if e := f.k.elem(bpfMapUpdateElem, f.k.key, f.k.value, objects.Any); e != 0 {
					b.Fatal(e)
				}
			} else if err := f.p.MapUpdateElem(f.efd, key, v, objects.Any); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
	}
	runSides(b, objects.MapTypeHash, func(b *testing.B, f *fixture) {
		for i, j := 0, 0; i < b.N; i, j = i+1, f.next(j) {
			if i > 0 && j == 0 {
				refill(b, f, f.n, false)
			}
			if err := f.p.MapDeleteElem(f.efd, f.key(j)); err != nil {
				b.Fatal(err)
			}
		}
		refill(b, f, min(b.N, f.n), false)
	}, func(b *testing.B, f *fixture) {
		k := f.k
		for i, j := 0, 0; i < b.N; i, j = i+1, f.next(j) {
			if i > 0 && j == 0 {
				refill(b, f, f.n, true)
			}
			copy(k.key, f.key(j))
			if e := k.elem(bpfMapDeleteElem, k.key, nil, 0); e != 0 {
				b.Fatal(e)
			}
		}
		refill(b, f, min(b.N, f.n), true)
	})
}

// BenchmarkArrayLookup, BenchmarkArrayUpdate and BenchmarkArrayGetNextKey are the element
// commands on an array.
func BenchmarkArrayLookup(b *testing.B)     { benchLookup(b, objects.MapTypeArray) }
func BenchmarkArrayUpdate(b *testing.B)     { benchUpdate(b, objects.MapTypeArray) }
func BenchmarkArrayGetNextKey(b *testing.B) { benchGetNextKey(b, objects.MapTypeArray) }

// benchBatchLookup walks the map with BPF_MAP_LOOKUP_BATCH calls of benchBatchCount elements,
// restarting at the end; it reports elements per second.
func benchBatchLookup(b *testing.B, typ objects.MapType) {
	tok := 4
	report := func(b *testing.B, elems int) {
		b.ReportMetric(float64(elems)/b.Elapsed().Seconds(), "elems/s")
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(elems), "ns/elem")
	}
	runSides(b, typ, func(b *testing.B, f *fixture) {
		keys := make([]byte, benchBatchCount*benchKeySize)
		vals := make([]byte, benchBatchCount*benchValueSize)
		in, out := make([]byte, tok), make([]byte, tok)
		started := false
		elems := 0
		for i := 0; i < b.N; i++ {
			a := &engine.MapBatchAttr{OutBatch: out, Keys: keys, Values: vals, Count: benchBatchCount}
			if started {
				a.InBatch = in
			}
			err := f.p.MapLookupBatch(f.efd, a)
			elems += int(a.Count)
			switch {
			case errors.Is(err, unix.ENOENT):
				started = false
			case err != nil:
				b.Fatal(err)
			default:
				copy(in, out)
				started = true
			}
		}
		report(b, elems)
	}, func(b *testing.B, f *fixture) {
		k := f.k
		keys := heapBuf(benchBatchCount * benchKeySize)
		vals := heapBuf(benchBatchCount * benchValueSize)
		in, out := heapBuf(tok), heapBuf(tok)
		started := false
		elems := 0
		for i := 0; i < b.N; i++ {
			var inp []byte
			if started {
				inp = in
			}
			n, e := k.batch(bpfMapLookupBatch, inp, out, keys, vals, benchBatchCount)
			elems += int(n)
			switch e {
			case unix.ENOENT:
				started = false
			case 0:
				copy(in, out)
				started = true
			default:
				b.Fatal(e)
			}
		}
		report(b, elems)
	})
}

// benchBatchUpdate updates up to benchBatchCount present keys per BPF_MAP_UPDATE_BATCH call,
// walking the keys in visiting order (the keys buffer is a slice of the fixture's keys).
func benchBatchUpdate(b *testing.B, typ objects.MapType) {
	// next returns the keys of the batch starting at element off, and the following offset.
	next := func(f *fixture, off int) ([]byte, int) {
		c := min(benchBatchCount, f.n-off)
		return f.flat[off*benchKeySize : (off+c)*benchKeySize], (off + c) % f.n
	}
	report := func(b *testing.B, elems int) {
		b.ReportMetric(float64(elems)/b.Elapsed().Seconds(), "elems/s")
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(elems), "ns/elem")
	}
	runSides(b, typ, func(b *testing.B, f *fixture) {
		vals := make([]byte, benchBatchCount*benchValueSize)
		off, elems := 0, 0
		for i := 0; i < b.N; i++ {
			var keys []byte
			keys, off = next(f, off)
			c := len(keys) / benchKeySize
			vals[0] = byte(i)
			a := &engine.MapBatchAttr{Keys: keys, Values: vals, Count: uint32(c)}
			if err := f.p.MapUpdateBatch(f.efd, a); err != nil {
				b.Fatal(err)
			}
			elems += c
		}
		report(b, elems)
	}, func(b *testing.B, f *fixture) {
		// The kernel reads keys from a heap copy of the fixture's keys.
		flat := heapBuf(len(f.flat))
		copy(flat, f.flat)
		vals := heapBuf(benchBatchCount * benchValueSize)
		off, elems := 0, 0
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			c := min(benchBatchCount, f.n-off)
			keys := flat[off*benchKeySize : (off+c)*benchKeySize]
			off = (off + c) % f.n
			vals[0] = byte(i)
			if n, e := f.k.batch(bpfMapUpdateBatch, nil, nil, keys, vals, uint32(c)); e != 0 || int(n) != c {
				b.Fatal(e, n)
			}
			elems += c
		}
		report(b, elems)
	})
}

// BenchmarkHashBatchLookup, BenchmarkHashBatchUpdate, BenchmarkArrayBatchLookup and
// BenchmarkArrayBatchUpdate measure batch throughput (elems/s) with 1024 elements per call.
func BenchmarkHashBatchLookup(b *testing.B)  { benchBatchLookup(b, objects.MapTypeHash) }
func BenchmarkHashBatchUpdate(b *testing.B)  { benchBatchUpdate(b, objects.MapTypeHash) }
func BenchmarkArrayBatchLookup(b *testing.B) { benchBatchLookup(b, objects.MapTypeArray) }
func BenchmarkArrayBatchUpdate(b *testing.B) { benchBatchUpdate(b, objects.MapTypeArray) }

// BenchmarkHashMemory creates and fills a 1e6-entry hash (4-byte keys, 8-byte values) per
// iteration and reports bytes per entry: for the engine the Go heap growth after GC (heap-B/entry)
// and the bytes charged to the memory budget (charged-B/entry, the engine's memlock); for the
// kernel the memlock of /proc/self/fdinfo (memlock-B/entry).
func BenchmarkHashMemory(b *testing.B) {
	const n = 1000000
	keys := permutation(n)
	b.Run("1e6", func(b *testing.B) {
		b.Run("engine", func(b *testing.B) {
			var heap, charged float64
			for i := 0; i < b.N; i++ {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				eng := engine.New(engine.Config{})
				p := eng.NewProcess(engine.Root())
				fd, err := p.MapCreate(&engine.MapCreateAttr{MapType: objects.MapTypeHash, KeySize: 4, ValueSize: 8, MaxEntries: n})
				if err != nil {
					b.Fatal(err)
				}
				k, v := make([]byte, 4), make([]byte, 8)
				for _, x := range keys {
					binary.LittleEndian.PutUint32(k, x)
					if err := p.MapUpdateElem(fd, k, v, objects.Any); err != nil {
						b.Fatal(err)
					}
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				heap = float64(after.HeapAlloc-before.HeapAlloc) / n
				charged = float64(eng.MemoryUsed()) / n
				runtime.KeepAlive(p)
				p.Exit()
			}
			b.ReportMetric(heap, "heap-B/entry")
			b.ReportMetric(charged, "charged-B/entry")
		})
		b.Run("kernel", func(b *testing.B) {
			if r := kernelUnavailable(); r != "" {
				b.Skip("kernel BPF unavailable: " + r)
			}
			var memlock float64
			kb := heapBuf(benchBatchCount * 4)
			vb := heapBuf(benchBatchCount * 8)
			for i := 0; i < b.N; i++ {
				k, err := newKernelMap(objects.MapTypeHash, n)
				if err != nil {
					b.Fatal(err)
				}
				for j := 0; j < n; j += benchBatchCount {
					c := min(benchBatchCount, n-j)
					for x := range c {
						binary.LittleEndian.PutUint32(kb[x*4:], keys[j+x])
					}
					if _, e := k.batch(bpfMapUpdateBatch, nil, nil, kb, vb, uint32(c)); e != 0 {
						b.Fatal(e)
					}
				}
				ml, err := k.memlock()
				if err != nil {
					b.Fatal(err)
				}
				memlock = float64(ml) / n
				unix.Close(k.fd)
			}
			b.ReportMetric(memlock, "memlock-B/entry")
		})
	})
}
