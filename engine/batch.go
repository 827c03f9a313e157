package engine

import (
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/bpffs-fuse/bpffs-fuse/objects"
)

// MapBatchAttr is the batch part of union bpf_attr. InBatch nil means "from the start";
// OutBatch receives the token to pass as InBatch next time (a key for most maps, a u32 bucket
// index for hash maps). Keys and Values hold Count elements back to back (values of
// bpf_map_value_size bytes each). Count is the number of elements to process on input and the
// number processed on output, also when an error is returned.
type MapBatchAttr struct {
	InBatch   []byte
	OutBatch  []byte
	Keys      []byte
	Values    []byte
	Count     uint32
	ElemFlags uint64
	Flags     uint64
}

// Batch support per map type (kernel-semantics.md c.6): which of the four batch commands the
// map type's bpf_map_ops implements.
type batchSupport struct{ lookup, lookupAndDelete, update, delete bool }

func batchOps(t objects.MapType) batchSupport {
	switch t {
	case objects.MapTypeHash, objects.MapTypePercpuHash, objects.MapTypeLRUHash,
		objects.MapTypeLRUPercpuHash, objects.MapTypeHashOfMaps:
		return batchSupport{true, true, true, true}
	case objects.MapTypeArray, objects.MapTypePercpuArray, objects.MapTypeArrayOfMaps:
		return batchSupport{lookup: true, update: true}
	case objects.MapTypeLPMTrie:
		return batchSupport{lookup: true, update: true, delete: true}
	}
	return batchSupport{}
}

var errBatchNotSupp = fmt.Errorf("batch operation not supported by this map type: %w", objects.ENOTSUPP)

// batchMap is the common start of kernel/bpf/syscall.c:bpf_map_do_batch.
func (p *Process) batchMap(fd int, a *MapBatchAttr, perms uint8, op string) (*objects.Map, error) {
	if err := p.checkBPF(); err != nil {
		return nil, err
	}
	m, f, err := p.mapFile(fd)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if perms&modeRead != 0 && sysPerms(m, f)&modeRead == 0 {
		return nil, needPerms(m, f, modeRead, op)
	}
	if perms&modeWrite != 0 && sysPerms(m, f)&modeWrite == 0 {
		return nil, needPerms(m, f, modeWrite, op)
	}
	return m, nil
}

// checkElemFlags is the elem_flags check every batch function starts with.
func checkElemFlags(a *MapBatchAttr, op string) error {
	if a.ElemFlags&^objects.FLock != 0 {
		return fmt.Errorf("%s: elem_flags %#x: %w", op, a.ElemFlags, unix.EINVAL)
	}
	if a.ElemFlags&objects.FLock != 0 {
		return errLock(op)
	}
	return nil
}

func checkBatchBufs(m *objects.Map, a *MapBatchAttr, op string) error {
	n := int(a.Count)
	if len(a.Keys) < n*int(m.KeySize) {
		return fmt.Errorf("%s: keys buffer %d bytes for %d keys of %d: %w", op, len(a.Keys), n, m.KeySize, unix.EFAULT)
	}
	if len(a.Values) < n*m.ValueBufSize() {
		return fmt.Errorf("%s: values buffer %d bytes for %d values of %d: %w", op, len(a.Values), n, m.ValueBufSize(), unix.EFAULT)
	}
	return nil
}

// MapLookupBatch is BPF_MAP_LOOKUP_BATCH.
func (p *Process) MapLookupBatch(fd int, a *MapBatchAttr) error {
	return p.lookupBatch(fd, a, false)
}

// MapLookupAndDeleteBatch is BPF_MAP_LOOKUP_AND_DELETE_BATCH.
func (p *Process) MapLookupAndDeleteBatch(fd int, a *MapBatchAttr) error {
	return p.lookupBatch(fd, a, true)
}

func (p *Process) lookupBatch(fd int, a *MapBatchAttr, del bool) error {
	op, perms := "map lookup_batch", modeRead
	if del {
		op, perms = "map lookup_and_delete_batch", modeRead|modeWrite
	}
	m, err := p.batchMap(fd, a, perms, op)
	if err != nil {
		return err
	}
	sup := batchOps(m.Type)
	if !sup.lookup || del && !sup.lookupAndDelete {
		return fmt.Errorf("%s: %s: %w", op, m.Type, errBatchNotSupp)
	}
	if b, ok := m.Batcher(); ok {
		return htabBatch(m, b, a, del, op)
	}
	return genericLookupBatch(m, a, op)
}

// htabBatch is kernel/bpf/hashtab.c:__htab_map_lookup_and_delete_batch: the token is a u32
// bucket index.
func htabBatch(m *objects.Map, b objects.BucketBatcher, a *MapBatchAttr, del bool, op string) error {
	if err := checkElemFlags(a, op); err != nil {
		return err
	}
	if a.Flags != 0 {
		return fmt.Errorf("%s: flags %#x: %w", op, a.Flags, unix.EINVAL)
	}
	max := a.Count
	if max == 0 {
		return nil
	}
	a.Count = 0
	var bucket uint32
	if a.InBatch != nil {
		if len(a.InBatch) < 4 {
			return fmt.Errorf("%s: in_batch must hold a u32 bucket index: %w", op, unix.EFAULT)
		}
		bucket = binary.LittleEndian.Uint32(a.InBatch)
	}
	probe := *a
	probe.Count = max
	if err := checkBatchBufs(m, &probe, op); err != nil {
		return err
	}
	if len(a.OutBatch) < 4 {
		return fmt.Errorf("%s: out_batch must have room for a u32 bucket index: %w", op, unix.EFAULT)
	}
	n, next, err := b.LookupBatch(bucket, a.Keys, a.Values, int(max), del)
	a.Count = uint32(n)
	if errors.Is(err, unix.ENOENT) && n == 0 && next == bucket {
		// in_batch >= n_buckets: the kernel returns ENOENT before the walk and leaves
		// out_batch alone (a walk that ends always reports next = n_buckets > in_batch).
		return fmt.Errorf("%s: %w", op, err)
	}
	// The kernel writes out_batch on ENOSPC too (the bucket that did not fit).
	binary.LittleEndian.PutUint32(a.OutBatch, next)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// genericLookupBatch is kernel/bpf/syscall.c:generic_map_lookup_batch: the token is a key; the
// walk follows get_next_key and skips keys that vanish between get_next_key and lookup. On
// reaching the end it returns get_next_key's ENOENT with the partial count.
func genericLookupBatch(m *objects.Map, a *MapBatchAttr, op string) error {
	if err := checkElemFlags(a, op); err != nil {
		return err
	}
	max := a.Count
	if max == 0 {
		return nil
	}
	a.Count = 0
	ks, vs := int(m.KeySize), m.ValueBufSize()
	probe := *a
	probe.Count = max
	if err := checkBatchBufs(m, &probe, op); err != nil {
		return err
	}
	var prev []byte
	if a.InBatch != nil {
		if len(a.InBatch) < ks {
			return fmt.Errorf("%s: in_batch shorter than key_size: %w", op, unix.EFAULT)
		}
		prev = append([]byte(nil), a.InBatch[:ks]...)
	}
	key := make([]byte, ks)
	var err error
	cp := uint32(0)
	for cp < max {
		if err = m.GetNextKey(prev, key); err != nil {
			break
		}
		err = m.Lookup(key, a.Values[int(cp)*vs:int(cp+1)*vs])
		if err != nil && !errors.Is(err, unix.ENOENT) {
			// The kernel leaves batch.count at the 0 it wrote first.
			return fmt.Errorf("%s: %w", op, err)
		}
		if err == nil {
			copy(a.Keys[int(cp)*ks:], key)
			cp++
		}
		// A key deleted between get_next_key and lookup is skipped, and the walk goes on
		// from it.
		prev = append(prev[:0], key...)
	}
	a.Count = cp
	if cp > 0 {
		if len(a.OutBatch) < ks {
			return fmt.Errorf("%s: out_batch shorter than key_size: %w", op, unix.EFAULT)
		}
		copy(a.OutBatch, prev)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// MapUpdateBatch is BPF_MAP_UPDATE_BATCH (kernel/bpf/syscall.c:generic_map_update_batch):
// entries apply in order until the first error; Count says how many succeeded.
func (p *Process) MapUpdateBatch(fd int, a *MapBatchAttr) error {
	return p.genericWriteBatch(fd, a, "map update_batch", func(m *objects.Map, key, value []byte) error {
		return p.updateValue(m, key, value, a.ElemFlags, "map update_batch")
	})
}

// MapDeleteBatch is BPF_MAP_DELETE_BATCH (kernel/bpf/syscall.c:generic_map_delete_batch).
func (p *Process) MapDeleteBatch(fd int, a *MapBatchAttr) error {
	return p.genericWriteBatch(fd, a, "map delete_batch", nil)
}

// genericWriteBatch is the loop generic_map_update_batch and generic_map_delete_batch share:
// elements in order, stopping at the first error, with batch.count zeroed first and then set
// to the number that succeeded. update nil means delete (which reads no values).
func (p *Process) genericWriteBatch(fd int, a *MapBatchAttr, op string, update func(m *objects.Map, key, value []byte) error) error {
	m, err := p.batchMap(fd, a, modeWrite, op)
	if err != nil {
		return err
	}
	if sup := batchOps(m.Type); update != nil && !sup.update || update == nil && !sup.delete {
		return fmt.Errorf("%s: %s: %w", op, m.Type, errBatchNotSupp)
	}
	if err := checkElemFlags(a, op); err != nil {
		return err
	}
	max := a.Count
	if max == 0 {
		return nil
	}
	a.Count = 0
	ks, vs := int(m.KeySize), 0
	if update != nil {
		vs = m.ValueBufSize()
	}
	var cp uint32
	for ; cp < max; cp++ {
		k, v := int(cp)*ks, int(cp)*vs
		if k+ks > len(a.Keys) || update != nil && v+vs > len(a.Values) {
			err = fmt.Errorf("%s: element %d is past the keys or values buffer: %w", op, cp, unix.EFAULT)
			break
		}
		if update != nil {
			err = update(m, a.Keys[k:k+ks], a.Values[v:v+vs])
		} else if err = m.Delete(a.Keys[k : k+ks]); err != nil {
			err = fmt.Errorf("%s: %w", op, err)
		}
		if err != nil {
			break
		}
	}
	a.Count = cp
	return err
}
