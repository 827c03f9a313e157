package control

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bpffs-fuse/bpffs-fuse/engine"
)

// TestListenerLifecycle covers the socket layer under the server: the mode Listen sets, a live
// socket refused (EADDRINUSE) and a stale one replaced, Serve returning once the listener is
// closed, the socket file removed by Close, and a dial to it then failing with ENOENT (or
// ECONNREFUSED on a stale file, as connect(2) gives).
func TestListenerLifecycle(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.sock")
	l, err := Listen(path, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o640 {
		t.Fatalf("socket file: %v %v, want a socket of mode 0640", fi, err)
	}
	if _, err := Listen(path, 0o640); !errors.Is(err, unix.EADDRINUSE) {
		t.Fatalf("Listen on a live socket: %v, want EADDRINUSE", err)
	}
	srv := NewServer(engine.New(engine.Config{}), Policy{})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	c, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.MapGetNextID(0); !errors.Is(err, unix.ENOENT) {
		t.Fatalf("MapGetNextID on an empty engine: %v, want ENOENT", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve after Close: %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after the listener was closed")
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatalf("socket file after Close: %v, want it gone", err)
	}
	if _, err := Dial(path); !errors.Is(err, unix.ENOENT) {
		t.Fatalf("Dial after Close: %v, want ENOENT", err)
	}
	// The connection made before Close still works: closing a listener does not drop the
	// connections it accepted (Server.Close does).
	if _, err := c.MapGetNextID(0); !errors.Is(err, unix.ENOENT) {
		t.Fatalf("MapGetNextID after the listener closed: %v, want ENOENT", err)
	}
	c.Exit()
	srv.Close()

	// A stale socket file (its daemon died) is refused by connect and replaced by Listen.
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	if _, err := Dial(path); !errors.Is(err, unix.ECONNREFUSED) {
		t.Fatalf("Dial to a stale socket: %v, want ECONNREFUSED", err)
	}
	l2, err := Listen(path, 0o600)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	l2.Close()
	if err := l2.Close(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("second Close: %v, want os.ErrClosed", err)
	}
}
