package engine

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/bpffs-fuse/bpffs-fuse/objects"
)

// MapInfo is struct bpf_map_info (include/uapi/linux/bpf.h, 6.18 layout) plus the fdinfo
// lines bpftool reads from /proc/PID/fdinfo (kernel/bpf/syscall.c:bpf_map_show_fdinfo).
type MapInfo struct {
	Type                  objects.MapType
	ID                    uint32
	KeySize               uint32
	ValueSize             uint32
	MaxEntries            uint32
	MapFlags              uint32
	Name                  string
	Ifindex               uint32
	BTFVmlinuxValueTypeID uint32
	NetnsDev              uint64
	NetnsIno              uint64
	BTFID                 uint32
	BTFKeyTypeID          uint32
	BTFValueTypeID        uint32
	BTFVmlinuxID          uint32
	MapExtra              uint64

	// From fdinfo, not bpf_map_info.
	Frozen  bool
	Memlock uint64
}

// MapGetInfoByFD is BPF_OBJ_GET_INFO_BY_FD on a map fd (kernel/bpf/syscall.c:bpf_map_get_info_by_fd),
// with the fdinfo extras.
func (p *Process) MapGetInfoByFD(fd int) (MapInfo, error) {
	const op = "obj get_info_by_fd"
	if err := p.checkBPF(); err != nil {
		return MapInfo{}, err
	}
	f, err := p.get(fd)
	if err != nil {
		// bpf_obj_get_info_by_fd reports a closed fd as EBADFD, not EBADF.
		return MapInfo{}, fmt.Errorf("%s: fd %d: %w", op, fd, unix.EBADFD)
	}
	m, ok := f.obj.(*objects.Map)
	if !ok {
		return MapInfo{}, fmt.Errorf("%s: fd %d is not a map: %w", op, fd, unix.EINVAL)
	}
	return InfoOf(m), nil
}

// InfoOf returns a map's info, as MapGetInfoByFD would for an fd of it.
func InfoOf(m *objects.Map) MapInfo {
	return MapInfo{
		Type:       m.Type,
		ID:         m.ID(),
		KeySize:    m.KeySize,
		ValueSize:  m.ValueSize,
		MaxEntries: m.MaxEntries,
		MapFlags:   m.Flags,
		Name:       m.Name,
		MapExtra:   m.Extra,
		Frozen:     m.Frozen(),
		Memlock:    m.Memlock(),
	}
}
