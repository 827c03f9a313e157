package main

// `bpffs-fuse map ...`: bpftool 7.1's map commands (tools/bpf/bpftool/map.c and common.c)
// against the engine of a bpffs-fuse daemon: the same grammar, output bytes and exit status.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/bpffs-fuse/bpffs-fuse/engine"
	"github.com/bpffs-fuse/bpffs-fuse/objects"
)

var mapCommands []cmd

func init() {
	mapCommands = []cmd{
		{"show", (*tool).mapShow},
		{"list", (*tool).mapShow},
		{"help", (*tool).mapHelp},
		{"dump", (*tool).mapDump},
		{"update", (*tool).mapUpdate},
		{"lookup", (*tool).mapLookup},
		{"getnext", (*tool).mapGetNext},
		{"delete", (*tool).mapDelete},
		{"pin", (*tool).mapPin},
		{"event_pipe", (*tool).mapEventPipe},
		{"create", (*tool).mapCreate},
		{"peek", (*tool).mapLookup},
		{"push", (*tool).mapUpdate},
		{"enqueue", (*tool).mapUpdate},
		{"pop", (*tool).mapPop},
		{"dequeue", (*tool).mapPop},
		{"freeze", (*tool).mapFreeze},
	}
}

// doMap is map.c:do_map.
func (t *tool) doMap(args []string) int {
	if t.helpFlag {
		return t.mapHelp(nil)
	}
	return t.cmdSelect(mapCommands, args, (*tool).mapHelp)
}

// mapHelp is map.c:do_help, in bpftool 7.1's wording.
func (t *tool) mapHelp(args []string) int {
	if t.json != nil {
		t.json.null()
		return 0
	}
	t.out.Flush()
	fmt.Fprint(os.Stderr, strings.ReplaceAll(`Usage: %B map { show | list }   [MAP]
       %B map create     FILE type TYPE key KEY_SIZE value VALUE_SIZE \
                                  entries MAX_ENTRIES name NAME [flags FLAGS] \
                                  [inner_map MAP] [dev NAME]
       %B map dump       MAP
       %B map update     MAP [key DATA] [value VALUE] [UPDATE_FLAGS]
       %B map lookup     MAP [key DATA]
       %B map getnext    MAP [key DATA]
       %B map delete     MAP  key DATA
       %B map pin        MAP  FILE
       %B map event_pipe MAP [cpu N index M]
       %B map peek       MAP
       %B map push       MAP value VALUE
       %B map pop        MAP
       %B map enqueue    MAP value VALUE
       %B map dequeue    MAP
       %B map freeze     MAP
       %B map help

       MAP := { id MAP_ID | pinned FILE | name MAP_NAME }
       DATA := { [hex] BYTES }
       PROG := { id PROG_ID | pinned FILE | tag PROG_TAG | name PROG_NAME }
       VALUE := { DATA | MAP | PROG }
       UPDATE_FLAGS := { any | exist | noexist }
       TYPE := { hash | array | prog_array | perf_event_array | percpu_hash |
                 percpu_array | stack_trace | cgroup_array | lru_hash |
                 lru_percpu_hash | lpm_trie | array_of_maps | hash_of_maps |
                 devmap | devmap_hash | sockmap | cpumap | xskmap | sockhash |
                 cgroup_storage | reuseport_sockarray | percpu_cgroup_storage |
                 queue | stack | sk_storage | struct_ops | ringbuf | inode_storage |
                 task_storage | bloom_filter | user_ringbuf }
       OPTIONS := { {-j|--json} [{-p|--pretty}] | {-d|--debug} | {-l|--legacy} |
                    {-f|--bpffs} | {-n|--nomount} }
       --mount DIR: the mount whose daemon id- and name-based commands use (else
                    $BPFFS_MOUNT, else the only bpffs-fuse mount); paths find their mount.
       event_pipe is not supported yet; -d and -l are accepted and ignored.
`, "%B", "bpffs-fuse"))
	return 0
}

// mapFD is an fd in the daemon plus the map's info.
type mapFD struct {
	fd   int
	info engine.MapInfo
}

func isPercpu(t objects.MapType) bool {
	return t == objects.MapTypePercpuHash || t == objects.MapTypePercpuArray || t == objects.MapTypeLRUPercpuHash
}

func isMapOfMaps(t objects.MapType) bool {
	return t == objects.MapTypeArrayOfMaps || t == objects.MapTypeHashOfMaps
}

func roundUp8(v uint32) int { return int((v + 7) &^ 7) }

// openPinned is common.c:open_obj_pinned_any for maps: BPF_OBJ_GET of path, which must be a
// map. quiet suppresses the error message (the -f table walk).
//
// The map's info comes in the same round trip (what bpftool asks next): t.prefetch holds it.
func (t *tool) openPinned(path string, quiet bool) (int, error) {
	c, err := t.connect(path)
	if err != nil {
		if !quiet {
			t.perr("bpf obj get (%s): %v", path, err)
		}
		return -1, err
	}
	_, rp, _ := mountOf(path)
	fd, info, infoErr, err := c.ObjGetMapInfo(rp, 0)
	if err == nil {
		t.prefetch = &prefetched{fd: fd, info: info, err: infoErr}
	}
	if err != nil {
		if !quiet {
			msg := strerror(err)
			// common.c:open_obj_pinned: EACCES where the parent is not a bpffs. bpftool's
			// dirname() rewrites the path it then prints, so the message names the parent.
			if errors.Is(err, unix.EACCES) {
				if _, _, perr := mountOf(filepath.Dir(rp)); perr != nil {
					msg = "directory not in bpf file system (bpffs)"
					path = cDirname(path)
				}
			}
			t.perr("bpf obj get (%s): %s", path, msg)
		}
		return -1, err
	}
	return fd, nil
}

// mapParseFDs is common.c:map_parse_fds: MAP := id N | pinned FILE | name NAME. It consumes
// the two words from *args and returns the fds (name may match several maps).
func (t *tool) mapParseFDs(args *[]string) ([]int, bool) {
	t.prefetch = nil
	a := *args
	next := func() {
		a = a[1:]
		*args = a
	}
	if len(a) == 0 {
		t.usage()
	}
	switch {
	case isPrefix(a[0], "id"):
		if len(a) < 2 {
			t.usage()
		}
		next()
		id, ok := strtoul(a[0], 0)
		if !ok {
			t.perr("can't parse %s as ID", a[0])
			return nil, false
		}
		next()
		c, err := t.connect("")
		if err != nil {
			t.perr("get map by id (%d): %v", uint32(id), err)
			return nil, false
		}
		fd, info, infoErr, err := c.MapGetFDByIDInfo(uint32(id), 0)
		if err != nil {
			t.perr("get map by id (%d): %s", uint32(id), strerror(err))
			return nil, false
		}
		t.prefetch = &prefetched{fd: fd, info: info, err: infoErr}
		return []int{fd}, true
	case isPrefix(a[0], "name"):
		if len(a) < 2 {
			t.usage()
		}
		next()
		name := a[0]
		if len(name) > objects.MaxNameLen-1 {
			t.perr("can't parse name")
			return nil, false
		}
		next()
		return t.mapFDsByName(name)
	case isPrefix(a[0], "pinned"):
		if len(a) < 2 {
			t.usage()
		}
		next()
		path := a[0]
		next()
		fd, err := t.openPinned(path, false)
		if err != nil {
			return nil, false
		}
		return []int{fd}, true
	}
	t.perr("expected 'id', 'name' or 'pinned', got: '%s'?", a[0])
	return nil, false
}

// mapFDsByName is common.c:map_fd_by_name: every map whose name is name.
func (t *tool) mapFDsByName(name string) ([]int, bool) {
	c, err := t.connect("")
	if err != nil {
		t.perr("%v", err)
		return nil, false
	}
	var fds []int
	fail := func() ([]int, bool) {
		for _, fd := range fds {
			c.CloseNoWait(fd)
		}
		return nil, false
	}
	var id uint32
	for {
		id, err = c.MapGetNextID(id)
		if err != nil {
			if !errors.Is(err, unix.ENOENT) {
				t.perr("%s", strerror(err))
				return fail()
			}
			return fds, true
		}
		fd, err := c.MapGetFDByID(id, 0)
		if err != nil {
			t.perr("can't get map by id (%d): %s", id, strerror(err))
			return fail()
		}
		info, err := c.MapGetInfoByFD(fd)
		if err != nil {
			t.perr("can't get map info (%d): %s", id, strerror(err))
			c.CloseNoWait(fd)
			return fail()
		}
		if info.Name != name {
			c.CloseNoWait(fd)
			continue
		}
		fds = append(fds, fd)
	}
}

// mapParseFD is common.c:map_parse_fd: exactly one map.
func (t *tool) mapParseFD(args *[]string) (int, bool) {
	fds, ok := t.mapParseFDs(args)
	if !ok {
		return -1, false
	}
	if len(fds) != 1 {
		if len(fds) > 1 {
			t.perr("several maps match this handle")
			for _, fd := range fds {
				t.cli.CloseNoWait(fd)
			}
		}
		return -1, false
	}
	return fds[0], true
}

// mapParseFDAndInfo is common.c:map_parse_fd_and_info.
func (t *tool) mapParseFDAndInfo(args *[]string) (mapFD, int) {
	fd, ok := t.mapParseFD(args)
	if !ok {
		return mapFD{}, -1
	}
	var info engine.MapInfo
	var err error
	if p := t.prefetch; p != nil && p.fd == fd {
		// Asked for in the round trip that opened fd, right before (mapParseFDs).
		info, err = p.info, p.err
	} else {
		info, err = t.cli.MapGetInfoByFD(fd)
	}
	t.prefetch = nil
	if err != nil {
		t.perr("can't get map info: %s", strerror(err))
		t.cli.CloseNoWait(fd)
		return mapFD{}, errnoRet(err)
	}
	return mapFD{fd, info}, 0
}

// prefetched is the info of the map mapParseFDs just opened, read in the same round trip.
type prefetched struct {
	fd   int
	info engine.MapInfo
	err  error
}

// valueBufSize is map.c:alloc_value's size: round_up(value_size, 8) per possible CPU for
// per-CPU maps.
func (t *tool) valueBufSize(info *engine.MapInfo) int {
	if isPercpu(info.Type) {
		return roundUp8(info.ValueSize) * t.cli.NumPossibleCPUs()
	}
	return int(info.ValueSize)
}

// printEntryJSON is map.c:print_entry_json (maps without BTF).
func (t *tool) printEntryJSON(info *engine.MapInfo, key, value []byte) {
	j := t.json
	j.startObject()
	if !isPercpu(info.Type) {
		j.name("key")
		t.hexDataJSON(key[:info.KeySize])
		j.name("value")
		t.hexDataJSON(value[:info.ValueSize])
	} else {
		n := t.cli.NumPossibleCPUs()
		step := roundUp8(info.ValueSize)
		j.name("key")
		t.hexDataJSON(key[:info.KeySize])
		j.name("values")
		j.startArray()
		for i := range n {
			j.startObject()
			j.intField("cpu", int64(i))
			j.name("value")
			t.hexDataJSON(value[i*step : i*step+int(info.ValueSize)])
			j.endObject()
		}
		j.endArray()
	}
	j.endObject()
}

// printEntryPlain is map.c:print_entry_plain.
func (t *tool) printEntryPlain(info *engine.MapInfo, key, value []byte) {
	w := t.out
	if !isPercpu(info.Type) {
		breakNames := info.KeySize > 16 || info.ValueSize > 16
		singleLine := info.KeySize+info.ValueSize <= 24 && !breakNames
		sp := byte(' ')
		if breakNames {
			sp = '\n'
		}
		if info.KeySize != 0 {
			w.WriteString("key:")
			w.WriteByte(sp)
			fprintHex(w, key[:info.KeySize], " ")
			if singleLine {
				w.WriteString("  ")
			} else {
				w.WriteString("\n")
			}
		}
		if info.ValueSize != 0 {
			// bpftool 7.1 prints a map-in-map value (the inner map id) as bytes too.
			w.WriteString("value:")
			w.WriteByte(sp)
			fprintHex(w, value[:info.ValueSize], " ")
		}
		w.WriteString("\n")
		return
	}
	n := t.cli.NumPossibleCPUs()
	step := roundUp8(info.ValueSize)
	if info.KeySize != 0 {
		w.WriteString("key:\n")
		fprintHex(w, key[:info.KeySize], " ")
		w.WriteString("\n")
	}
	if info.ValueSize != 0 {
		for i := range n {
			sp := byte(' ')
			if info.ValueSize > 16 {
				sp = '\n'
			}
			fmt.Fprintf(w, "value (CPU %02d):%c", i, sp)
			fprintHex(w, value[i*step:i*step+int(info.ValueSize)], " ")
			w.WriteString("\n")
		}
	}
}

// printEntryError is map.c:print_entry_error: a dump entry whose lookup failed.
func (t *tool) printEntryError(info *engine.MapInfo, key []byte, err error) {
	en := unix.Errno(0)
	errors.As(err, &en)
	if (isMapOfMaps(info.Type) || info.Type == objects.MapTypeProgArray) && en == unix.ENOENT {
		return
	}
	if t.json != nil {
		j := t.json
		j.startObject()
		j.name("key")
		t.hexDataJSON(key[:info.KeySize])
		j.name("value")
		j.startObject()
		j.strField("error", strerrno(en))
		j.endObject()
		j.endObject()
		return
	}
	msg := strerrno(en)
	if en == unix.ENOENT {
		msg = "<no entry>"
	}
	breakNames := info.KeySize > 16 || len(msg) > 16
	singleLine := int(info.KeySize)+len(msg) <= 24 && !breakNames
	sp := byte(' ')
	if breakNames {
		sp = '\n'
	}
	w := t.out
	w.WriteString("key:")
	w.WriteByte(sp)
	fprintHex(w, key[:info.KeySize], " ")
	if singleLine {
		w.WriteString("  ")
	} else {
		w.WriteString("\n")
	}
	w.WriteString("value:")
	w.WriteByte(sp)
	w.WriteString(msg)
	w.WriteString("\n")
}

// parseBytes is map.c:parse_bytes: n byte values, optionally preceded by "hex".
func (t *tool) parseBytes(args []string, name string, val []byte) ([]string, bool) {
	base := 0
	if len(args) > 0 && isPrefix(args[0], "hex") {
		base = 16
		args = args[1:]
	}
	i := 0
	for i < len(val) && i < len(args) {
		v, ok := strtoul(args[i], base)
		if !ok {
			t.perr("error parsing byte: %s", args[i])
			return nil, false
		}
		val[i] = byte(v)
		i++
	}
	if i != len(val) {
		t.perr("%s expected %d bytes got %d", name, len(val), i)
		return nil, false
	}
	return args[i:], true
}

// elemParse is the state of map.c:parse_elem.
type elemParse struct {
	info      *engine.MapInfo
	key       []byte // nil: no key expected (any more)
	value     []byte // nil: no value expected (any more)
	keySize   uint32
	valueSize uint32
	flags     *uint64 // nil: no flags accepted (any more)
	valueFD   *int    // set when the value is a map fd (maps of maps)
}

// parseElem is map.c:parse_elem: key, value and update flags in any order.
func (t *tool) parseElem(args []string, p elemParse) bool {
	if len(args) == 0 {
		if p.key == nil && p.value == nil {
			return true
		}
		what := "value"
		if p.key != nil {
			what = "key"
		}
		t.perr("did not find %s", what)
		return false
	}
	switch {
	case isPrefix(args[0], "key"):
		if p.key == nil {
			if p.keySize != 0 {
				t.perr("duplicate key")
			} else {
				t.perr("unnecessary key")
			}
			return false
		}
		rest, ok := t.parseBytes(args[1:], "key", p.key)
		if !ok {
			return false
		}
		p.key = nil
		return t.parseElem(rest, p)
	case isPrefix(args[0], "value"):
		if p.value == nil {
			if p.valueSize != 0 {
				t.perr("duplicate value")
			} else {
				t.perr("unnecessary value")
			}
			return false
		}
		args = args[1:]
		switch {
		case isMapOfMaps(p.info.Type):
			if p.valueSize != 4 {
				t.perr("value smaller than 4B for map in map?")
				return false
			}
			if len(args) < 2 {
				t.perr("not enough value arguments for map in map")
				return false
			}
			fd, ok := t.mapParseFD(&args)
			if !ok {
				return false
			}
			*p.valueFD = fd
			p.value[0], p.value[1], p.value[2], p.value[3] = byte(fd), byte(fd>>8), byte(fd>>16), byte(fd>>24)
		case p.info.Type == objects.MapTypeProgArray:
			if p.valueSize != 4 {
				t.perr("value smaller than 4B for map of progs?")
				return false
			}
			if len(args) < 2 {
				t.perr("not enough value arguments for map of progs")
				return false
			}
			t.perr("programs are not supported yet: %s", strerrno(unix.EOPNOTSUPP))
			return false
		default:
			rest, ok := t.parseBytes(args, "value", p.value[:p.valueSize])
			if !ok {
				return false
			}
			args = rest
			// map.c:fill_per_cpu_value: the value goes to every CPU's slot.
			if isPercpu(p.info.Type) {
				step := roundUp8(p.valueSize)
				for i := step; i+int(p.valueSize) <= len(p.value); i += step {
					copy(p.value[i:], p.value[:p.valueSize])
				}
			}
		}
		p.value = nil
		return t.parseElem(args, p)
	case isPrefix(args[0], "any") || isPrefix(args[0], "noexist") || isPrefix(args[0], "exist"):
		if p.flags == nil {
			t.perr("flags specified multiple times: %s", args[0])
			return false
		}
		switch {
		case isPrefix(args[0], "any"):
			*p.flags = objects.Any
		case isPrefix(args[0], "noexist"):
			*p.flags = objects.NoExist
		default:
			*p.flags = objects.Exist
		}
		p.flags = nil
		return t.parseElem(args[1:], p)
	}
	t.perr("expected key or value, got: %s", args[0])
	return false
}

// allocKeyValue is map.c:alloc_key_value: nil buffers for zero sizes (queue, stack, bloom
// keys are NULL pointers).
func (t *tool) allocKeyValue(info *engine.MapInfo) (key, value []byte) {
	if info.KeySize != 0 {
		key = make([]byte, info.KeySize)
	}
	if info.ValueSize != 0 {
		value = make([]byte, t.valueBufSize(info))
	}
	return key, value
}

// pinnedTable is common.c:build_pinned_obj_table for maps: walk the daemon's mount, open
// every pinned file, and map ids to paths.
func (t *tool) pinnedTable() map[uint32][]string {
	table := map[uint32][]string{}
	if t.cli == nil || t.mountDir == "" {
		return table
	}
	filepath.WalkDir(t.mountDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		fd, info, infoErr, err := t.cli.ObjGetMapInfo(path, 0)
		if err != nil {
			return nil
		}
		if infoErr == nil {
			table[info.ID] = append(table[info.ID], path)
		}
		t.cli.CloseNoWait(fd)
		return nil
	})
	return table
}

// showMapJSON is map.c:show_map_close_json (the fd is closed by the caller).
func (t *tool) showMapJSON(info *engine.MapInfo, pinned map[uint32][]string) {
	j := t.json
	j.startObject()
	j.uintField("id", uint64(info.ID))
	if name, ok := mapTypeName(info.Type); ok {
		j.strField("type", name)
	} else {
		j.uintField("type", uint64(info.Type))
	}
	if info.Name != "" {
		j.strField("name", info.Name)
	}
	j.name("flags")
	j.printf("%d", info.MapFlags)
	j.uintField("bytes_key", uint64(info.KeySize))
	j.uintField("bytes_value", uint64(info.ValueSize))
	j.uintField("max_entries", uint64(info.MaxEntries))
	j.intField("bytes_memlock", int64(info.Memlock))
	frozen := int64(0)
	if info.Frozen {
		frozen = 1
	}
	j.intField("frozen", frozen)
	if info.BTFID != 0 {
		j.intField("btf_id", int64(info.BTFID))
	}
	// map.c: the "pinned" array appears when the table holds any pin at all.
	if len(pinned) > 0 {
		j.name("pinned")
		j.startArray()
		for _, p := range pinned[info.ID] {
			j.str(p)
		}
		j.endArray()
	}
	j.endObject()
}

// mapTypeName is libbpf_bpf_map_type_str.
func mapTypeName(t objects.MapType) (string, bool) {
	s := t.String()
	return s, !strings.HasPrefix(s, "type ")
}

// showMapPlain is map.c:show_map_close_plain.
func (t *tool) showMapPlain(info *engine.MapInfo, pinned map[uint32][]string) {
	w := t.out
	fmt.Fprintf(w, "%d: ", info.ID)
	if name, ok := mapTypeName(info.Type); ok {
		fmt.Fprintf(w, "%s  ", name)
	} else {
		fmt.Fprintf(w, "type %d  ", uint32(info.Type))
	}
	if info.Name != "" {
		fmt.Fprintf(w, "name %s  ", info.Name)
	}
	fmt.Fprintf(w, "flags 0x%x\n", info.MapFlags)
	fmt.Fprintf(w, "\tkey %dB  value %dB  max_entries %d", info.KeySize, info.ValueSize, info.MaxEntries)
	fmt.Fprintf(w, "  memlock %dB", info.Memlock)
	for _, p := range pinned[info.ID] {
		fmt.Fprintf(w, "\n\tpinned %s", p)
	}
	if info.BTFID != 0 || info.Frozen {
		w.WriteString("\n\t")
	}
	if info.BTFID != 0 {
		fmt.Fprintf(w, "btf_id %d", info.BTFID)
	}
	if info.Frozen {
		if info.BTFID != 0 {
			w.WriteString("  ")
		}
		w.WriteString("frozen")
	}
	w.WriteString("\n")
}

func (t *tool) showMap(fd int, info *engine.MapInfo, pinned map[uint32][]string) {
	t.cli.CloseNoWait(fd)
	if t.json != nil {
		t.showMapJSON(info, pinned)
	} else {
		t.showMapPlain(info, pinned)
	}
}

// mapShow is map.c:do_show: every map, or the maps MAP names.
func (t *tool) mapShow(args []string) int {
	if len(args) == 2 {
		fds, ok := t.mapParseFDs(&args)
		if !ok || len(fds) < 1 {
			return -1
		}
		pinned := t.pinnedIfAsked()
		if t.json != nil && len(fds) > 1 {
			t.json.startArray()
		}
		ret := 0
		for i, fd := range fds {
			info, err := t.cli.MapGetInfoByFD(fd)
			if err != nil {
				t.perr("can't get map info: %s", strerror(err))
				for _, f := range fds[i:] {
					t.cli.CloseNoWait(f)
				}
				ret = errnoRet(err)
				break
			}
			t.showMap(fd, &info, pinned)
		}
		if t.json != nil && len(fds) > 1 {
			t.json.endArray()
		}
		return ret
	}
	if len(args) != 0 {
		t.perr("what is '%s'?", args[0])
		return -1
	}
	c, err := t.connect("")
	if err != nil {
		t.perr("can't get next map: %v", err)
		return -1
	}
	pinned := t.pinnedIfAsked()
	if t.json != nil {
		t.json.startArray()
	}
	ret := 0
	var id uint32
	for {
		id, err = c.MapGetNextID(id)
		if err != nil {
			if !errors.Is(err, unix.ENOENT) {
				t.perr("can't get next map: %s", strerror(err))
				ret = -1
			}
			break
		}
		fd, err := c.MapGetFDByID(id, 0)
		if err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			t.perr("can't get map by id (%d): %s", id, strerror(err))
			ret = -1
			break
		}
		info, err := c.MapGetInfoByFD(fd)
		if err != nil {
			t.perr("can't get map info: %s", strerror(err))
			c.CloseNoWait(fd)
			ret = -1
			break
		}
		t.showMap(fd, &info, pinned)
	}
	if t.json != nil {
		t.json.endArray()
	}
	return ret
}

// pinnedIfAsked builds the -f table, or returns nil without -f.
func (t *tool) pinnedIfAsked() map[uint32][]string {
	if !t.showPinned {
		return nil
	}
	return t.pinnedTable()
}

// mapDumpOne is map.c:map_dump: every element by get_next_key + lookup.
func (t *tool) mapDumpOne(fd int, info *engine.MapInfo, showHeader bool) int {
	key := make([]byte, info.KeySize)
	value := make([]byte, t.valueBufSize(info))
	j := t.json
	if j != nil {
		if showHeader {
			j.startObject()
			j.uintField("id", uint64(info.ID))
			if name, ok := mapTypeName(info.Type); ok {
				j.strField("type", name)
			} else {
				j.uintField("type", uint64(info.Type))
			}
			if info.Name != "" {
				j.strField("name", info.Name)
			}
			j.name("flags")
			j.printf("%d", info.MapFlags)
			j.name("elements")
		}
		j.startArray()
	} else if showHeader {
		fmt.Fprintf(t.out, "%d: ", info.ID)
		if name, ok := mapTypeName(info.Type); ok {
			fmt.Fprintf(t.out, "%s  ", name)
		}
		if info.Name != "" {
			fmt.Fprintf(t.out, "name %s  ", info.Name)
		}
		fmt.Fprintf(t.out, "flags 0x%x\n", info.MapFlags)
	}
	ret := 0
	n := 0
	var prev []byte
	next := make([]byte, info.KeySize)
	for {
		if err := t.cli.MapGetNextKey(fd, prev, next); err != nil {
			if !errors.Is(err, unix.ENOENT) {
				ret = errnoRet(err)
			}
			break
		}
		copy(key, next)
		if err := t.cli.MapLookupElem(fd, key, value, 0); err != nil {
			t.printEntryError(info, key, err)
		} else {
			if j != nil {
				t.printEntryJSON(info, key, value)
			} else {
				t.printEntryPlain(info, key, value)
			}
			n++
		}
		prev = key
	}
	if j != nil {
		j.endArray()
		if showHeader {
			j.endObject()
		}
	} else {
		s := "s"
		if n == 1 {
			s = ""
		}
		fmt.Fprintf(t.out, "Found %d element%s\n", n, s)
	}
	return ret
}

// mapDump is map.c:do_dump.
func (t *tool) mapDump(args []string) int {
	if len(args) != 2 {
		t.usage()
	}
	fds, ok := t.mapParseFDs(&args)
	if !ok || len(fds) < 1 {
		return -1
	}
	if t.json != nil && len(fds) > 1 {
		t.json.startArray()
	}
	ret := 0
	i := 0
	for ; i < len(fds); i++ {
		info, err := t.cli.MapGetInfoByFD(fds[i])
		if err != nil {
			t.perr("can't get map info: %s", strerror(err))
			ret = -1
			break
		}
		ret = t.mapDumpOne(fds[i], &info, len(fds) > 1)
		if t.json == nil && i != len(fds)-1 {
			t.out.WriteString("\n")
		}
		if ret != 0 {
			break
		}
		t.cli.CloseNoWait(fds[i])
	}
	if t.json != nil && len(fds) > 1 {
		t.json.endArray()
	}
	for ; i < len(fds); i++ {
		t.cli.CloseNoWait(fds[i])
	}
	return ret
}

// mapUpdate is map.c:do_update (also push and enqueue).
func (t *tool) mapUpdate(args []string) int {
	if len(args) < 2 {
		t.usage()
	}
	m, ret := t.mapParseFDAndInfo(&args)
	if ret != 0 {
		return ret
	}
	defer t.cli.CloseNoWait(m.fd)
	key, value := t.allocKeyValue(&m.info)
	flags := objects.Any
	valueFD := -1
	defer func() {
		if valueFD >= 0 {
			t.cli.CloseNoWait(valueFD)
		}
	}()
	if !t.parseElem(args, elemParse{info: &m.info, key: key, value: value, keySize: m.info.KeySize,
		valueSize: m.info.ValueSize, flags: &flags, valueFD: &valueFD}) {
		return -1
	}
	return t.updateDone(t.cli.MapUpdateElem(m.fd, key, value, flags))
}

// updateDone is the end of map.c:do_update: its output for the update's outcome err.
func (t *tool) updateDone(err error) int {
	if err != nil {
		t.perr("update failed: %s", strerror(err))
		return errnoRet(err)
	}
	if t.json != nil {
		t.json.null()
	}
	return 0
}

// printKeyValue is map.c:print_key_value (no BTF).
func (t *tool) printKeyValue(info *engine.MapInfo, key, value []byte) {
	if t.json != nil {
		t.printEntryJSON(info, key, value)
	} else {
		t.printEntryPlain(info, key, value)
	}
}

// mapLookup is map.c:do_lookup (also peek).
func (t *tool) mapLookup(args []string) int {
	if len(args) < 2 {
		t.usage()
	}
	m, ret := t.mapParseFDAndInfo(&args)
	if ret != 0 {
		return ret
	}
	defer t.cli.CloseNoWait(m.fd)
	key, value := t.allocKeyValue(&m.info)
	if !t.parseElem(args, elemParse{info: &m.info, key: key, keySize: m.info.KeySize}) {
		return -1
	}
	return t.lookupDone(&m.info, key, value, t.cli.MapLookupElem(m.fd, key, value, 0))
}

// lookupDone is the end of map.c:do_lookup: its output for the lookup's outcome err.
func (t *tool) lookupDone(info *engine.MapInfo, key, value []byte, err error) int {
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			if t.json != nil {
				t.json.null()
			} else {
				t.out.WriteString("key:\n")
				fprintHex(t.out, key, " ")
				t.out.WriteString("\n\nNot found\n")
			}
		} else {
			t.perr("lookup failed: %s", strerror(err))
		}
		return errnoRet(err)
	}
	t.printKeyValue(info, key, value)
	return 0
}

// mapGetNext is map.c:do_getnext.
func (t *tool) mapGetNext(args []string) int {
	if len(args) < 2 {
		t.usage()
	}
	m, ret := t.mapParseFDAndInfo(&args)
	if ret != 0 {
		return ret
	}
	defer t.cli.CloseNoWait(m.fd)
	// malloc(key_size) is a valid pointer even for key_size 0.
	var key []byte
	next := make([]byte, m.info.KeySize)
	if len(args) > 0 {
		key = make([]byte, m.info.KeySize)
		if !t.parseElem(args, elemParse{info: &m.info, key: key, keySize: m.info.KeySize}) {
			return -1
		}
	}
	if err := t.cli.MapGetNextKey(m.fd, key, next); err != nil {
		t.perr("can't get next key: %s", strerror(err))
		return errnoRet(err)
	}
	if j := t.json; j != nil {
		j.startObject()
		if key != nil {
			j.name("key")
			t.hexDataJSON(key)
		} else {
			j.nullField("key")
		}
		j.name("next_key")
		t.hexDataJSON(next)
		j.endObject()
		return 0
	}
	if key != nil {
		t.out.WriteString("key:\n")
		fprintHex(t.out, key, " ")
		t.out.WriteString("\n")
	} else {
		t.out.WriteString("key: None\n")
	}
	t.out.WriteString("next key:\n")
	fprintHex(t.out, next, " ")
	t.out.WriteString("\n")
	return 0
}

// mapDelete is map.c:do_delete.
func (t *tool) mapDelete(args []string) int {
	if len(args) < 2 {
		t.usage()
	}
	m, ret := t.mapParseFDAndInfo(&args)
	if ret != 0 {
		return ret
	}
	defer t.cli.CloseNoWait(m.fd)
	key := make([]byte, m.info.KeySize)
	if !t.parseElem(args, elemParse{info: &m.info, key: key, keySize: m.info.KeySize}) {
		return -1
	}
	return t.deleteDone(t.cli.MapDeleteElem(m.fd, key))
}

// deleteDone is the end of map.c:do_delete: its output for the delete's outcome err.
func (t *tool) deleteDone(err error) int {
	if err != nil {
		t.perr("delete failed: %s", strerror(err))
		return errnoRet(err)
	}
	if t.json != nil {
		t.json.null()
	}
	return 0
}

// pinFD is common.c:do_pin_fd: pin fd at name, which must be on the same bpffs-fuse mount.
// (bpftool mounts a bpffs on the parent directory when it is not one; bpffs-fuse cannot mount
// a kernel bpffs for an engine object, so it reports that the path is not on its mount.)
func (t *tool) pinFD(fd int, name string) int {
	dir, rp, err := mountOf(name)
	if err != nil || dir != t.mountDir {
		if err == nil {
			err = fmt.Errorf("%s is not on the mount %s that holds the object: %w", name, t.mountDir, unix.EXDEV)
		}
		t.perr("can't pin the object (%s): %v", name, err)
		return -1
	}
	// common.c:mount_bpffs_for_pin: a parent that is not a bpffs (here: that does not
	// exist) makes bpftool try to mount one there, which fails.
	if parent := cDirname(name); !exists(parent) {
		if t.noMount {
			t.perr("no BPF file system found, not mounting it due to --nomount option")
			return -1
		}
		_, err := os.Stat(parent)
		t.perr("can't mount BPF file system to pin the object (%s): mount --make-private %s failed: %s", name, parent, strerror(err))
		return -1
	}
	if err := t.cli.ObjPin(fd, rp, 0); err != nil {
		t.perr("can't pin the object (%s): %s", name, strerror(err))
		return errnoRet(err)
	}
	return 0
}

// mapPin is map.c:do_pin / common.c:do_pin_any.
func (t *tool) mapPin(args []string) int {
	if len(args) < 3 {
		t.perr("'pin' needs at least 3 arguments, %d found", len(args))
		return -int(unix.EINVAL)
	}
	fd, ok := t.mapParseFD(&args)
	if !ok {
		return -1
	}
	ret := t.pinFD(fd, args[0])
	t.cli.CloseNoWait(fd)
	if ret == 0 && t.json != nil {
		t.json.null()
	}
	return ret
}

// parseU32Arg is common.c:parse_u32_arg.
func (t *tool) parseU32Arg(args *[]string, val *uint32, what string) bool {
	a := (*args)[1:]
	if len(a) == 0 {
		t.usage()
	}
	if *val != 0 {
		t.perr("%s already specified", what)
		return false
	}
	v, ok := strtoul(a[0], 0)
	if !ok {
		t.perr("can't parse %s as %s", a[0], what)
		return false
	}
	*val = uint32(v)
	*args = a[1:]
	return true
}

// mapCreate is map.c:do_create: create a map and pin it at FILE.
func (t *tool) mapCreate(args []string) int {
	if len(args) < 7 {
		t.perr("'create' needs at least 7 arguments, %d found", len(args))
		return -1
	}
	pinfile := args[0]
	args = args[1:]
	c, err := t.connect(pinfile)
	if err != nil {
		t.perr("can't pin the object (%s): %v", pinfile, err)
		return -1
	}
	attr := &engine.MapCreateAttr{}
	var name *string
	innerFD := -1
	defer func() {
		if innerFD >= 0 {
			c.CloseNoWait(innerFD)
		}
	}()
	typeSet := false
	for len(args) > 0 {
		if len(args) < 2 {
			t.perr("'%s' needs at least 2 arguments, %d found", args[0], len(args))
			return -1
		}
		switch {
		case isPrefix(args[0], "type"):
			if typeSet {
				t.perr("map type already specified")
				return -1
			}
			mt, ok := objects.ParseMapType(args[1])
			if !ok || mt == objects.MapTypeUnspec || mt > objects.MapTypeUserRingbuf {
				t.perr("unrecognized map type: %s", args[1])
				return -1
			}
			attr.MapType, typeSet = mt, true
			args = args[2:]
		case isPrefix(args[0], "name"):
			n := args[1]
			name = &n
			args = args[2:]
		case isPrefix(args[0], "key"):
			if !t.parseU32Arg(&args, &attr.KeySize, "key size") {
				return -1
			}
		case isPrefix(args[0], "value"):
			if !t.parseU32Arg(&args, &attr.ValueSize, "value size") {
				return -1
			}
		case isPrefix(args[0], "entries"):
			if !t.parseU32Arg(&args, &attr.MaxEntries, "max entries") {
				return -1
			}
		case isPrefix(args[0], "flags"):
			if !t.parseU32Arg(&args, &attr.MapFlags, "flags") {
				return -1
			}
		case isPrefix(args[0], "dev") || isPrefix(args[0], "offload_dev"):
			t.perr("unrecognized netdevice '%s': offloaded maps are not supported: %s", args[1], strerrno(unix.EOPNOTSUPP))
			return -1
		case isPrefix(args[0], "inner_map"):
			args = args[1:]
			if len(args) < 2 {
				t.usage()
			}
			m, ret := t.mapParseFDAndInfo(&args)
			if ret != 0 {
				return -1
			}
			innerFD = m.fd
			attr.InnerMapFD = uint32(m.fd)
		default:
			t.perr("unknown arg %s", args[0])
			return -1
		}
	}
	if name == nil {
		t.perr("map name not specified")
		return -1
	}
	// libbpf's bpf_map_create copies at most BPF_OBJ_NAME_LEN-1 bytes of the name.
	attr.MapName = *name
	if len(attr.MapName) > objects.MaxNameLen-1 {
		attr.MapName = attr.MapName[:objects.MaxNameLen-1]
	}
	fd, err := c.MapCreate(attr)
	if err != nil {
		t.perr("map create failed: %s", strerror(err))
		return -1
	}
	ret := t.pinFD(fd, pinfile)
	c.CloseNoWait(fd)
	if ret != 0 {
		return ret
	}
	if t.json != nil {
		t.json.null()
	}
	return 0
}

// mapPop is map.c:do_pop_dequeue (also dequeue).
func (t *tool) mapPop(args []string) int {
	if len(args) < 2 {
		t.usage()
	}
	m, ret := t.mapParseFDAndInfo(&args)
	if ret != 0 {
		return ret
	}
	defer t.cli.CloseNoWait(m.fd)
	key, value := t.allocKeyValue(&m.info)
	return t.popDone(&m.info, key, value, t.cli.MapLookupAndDeleteElem(m.fd, key, value, 0))
}

// popDone is the end of map.c:do_pop_dequeue: its output for the pop's outcome err.
func (t *tool) popDone(info *engine.MapInfo, key, value []byte, err error) int {
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			if t.json != nil {
				t.json.null()
			} else {
				t.out.WriteString("Error: empty map\n")
			}
		} else {
			t.perr("pop failed: %s", strerror(err))
		}
		return errnoRet(err)
	}
	t.printKeyValue(info, key, value)
	return 0
}

// mapFreeze is map.c:do_freeze.
func (t *tool) mapFreeze(args []string) int {
	if len(args) < 2 {
		t.perr("'freeze' needs at least 2 arguments, %d found", len(args))
		return -1
	}
	fd, ok := t.mapParseFD(&args)
	if !ok {
		return -1
	}
	if len(args) != 0 {
		t.cli.CloseNoWait(fd)
		t.perr("what is '%s'?", args[0])
		return -1
	}
	err := t.cli.MapFreeze(fd)
	t.cli.CloseNoWait(fd)
	if err != nil {
		t.perr("failed to freeze map: %s", strerror(err))
		return errnoRet(err)
	}
	if t.json != nil {
		t.json.null()
	}
	return 0
}

// mapEventPipe: perf event arrays need programs, which arrive later.
func (t *tool) mapEventPipe(args []string) int {
	t.perr("map event_pipe: not supported yet: %s", strerrno(unix.EOPNOTSUPP))
	return -int(unix.EOPNOTSUPP)
}

// cDirname is C's dirname(3): the path up to its last slash, trailing slashes ignored.
func cDirname(p string) string {
	if p == "" {
		return "."
	}
	p = strings.TrimRight(p, "/")
	i := strings.LastIndexByte(p, '/')
	switch {
	case p == "":
		return "/"
	case i < 0:
		return "."
	case i == 0:
		return "/"
	}
	return strings.TrimRight(p[:i], "/")
}

// exists reports whether p exists (following symlinks); statfs(2) of anything existing on a
// bpffs answers BPF_FS_MAGIC, so bpftool only cares that the parent exists.
func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
