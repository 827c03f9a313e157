// Command bpffs-fuse mounts a bpffs over FUSE backed by an in-process BPF engine and speaks
// bpftool's command language against it.
//
// The command itself is thin: each top-level subcommand lives in its own file and registers
// itself in commands from an init function, so that subcommands can be added without touching
// this file.
package main

import (
	"fmt"
	"os"
	"sort"
	"strings"
)

// command is one top-level subcommand: run gets the arguments after the subcommand's name and
// returns the process exit status.
type command struct {
	summary string
	run     func(args []string) int
}

var commands = map[string]command{}

// leadingOptions, when set, runs a command line that starts with an option.
var leadingOptions func(args []string) int

func register(name, summary string, run func(args []string) int) {
	if _, dup := commands[name]; dup {
		panic("bpffs-fuse: subcommand registered twice: " + name)
	}
	commands[name] = command{summary: summary, run: run}
}

func usage() {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("Usage: bpffs-fuse [OPTIONS] OBJECT { COMMAND | help }\n\nOBJECT:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  %-8s %s\n", n, commands[n].summary)
	}
	fmt.Fprint(os.Stderr, b.String())
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage()
		if len(args) == 0 {
			return 255
		}
		return 0
	}
	c, ok := commands[args[0]]
	if !ok && leadingOptions != nil {
		// bpftool-style options before the object (bpffs-fuse -j map show), and objects
		// abbreviated as bpftool allows (bpffs-fuse m s).
		return leadingOptions(args)
	}
	if !ok {
		fmt.Fprintf(os.Stderr, "Error: unrecognized object '%s'\n", args[0])
		usage()
		return 255
	}
	return c.run(args[1:])
}
