package main

import (
	"github.com/bpffs-fuse/bpffs-fuse/engine"
)

// startControl is set by control.go (helper C) in an init func; nil means no control socket.
// The daemon calls it before serving, with the engine, the mount directory and the parsed
// options; socketPath is what the mount root's "user.bpffs.control" xattr answers, and stop is
// called at unmount.
var startControl func(eng *engine.Engine, mountDir string, opts MountOptions) (socketPath string, stop func(), err error)
