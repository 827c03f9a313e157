package control

import (
	"testing"

	"github.com/bpffs-fuse/bpffs-fuse/engine"
	"github.com/bpffs-fuse/bpffs-fuse/objects"
)

// BenchmarkRoundTrip measures one request/response over the socket (MapUpdateElem on a hash
// map), against the same call on an in-process engine.Process.
func BenchmarkRoundTrip(b *testing.B) {
	_, path := startServer(b, Policy{})
	c := dial(b, path)
	local := engine.New(engine.Config{NumPossibleCPUs: 2}).NewProcess(engine.Root())
	for _, s := range []struct {
		name string
		p    interface {
			MapCreate(*engine.MapCreateAttr) (int, error)
			MapUpdateElem(int, []byte, []byte, uint64) error
		}
	}{{"in-process", local}, {"socket", c}} {
		fd, err := s.p.MapCreate(&engine.MapCreateAttr{MapType: objects.MapTypeHash, KeySize: 4, ValueSize: 8, MaxEntries: 1024})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(s.name, func(b *testing.B) {
			k, v := le32(1), le64(2)
			for b.Loop() {
				if err := s.p.MapUpdateElem(fd, k, v, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDial measures a connection's setup and teardown: connect, handshake (the daemon
// reads the caller's credentials and umask), one request, exit.
func BenchmarkDial(b *testing.B) {
	_, path := startServer(b, Policy{})
	for b.Loop() {
		c, err := Dial(path)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.MapGetNextID(1 << 30); err == nil {
			b.Fatal("no error")
		}
		c.Exit()
	}
}
