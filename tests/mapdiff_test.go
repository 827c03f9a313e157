package tests

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"hash/fnv"
	"math/rand"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bpffs-fuse/bpffs-fuse/objects"
)

// The map differential test runs the same seeded random operation sequences on the running
// kernel (raw bpf(2)) and on the engine, and requires identical results and errnos.
//
// What is compared exactly: every errno; every value returned by lookup, peek, pop and
// lookup_and_delete; get_next_key results and batch tokens, counts, keys and values for maps
// whose order the kernel makes deterministic (arrays, lpm_trie, and hash maps created with
// BPF_F_ZERO_SEED, where bucket = jhash(key, 0) & (n_buckets-1) and chains are newest first).
// What is compared as sets: hash maps with a random seed (full get_next_key walks and full
// batch walks, where a batch that gets ENOSPC because a bucket is larger than count is retried
// with a larger count on that side only, since bucket sizes differ); get_next_key of a missing
// key on such maps is checked to return some present key. LRU maps run in two phases: with
// max_entries far above the key space the kernel never evicts (every CPU's free list stays
// above its refill target), so they are compared like hash maps; with a key space four times
// max_entries only errnos of ANY updates, the presence of the newest key and count ≤
// max_entries are checked, since the kernel's victim depends on which CPU ran each update.
// Ids are compared relative to the maps each side created (other processes create kernel maps
// too).

var (
	mapDiffSeed = flag.Int64("seed", 0, "seed for the map differential test (0: time)")
	mapDiffOps  = flag.Int("mapdiff.ops", 10000, "random operations per map type in the map differential test")
)

// differ drives both back ends in lock step.
type differ struct {
	t      *testing.T
	seed   int64
	name   string
	rng    *rand.Rand
	be     [2]backend // kernel, engine
	ncpu   int
	step   int
	ops    int
	trail  []string
	names  [2]map[uint32]string // map id → logical name, per side
	stats  map[string]int       // "command errno" → how often both sides agreed on it
	replay string               // the command that replays this run
}

// runPattern turns a test name into a -run pattern matching exactly it.
func runPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + p + "$"
	}
	return strings.Join(parts, "/")
}

func newDiffer(t *testing.T, name string) *differ {
	t.Helper()
	requireKernel(t)
	seed := *mapDiffSeed
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	h := fnv.New64a()
	h.Write([]byte(name))
	ncpu := possibleCPUs(t)
	d := &differ{
		t: t, seed: seed, name: name,
		rng:   rand.New(rand.NewSource(seed ^ int64(h.Sum64()))),
		be:    [2]backend{newKernelBackend(t), newEngineBackend(t)},
		ncpu:  ncpu,
		names: [2]map[uint32]string{{}, {}},
		stats: map[string]int{},
	}
	if got := d.be[1].(*engineBackend).eng.Config().NumPossibleCPUs; got != ncpu {
		t.Fatalf("engine's default NumPossibleCPUs is %d, the kernel's num_possible_cpus() %d", got, ncpu)
	}
	d.replay = fmt.Sprintf("go test ./tests -run '%s' -seed %d", runPattern(t.Name()), seed)
	t.Logf("seed %d (replay: %s)", seed, d.replay)
	return d
}

// note records an operation for the failure trail.
func (d *differ) note(format string, args ...any) {
	d.step++
	s := fmt.Sprintf("#%d ", d.step) + fmt.Sprintf(format, args...)
	if len(d.trail) == 12 {
		d.trail = d.trail[1:]
	}
	d.trail = append(d.trail, s)
}

func (d *differ) fail(format string, args ...any) {
	d.t.Helper()
	d.t.Fatalf("%s: seed %d (replay: %s): %s\nlast operations:\n  %s",
		d.name, d.seed, d.replay, fmt.Sprintf(format, args...), strings.Join(d.trail, "\n  "))
}

func (d *differ) sameErr(what string, ke, ee unix.Errno) unix.Errno {
	d.t.Helper()
	if ke != ee {
		d.fail("%s: kernel errno %d (%v), engine errno %d (%v)", what, int(ke), errStr(ke), int(ee), errStr(ee))
	}
	return ke
}

func (d *differ) sameBytes(what string, k, e []byte) {
	d.t.Helper()
	if !bytes.Equal(k, e) {
		d.fail("%s: kernel %x, engine %x", what, k, e)
	}
}

func errStr(e unix.Errno) string {
	if e == 0 {
		return "ok"
	}
	if e == objects.ENOTSUPP {
		return "ENOTSUPP"
	}
	return unix.ErrnoName(e)
}

// dmap is one map created on both sides.
type dmap struct {
	name string
	a    createAttr
	// fds per side: read-write (the creating fd), read-only and write-only (GET_FD_BY_ID).
	rw, ro, wo [2]int
	id         [2]uint32
	vbuf       int // bpf_map_value_size
	ks         int
	frozen     bool
}

func (m *dmap) fd(side, sel int) int {
	switch sel {
	case 1:
		return m.ro[side]
	case 2:
		return m.wo[side]
	}
	return m.rw[side]
}

// create makes the map on both sides (inner gives inner_map_fd) and compares the errno and the
// info; on success it opens read-only and write-only fds by id.
func (d *differ) create(name string, a createAttr, inner *dmap) (*dmap, unix.Errno) {
	d.t.Helper()
	var fds [2]int
	var errs [2]unix.Errno
	for s := range 2 {
		as := a
		if inner != nil {
			as.InnerFD = uint32(inner.rw[s])
		}
		fds[s], errs[s] = d.be[s].create(as)
	}
	d.note("create %s %+v", name, a)
	d.stats["create "+errStr(errs[0])]++
	if d.sameErr("create "+name, errs[0], errs[1]) != 0 {
		return nil, errs[0]
	}
	m := &dmap{name: name, a: a, rw: fds, ks: int(a.KeySize)}
	var infos [2]mapInfo
	for s := range 2 {
		info, e := d.be[s].info(fds[s])
		if e != 0 {
			d.fail("info of %s on %s: %v", name, d.be[s].name(), e)
		}
		m.id[s] = info.ID
		d.names[s][info.ID] = name
		info.ID = 0
		infos[s] = info
	}
	if infos[0] != infos[1] {
		d.fail("info of %s: kernel %+v, engine %+v", name, infos[0], infos[1])
	}
	m.vbuf = valueBufSize(infos[0], d.ncpu)
	for s := range 2 {
		var e unix.Errno
		if m.ro[s], e = d.be[s].fdByID(m.id[s], uint32(objects.FRdonly)); e != 0 {
			d.fail("GET_FD_BY_ID RDONLY on %s: %v", d.be[s].name(), e)
		}
		if m.wo[s], e = d.be[s].fdByID(m.id[s], uint32(objects.FWronly)); e != 0 {
			d.fail("GET_FD_BY_ID WRONLY on %s: %v", d.be[s].name(), e)
		}
	}
	return m, 0
}

func (d *differ) closeMap(m *dmap) {
	for s := range 2 {
		d.be[s].close(m.rw[s])
		d.be[s].close(m.ro[s])
		d.be[s].close(m.wo[s])
	}
}

func valueBufSize(i mapInfo, ncpu int) int {
	switch i.Type {
	case objects.MapTypePercpuHash, objects.MapTypeLRUPercpuHash, objects.MapTypePercpuArray:
		return (int(i.ValueSize) + 7) &^ 7 * ncpu
	case objects.MapTypeProgArray, objects.MapTypeArrayOfMaps, objects.MapTypeHashOfMaps:
		return 4
	}
	return int(i.ValueSize)
}

// pair returns two copies of b (nil stays nil).
func pair(b []byte) [2][]byte {
	if b == nil {
		return [2][]byte{}
	}
	return [2][]byte{slices.Clone(b), slices.Clone(b)}
}

// outBufs returns two buffers of n bytes filled with the same junk, so bytes neither side writes
// compare equal.
func (d *differ) outBufs(n int) [2][]byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 0xa5
	}
	return pair(b)
}

// elem runs an element command on both sides with fd selector sel (0 rw, 1 ro, 2 wo) and the
// same key; vals are per-side value buffers (inputs and/or outputs). It compares errnos.
func (d *differ) elem(m *dmap, sel, cmd int, key []byte, vals [2][]byte, flags uint64) unix.Errno {
	d.t.Helper()
	var errs [2]unix.Errno
	for s := range 2 {
		var k []byte
		if key != nil {
			k = slices.Clone(key)
		}
		errs[s] = d.be[s].elem(cmd, m.fd(s, sel), k, vals[s], flags)
	}
	d.note("%s %s fd%d key=%x val=%x flags=%#x → %s", m.name, cmdName(cmd), sel, short(key), short(vals[0]), flags, errStr(errs[0]))
	d.stats[cmdName(cmd)+" "+errStr(errs[0])]++
	return d.sameErr(fmt.Sprintf("%s %s key %x flags %#x", m.name, cmdName(cmd), key, flags), errs[0], errs[1])
}

// logStats logs how often each command ended with each errno.
func (d *differ) logStats() {
	keys := make([]string, 0, len(d.stats))
	for k := range d.stats {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, " %s:%d", k, d.stats[k])
	}
	d.t.Logf("results:%s", b.String())
}

func cmdName(cmd int) string {
	switch cmd {
	case cmdMapLookupElem:
		return "lookup"
	case cmdMapUpdateElem:
		return "update"
	case cmdMapDeleteElem:
		return "delete"
	case cmdMapGetNextKey:
		return "get_next_key"
	case cmdMapLookupAndDelete:
		return "lookup_and_delete"
	case cmdMapLookupBatch:
		return "lookup_batch"
	case cmdMapLookupAndDelBatch:
		return "lookup_and_delete_batch"
	case cmdMapUpdateBatch:
		return "update_batch"
	case cmdMapDeleteBatch:
		return "delete_batch"
	}
	return fmt.Sprintf("cmd %d", cmd)
}

// batch runs a batch command on both sides with per-side args and compares errno and count.
func (d *differ) batch(m *dmap, sel, cmd int, b [2]*batchArgs) unix.Errno {
	d.t.Helper()
	var errs [2]unix.Errno
	in := b[0].Count
	for s := range 2 {
		errs[s] = d.be[s].batch(cmd, m.fd(s, sel), b[s])
	}
	d.note("%s %s fd%d in=%x count=%d elem_flags=%#x flags=%#x → %s count %d", m.name, cmdName(cmd), sel,
		b[0].InBatch, in, b[0].ElemFlags, b[0].Flags, errStr(errs[0]), b[0].Count)
	what := fmt.Sprintf("%s %s in_batch %x count %d", m.name, cmdName(cmd), b[0].InBatch, in)
	d.sameErr(what, errs[0], errs[1])
	d.stats[cmdName(cmd)+" "+errStr(errs[0])]++
	if b[0].Count != b[1].Count {
		d.fail("%s: kernel count %d, engine count %d", what, b[0].Count, b[1].Count)
	}
	return errs[0]
}

func (d *differ) freeze(m *dmap, sel int) unix.Errno {
	d.t.Helper()
	ke := d.be[0].freeze(m.fd(0, sel))
	ee := d.be[1].freeze(m.fd(1, sel))
	d.note("%s freeze fd%d → %s", m.name, sel, errStr(ke))
	d.stats["freeze "+errStr(ke)]++
	if d.sameErr(m.name+" freeze", ke, ee) == 0 {
		m.frozen = true
	}
	return ke
}

func (d *differ) randBytes(n int) []byte {
	b := make([]byte, n)
	d.rng.Read(b)
	return b
}

func (d *differ) pick(n int) int { return d.rng.Intn(n) }

func (d *differ) chance(p float64) bool { return d.rng.Float64() < p }

// fdSel picks the rw fd mostly, sometimes the read-only or write-only one.
func (d *differ) fdSel() int {
	switch r := d.pick(20); {
	case r == 0:
		return 1
	case r == 1:
		return 2
	}
	return 0
}

var (
	updateFlags = []uint64{0, 0, 0, objects.NoExist, objects.Exist, objects.NoExist, objects.Exist, objects.FLock, 3, 8, objects.FLock | objects.Exist}
	lookupFlags = []uint64{0, 0, 0, 0, 0, 0, 0, 0, objects.FLock, 1}
)

func (d *differ) updateFlag() uint64 { return updateFlags[d.pick(len(updateFlags))] }
func (d *differ) lookupFlag() uint64 { return lookupFlags[d.pick(len(lookupFlags))] }

// keyedSpec describes a keyed map for the random op driver.
type keyedSpec struct {
	key func() []byte // a random key (from a small pool, so keys collide)
	// val returns per-side update values: random bytes, or per-side fds for fd maps.
	val func() [2][]byte
	// ordered: get_next_key order and batch contents are deterministic and compared exactly.
	ordered bool
	// htab: batch tokens are u32 bucket indexes; nBuckets is the kernel's n_buckets.
	htab     bool
	nBuckets uint32
	// idValues: lookups return map ids, compared by name.
	idValues bool
	// slowWrites: writes are slow on the kernel (map-in-map slots); do fewer.
	slowWrites bool
	// lruEvict: the key space exceeds max_entries: only ANY updates, newest-key presence and
	// count are compared.
	lruEvict bool
}

// sameValue compares two value buffers returned by a lookup, translating ids for fd maps.
func (d *differ) sameValue(what string, m *dmap, sp *keyedSpec, v [2][]byte) {
	d.t.Helper()
	if sp.idValues {
		for i := 0; i+4 <= len(v[0]); i += 4 {
			kn := d.names[0][le32(v[0][i:])]
			en := d.names[1][le32(v[1][i:])]
			if kn != en || kn == "" {
				d.fail("%s: kernel id %d (%q), engine id %d (%q)", what, le32(v[0][i:]), kn, le32(v[1][i:]), en)
			}
		}
		return
	}
	d.sameBytes(what, v[0], v[1])
}

// runKeyed drives n random operations on a keyed map.
func (d *differ) runKeyed(m *dmap, sp *keyedSpec, n int) {
	d.t.Helper()
	freezeAt := -1
	if d.chance(0.3) {
		freezeAt = n/2 + d.pick(n/2)
	}
	var lastOut [2][]byte // the previous lookup batch's out token, per side
	for i := 0; i < n; i++ {
		d.ops++
		if i == freezeAt {
			d.freeze(m, d.fdSel())
			if !m.frozen {
				d.freeze(m, 0)
			}
			d.freeze(m, 0) // already frozen: EPERM
		}
		if sp.lruEvict {
			d.lruEvictOp(m, sp)
			continue
		}
		sel := d.fdSel()
		r := d.pick(100)
		if sp.slowWrites && (r < 30 || r >= 62 && r < 72 || r >= 80 && r < 88) && !d.chance(0.1) {
			// The kernel takes ~10 ms to replace a map-in-map slot (an RCU grace
			// period): most writes become lookups to keep the run short.
			r = 30 + d.pick(20)
		}
		switch {
		case r < 30:
			key, vals, fl := sp.key(), sp.val(), d.updateFlag()
			if d.chance(0.01) {
				key = nil // NULL key: EFAULT
			}
			d.elem(m, sel, cmdMapUpdateElem, key, vals, fl)
		case r < 50:
			key := sp.key()
			if d.chance(0.01) {
				key = nil
			}
			v := d.outBufs(m.vbuf)
			if d.chance(0.01) {
				v = [2][]byte{} // NULL value on a keyed lookup: EFAULT after the lookup
			}
			if d.elem(m, sel, cmdMapLookupElem, key, v, d.lookupFlag()) == 0 && v[0] != nil {
				d.sameValue(fmt.Sprintf("%s lookup %x", m.name, key), m, sp, v)
			}
		case r < 62:
			d.elem(m, sel, cmdMapDeleteElem, sp.key(), [2][]byte{}, 0)
		case r < 72:
			d.getNextKeyOp(m, sp, sel)
		case r < 80:
			v := d.outBufs(m.vbuf)
			fl := uint64(0)
			if d.chance(0.1) {
				fl = objects.FLock
			}
			if d.chance(0.01) {
				v = [2][]byte{} // NULL value: the kernel deletes, then fails the copy out (EFAULT)
			}
			key := sp.key()
			if d.elem(m, sel, cmdMapLookupAndDelete, key, v, fl) == 0 && v[0] != nil {
				d.sameValue(fmt.Sprintf("%s lookup_and_delete %x", m.name, key), m, sp, v)
			}
		case r < 84:
			d.updateBatchOp(m, sp, sel)
		case r < 88:
			d.deleteBatchOp(m, sp, sel)
		case r < 96:
			del := d.chance(0.3)
			if sp.ordered {
				d.lookupBatchOp(m, sp, sel, del, &lastOut)
			} else if d.chance(0.1) {
				d.batchWalkSets(m, sp, del && d.chance(0.3))
			}
		case r < 98:
			d.compareContents(m, sp)
		default:
			// Rarely hit paths: a NULL next_key, bad flags on get_next_key-free commands.
			v := d.outBufs(m.vbuf)
			d.elem(m, sel, cmdMapLookupElem, sp.key(), v, objects.FLock|1)
		}
	}
	if !sp.lruEvict {
		d.compareContents(m, sp)
	}
}

// getNextKeyOp compares get_next_key from NULL, a present key and a missing key.
func (d *differ) getNextKeyOp(m *dmap, sp *keyedSpec, sel int) {
	d.t.Helper()
	var key []byte
	if !d.chance(0.2) {
		key = sp.key()
	}
	next := d.outBufs(m.ks)
	nullNext := d.chance(0.01) // NULL next_key: EFAULT after a successful step, ENOENT at the end
	if sp.ordered {
		if nullNext {
			d.elem(m, sel, cmdMapGetNextKey, key, [2][]byte{}, 0)
			return
		}
		if d.elem(m, sel, cmdMapGetNextKey, key, next, 0) == 0 {
			d.sameBytes(fmt.Sprintf("%s get_next_key %x", m.name, key), next[0], next[1])
		}
		return
	}
	// Unordered: only NULL or a missing key (both answer "the first key") have a
	// comparable errno; the keys returned must be present on their own side.
	if key != nil {
		v := d.outBufs(m.vbuf)
		if d.elem(m, 0, cmdMapLookupElem, key, v, 0) == 0 {
			key = nil
		}
	}
	if nullNext {
		d.elem(m, sel, cmdMapGetNextKey, key, [2][]byte{}, 0)
		return
	}
	if d.elem(m, sel, cmdMapGetNextKey, key, next, 0) != 0 {
		return
	}
	for s := range 2 {
		v := make([]byte, m.vbuf)
		if e := d.be[s].elem(cmdMapLookupElem, m.rw[s], next[s], v, 0); e != 0 {
			d.fail("%s: get_next_key returned %x, whose lookup gives %s", d.be[s].name(), next[s], errStr(e))
		}
	}
}

// walkKeys lists a side's keys with get_next_key from NULL.
func (d *differ) walkKeys(m *dmap, s int) [][]byte {
	var keys [][]byte
	var prev []byte
	for range 1 << 16 {
		next := make([]byte, m.ks)
		e := d.be[s].elem(cmdMapGetNextKey, m.rw[s], prev, next, 0)
		if e == unix.ENOENT {
			return keys
		}
		if e != 0 {
			d.fail("%s walk: get_next_key: %s", d.be[s].name(), errStr(e))
		}
		keys = append(keys, next)
		prev = next
	}
	d.fail("%s walk of %s does not end", d.be[s].name(), m.name)
	return nil
}

// contents returns a side's entries as key → value (hex).
func (d *differ) contents(m *dmap, sp *keyedSpec, s int) (map[string]string, [][]byte) {
	keys := d.walkKeys(m, s)
	out := map[string]string{}
	for _, k := range keys {
		v := make([]byte, m.vbuf)
		e := d.be[s].elem(cmdMapLookupElem, m.rw[s], k, v, 0)
		switch {
		case e == unix.ENOENT && (m.a.Type == objects.MapTypeArrayOfMaps || m.a.Type == objects.MapTypeProgArray):
			out[fmt.Sprintf("%x", k)] = "(empty)"
		case e != 0:
			d.fail("%s: lookup of walked key %x: %s", d.be[s].name(), k, errStr(e))
		case sp.idValues:
			out[fmt.Sprintf("%x", k)] = d.names[s][le32(v)]
		default:
			out[fmt.Sprintf("%x", k)] = fmt.Sprintf("%x", v)
		}
	}
	return out, keys
}

// compareContents walks both sides and compares entries (and the key order when ordered).
func (d *differ) compareContents(m *dmap, sp *keyedSpec) {
	d.t.Helper()
	kc, kk := d.contents(m, sp, 0)
	ec, ek := d.contents(m, sp, 1)
	d.note("%s walk: %d entries", m.name, len(kk))
	if sp.ordered {
		if len(kk) != len(ek) {
			d.fail("%s walk: kernel %d keys %x, engine %d keys %x", m.name, len(kk), kk, len(ek), ek)
		}
		for i := range kk {
			if !bytes.Equal(kk[i], ek[i]) {
				d.fail("%s walk order: kernel %x, engine %x", m.name, kk, ek)
			}
		}
	}
	if fmt.Sprint(kc) != fmt.Sprint(ec) {
		d.fail("%s contents:\nkernel %v\nengine %v", m.name, kc, ec)
	}
}

func (d *differ) batchCount() uint32 {
	return []uint32{0, 1, 1, 2, 3, 4, 5, 8, 16, 64}[d.pick(10)]
}

func (d *differ) elemFlags() uint64 {
	return []uint64{0, 0, 0, 0, 0, 0, 0, 0, objects.FLock, objects.NoExist}[d.pick(10)]
}

func (d *differ) updateBatchOp(m *dmap, sp *keyedSpec, sel int) {
	d.t.Helper()
	n := d.batchCount()
	if n > 8 {
		n = 8
	}
	var keys []byte
	var vals [2][]byte
	for range n {
		keys = append(keys, sp.key()...)
		v := sp.val()
		vals[0] = append(vals[0], v[0]...)
		vals[1] = append(vals[1], v[1]...)
	}
	ef := d.elemFlags()
	var b [2]*batchArgs
	for s := range 2 {
		b[s] = &batchArgs{Keys: slices.Clone(keys), Values: vals[s], Count: n, ElemFlags: ef}
		if b[s].Keys == nil {
			b[s].Keys = []byte{}
		}
		if b[s].Values == nil {
			b[s].Values = []byte{}
		}
	}
	d.batch(m, sel, cmdMapUpdateBatch, b)
}

func (d *differ) deleteBatchOp(m *dmap, sp *keyedSpec, sel int) {
	d.t.Helper()
	n := d.batchCount()
	if n > 8 {
		n = 8
	}
	keys := []byte{}
	for range n {
		keys = append(keys, sp.key()...)
	}
	ef := d.elemFlags()
	var b [2]*batchArgs
	for s := range 2 {
		b[s] = &batchArgs{Keys: slices.Clone(keys), Count: n, ElemFlags: ef}
	}
	d.batch(m, sel, cmdMapDeleteBatch, b)
}

// lookupBatchOp runs one lookup (or lookup_and_delete) batch with a random in_batch token on a
// map with deterministic order and compares everything it returns.
func (d *differ) lookupBatchOp(m *dmap, sp *keyedSpec, sel int, del bool, lastOut *[2][]byte) {
	d.t.Helper()
	cmd := cmdMapLookupBatch
	if del {
		cmd = cmdMapLookupAndDelBatch
	}
	tok := m.ks
	if sp.htab {
		tok = 4
	}
	var in [2][]byte
	switch r := d.pick(10); {
	case r < 4:
	case r < 8 && lastOut[0] != nil:
		in = [2][]byte{slices.Clone(lastOut[0]), slices.Clone(lastOut[1])}
	default:
		if sp.htab {
			var b [4]byte
			binary.LittleEndian.PutUint32(b[:], uint32(d.pick(int(sp.nBuckets)+3)))
			in = pair(b[:])
		} else {
			in = pair(sp.key())
		}
	}
	n := d.batchCount()
	flags := uint64(0)
	if d.chance(0.05) {
		flags = 1
	}
	ef := d.elemFlags()
	if ef == objects.NoExist && d.chance(0.7) {
		ef = 0
	}
	out := d.outBufs(tok)
	keys := d.outBufs(int(n) * m.ks)
	vals := d.outBufs(int(n) * m.vbuf)
	var b [2]*batchArgs
	for s := range 2 {
		b[s] = &batchArgs{InBatch: in[s], OutBatch: out[s], Keys: keys[s], Values: vals[s], Count: n, ElemFlags: ef, Flags: flags}
	}
	e := d.batch(m, sel, cmd, b)
	what := fmt.Sprintf("%s %s in %x count %d", m.name, cmdName(cmd), in[0], n)
	if e != 0 && e != unix.ENOENT && e != unix.ENOSPC {
		*lastOut = [2][]byte{}
		return
	}
	d.sameBytes(what+" out_batch", b[0].OutBatch, b[1].OutBatch)
	c := int(b[0].Count)
	d.sameBytes(what+" keys", b[0].Keys[:c*m.ks], b[1].Keys[:c*m.ks])
	for i := range c {
		d.sameValue(what+" values", m, sp, [2][]byte{b[0].Values[i*m.vbuf : (i+1)*m.vbuf], b[1].Values[i*m.vbuf : (i+1)*m.vbuf]})
	}
	if e == 0 && c > 0 {
		*lastOut = [2][]byte{slices.Clone(b[0].OutBatch), slices.Clone(b[1].OutBatch)}
	} else {
		*lastOut = [2][]byte{}
	}
}

// batchWalkSets walks a whole map with lookup (or lookup_and_delete) batches on each side and
// compares the entries as sets. A side whose next bucket does not fit (ENOSPC) retries with a
// larger count; bucket sizes differ between sides when the hash seeds do.
func (d *differ) batchWalkSets(m *dmap, sp *keyedSpec, del bool) {
	d.t.Helper()
	cmd := cmdMapLookupBatch
	if del {
		cmd = cmdMapLookupAndDelBatch
	}
	var got [2]map[string]string
	var lastErr [2]unix.Errno
	for s := range 2 {
		got[s] = map[string]string{}
		count := uint32(1 + d.pick(8))
		var in []byte
		for iter := 0; ; iter++ {
			if iter > 1<<16 {
				d.fail("%s batch walk on %s does not end", m.name, d.be[s].name())
			}
			b := &batchArgs{InBatch: in, OutBatch: make([]byte, 4), Keys: make([]byte, int(count)*m.ks),
				Values: make([]byte, int(count)*m.vbuf), Count: count}
			e := d.be[s].batch(cmd, m.rw[s], b)
			if e == unix.ENOSPC && b.Count == 0 {
				count *= 2
				continue
			}
			if e != 0 && e != unix.ENOENT {
				lastErr[s] = e
				break
			}
			for i := range int(b.Count) {
				k := b.Keys[i*m.ks : (i+1)*m.ks]
				v := b.Values[i*m.vbuf : (i+1)*m.vbuf]
				val := fmt.Sprintf("%x", v)
				if sp.idValues {
					val = d.names[s][le32(v)]
				}
				got[s][fmt.Sprintf("%x", k)] = val
			}
			if e == unix.ENOENT {
				lastErr[s] = e
				break
			}
			in = b.OutBatch
		}
	}
	d.note("%s %s walk: %d entries, %s", m.name, cmdName(cmd), len(got[0]), errStr(lastErr[0]))
	d.sameErr(m.name+" "+cmdName(cmd)+" walk end", lastErr[0], lastErr[1])
	if fmt.Sprint(got[0]) != fmt.Sprint(got[1]) {
		d.fail("%s %s walk:\nkernel %v\nengine %v", m.name, cmdName(cmd), got[0], got[1])
	}
}

// lruEvictOp is one step of the LRU eviction phase: an ANY update (or a flag error), then the
// newest key must be present on both sides and neither may hold more than max_entries.
func (d *differ) lruEvictOp(m *dmap, sp *keyedSpec) {
	d.t.Helper()
	key, vals := sp.key(), sp.val()
	fl := uint64(0)
	if d.chance(0.05) {
		fl = []uint64{objects.FLock, 3, 8}[d.pick(3)]
	}
	sel := 0
	if d.chance(0.05) {
		sel = 1 // read-only: EPERM
	}
	if d.elem(m, sel, cmdMapUpdateElem, key, vals, fl) != 0 {
		return
	}
	v := d.outBufs(m.vbuf)
	if d.elem(m, 0, cmdMapLookupElem, key, v, 0) != 0 {
		d.fail("%s: newest key %x missing on both sides", m.name, key)
	}
	d.sameBytes(m.name+" newest value", v[0], v[1])
	if d.chance(0.05) {
		for s := range 2 {
			if n := len(d.walkKeys(m, s)); n > int(m.a.MaxEntries) {
				d.fail("%s on %s: %d entries, max_entries %d", m.name, d.be[s].name(), n, m.a.MaxEntries)
			}
		}
	}
}

// keyPool returns a generator of keys drawn from n distinct random keys of size ks.
func (d *differ) keyPool(ks, n int) func() []byte {
	seen := map[string]bool{}
	var pool [][]byte
	for len(pool) < n {
		k := d.randBytes(ks)
		if !seen[string(k)] {
			seen[string(k)] = true
			pool = append(pool, k)
		}
	}
	return func() []byte { return slices.Clone(pool[d.pick(len(pool))]) }
}

func (d *differ) randVals(n int) func() [2][]byte {
	return func() [2][]byte { return pair(d.randBytes(n)) }
}

func roundPow2(n uint32) uint32 {
	p := uint32(1)
	for p < n {
		p <<= 1
	}
	return p
}

// TestMapDiff is the kernel differential test of the engine's maps.
func TestMapDiff(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(d *differ)
	}{
		{"hash", func(d *differ) { d.hashFamily(objects.MapTypeHash) }},
		{"percpu_hash", func(d *differ) { d.hashFamily(objects.MapTypePercpuHash) }},
		{"lru_hash", func(d *differ) { d.lruFamily(objects.MapTypeLRUHash) }},
		{"lru_percpu_hash", func(d *differ) { d.lruFamily(objects.MapTypeLRUPercpuHash) }},
		{"array", func(d *differ) { d.arrayFamily(objects.MapTypeArray) }},
		{"percpu_array", func(d *differ) { d.arrayFamily(objects.MapTypePercpuArray) }},
		{"lpm_trie", (*differ).lpmTrie},
		{"queue", func(d *differ) { d.queueStack(objects.MapTypeQueue) }},
		{"stack", func(d *differ) { d.queueStack(objects.MapTypeStack) }},
		{"bloom_filter", (*differ).bloomFilter},
		{"array_of_maps", func(d *differ) { d.mapInMap(objects.MapTypeArrayOfMaps) }},
		{"hash_of_maps", func(d *differ) { d.mapInMap(objects.MapTypeHashOfMaps) }},
		{"prog_array", (*differ).progArray},
		{"ringbuf", (*differ).ringbuf},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDiffer(t, tc.name)
			start := time.Now()
			tc.run(d)
			t.Logf("%d random operations (%d steps) in %v", d.ops, d.step, time.Since(start).Round(time.Millisecond))
			d.logStats()
			if d.ops < *mapDiffOps {
				t.Fatalf("only %d operations, want %d", d.ops, *mapDiffOps)
			}
		})
	}
}

// instances splits the op budget over k map instances.
func (d *differ) per(k int) int { return (*mapDiffOps + k - 1) / k }

func (d *differ) hashFamily(typ objects.MapType) {
	type variant struct {
		ks, vs, max, keys int
		flags             uint32
	}
	variants := []variant{
		{4, 8, 32, 48, objects.FZeroSeed},
		{4, 8, 32, 48, 0},
		{3, 5, 16, 24, objects.FZeroSeed | objects.FNoPrealloc},
		{8, 12, 64, 80, objects.FNoPrealloc},
		{6, 4, 7, 12, objects.FZeroSeed},
	}
	for i, v := range variants {
		name := shortName(typ, i)
		m, e := d.create(name, createAttr{Type: typ, KeySize: uint32(v.ks), ValueSize: uint32(v.vs),
			MaxEntries: uint32(v.max), Flags: v.flags, Name: name}, nil)
		if e != 0 {
			d.fail("create %s: %s", name, errStr(e))
		}
		sp := &keyedSpec{key: d.keyPool(v.ks, v.keys), val: d.randVals(m.vbuf),
			ordered: v.flags&objects.FZeroSeed != 0, htab: true, nBuckets: roundPow2(uint32(v.max))}
		d.runKeyed(m, sp, d.per(len(variants)))
		d.closeMap(m)
	}
}

func (d *differ) lruFamily(typ objects.MapType) {
	type variant struct {
		ks, vs, max, keys int
		flags             uint32
		evict             bool
	}
	variants := []variant{
		{4, 8, 1024, 64, objects.FZeroSeed, false},
		{4, 8, 1024, 64, objects.FNoCommonLRU | objects.FZeroSeed, false},
		{5, 8, 1024, 48, 0, false},
		{4, 8, 32, 128, 0, true},
		{4, 8, 33, 128, objects.FNoCommonLRU, true}, // rounded up to a multiple of the CPUs
	}
	for i, v := range variants {
		name := shortName(typ, i)
		m, e := d.create(name, createAttr{Type: typ, KeySize: uint32(v.ks), ValueSize: uint32(v.vs),
			MaxEntries: uint32(v.max), Flags: v.flags, Name: name}, nil)
		if e != 0 {
			d.fail("create %s: %s", name, errStr(e))
		}
		info, _ := d.be[0].info(m.rw[0])
		m.a.MaxEntries = info.MaxEntries
		sp := &keyedSpec{key: d.keyPool(v.ks, v.keys), val: d.randVals(m.vbuf),
			ordered: v.flags&objects.FZeroSeed != 0, htab: true, nBuckets: roundPow2(info.MaxEntries), lruEvict: v.evict}
		d.runKeyed(m, sp, d.per(len(variants)))
		d.closeMap(m)
	}
}

func (d *differ) arrayFamily(typ objects.MapType) {
	for i, v := range []struct{ vs, max int }{{8, 16}, {5, 7}, {12, 1}, {4, 64}} {
		name := shortName(typ, i)
		m, e := d.create(name, createAttr{Type: typ, KeySize: 4, ValueSize: uint32(v.vs), MaxEntries: uint32(v.max), Name: name}, nil)
		if e != 0 {
			d.fail("create %s: %s", name, errStr(e))
		}
		max := v.max
		key := func() []byte {
			var b [4]byte
			idx := uint32(d.pick(max + 3))
			if d.chance(0.02) {
				idx = 0xffffffff
			}
			binary.LittleEndian.PutUint32(b[:], idx)
			return b[:]
		}
		sp := &keyedSpec{key: key, val: d.randVals(m.vbuf), ordered: true}
		d.runKeyed(m, sp, d.per(4))
		d.closeMap(m)
	}
}

func (d *differ) lpmTrie() {
	for i, v := range []struct{ dataLen, vs, max int }{{4, 8, 24}, {2, 3, 8}, {1, 4, 300}} {
		name := fmt.Sprintf("lpm%d", i)
		ks := 4 + v.dataLen
		m, e := d.create(name, createAttr{Type: objects.MapTypeLPMTrie, KeySize: uint32(ks), ValueSize: uint32(v.vs),
			MaxEntries: uint32(v.max), Flags: objects.FNoPrealloc, Name: name}, nil)
		if e != 0 {
			d.fail("create %s: %s", name, errStr(e))
		}
		// A few base addresses with shared prefixes, so prefixes nest and overlap.
		bases := make([][]byte, 6)
		bases[0] = d.randBytes(v.dataLen)
		for j := 1; j < len(bases); j++ {
			bases[j] = slices.Clone(bases[d.pick(j)])
			bit := d.pick(8 * v.dataLen)
			bases[j][bit/8] ^= 0x80 >> (bit % 8)
		}
		maxBits := 8 * v.dataLen
		key := func() []byte {
			k := make([]byte, ks)
			pl := d.pick(maxBits + 1)
			if d.chance(0.02) {
				pl = maxBits + 1 + d.pick(3) // invalid prefix length
			}
			binary.LittleEndian.PutUint32(k, uint32(pl))
			copy(k[4:], bases[d.pick(len(bases))])
			if d.chance(0.3) {
				k[4+d.pick(v.dataLen)] ^= byte(1 << d.pick(8)) // bits below the prefix, usually
			}
			return k
		}
		sp := &keyedSpec{key: key, val: d.randVals(m.vbuf), ordered: true}
		d.runKeyed(m, sp, d.per(3))
		d.closeMap(m)
	}
}

// mapInMap drives an array_of_maps or hash_of_maps whose slots take fds of a few inner maps
// (plus mismatching ones and bad fds).
func (d *differ) mapInMap(typ objects.MapType) {
	inner := createAttr{Type: objects.MapTypeArray, KeySize: 4, ValueSize: 8, MaxEntries: 4}
	var inners []*dmap
	for i := range 4 {
		a := inner
		a.Name = fmt.Sprintf("inner%d", i)
		m, e := d.create(a.Name, a, nil)
		if e != 0 {
			d.fail("create inner: %s", errStr(e))
		}
		inners = append(inners, m)
	}
	// Mismatching inner maps: different max_entries, different type.
	odd := []createAttr{
		{Type: objects.MapTypeArray, KeySize: 4, ValueSize: 8, MaxEntries: 5, Name: "odd_max"},
		{Type: objects.MapTypeHash, KeySize: 4, ValueSize: 8, MaxEntries: 4, Name: "odd_type"},
		{Type: objects.MapTypeArray, KeySize: 4, ValueSize: 8, MaxEntries: 4, Flags: objects.FRdonlyProg, Name: "odd_flags"},
	}
	var odds []*dmap
	for _, a := range odd {
		m, e := d.create(a.Name, a, nil)
		if e != 0 {
			d.fail("create %s: %s", a.Name, errStr(e))
		}
		odds = append(odds, m)
	}
	type variant struct {
		ks, max, keys int
		flags         uint32
	}
	var variants []variant
	if typ == objects.MapTypeArrayOfMaps {
		variants = []variant{{4, 8, 0, 0}, {4, 3, 0, 0}}
	} else {
		variants = []variant{{4, 8, 12, objects.FZeroSeed}, {4, 16, 24, 0}, {3, 5, 8, objects.FZeroSeed}}
	}
	for i, v := range variants {
		name := shortName(typ, i)
		m, e := d.create(name, createAttr{Type: typ, KeySize: uint32(v.ks), ValueSize: 4, MaxEntries: uint32(v.max),
			Flags: v.flags, Name: name}, inners[0])
		if e != 0 {
			d.fail("create %s: %s", name, errStr(e))
		}
		val := func() [2][]byte {
			var out [2][]byte
			r := d.pick(20)
			for s := range 2 {
				var fd int
				switch {
				case r == 0:
					fd = 100000 // closed: EBADF
				case r == 1:
					fd = odds[d.pick(len(odds))%len(odds)].rw[s]
				case r == 2:
					fd = m.rw[s] // a map-in-map cannot be an inner map
				default:
					fd = inners[r%len(inners)].rw[s]
				}
				out[s] = binary.LittleEndian.AppendUint32(nil, uint32(fd))
			}
			if r == 1 {
				// Same odd map on both sides.
				j := d.pick(len(odds))
				for s := range 2 {
					out[s] = binary.LittleEndian.AppendUint32(nil, uint32(odds[j].rw[s]))
				}
			}
			return out
		}
		sp := &keyedSpec{val: val, idValues: true, slowWrites: true}
		if typ == objects.MapTypeArrayOfMaps {
			max := v.max
			sp.key = func() []byte {
				return binary.LittleEndian.AppendUint32(nil, uint32(d.pick(max+2)))
			}
			sp.ordered = true
		} else {
			sp.key = d.keyPool(v.ks, v.keys)
			sp.ordered = v.flags&objects.FZeroSeed != 0
			sp.htab = true
			sp.nBuckets = roundPow2(uint32(v.max))
		}
		d.runKeyed(m, sp, d.per(len(variants)))
		d.closeMap(m)
	}
	// Creates with bad inner_map_fd: closed, a map-in-map, a prog_array.
	pa, e := d.create("pa", createAttr{Type: objects.MapTypeProgArray, KeySize: 4, ValueSize: 4, MaxEntries: 2, Name: "pa"}, nil)
	if e != 0 {
		d.fail("create prog_array: %s", errStr(e))
	}
	outer, _ := d.create("outer", createAttr{Type: typ, KeySize: 4, ValueSize: 4, MaxEntries: 2, Name: "outer"}, inners[1])
	for _, bad := range []*dmap{pa, outer, {name: "closed", rw: [2]int{100000, 100000}}} {
		if bad == nil {
			continue
		}
		d.create("bad_inner_"+bad.name, createAttr{Type: typ, KeySize: 4, ValueSize: 4, MaxEntries: 2}, bad)
	}
}

func (d *differ) progArray() {
	other, _ := d.create("other", createAttr{Type: objects.MapTypeArray, KeySize: 4, ValueSize: 4, MaxEntries: 1}, nil)
	for i, max := range []int{4, 1} {
		name := fmt.Sprintf("prog_array%d", i)
		m, e := d.create(name, createAttr{Type: objects.MapTypeProgArray, KeySize: 4, ValueSize: 4, MaxEntries: uint32(max), Name: name}, nil)
		if e != 0 {
			d.fail("create %s: %s", name, errStr(e))
		}
		val := func() [2][]byte {
			r := d.pick(3)
			var out [2][]byte
			for s := range 2 {
				fd := []int{other.rw[s], m.rw[s], 100000}[r]
				out[s] = binary.LittleEndian.AppendUint32(nil, uint32(fd))
			}
			return out
		}
		sp := &keyedSpec{val: val, idValues: true, ordered: true,
			key: func() []byte { return binary.LittleEndian.AppendUint32(nil, uint32(d.pick(max+2))) }}
		d.runKeyed(m, sp, d.per(2))
		d.closeMap(m)
	}
}

// queueStack drives push (update), peek (lookup), pop (lookup_and_delete) and the unsupported
// commands on a queue or stack.
func (d *differ) queueStack(typ objects.MapType) {
	for i, v := range []struct{ vs, max int }{{8, 4}, {3, 16}, {16, 1}} {
		name := shortName(typ, i)
		m, e := d.create(name, createAttr{Type: typ, ValueSize: uint32(v.vs), MaxEntries: uint32(v.max), Name: name}, nil)
		if e != 0 {
			d.fail("create %s: %s", name, errStr(e))
		}
		d.runKeyless(m, d.per(3), false)
		d.closeMap(m)
	}
}

// runKeyless drives a queue, stack or bloom filter (ordered: the bloom filter's bits are the
// kernel's, ZERO_SEED).
func (d *differ) runKeyless(m *dmap, n int, exactBloom bool) {
	d.t.Helper()
	bloom := m.a.Type == objects.MapTypeBloomFilter
	freezeAt := -1
	if d.chance(0.3) {
		freezeAt = n/2 + d.pick(n/2)
	}
	var pushed [][]byte
	pool := make([][]byte, 24)
	for i := range pool {
		pool[i] = d.randBytes(m.vbuf)
	}
	val := func() []byte { return slices.Clone(pool[d.pick(len(pool))]) }
	var junkKey []byte
	for i := 0; i < n; i++ {
		d.ops++
		if i == freezeAt {
			d.freeze(m, d.fdSel())
			if !m.frozen {
				d.freeze(m, 0)
			}
			d.freeze(m, 0)
		}
		sel := d.fdSel()
		var key []byte
		if d.chance(0.02) {
			junkKey = d.randBytes(4)
			key = junkKey // a key on a keyless map: EINVAL
		}
		switch r := d.pick(100); {
		case r < 40:
			fl := []uint64{0, 0, 0, 0, objects.Exist, objects.Exist, objects.NoExist, 3, objects.FLock, 8}[d.pick(10)]
			v := val()
			if d.elem(m, sel, cmdMapUpdateElem, key, pair(v), fl) == 0 {
				pushed = append(pushed, v)
			}
		case r < 65:
			var v [2][]byte
			if bloom {
				if d.chance(0.5) && len(pushed) > 0 {
					v = pair(pushed[d.pick(len(pushed))])
				} else {
					v = pair(val())
				}
			} else {
				v = d.outBufs(m.vbuf)
			}
			e := d.elem(m, sel, cmdMapLookupElem, key, v, d.lookupFlag())
			if !bloom && e == 0 {
				d.sameBytes(m.name+" peek", v[0], v[1])
			}
			if bloom && !exactBloom {
				// Without ZERO_SEED only a pushed value has a known answer (0).
				_ = e
			}
		case r < 85:
			v := d.outBufs(m.vbuf)
			fl := uint64(0)
			if d.chance(0.1) {
				fl = []uint64{objects.FLock, 1, 2}[d.pick(3)]
			}
			if d.chance(0.02) {
				v = [2][]byte{} // NULL value: popped, then EFAULT
			}
			if d.elem(m, sel, cmdMapLookupAndDelete, key, v, fl) == 0 && v[0] != nil {
				d.sameBytes(m.name+" pop", v[0], v[1])
			}
		case r < 90:
			d.elem(m, sel, cmdMapDeleteElem, key, [2][]byte{}, 0)
		case r < 94:
			d.elem(m, sel, cmdMapGetNextKey, key, d.outBufs(4), 0)
		default:
			d.unsupportedBatches(m, sel)
		}
	}
}

// unsupportedBatches runs each batch command with a small count (ENOTSUPP for these types).
func (d *differ) unsupportedBatches(m *dmap, sel int) {
	d.t.Helper()
	cmd := []int{cmdMapLookupBatch, cmdMapLookupAndDelBatch, cmdMapUpdateBatch, cmdMapDeleteBatch}[d.pick(4)]
	n := uint32(d.pick(3))
	var b [2]*batchArgs
	for s := range 2 {
		b[s] = &batchArgs{OutBatch: make([]byte, 8), Keys: make([]byte, 8*4), Values: make([]byte, 8*(m.vbuf+8)), Count: n}
	}
	d.batch(m, sel, cmd, b)
}

// bloomFilter compares push and membership tests; with ZERO_SEED the bit positions are the
// kernel's, so false positives must match too. Without it, a pushed value must be found on both.
func (d *differ) bloomFilter() {
	for i, v := range []struct {
		vs, max int
		extra   uint64
		flags   uint32
	}{{8, 16, 0, objects.FZeroSeed}, {4, 8, 3, objects.FZeroSeed}, {5, 100, 1, objects.FZeroSeed}, {8, 4, 0, 0}} {
		name := fmt.Sprintf("bloom%d", i)
		m, e := d.create(name, createAttr{Type: objects.MapTypeBloomFilter, ValueSize: uint32(v.vs),
			MaxEntries: uint32(v.max), Extra: v.extra, Flags: v.flags, Name: name}, nil)
		if e != 0 {
			d.fail("create %s: %s", name, errStr(e))
		}
		if v.flags&objects.FZeroSeed != 0 {
			d.runKeyless(m, d.per(4), true)
		} else {
			d.bloomRandomSeed(m, d.per(4))
		}
		d.closeMap(m)
	}
}

// bloomRandomSeed: pushes and lookups of pushed values only (answers for other values depend on
// the per-map random seed).
func (d *differ) bloomRandomSeed(m *dmap, n int) {
	var pushed [][]byte
	for range n {
		d.ops++
		if len(pushed) == 0 || d.chance(0.4) {
			v := d.randBytes(m.vbuf)
			if d.elem(m, 0, cmdMapUpdateElem, nil, pair(v), 0) != 0 {
				d.fail("bloom push failed")
			}
			pushed = append(pushed, v)
			continue
		}
		if e := d.elem(m, 0, cmdMapLookupElem, nil, pair(pushed[d.pick(len(pushed))]), 0); e != 0 {
			d.fail("bloom lookup of a pushed value: %s", errStr(e))
		}
	}
}

// ringbuf compares the element commands' errnos (ENOTSUPP with a NULL key, EINVAL with one).
func (d *differ) ringbuf() {
	m, e := d.create("ringbuf", createAttr{Type: objects.MapTypeRingbuf, MaxEntries: 4096, Name: "ringbuf"}, nil)
	if e != 0 {
		d.fail("create ringbuf: %s", errStr(e))
	}
	n := d.per(1)
	for i := range n {
		d.ops++
		if i == n/2 {
			d.freeze(m, 0)
			d.freeze(m, 0)
		}
		sel := d.fdSel()
		var key []byte
		if d.chance(0.3) {
			key = d.randBytes(4)
		}
		var v [2][]byte
		if d.chance(0.7) {
			v = d.outBufs(8)
		}
		switch r := d.pick(6); r {
		case 0, 1, 2, 3, 4:
			cmd := []int{cmdMapLookupElem, cmdMapUpdateElem, cmdMapDeleteElem, cmdMapGetNextKey, cmdMapLookupAndDelete}[r]
			fl := uint64(0)
			if d.chance(0.2) && cmd != cmdMapDeleteElem && cmd != cmdMapGetNextKey {
				fl = d.updateFlag()
			}
			d.elem(m, sel, cmd, key, v, fl)
		default:
			d.unsupportedBatches(m, sel)
		}
	}
	d.closeMap(m)
}

// TestMapDiffIDs compares MAP_GET_NEXT_ID walks and MAP_GET_FD_BY_ID (open_flags, ids of
// closed maps) while maps come and go. Only the maps this test created are compared: other
// processes create kernel maps too.
func TestMapDiffIDs(t *testing.T) {
	d := newDiffer(t, "ids")
	type live struct {
		name string
		fd   [2]int
		id   [2]uint32
	}
	var maps []*live
	var dead []*live
	var firstID [2]uint32
	mine := func(s int) map[uint32]string {
		out := map[uint32]string{}
		for _, l := range maps {
			out[l.id[s]] = l.name
		}
		for _, l := range dead {
			out[l.id[s]] = l.name
		}
		return out
	}
	n := 0
	for i := 0; i < 2000; i++ {
		d.ops++
		switch r := d.pick(10); {
		case r < 4 || len(maps) == 0:
			n++
			name := fmt.Sprintf("m%d", n)
			var l live
			l.name = name
			for s := range 2 {
				fd, e := d.be[s].create(createAttr{Type: objects.MapTypeArray, KeySize: 4, ValueSize: 4, MaxEntries: 1, Name: name})
				if e != 0 {
					d.fail("create: %s", errStr(e))
				}
				info, _ := d.be[s].info(fd)
				l.fd[s], l.id[s] = fd, info.ID
				if firstID[s] == 0 {
					firstID[s] = info.ID
				}
			}
			d.note("create %s ids %v", name, l.id)
			maps = append(maps, &l)
		case r < 6:
			j := d.pick(len(maps))
			l := maps[j]
			for s := range 2 {
				d.be[s].close(l.fd[s])
			}
			d.note("close %s", l.name)
			maps = slices.Delete(maps, j, j+1)
			dead = append(dead, l)
		case r < 8:
			// GET_FD_BY_ID of a live or dead map with random open_flags.
			var l *live
			if len(dead) > 0 && d.chance(0.3) {
				l = dead[d.pick(len(dead))]
			} else {
				l = maps[d.pick(len(maps))]
			}
			of := []uint32{0, objects.FRdonly, objects.FWronly, objects.FRdonly | objects.FWronly, 1, 1 << 20}[d.pick(6)]
			var fds [2]int
			var errs [2]unix.Errno
			for s := range 2 {
				fds[s], errs[s] = d.be[s].fdByID(l.id[s], of)
			}
			d.note("get_fd_by_id %s open_flags %#x → %s", l.name, of, errStr(errs[0]))
			if d.sameErr(fmt.Sprintf("GET_FD_BY_ID %s open_flags %#x", l.name, of), errs[0], errs[1]) == 0 {
				// The new fd's access mode: a lookup needs read, an update write.
				for _, cmd := range []int{cmdMapLookupElem, cmdMapUpdateElem} {
					var es [2]unix.Errno
					for s := range 2 {
						es[s] = d.be[s].elem(cmd, fds[s], []byte{0, 0, 0, 0}, make([]byte, 4), 0)
					}
					d.sameErr(fmt.Sprintf("%s through fd from GET_FD_BY_ID open_flags %#x", cmdName(cmd), of), es[0], es[1])
				}
				for s := range 2 {
					d.be[s].close(fds[s])
				}
			}
		default:
			// Walk ids from a random start relative to our maps and compare the sequence
			// of our own maps each side visits.
			var walks [2][]string
			startFrom := d.pick(len(maps) + len(dead) + 1)
			all := append(slices.Clone(maps), dead...)
			sort.Slice(all, func(a, b int) bool { return all[a].id[0] < all[b].id[0] })
			for s := range 2 {
				start := firstID[s] - 1
				if startFrom < len(all) {
					start = all[startFrom].id[s]
				}
				own := mine(s)
				var last uint32
				for _, l := range all {
					last = max(last, l.id[s])
				}
				id := start
				for {
					next, e := d.be[s].nextID(id)
					if e == unix.ENOENT {
						break
					}
					if e != 0 {
						d.fail("%s GET_NEXT_ID %d: %s", d.be[s].name(), id, errStr(e))
					}
					if next <= id {
						d.fail("%s GET_NEXT_ID %d returned %d", d.be[s].name(), id, next)
					}
					if next > last {
						break
					}
					if name, ok := own[next]; ok {
						walks[s] = append(walks[s], name)
					}
					id = next
				}
			}
			d.note("id walk from #%d: %v", startFrom, walks[0])
			if fmt.Sprint(walks[0]) != fmt.Sprint(walks[1]) {
				d.fail("GET_NEXT_ID walk: kernel %v, engine %v", walks[0], walks[1])
			}
		}
	}
	// Bad start ids.
	for _, start := range []uint32{1<<31 - 1, 1 << 31, 0xffffffff} {
		_, ke := d.be[0].nextID(start)
		_, ee := d.be[1].nextID(start)
		d.sameErr(fmt.Sprintf("GET_NEXT_ID %d", start), ke, ee)
	}
	for _, id := range []uint32{0, 1<<31 - 1, 0xffffffff} {
		_, ke := d.be[0].fdByID(id, 0)
		_, ee := d.be[1].fdByID(id, 0)
		d.sameErr(fmt.Sprintf("GET_FD_BY_ID %d", id), ke, ee)
	}
	for _, l := range maps {
		for s := range 2 {
			d.be[s].close(l.fd[s])
		}
	}
}

// shortName names a test map within BPF_OBJ_NAME_LEN.
func shortName(typ objects.MapType, i int) string {
	n := strings.ReplaceAll(typ.String(), "_", "")
	if len(n) > 12 {
		n = n[:12]
	}
	return fmt.Sprintf("%s%d", n, i)
}

// short abbreviates long buffers in the failure trail.
func short(b []byte) []byte {
	if len(b) > 32 {
		return b[:32]
	}
	return b
}
