package objects

import (
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// BPF_MAP_TYPE_QUEUE and BPF_MAP_TYPE_STACK (kernel/bpf/queue_stack_maps.c).

const queueStackCreateFlags = FNumaNode | accessFlagsMask

var (
	errQSFull     = fmt.Errorf("map is full: %w", unix.E2BIG)
	errQSEmpty    = fmt.Errorf("map is empty: %w", unix.ENOENT)
	errQSFlags    = fmt.Errorf("push takes BPF_ANY or BPF_EXIST: %w", unix.EINVAL)
	errQSPopFlags = fmt.Errorf("pop takes no flags: %w", unix.EINVAL)
	errQSKeyed    = fmt.Errorf("queue and stack maps have no keys: %w", unix.EINVAL)
	errNotQueue   = fmt.Errorf("only queue and stack maps list values: %w", unix.EINVAL)
)

// qsChunkBytes is the size of the chunks queue and stack storage is allocated in.
const qsChunkBytes = 64 << 10

func init() {
	for _, t := range []MapType{MapTypeQueue, MapTypeStack} {
		registerMapType(t, &mapType{allocCheck: queueStackAllocCheck, alloc: queueStackAlloc, memUsage: queueStackMemUsage})
	}
}

// queueStackAllocCheck is kernel/bpf/queue_stack_maps.c:queue_stack_map_alloc_check. Its
// bpf_capable() test (EPERM) is the engine's permission step.
func queueStackAllocCheck(attr *MapAttr) error {
	if attr.MaxEntries == 0 || attr.KeySize != 0 || attr.ValueSize == 0 ||
		attr.MapFlags&^queueStackCreateFlags != 0 || !flagsAccessOK(attr.MapFlags) {
		return fmt.Errorf("%s needs key_size 0, value_size > 0, max_entries > 0 and valid flags: %w",
			attr.MapType, unix.EINVAL)
	}
	if attr.ValueSize > kmallocMaxSize {
		return fmt.Errorf("value_size larger than KMALLOC_MAX_SIZE: %w", unix.E2BIG)
	}
	return nil
}

// queueStackMemUsage is kernel/bpf/queue_stack_maps.c:queue_stack_map_mem_usage.
func queueStackMemUsage(m *Map) uint64 {
	return 128 + (uint64(m.MaxEntries)+1)*uint64(m.ValueSize)
}

// queueStack is struct bpf_queue_stack. Instead of the kernel's ring of max_entries+1 slots
// with wrapping head/tail indexes, elements are numbered by 64-bit sequence numbers: tail is
// the oldest element's number, head the number the next push gets, so len = head-tail and
// element s lives in slot s % max_entries. Storage is allocated in chunks as it is first
// written, so a large, mostly empty queue costs little memory. Values never observes an
// element twice, because sequence numbers only grow except by stack pops (see Values).
type queueStack struct {
	mu        sync.Mutex
	stack     bool
	max       uint64
	valueSize int
	perChunk  uint64
	chunks    [][]byte
	head      uint64
	tail      uint64
}

// queueStackAlloc is kernel/bpf/queue_stack_maps.c:queue_stack_map_alloc.
func queueStackAlloc(m *Map, attr *MapAttr) (mapOps, error) {
	q := &queueStack{stack: attr.MapType == MapTypeStack, max: uint64(attr.MaxEntries), valueSize: int(attr.ValueSize)}
	q.perChunk = uint64(qsChunkBytes / q.valueSize)
	if q.perChunk == 0 {
		q.perChunk = 1
	}
	if q.perChunk > q.max {
		q.perChunk = q.max
	}
	q.chunks = make([][]byte, (q.max+q.perChunk-1)/q.perChunk)
	return q, nil
}

// slot returns element seq's storage, allocating its chunk on first use. q.mu must be held.
func (q *queueStack) slot(seq uint64) []byte {
	i := seq % q.max
	c := i / q.perChunk
	if q.chunks[c] == nil {
		n := q.perChunk
		if rest := q.max - c*q.perChunk; rest < n {
			n = rest
		}
		q.chunks[c] = make([]byte, n*uint64(q.valueSize))
	}
	o := int(i%q.perChunk) * q.valueSize
	return q.chunks[c][o : o+q.valueSize : o+q.valueSize]
}

// get is kernel/bpf/queue_stack_maps.c:__queue_map_get and __stack_map_get: the oldest (queue)
// or newest (stack) element; an empty map zeroes value and gives ENOENT.
func (q *queueStack) get(value []byte, del bool) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head == q.tail {
		clear(value)
		return errQSEmpty
	}
	seq := q.tail
	if q.stack {
		seq = q.head - 1
	}
	copy(value, q.slot(seq))
	if del {
		if q.stack {
			q.head--
		} else {
			q.tail++
		}
	}
	return nil
}

// lookup peeks (kernel/bpf/syscall.c:bpf_map_copy_value calls map_peek_elem).
func (q *queueStack) lookup(key, value []byte) error {
	if len(key) != 0 {
		return errQSKeyed
	}
	return q.get(value, false)
}

// update pushes (kernel/bpf/queue_stack_maps.c:queue_stack_map_push_elem): BPF_ANY on a full
// map fails with E2BIG, BPF_EXIST makes room by dropping the oldest element (for a stack, its
// bottom), any other flag is EINVAL.
func (q *queueStack) update(key, value []byte, flags uint64) error {
	if len(key) != 0 {
		return errQSKeyed
	}
	if flags&NoExist != 0 || flags > Exist {
		return errQSFlags
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head-q.tail == q.max {
		if flags != Exist {
			return errQSFull
		}
		q.tail++
	}
	copy(q.slot(q.head), value)
	q.head++
	return nil
}

// delete is kernel/bpf/queue_stack_maps.c:queue_stack_map_delete_elem.
func (q *queueStack) delete(key []byte) error { return errQSKeyed }

// getNextKey is kernel/bpf/queue_stack_maps.c:queue_stack_map_get_next_key.
func (q *queueStack) getNextKey(key, next []byte) error { return errQSKeyed }

// lookupAndDelete pops (kernel/bpf/syscall.c:map_lookup_and_delete_elem: flags must be 0,
// then map_pop_elem).
func (q *queueStack) lookupAndDelete(key, value []byte, flags uint64) error {
	if len(key) != 0 {
		return errQSKeyed
	}
	if flags != 0 {
		return errQSPopFlags
	}
	return q.get(value, true)
}

func (q *queueStack) count() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return int(q.head - q.tail)
}

func (q *queueStack) free() {}

// values calls fn with each element in push order, oldest first; see Map.Values.
func (q *queueStack) values(fn func(value []byte) bool) {
	const batch = 64
	buf := make([]byte, 0, batch*q.valueSize)
	var cur uint64
	started := false
	for {
		q.mu.Lock()
		if !started || cur < q.tail {
			cur = q.tail
			started = true
		}
		end := q.head
		if end > cur+batch {
			end = cur + batch
		}
		buf = buf[:0]
		for s := cur; s < end; s++ {
			buf = append(buf, q.slot(s)...)
		}
		q.mu.Unlock()
		if end <= cur {
			return
		}
		for o := 0; o < len(buf); o += q.valueSize {
			if !fn(buf[o : o+q.valueSize : o+q.valueSize]) {
				return
			}
		}
		cur = end
	}
}

// Values lists a queue's or stack's elements without popping them, in push order: oldest
// first, so for a queue the first value is the one peek and pop return, and for a stack the
// last value is its top. Pushing the listed values in order (BPF_ANY) into an empty map of the
// same type rebuilds it, which is what `cat map > saved; cat saved > map` needs.
//
// Values copies a few elements at a time under the map's lock and calls fn without it, so fn
// may take its time and the map stays usable. Elements pushed or popped meanwhile may or may
// not be listed, but an element present for the whole listing is listed exactly once. fn must
// not keep value after it returns. Returning false stops the listing. Other map types give
// EINVAL.
//
// There is no kernel counterpart: the kernel's bpffs cannot show these maps (it has no
// map_seq_show_elem for them) and bpftool cannot dump them (get_next_key is EINVAL).
func (m *Map) Values(fn func(value []byte) bool) error {
	q, ok := m.ops.(*queueStack)
	if !ok {
		return errNotQueue
	}
	q.values(fn)
	return nil
}
