// Package mountinfo lists the bpffs-fuse mounts of the caller's mount namespace, for the CLI
// (to find the daemon of a path) and the daemon binary (mount and umount).
package mountinfo

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// Dirs returns the mount points of the bpffs-fuse mounts in /proc/self/mountinfo: entries of
// fstype fuse.bpffs-fuse, or plain fuse with source bpffs-fuse (mount -t fuse bpffs-fuse#...).
func Dirs() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if dir, ok := parseLine(sc.Text()); ok {
			out = append(out, dir)
		}
	}
	return out, sc.Err()
}

// parseLine returns the mount point of one mountinfo line if it is a bpffs-fuse mount.
func parseLine(line string) (string, bool) {
	fields := strings.Fields(line)
	sep := -1
	for i, fl := range fields {
		if fl == "-" {
			sep = i
			break
		}
	}
	if sep < 5 || sep+2 >= len(fields) {
		return "", false
	}
	fstype, source := fields[sep+1], fields[sep+2]
	if fstype == "fuse.bpffs-fuse" || (strings.HasPrefix(fstype, "fuse") && source == "bpffs-fuse") {
		return Unescape(fields[4]), true
	}
	return "", false
}

// Unescape undoes the octal escapes (\040 for a space, ...) of mountinfo paths.
func Unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
