package control

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// defaultUmask is used when the peer's umask cannot be read (for example a peer in another pid
// namespace, whose SO_PEERCRED pid is 0): the usual login default.
const defaultUmask = 0o022

// peerUmask returns the umask of process pid, the "Umask:" line of /proc/PID/status (Linux
// 4.7+), which the kernel would apply to the pins the process creates (current_umask() in
// kernel/bpf/inode.c:bpf_obj_do_pin). The peer is blocked in the handshake while this runs, so
// the pid still names it. ok is false when it cannot be read.
func peerUmask(pid int32) (umask uint32, ok bool) {
	if pid <= 0 {
		return 0, false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, false
	}
	for line := range bytes.Lines(b) {
		if v, found := bytes.CutPrefix(line, []byte("Umask:")); found {
			n, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 8, 32)
			if err != nil {
				return 0, false
			}
			return uint32(n) & 0o777, true
		}
	}
	return 0, false
}

// peerCredUmask is peerUmask with the default for an unreadable umask.
func peerCredUmask(pid int32) uint32 {
	if m, ok := peerUmask(pid); ok {
		return m
	}
	return defaultUmask
}
