package asm

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/bpffs-fuse/bpffs-fuse/engine/vm"
)

// DataFile is one bpf_conformance test (a ".data" file).
type DataFile struct {
	Asm     string    // the "-- asm" section
	Insns   []vm.Insn // assembled asm, or the "-- raw" section when present
	Mem     []byte    // "-- mem": passed as r1 (pointer) and r2 (length)
	Result  uint64    // "-- result": expected r0
	HasRes  bool
	Error   string // "-- error": expected error text, if any
	Ignored []string
}

// ParseDataFile parses the bpf_conformance test format
// (Alan-Jowett/bpf_conformance src/bpf_test_parser.cc): "#" comments,
// sections introduced by "-- name". Unknown sections are an error, as the
// runner skips such files.
func ParseDataFile(text string) (*DataFile, error) {
	d := &DataFile{}
	sections := map[string]*strings.Builder{}
	var cur string
	for _, line := range strings.Split(strings.ReplaceAll(text, "\r", ""), "\n") {
		if i := strings.Index(line, "--"); i >= 0 && strings.TrimSpace(line[:i]) == "" {
			name := strings.TrimSpace(line[i+2:])
			switch name {
			case "asm", "raw", "mem", "result", "error":
			case "c", "no register offset":
				d.Ignored = append(d.Ignored, name)
			default:
				return nil, fmt.Errorf("unknown section %q", name)
			}
			cur = name
			if sections[cur] == nil {
				sections[cur] = &strings.Builder{}
			}
			continue
		}
		if cur == "" {
			continue
		}
		sections[cur].WriteString(line)
		sections[cur].WriteByte('\n')
	}
	body := func(name string) (string, bool) {
		b, ok := sections[name]
		if !ok {
			return "", false
		}
		return b.String(), true
	}
	stripComments := func(s string) []string {
		var out []string
		for _, l := range strings.Split(s, "\n") {
			if i := strings.IndexByte(l, '#'); i >= 0 {
				l = l[:i]
			}
			out = append(out, strings.Fields(l)...)
		}
		return out
	}
	if s, ok := body("asm"); ok {
		d.Asm = s
		insns, err := Assemble(s)
		if err != nil {
			return nil, err
		}
		d.Insns = insns
	}
	if s, ok := body("raw"); ok {
		var raw strings.Builder
		for _, w := range stripComments(s) {
			raw.WriteString(".raw " + w + "\n")
		}
		insns, err := Assemble(raw.String())
		if err != nil {
			return nil, fmt.Errorf("raw section: %w", err)
		}
		d.Insns = insns
	}
	if d.Insns == nil {
		return nil, fmt.Errorf("no asm or raw section")
	}
	if s, ok := body("mem"); ok {
		for _, w := range stripComments(s) {
			b, err := strconv.ParseUint(w, 16, 8)
			if err != nil {
				return nil, fmt.Errorf("mem section: invalid byte %q", w)
			}
			d.Mem = append(d.Mem, byte(b))
		}
	}
	if s, ok := body("result"); ok {
		f := stripComments(s)
		if len(f) != 1 {
			return nil, fmt.Errorf("result section: want one number, got %q", strings.TrimSpace(s))
		}
		v, err := num(f[0], -1<<63, 1<<64-1)
		if err != nil {
			return nil, fmt.Errorf("result section: %w", err)
		}
		d.Result, d.HasRes = uint64(v), true
	}
	if s, ok := body("error"); ok {
		d.Error = strings.TrimSpace(s)
	}
	if !d.HasRes && d.Error == "" {
		return nil, fmt.Errorf("no result or error section")
	}
	return d, nil
}
