package control

import (
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// Unix stream sockets as *os.File, served by the Go runtime's poller (os.NewFile makes a
// non-blocking descriptor pollable, with deadlines), instead of package net: net's package
// initialization and size add about 0.1 ms to the start of every program that links it, and
// the CLI, which links this package for its client, starts once per command.

// dialUnix connects a non-blocking unix stream socket to path. As net.DialUnix does, a
// listener whose backlog is full is EAGAIN, not a wait.
func dialUnix(path string) (*os.File, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	for {
		err = unix.Connect(fd, &unix.SockaddrUnix{Name: path})
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), path), nil
}

// Listener is a listening unix socket (see Listen). Close stops it and removes its socket
// file, as closing a net.UnixListener does.
type Listener struct {
	f    *os.File
	path string

	mu     sync.Mutex
	closed bool
}

// Listen creates a unix socket at path with the given mode, replacing a stale socket file
// left there by a daemon that died.
func Listen(path string, mode os.FileMode) (*Listener, error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		if c, err := dialUnix(path); err == nil {
			c.Close()
			return nil, fmt.Errorf("control socket %s is in use: %w", path, unix.EADDRINUSE)
		}
		os.Remove(path)
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "bind", Path: path, Err: err}
	}
	if err := unix.Listen(fd, unix.SOMAXCONN); err != nil {
		unix.Close(fd)
		os.Remove(path)
		return nil, &os.PathError{Op: "listen", Path: path, Err: err}
	}
	l := &Listener{f: os.NewFile(uintptr(fd), path), path: path}
	if err := os.Chmod(path, mode); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// Close stops the listener (a pending accept returns) and removes the socket file.
func (l *Listener) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return os.ErrClosed
	}
	l.closed = true
	os.Remove(l.path)
	return l.f.Close()
}

func (l *Listener) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// accept waits for a connection; after Close it returns an error wrapping os.ErrClosed.
func (l *Listener) accept() (*os.File, error) {
	rc, err := l.f.SyscallConn()
	if err != nil {
		return nil, err
	}
	nfd := -1
	var aerr error
	err = rc.Read(func(fd uintptr) bool {
		// The poller is edge-triggered: only EAGAIN may send it back to waiting.
		for {
			nfd, _, aerr = unix.Accept4(int(fd), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
			if aerr != unix.EINTR && aerr != unix.ECONNABORTED {
				return aerr != unix.EAGAIN
			}
		}
	})
	if err != nil {
		if l.isClosed() {
			return nil, fmt.Errorf("accept: %w", os.ErrClosed)
		}
		return nil, err
	}
	if aerr != nil {
		return nil, os.NewSyscallError("accept4", aerr)
	}
	return os.NewFile(uintptr(nfd), l.path), nil
}
