package engine_test

import (
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/bpffs-fuse/bpffs-fuse/engine"
	"github.com/bpffs-fuse/bpffs-fuse/objects"
)

// An embedding program creates an engine, a process, and a hash map, and uses it as with bpf(2).
func Example() {
	eng := engine.New(engine.Config{})
	p := eng.NewProcess(engine.Root())
	defer p.Exit()

	fd, err := p.MapCreate(&engine.MapCreateAttr{
		MapType: objects.MapTypeHash, KeySize: 4, ValueSize: 8, MaxEntries: 1024, MapName: "counters",
	})
	if err != nil {
		panic(err)
	}
	key := binary.LittleEndian.AppendUint32(nil, 1)
	val := binary.LittleEndian.AppendUint64(nil, 42)
	if err := p.MapUpdateElem(fd, key, val, objects.NoExist); err != nil {
		panic(err)
	}
	// A second BPF_NOEXIST insert of the same key fails as on Linux.
	err = p.MapUpdateElem(fd, key, val, objects.NoExist)
	fmt.Println(errors.Is(err, unix.EEXIST), err)

	out := make([]byte, 8)
	if err := p.MapLookupElem(fd, key, out, 0); err != nil {
		panic(err)
	}
	fmt.Println(binary.LittleEndian.Uint64(out))

	info, _ := p.MapGetInfoByFD(fd)
	fmt.Println(info.ID, info.Type, info.Name, info.MaxEntries)
	// Output:
	// true map update: key exists (BPF_NOEXIST): file exists
	// 42
	// 1 hash counters 1024
}

// Per-CPU maps take one value slot of round_up(value_size, 8) bytes per possible CPU.
func ExampleProcess_MapLookupElem_percpu() {
	eng := engine.New(engine.Config{NumPossibleCPUs: 2})
	p := eng.NewProcess(engine.Root())
	defer p.Exit()
	fd, _ := p.MapCreate(&engine.MapCreateAttr{
		MapType: objects.MapTypePercpuArray, KeySize: 4, ValueSize: 4, MaxEntries: 4,
	})
	vals := make([]byte, 16) // 2 CPUs × round_up(4, 8)
	binary.LittleEndian.PutUint32(vals[0:], 7)
	binary.LittleEndian.PutUint32(vals[8:], 9)
	key := []byte{2, 0, 0, 0}
	_ = p.MapUpdateElem(fd, key, vals, objects.Any)
	out := make([]byte, 16)
	_ = p.MapLookupElem(fd, key, out, 0)
	fmt.Println(binary.LittleEndian.Uint32(out[0:]), binary.LittleEndian.Uint32(out[8:]))
	// Output: 7 9
}
