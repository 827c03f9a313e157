package fsnode

import (
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/bpffs-fuse/bpffs-fuse/engine"
	"github.com/bpffs-fuse/bpffs-fuse/objects"
)

// BenchmarkCatHash1M reads a pinned 1e6-element hash map (key 4 B, value 8 B) through the
// mount with 128 KiB reads, as cat does.
func BenchmarkCatHash1M(b *testing.B) {
	if _, err := os.Stat("/dev/fuse"); err != nil || os.Geteuid() != 0 {
		b.Skip("FUSE unavailable: needs /dev/fuse and root")
	}
	eng := engine.New(engine.Config{MemoryLimit: 1 << 30})
	dir := b.TempDir()
	s, err := Mount(dir, Config{Engine: eng, Mode: 0o777})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Unmount()
	p := eng.NewProcess(engine.Root())
	defer p.Exit()
	const n = 1000000
	fd, err := p.MapCreate(&engine.MapCreateAttr{MapType: objects.MapTypeHash, KeySize: 4, ValueSize: 8, MaxEntries: n})
	if err != nil {
		b.Fatal(err)
	}
	var k [4]byte
	var v [8]byte
	for i := 0; i < n; i++ {
		binary.LittleEndian.PutUint32(k[:], uint32(i))
		binary.LittleEndian.PutUint64(v[:], uint64(i)*3)
		if err := p.MapUpdateElem(fd, k[:], v[:], 0); err != nil {
			b.Fatal(err)
		}
	}
	path := filepath.Join(dir, "big")
	if err := p.ObjPin(fd, path, 0); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 128<<10)
	runtime.GC()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		total := 0
		for {
			m, err := f.Read(buf)
			total += m
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		f.Close()
		b.SetBytes(int64(total))
	}
}
