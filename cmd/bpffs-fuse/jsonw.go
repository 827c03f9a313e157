package main

import (
	"fmt"
	"io"
)

// jsonWriter is a streaming JSON writer that produces bpftool's exact bytes
// (tools/bpf/bpftool/json_writer.c): commas come before elements, pretty output indents by
// four spaces and puts a closing bracket on its own line only when the collection is
// non-empty, and a value written at depth 0 is not followed by a newline until destroy.
type jsonWriter struct {
	w      io.Writer
	depth  int
	pretty bool
	sep    byte // 0 or ','
}

func newJSONWriter(w io.Writer) *jsonWriter { return &jsonWriter{w: w} }

func (j *jsonWriter) put(s string) { io.WriteString(j.w, s) }

func (j *jsonWriter) indent() {
	for range j.depth {
		j.put("    ")
	}
}

// eol ends the line and indents, in pretty mode (json_writer.c:jsonw_eol).
func (j *jsonWriter) eol() {
	if !j.pretty {
		return
	}
	j.put("\n")
	j.indent()
}

// eor writes the separator before a new element (json_writer.c:jsonw_eor).
func (j *jsonWriter) eor() {
	if j.sep != 0 {
		j.put(string(j.sep))
	}
	j.sep = ','
}

// quote writes s as json_writer.c:jsonw_puts does: C escapes only, and (as in bpftool) a
// backslash comes out as "\n".
func (j *jsonWriter) quote(s string) {
	b := make([]byte, 0, len(s)+2)
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\t':
			b = append(b, `\t`...)
		case '\n':
			b = append(b, `\n`...)
		case '\r':
			b = append(b, `\r`...)
		case '\f':
			b = append(b, `\f`...)
		case '\b':
			b = append(b, `\b`...)
		case '\\':
			b = append(b, `\n`...)
		case '"':
			b = append(b, `\"`...)
		case '\'':
			b = append(b, `\'`...)
		default:
			b = append(b, c)
		}
	}
	b = append(b, '"')
	j.w.Write(b)
}

func (j *jsonWriter) begin(c string) {
	j.eor()
	j.put(c)
	j.depth++
	j.sep = 0
}

func (j *jsonWriter) end(c string) {
	j.depth--
	if j.sep != 0 {
		j.eol()
	}
	j.put(c)
	j.sep = ','
}

func (j *jsonWriter) startObject() { j.begin("{") }
func (j *jsonWriter) endObject()   { j.end("}") }
func (j *jsonWriter) startArray()  { j.begin("[") }
func (j *jsonWriter) endArray()    { j.end("]") }

// name writes a property name (json_writer.c:jsonw_name).
func (j *jsonWriter) name(n string) {
	j.eor()
	j.eol()
	j.sep = 0
	j.quote(n)
	j.put(":")
	if j.pretty {
		j.put(" ")
	}
}

// printf writes a raw value (json_writer.c:jsonw_printf).
func (j *jsonWriter) printf(format string, args ...any) {
	j.eor()
	fmt.Fprintf(j.w, format, args...)
}

// enquote writes a formatted string value without escaping (jsonw_vprintf_enquote, used
// by p_err).
func (j *jsonWriter) enquote(format string, args ...any) {
	j.eor()
	j.put(`"`)
	fmt.Fprintf(j.w, format, args...)
	j.put(`"`)
}

func (j *jsonWriter) str(s string)  { j.eor(); j.quote(s) }
func (j *jsonWriter) null()         { j.printf("null") }
func (j *jsonWriter) uint(v uint64) { j.printf("%d", v) }
func (j *jsonWriter) int(v int64)   { j.printf("%d", v) }
func (j *jsonWriter) bool(v bool) {
	if v {
		j.printf("true")
	} else {
		j.printf("false")
	}
}

func (j *jsonWriter) strField(n, v string)         { j.name(n); j.str(v) }
func (j *jsonWriter) uintField(n string, v uint64) { j.name(n); j.uint(v) }
func (j *jsonWriter) intField(n string, v int64)   { j.name(n); j.int(v) }
func (j *jsonWriter) boolField(n string, v bool)   { j.name(n); j.bool(v) }
func (j *jsonWriter) nullField(n string)           { j.name(n); j.null() }

// destroy ends the output with a newline (json_writer.c:jsonw_destroy).
func (j *jsonWriter) destroy() { j.put("\n") }
