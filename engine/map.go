package engine

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/bpffs-fuse/bpffs-fuse/objects"
)

// MapCreateAttr is the BPF_MAP_CREATE part of union bpf_attr (include/uapi/linux/bpf.h),
// field for field.
type MapCreateAttr struct {
	MapType               objects.MapType
	KeySize               uint32
	ValueSize             uint32
	MaxEntries            uint32
	MapFlags              uint32
	InnerMapFD            uint32
	NumaNode              uint32
	MapName               string
	MapIfindex            uint32
	BTFFD                 uint32
	BTFKeyTypeID          uint32
	BTFValueTypeID        uint32
	BTFVmlinuxValueTypeID uint32
	MapExtra              uint64
	ValueTypeBTFObjFD     int32
	MapTokenFD            int32
}

// mapFile returns the map behind fd (kernel/bpf/syscall.c:__bpf_map_get): EBADF for a closed
// fd, EINVAL for an fd that is not a map.
func (p *Process) mapFile(fd int) (*objects.Map, *file, error) {
	f, err := p.get(fd)
	if err != nil {
		return nil, nil, err
	}
	m, ok := f.obj.(*objects.Map)
	if !ok {
		return nil, nil, fmt.Errorf("fd %d is not a map: %w", fd, unix.EINVAL)
	}
	return m, f, nil
}

// fastMap returns the map behind fd when the process may run bpf(2) and fd is a map opened with
// the want mode bits, for the fast paths of the element commands; nil sends the caller through
// the full checks, which report what is wrong in the kernel's order.
func (p *Process) fastMap(fd int, want uint8) *objects.Map {
	if !p.bpfOK {
		return nil
	}
	t := p.table.Load()
	if uint(fd) >= uint(len(t.files)) {
		return nil
	}
	f := t.files[fd].Load()
	if f == nil || f.mode&want != want {
		return nil
	}
	m, _ := f.obj.(*objects.Map)
	return m
}

// sysPerms is kernel/bpf/syscall.c:map_get_sys_perms: a frozen map has lost write access on
// every fd.
func sysPerms(m *objects.Map, f *file) uint8 {
	mode := f.mode
	if m.Frozen() {
		mode &^= modeWrite
	}
	return mode
}

func needPerms(m *objects.Map, f *file, want uint8, op string) error {
	have := sysPerms(m, f)
	if have&want == want {
		return nil
	}
	switch {
	case want&modeWrite != 0 && m.Frozen():
		return fmt.Errorf("%s: map is frozen: %w", op, unix.EPERM)
	case want&modeWrite != 0 && have&modeWrite == 0:
		return fmt.Errorf("%s: fd is read-only: %w", op, unix.EPERM)
	default:
		return fmt.Errorf("%s: fd is write-only: %w", op, unix.EPERM)
	}
}

// copyKey is kernel/bpf/syscall.c:___bpf_copy_key: a keyless map wants a NULL key (EINVAL
// otherwise); a keyed map needs key_size bytes (EFAULT for NULL or short).
func copyKey(m *objects.Map, key []byte, op string) ([]byte, error) {
	if m.KeySize == 0 {
		if key != nil {
			return nil, fmt.Errorf("%s: map %s has no keys, key must be NULL: %w", op, m.Type, unix.EINVAL)
		}
		return nil, nil
	}
	if key == nil {
		return nil, fmt.Errorf("%s: NULL key: %w", op, unix.EFAULT)
	}
	if len(key) < int(m.KeySize) {
		return nil, fmt.Errorf("%s: key buffer %d bytes, key_size %d: %w", op, len(key), m.KeySize, unix.EFAULT)
	}
	return key[:m.KeySize], nil
}

// valueBuf checks a user value buffer against bpf_map_value_size.
func valueBuf(m *objects.Map, value []byte, op string) ([]byte, error) {
	n := m.ValueBufSize()
	if len(value) < n {
		return nil, fmt.Errorf("%s: value buffer %d bytes, map needs %d: %w", op, len(value), n, unix.EFAULT)
	}
	return value[:n], nil
}

func errLock(op string) error {
	return fmt.Errorf("%s: BPF_F_LOCK needs a bpf_spin_lock in the value's BTF: %w", op, unix.EINVAL)
}

// MapCreate is BPF_MAP_CREATE (kernel/bpf/syscall.c:map_create): checks in the kernel's order
// (kernel-semantics.md c.1), then a new id and a new fd. Like the kernel, a create that fails
// consumes no id.
func (p *Process) MapCreate(a *MapCreateAttr) (int, error) {
	if err := p.checkBPF(); err != nil {
		return -1, err
	}
	if a.BTFVmlinuxValueTypeID != 0 && a.MapType != objects.MapTypeStructOps {
		return -1, fmt.Errorf("map create: btf_vmlinux_value_type_id is only for struct_ops: %w", unix.EINVAL)
	}
	if a.BTFKeyTypeID != 0 && a.BTFValueTypeID == 0 {
		return -1, fmt.Errorf("map create: btf_key_type_id without btf_value_type_id: %w", unix.EINVAL)
	}
	attr := &objects.MapAttr{
		MapType:         a.MapType,
		KeySize:         a.KeySize,
		ValueSize:       a.ValueSize,
		MaxEntries:      a.MaxEntries,
		MapFlags:        a.MapFlags,
		NumaNode:        a.NumaNode,
		MapName:         a.MapName,
		MapExtra:        a.MapExtra,
		Capable:         p.cred.Has(CapSysAdmin),
		NumPossibleCPUs: p.eng.cfg.NumPossibleCPUs,
	}
	if err := objects.Validate(attr); err != nil {
		return -1, fmt.Errorf("map create: %w", err)
	}
	if a.MapIfindex != 0 {
		// Offloaded maps need a device with BPF offload (kernel/bpf/offload.c); the engine
		// models none.
		return -1, fmt.Errorf("map create: map_ifindex %d: no device with BPF offload: %w", a.MapIfindex, unix.EINVAL)
	}
	if a.MapType == objects.MapTypeArrayOfMaps || a.MapType == objects.MapTypeHashOfMaps {
		// bpf_map_meta_alloc resolves inner_map_fd inside map_alloc; objects reports the
		// error there.
		inner, _, err := p.mapFile(int(a.InnerMapFD))
		switch {
		case err == nil:
			attr.Inner = inner
		default:
			attr.InnerErr = err
		}
	}
	m, err := objects.NewMap(attr, p.eng.charge)
	if err != nil {
		return -1, fmt.Errorf("map create: %w", err)
	}
	if a.BTFValueTypeID != 0 {
		// map_check_btf: btf_get_by_fd. The engine holds no BTF objects yet, so every btf_fd
		// is either closed (EBADF) or not BTF (EINVAL), as it would be on Linux.
		err := fmt.Errorf("map create: btf_fd %d is not a BTF object: %w", a.BTFFD, unix.EINVAL)
		if _, ferr := p.get(int(a.BTFFD)); ferr != nil {
			err = fmt.Errorf("map create: btf_fd: %w", ferr)
		}
		p.eng.freeMap(m)
		return -1, err
	}
	if err := p.eng.registerMap(m); err != nil {
		p.eng.freeMap(m)
		return -1, fmt.Errorf("map create: %w", err)
	}
	fd, err := p.InstallFD(m, a.MapFlags)
	if err != nil {
		m.PutUser()
		return -1, fmt.Errorf("map create: %w", err)
	}
	return fd, nil
}

// registerMap gives m an id and arranges for the id and the memory to go when the last
// reference does (bpf_map_put → bpf_map_free_id, then bpf_map_free).
func (e *Engine) registerMap(m *objects.Map) error {
	id, err := e.maps.alloc(m)
	if err != nil {
		return err
	}
	m.SetID(id)
	m.OnRelease = func() {
		e.maps.free(id)
		e.freeMap(m)
	}
	return nil
}

// freeMap drops what the map's elements hold and gives its memory back.
func (e *Engine) freeMap(m *objects.Map) {
	m.Release()
	_ = e.charge(-int64(m.Memlock()))
}

// MapLookupElem is BPF_MAP_LOOKUP_ELEM (kernel/bpf/syscall.c:map_lookup_elem). value receives
// bpf_map_value_size bytes: value_size, round_up(value_size, 8) per possible CPU for per-CPU
// maps, or a u32 id for fd maps. Queue, stack and bloom_filter peek.
func (p *Process) MapLookupElem(fd int, key, value []byte, flags uint64) error {
	const op = "map lookup"
	if flags == 0 {
		// Fast path: every check below passes; the lookup is all that is left.
		if m := p.fastMap(fd, modeRead); m != nil && m.KeySize != 0 && len(key) >= int(m.KeySize) && value != nil {
			if n := m.ValueBufSize(); len(value) >= n {
				if err := m.Lookup(key[:m.KeySize], value[:n]); err != nil {
					return fmt.Errorf("%s: %w", op, err)
				}
				return nil
			}
		}
	}
	if err := p.checkBPF(); err != nil {
		return err
	}
	if flags&^objects.FLock != 0 {
		return fmt.Errorf("%s: flags %#x: %w", op, flags, unix.EINVAL)
	}
	m, f, err := p.mapFile(fd)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := needPerms(m, f, modeRead, op); err != nil {
		return err
	}
	if flags&objects.FLock != 0 {
		return errLock(op)
	}
	if key, err = copyKey(m, key, op); err != nil {
		return err
	}
	if value == nil && m.Type != objects.MapTypeBloomFilter {
		// map_lookup_elem looks up into a kernel buffer and copies it out afterwards: with
		// a NULL value pointer a missing key is ENOENT and a hit EFAULT. (A bloom filter's
		// value is an input, copied in first: EFAULT before the lookup. A short non-nil
		// slice has no kernel equivalent and is EFAULT at once.)
		if err := m.Lookup(key, make([]byte, m.ValueBufSize())); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
	}
	if value, err = valueBuf(m, value, op); err != nil {
		return err
	}
	if err := m.Lookup(key, value); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// MapUpdateElem is BPF_MAP_UPDATE_ELEM (kernel/bpf/syscall.c:map_update_elem). flags are
// BPF_ANY, BPF_NOEXIST, BPF_EXIST (and BPF_F_LOCK, which needs BTF). For fd maps the value is a
// u32 fd of this process; queue, stack and bloom_filter push.
func (p *Process) MapUpdateElem(fd int, key, value []byte, flags uint64) error {
	const op = "map update"
	if flags&objects.FLock == 0 {
		// Fast path: every check below passes and the value is not an fd; the update is
		// all that is left.
		if m := p.fastMap(fd, modeWrite); m != nil && m.KeySize != 0 && len(key) >= int(m.KeySize) && !m.Frozen() && !m.IsFdMap() {
			if n := m.ValueBufSize(); len(value) >= n {
				if err := m.Update(key[:m.KeySize], value[:n], flags); err != nil {
					return fmt.Errorf("%s: %w", op, err)
				}
				return nil
			}
		}
	}
	if err := p.checkBPF(); err != nil {
		return err
	}
	m, f, err := p.mapFile(fd)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := needPerms(m, f, modeWrite, op); err != nil {
		return err
	}
	if flags&objects.FLock != 0 {
		return errLock(op)
	}
	if key, err = copyKey(m, key, op); err != nil {
		return err
	}
	if value, err = valueBuf(m, value, op); err != nil {
		return err
	}
	return p.updateValue(m, key, value, flags, op)
}

// updateValue is kernel/bpf/syscall.c:bpf_map_update_value: fd maps resolve the fd in value.
func (p *Process) updateValue(m *objects.Map, key, value []byte, flags uint64, op string) error {
	var err error
	if m.IsFdMap() {
		err = m.UpdateObject(key, value, flags, p.resolveFD)
	} else {
		err = m.Update(key, value, flags)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// resolveFD is the objects.Resolver for this process's fds.
func (p *Process) resolveFD(fd uint32) (objects.Object, error) {
	return p.Object(int(fd))
}

// MapDeleteElem is BPF_MAP_DELETE_ELEM (kernel/bpf/syscall.c:map_delete_elem).
func (p *Process) MapDeleteElem(fd int, key []byte) error {
	const op = "map delete"
	if err := p.checkBPF(); err != nil {
		return err
	}
	m, f, err := p.mapFile(fd)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := needPerms(m, f, modeWrite, op); err != nil {
		return err
	}
	if key, err = copyKey(m, key, op); err != nil {
		return err
	}
	if err := m.Delete(key); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// MapGetNextKey is BPF_MAP_GET_NEXT_KEY (kernel/bpf/syscall.c:map_get_next_key). A nil key
// asks for the first key; next receives key_size bytes.
func (p *Process) MapGetNextKey(fd int, key, next []byte) error {
	const op = "map get_next_key"
	if err := p.checkBPF(); err != nil {
		return err
	}
	m, f, err := p.mapFile(fd)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := needPerms(m, f, modeRead, op); err != nil {
		return err
	}
	if key != nil {
		if key, err = copyKey(m, key, op); err != nil {
			return err
		}
	}
	if next == nil {
		// map_get_next_key steps into a kernel buffer and copies it out last: with a NULL
		// next_key the step's own error (ENOENT at the end) comes first, else EFAULT.
		if err := m.GetNextKey(key, make([]byte, m.KeySize)); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		return fmt.Errorf("%s: NULL next_key: %w", op, unix.EFAULT)
	}
	if len(next) < int(m.KeySize) {
		return fmt.Errorf("%s: next_key buffer %d bytes, key_size %d: %w", op, len(next), m.KeySize, unix.EFAULT)
	}
	if err := m.GetNextKey(key, next[:m.KeySize]); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// MapLookupAndDeleteElem is BPF_MAP_LOOKUP_AND_DELETE_ELEM
// (kernel/bpf/syscall.c:map_lookup_and_delete_elem): pop for queue and stack, lookup-then-delete
// for the hash types, ENOTSUPP (524) for every other type.
func (p *Process) MapLookupAndDeleteElem(fd int, key, value []byte, flags uint64) error {
	const op = "map lookup_and_delete"
	if err := p.checkBPF(); err != nil {
		return err
	}
	if flags&^objects.FLock != 0 {
		return fmt.Errorf("%s: flags %#x: %w", op, flags, unix.EINVAL)
	}
	m, f, err := p.mapFile(fd)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := needPerms(m, f, modeRead|modeWrite, op); err != nil {
		return err
	}
	if flags != 0 && (m.Type == objects.MapTypeQueue || m.Type == objects.MapTypeStack) {
		return fmt.Errorf("%s: flags must be 0 for %s: %w", op, m.Type, unix.EINVAL)
	}
	if flags&objects.FLock != 0 {
		return errLock(op)
	}
	if key, err = copyKey(m, key, op); err != nil {
		return err
	}
	if value == nil {
		// map_lookup_and_delete_elem works on a kernel buffer and copies it out last: with
		// a NULL value the element is still removed (or popped), then the copy fails.
		if err := m.LookupAndDelete(key, make([]byte, m.ValueBufSize()), flags); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		return fmt.Errorf("%s: NULL value: %w", op, unix.EFAULT)
	}
	if value, err = valueBuf(m, value, op); err != nil {
		return err
	}
	if err := m.LookupAndDelete(key, value, flags); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// MapFreeze is BPF_MAP_FREEZE (kernel/bpf/syscall.c:map_freeze): afterwards no syscall may write
// the map. A second freeze fails with EPERM, because the first took write access away.
func (p *Process) MapFreeze(fd int) error {
	const op = "map freeze"
	if err := p.checkBPF(); err != nil {
		return err
	}
	m, f, err := p.mapFile(fd)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := needPerms(m, f, modeWrite, op); err != nil {
		return err
	}
	if !m.Freeze() {
		// Only reachable in a race with another freeze, as in the kernel.
		return fmt.Errorf("%s: already frozen: %w", op, unix.EBUSY)
	}
	return nil
}

// MapGetNextID is BPF_MAP_GET_NEXT_ID (kernel/bpf/syscall.c:bpf_obj_get_next_id): the smallest
// live map id greater than startID.
func (p *Process) MapGetNextID(startID uint32) (uint32, error) {
	const op = "map get_next_id"
	if err := p.checkBPF(); err != nil {
		return 0, err
	}
	if startID >= idMax {
		return 0, fmt.Errorf("%s: start_id %d: %w", op, startID, unix.EINVAL)
	}
	if !p.cred.Has(CapSysAdmin) {
		return 0, fmt.Errorf("%s: needs CAP_SYS_ADMIN: %w", op, unix.EPERM)
	}
	id, ok := p.eng.maps.nextID(startID)
	if !ok {
		return 0, fmt.Errorf("%s: no map id after %d: %w", op, startID, unix.ENOENT)
	}
	return id, nil
}

// MapGetFDByID is BPF_MAP_GET_FD_BY_ID (kernel/bpf/syscall.c:bpf_map_get_fd_by_id). openFlags
// are BPF_F_RDONLY or BPF_F_WRONLY, or 0 for read-write.
func (p *Process) MapGetFDByID(id uint32, openFlags uint32) (int, error) {
	const op = "map get_fd_by_id"
	if err := p.checkBPF(); err != nil {
		return -1, err
	}
	if openFlags&^(objects.FRdonly|objects.FWronly) != 0 {
		return -1, fmt.Errorf("%s: open_flags %#x: %w", op, openFlags, unix.EINVAL)
	}
	if !p.cred.Has(CapSysAdmin) {
		return -1, fmt.Errorf("%s: needs CAP_SYS_ADMIN: %w", op, unix.EPERM)
	}
	if openFlags == objects.FRdonly|objects.FWronly {
		return -1, fmt.Errorf("%s: BPF_F_RDONLY and BPF_F_WRONLY together: %w", op, unix.EINVAL)
	}
	o, ok := p.eng.maps.getUserRef(id)
	if !ok {
		return -1, fmt.Errorf("%s: no map with id %d: %w", op, id, unix.ENOENT)
	}
	fd, err := p.InstallFD(o, openFlags)
	if err != nil {
		o.PutUser()
		return -1, fmt.Errorf("%s: %w", op, err)
	}
	return fd, nil
}
