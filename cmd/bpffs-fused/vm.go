package main

import (
	"bufio"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/bpffs-fuse/bpffs-fuse/engine/vm"
	"github.com/bpffs-fuse/bpffs-fuse/engine/vm/asm"
)

func init() { register("vm", vmMain) }

const vmUsage = `Usage: bpffs-fuse vm { run | plugin | disasm | help }

  vm run [--mem HEX] [--mode isa|linux] FILE
        Run FILE and print r0 in hex. FILE is a bpf_conformance .data file
        (its -- asm/-- raw and -- mem sections are used), assembly text
        (.s, .asm, or any text) or raw bytecode (.bin/.o: 8-byte instructions).
        --mem overrides the memory passed as r1 (pointer) and r2 (length).
  vm plugin [HEX_MEMORY] [--mode isa|linux] [--program HEX]
        bpf_conformance plugin protocol: the program as hex bytes on stdin
        (one line), memory as the first argument; prints r0 in hex, errors on
        stderr with a non-zero exit status.
  vm disasm [--syntax xlated|ubpf] FILE
        Print the program in bpftool's "dump xlated" syntax (default) or in
        the assembly dialect "vm run" reads.

The helpers are bpf_conformance's test helpers (0 gather_bytes, 1 memfrob,
2 no_op, 3 sqrti, 4 strcmp_ext, 5 unwind).
`

func vmMain(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, vmUsage)
		return 255
	}
	switch args[0] {
	case "help", "-h", "--help":
		fmt.Print(vmUsage)
		return 0
	case "run":
		return vmRun(args[1:])
	case "plugin":
		return vmPlugin(args[1:], os.Stdin, os.Stdout, os.Stderr)
	case "disasm":
		return vmDisasm(args[1:])
	}
	fmt.Fprintf(os.Stderr, "Error: unknown vm command '%s'\n", args[0])
	fmt.Fprint(os.Stderr, vmUsage)
	return 255
}

func parseMode(s string) (vm.Mode, error) {
	switch s {
	case "isa", "":
		return vm.ModeISA, nil
	case "linux":
		return vm.ModeLinux, nil
	}
	return 0, fmt.Errorf("invalid mode %q (want isa or linux)", s)
}

// decodeHexBytes accepts "01 02 ff", "0102ff" and "0x01 0x02".
func decodeHexBytes(s string) ([]byte, error) {
	var out []byte
	for _, f := range strings.Fields(s) {
		f = strings.TrimPrefix(strings.TrimPrefix(f, "0x"), "0X")
		if len(f)%2 == 1 {
			f = "0" + f
		}
		b, err := hex.DecodeString(f)
		if err != nil {
			return nil, fmt.Errorf("invalid hex %q", f)
		}
		out = append(out, b...)
	}
	return out, nil
}

// readProgram loads FILE as a .data file, raw bytecode or assembly.
func readProgram(path string) (insns []vm.Insn, mem []byte, hasMem bool, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, false, err
	}
	switch ext := strings.ToLower(filepath.Ext(path)); {
	case ext == ".data":
		d, err := asm.ParseDataFile(string(b))
		if err != nil {
			return nil, nil, false, err
		}
		return d.Insns, d.Mem, true, nil
	case ext == ".bin" || ext == ".o" || ext == ".raw":
		insns, err := vm.Decode(b)
		return insns, nil, false, err
	}
	insns, err = asm.Assemble(string(b))
	return insns, nil, false, err
}

func runWithMem(insns []vm.Insn, mode vm.Mode, mem []byte) (uint64, error) {
	p, err := vm.Load(insns, vm.LoadOptions{Mode: mode, Helpers: vm.ConformanceHelpers()})
	if err != nil {
		return 0, err
	}
	m := vm.NewMachine()
	var r1 uint64
	if len(mem) > 0 {
		r1 = m.NewPointer(vm.Region{Data: mem, Writable: true, Kind: vm.RegionMemory})
	}
	m.SetPacket(mem)
	return m.Run(p, r1, uint64(len(mem)))
}

// parseOneFile parses a vm subcommand's flags and requires one FILE operand. When it reports
// !ok the subcommand exits with code: 0 after --help, 255 for a usage error.
func parseOneFile(fs *flag.FlagSet, args []string) (code int, ok bool) {
	fs.Usage = func() { fmt.Fprint(fs.Output(), vmUsage) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return 255, false
	}
	if fs.NArg() != 1 {
		fmt.Fprintf(os.Stderr, "Error: %s needs exactly one FILE\n", fs.Name())
		return 255, false
	}
	return 0, true
}

func vmRun(args []string) int {
	fs := flag.NewFlagSet("vm run", flag.ContinueOnError)
	memHex := fs.String("mem", "", "memory passed as r1/r2, in hex")
	modeS := fs.String("mode", "isa", "isa or linux")
	if code, ok := parseOneFile(fs, args); !ok {
		return code
	}
	mode, err := parseMode(*modeS)
	if err != nil {
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		return 255
	}
	insns, mem, _, err := readProgram(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(os.Stderr, "Error: %s: %v\n", fs.Arg(0), err)
		return 255
	}
	if *memHex != "" {
		if mem, err = decodeHexBytes(*memHex); err != nil {
			fmt.Fprintf(os.Stderr, "Error: --mem: %v\n", err)
			return 255
		}
	}
	r0, err := runWithMem(insns, mode, mem)
	if err != nil {
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		return 1
	}
	fmt.Printf("%#x\n", r0)
	return 0
}

// vmPlugin implements the bpf_conformance plugin protocol
// (Alan-Jowett/bpf_conformance libbpf_plugin/libbpf_plugin.cc): program on
// stdin as hex bytes, memory as the first argument, r0 in hex on stdout.
func vmPlugin(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var memHex, progHex string
	mode := vm.ModeISA
	haveProg := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--help" || a == "-h":
			fmt.Fprintln(stdout, "usage: bpffs-fuse vm plugin [<base16 memory bytes>] [--mode isa|linux] [--program <base16 program bytes>]")
			return 0
		case a == "--program" && i+1 < len(args):
			progHex, haveProg = args[i+1], true
			i++
		case a == "--mode" && i+1 < len(args):
			m, err := parseMode(args[i+1])
			if err != nil {
				fmt.Fprintln(stderr, err)
				return 1
			}
			mode = m
			i++
		case a == "--elf":
			fmt.Fprintln(stderr, "ELF input is not supported")
			return 1
		case a == "--debug":
		case strings.HasPrefix(a, "--"):
			fmt.Fprintf(stderr, "Unexpected arguments: %s\n", a)
			return 1
		case memHex == "":
			memHex = a
		default:
			fmt.Fprintf(stderr, "Unexpected arguments: %s\n", a)
			return 1
		}
	}
	if !haveProg {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && err != io.EOF {
			fmt.Fprintln(stderr, err)
			return 1
		}
		progHex = line
	}
	code, err := decodeHexBytes(progHex)
	if err != nil {
		fmt.Fprintf(stderr, "program: %v\n", err)
		return 1
	}
	mem, err := decodeHexBytes(memHex)
	if err != nil {
		fmt.Fprintf(stderr, "memory: %v\n", err)
		return 1
	}
	insns, err := vm.Decode(code)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	r0, err := runWithMem(insns, mode, mem)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "%x\n", r0)
	return 0
}

func vmDisasm(args []string) int {
	fs := flag.NewFlagSet("vm disasm", flag.ContinueOnError)
	syntax := fs.String("syntax", "xlated", "xlated or ubpf")
	if code, ok := parseOneFile(fs, args); !ok {
		return code
	}
	insns, _, _, err := readProgram(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(os.Stderr, "Error: %s: %v\n", fs.Arg(0), err)
		return 255
	}
	switch *syntax {
	case "xlated":
		fmt.Print(asm.Xlated(insns))
	case "ubpf", "asm":
		fmt.Print(asm.Disassemble(insns))
	default:
		fmt.Fprintf(os.Stderr, "Error: invalid syntax %q\n", *syntax)
		return 255
	}
	return 0
}
