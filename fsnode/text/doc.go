// Package text is the map text codec of bpffs-fuse: what cat prints for a pinned map without
// BTF, and what echo, printf, tee -a and cat FILE > MAP write back. It knows map shapes
// (objects.Map's type and sizes, as a Shape) and nothing of FUSE or the engine: Encoder
// formats elements the caller lists, Parser turns written text into Ops the caller applies.
//
// # Output
//
// A listing starts with one comment line giving the map's shape, which input ignores:
//
//	# hash name counters key 4 value 8 max_entries 1024
//
// then one line per element, KEY: VALUE, each field as space-separated two-digit lowercase
// hex bytes in memory order (little-endian integers read backwards):
//
//	01 00 00 00: 2a 00 00 00 00 00 00 00
//
// A field of one byte prints as 0x2a instead, because a lone token always reads back as an
// integer (see Input). Per-CPU maps print each possible CPU's value (value_size bytes of a slot
// that is round_up(value_size, 8) bytes wide) in a block, as the kernel's bpffs does for
// BTF-typed maps (kernel/bpf/hashtab.c:htab_percpu_map_seq_show_elem):
//
//	01 00 00 00: {
//		cpu0: 01 00 00 00 00 00 00 00
//		cpu1: 02 00 00 00 00 00 00 00
//	}
//
// Queue and stack maps print one value per line, no key. The order is the caller's; listing
// oldest first (a queue's pop order, a stack's reverse pop order) makes the listing push back
// into an empty map as the same content. prog_array and maps of maps print the id of the
// object in the slot, in decimal (KEY: ID). Maps that cannot be listed (bloom_filter,
// ringbuf, user_ringbuf, arena) print only the header line, which says why.
//
// Encoder.AppendEntry formats one element into a caller's buffer without allocating; Writer
// does the same onto an io.Writer.
//
// # Input
//
// Text is read line by line. Blank lines and comments (from a '#' that starts a word to the
// end of the line) are ignored, as is '\r'. Each other line is one operation:
//
//	[VERB] KEY: VALUE          the printed form
//	[VERB] KEY VALUE           the same without the colon
//	[VERB] KEY: {              a per-CPU block, one "cpuN: VALUE" per line, then "}"
//	[VERB] VALUE               queue, stack, bloom_filter: push
//	delete KEY
//	[VERB] key [hex] BYTES value [hex] BYTES [any|exist|noexist]    bpftool's form
//	delete key [hex] BYTES
//	[push] value [hex] BYTES
//
// VERB is update (BPF_ANY, the default), insert (BPF_NOEXIST: fails with EEXIST if the key
// is present), replace (BPF_EXIST: fails with ENOENT if absent), delete, push (queue, stack,
// bloom_filter; enqueue is the same, and a verbless line on these maps pushes) or overwrite
// (push with BPF_EXIST: a full queue or stack drops its oldest value).
//
// A field (key or value) of N bytes is written as
//   - N hex bytes: two hex digits each (0x and one or two digits also do), in memory order,
//     e.g. 2a 00 00 00;
//   - one integer, when N is 1 to 8: decimal, optionally negative, or 0x hex, stored
//     little-endian; it must fit in N bytes, signed or unsigned (-128..255 for one byte);
//   - for per-CPU values: one value as above, copied to every CPU (as bpftool does), or a
//     block listing cpuN: VALUE items, on one line or several; CPUs left out are zero;
//   - for prog_array and maps of maps: the id of the program or map, N or id N (the caller
//     resolves it).
//
// A lone token is thus always an integer: "10" is ten, also in a one-byte field, and a
// two-digit token is a hex byte only among N of them. Without a colon, the key is one
// integer or N hex bytes and the value is the rest; when both splits parse, the line is
// rejected as ambiguous.
//
// In bpftool's form BYTES are exactly N numbers, read as bpftool reads them (C strtoul base
// 0: 0x hex, leading-0 octal, decimal; base 16 after "hex"), each 0..255; as an extension one
// integer fills a field of 2 to 8 bytes. A trailing any, exist or noexist sets the flag like
// the verbs; a per-CPU value is copied to every CPU; an fd map's value is id N.
//
// Examples, for a hash map with key 4 and value 8:
//
//	1 42                              update key 1 to 42
//	01 00 00 00: 2a 00 00 00 00 00 00 00   the same, as cat prints it
//	insert 0x10 -1                    add key 16 = 0xffffffffffffffff, EEXIST if present
//	replace 7: 0x2a                   change key 7 only if it exists
//	delete 1
//	key 1 0 0 0 value hex 2a 0 0 0 0 0 0 0 noexist    bpftool's form
//
// # Writes
//
// Parser.Feed takes each write(2): it parses every complete line of it, after the text kept
// from the previous write, and returns their ops only if all of them are valid; otherwise a
// *SyntaxError (wrapping unix.EINVAL) names the first bad line by number (counted from the
// first write), text and reason:
//
//	line 3: "01 02: zz": key: expected 4 hex bytes or one integer, got 2 fields
//
// and the parser is left as before that write, so the caller can fail the write whole. A line
// cut by the end of a write, and a per-CPU block not yet closed, are kept for the next Feed;
// Flush, at release, parses a last line that has no newline. Applying the ops, and the
// errno of the first that fails, are the caller's.
//
// Round trip: for every writable map type, parsing an Encoder listing gives ops that write
// exactly the listed content.
package text
