// Package objects holds the BPF object kinds and their data structures: maps (one file per
// type), and later programs, links and BTF. It knows nothing of processes, file descriptors,
// FUSE or sockets; the engine package gives objects ids and hands them to processes.
package objects

import "golang.org/x/sys/unix"

// MapType mirrors enum bpf_map_type (include/uapi/linux/bpf.h).
type MapType uint32

// Map types, numbered as in the uapi.
const (
	MapTypeUnspec              MapType = 0
	MapTypeHash                MapType = 1
	MapTypeArray               MapType = 2
	MapTypeProgArray           MapType = 3
	MapTypePerfEventArray      MapType = 4
	MapTypePercpuHash          MapType = 5
	MapTypePercpuArray         MapType = 6
	MapTypeStackTrace          MapType = 7
	MapTypeCgroupArray         MapType = 8
	MapTypeLRUHash             MapType = 9
	MapTypeLRUPercpuHash       MapType = 10
	MapTypeLPMTrie             MapType = 11
	MapTypeArrayOfMaps         MapType = 12
	MapTypeHashOfMaps          MapType = 13
	MapTypeDevmap              MapType = 14
	MapTypeSockmap             MapType = 15
	MapTypeCPUMap              MapType = 16
	MapTypeXskmap              MapType = 17
	MapTypeSockhash            MapType = 18
	MapTypeCgroupStorage       MapType = 19
	MapTypeReuseportSockarray  MapType = 20
	MapTypePercpuCgroupStorage MapType = 21
	MapTypeQueue               MapType = 22
	MapTypeStack               MapType = 23
	MapTypeSkStorage           MapType = 24
	MapTypeDevmapHash          MapType = 25
	MapTypeStructOps           MapType = 26
	MapTypeRingbuf             MapType = 27
	MapTypeInodeStorage        MapType = 28
	MapTypeTaskStorage         MapType = 29
	MapTypeBloomFilter         MapType = 30
	MapTypeUserRingbuf         MapType = 31
	MapTypeCgrpStorage         MapType = 32
	MapTypeArena               MapType = 33
)

// mapTypeNames are bpftool's names (tools/bpf/bpftool/map.c uses libbpf_bpf_map_type_str).
var mapTypeNames = map[MapType]string{
	MapTypeUnspec: "unspec", MapTypeHash: "hash", MapTypeArray: "array", MapTypeProgArray: "prog_array",
	MapTypePerfEventArray: "perf_event_array", MapTypePercpuHash: "percpu_hash",
	MapTypePercpuArray: "percpu_array", MapTypeStackTrace: "stack_trace",
	MapTypeCgroupArray: "cgroup_array", MapTypeLRUHash: "lru_hash",
	MapTypeLRUPercpuHash: "lru_percpu_hash", MapTypeLPMTrie: "lpm_trie",
	MapTypeArrayOfMaps: "array_of_maps", MapTypeHashOfMaps: "hash_of_maps", MapTypeDevmap: "devmap",
	MapTypeSockmap: "sockmap", MapTypeCPUMap: "cpumap", MapTypeXskmap: "xskmap",
	MapTypeSockhash: "sockhash", MapTypeCgroupStorage: "cgroup_storage",
	MapTypeReuseportSockarray: "reuseport_sockarray", MapTypePercpuCgroupStorage: "percpu_cgroup_storage",
	MapTypeQueue: "queue", MapTypeStack: "stack", MapTypeSkStorage: "sk_storage",
	MapTypeDevmapHash: "devmap_hash", MapTypeStructOps: "struct_ops", MapTypeRingbuf: "ringbuf",
	MapTypeInodeStorage: "inode_storage", MapTypeTaskStorage: "task_storage",
	MapTypeBloomFilter: "bloom_filter", MapTypeUserRingbuf: "user_ringbuf",
	MapTypeCgrpStorage: "cgrp_storage", MapTypeArena: "arena",
}

// String returns bpftool's name for the map type, or "type N" when unknown.
func (t MapType) String() string {
	if s, ok := mapTypeNames[t]; ok {
		return s
	}
	return "type " + itoa(uint64(t))
}

// ParseMapType maps a bpftool type name to its MapType.
func ParseMapType(name string) (MapType, bool) {
	for t, s := range mapTypeNames {
		if s == name {
			return t, true
		}
	}
	return 0, false
}

func itoa(v uint64) string {
	if v == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for v > 0 {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return string(b[i:])
}

// Map creation and access flags (BPF_F_*), as in the uapi.
const (
	FNoPrealloc     uint32 = 1 << 0
	FNoCommonLRU    uint32 = 1 << 1
	FNumaNode       uint32 = 1 << 2
	FRdonly         uint32 = 1 << 3
	FWronly         uint32 = 1 << 4
	FStackBuildID   uint32 = 1 << 5
	FZeroSeed       uint32 = 1 << 6
	FRdonlyProg     uint32 = 1 << 7
	FWronlyProg     uint32 = 1 << 8
	FClone          uint32 = 1 << 9
	FMmapable       uint32 = 1 << 10
	FPreserveElems  uint32 = 1 << 11
	FInnerMap       uint32 = 1 << 12
	FLink           uint32 = 1 << 13
	FPathFD         uint32 = 1 << 14
	FVtypeBTFObjFD  uint32 = 1 << 15
	FTokenFD        uint32 = 1 << 16
	FSegvOnFault    uint32 = 1 << 17
	FNoUserConv     uint32 = 1 << 18
	accessFlagsMask        = FRdonly | FWronly | FRdonlyProg | FWronlyProg
)

// Element update flags (BPF_ANY, BPF_NOEXIST, BPF_EXIST, BPF_F_LOCK).
const (
	Any     uint64 = 0
	NoExist uint64 = 1
	Exist   uint64 = 2
	FLock   uint64 = 4
)

// ENOTSUPP is the kernel-internal errno 524 that bpf(2) leaks to user space for unsupported
// map operations (include/linux/errno.h). strerror knows no text for it: "Unknown error 524".
const ENOTSUPP = unix.Errno(524)

// MaxNameLen is BPF_OBJ_NAME_LEN: object names are at most 15 bytes plus the NUL.
const MaxNameLen = 16
