// Command bpffs-fused is the daemon side of bpffs-fuse: it mounts a bpffs over FUSE and serves
// it, with the control socket, from an in-process engine; it also runs the VM tools. Users do
// not run it directly: bpffs-fuse's mount, umount and vm subcommands execute it. Keeping
// go-fuse, the daemon and the VM out of the CLI binary makes every CLI command start faster
// (go-fuse's package initialization alone creates pipes and reads /proc at every start).
package main

import (
	"fmt"
	"os"
)

var commands = map[string]func(args []string) int{}

func register(name string, run func(args []string) int) {
	if _, dup := commands[name]; dup {
		panic("bpffs-fused: subcommand registered twice: " + name)
	}
	commands[name] = run
}

func main() {
	if len(os.Args) > 1 {
		if run, ok := commands[os.Args[1]]; ok {
			os.Exit(run(os.Args[2:]))
		}
	}
	fmt.Fprint(os.Stderr, "Usage: bpffs-fused { mount | umount | bpffs | vm } ARGS...\n"+
		"bpffs-fused is run by bpffs-fuse: use bpffs-fuse mount, umount and vm.\n")
	os.Exit(255)
}
