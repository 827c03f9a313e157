package control

import (
	"bytes"
	"fmt"
	"os"
	"strconv"

	"github.com/bpffs-fuse/bpffs-fuse/engine"
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

// peerStatus reads the umask and CapEff of process pid from one read of /proc/PID/status
// (a connection's setup needs both; see peerUmask and peerCaps).
func peerStatus(pid int32) (umask uint32, umaskOK bool, capEff engine.Caps, capOK bool) {
	if pid <= 0 {
		return 0, false, 0, false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(int(pid)) + "/status")
	if err != nil {
		return 0, false, 0, false
	}
	for line := range bytes.Lines(b) {
		if v, found := bytes.CutPrefix(line, []byte("Umask:")); found {
			n, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 8, 32)
			umask, umaskOK = uint32(n)&0o777, err == nil
		} else if v, found := bytes.CutPrefix(line, []byte("CapEff:")); found {
			n, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 16, 64)
			capEff, capOK = engine.Caps(n), err == nil
		}
	}
	return umask, umaskOK, capEff, capOK
}

// peerCredUmask is peerUmask with the default for an unreadable umask.
func peerCredUmask(pid int32) uint32 {
	if m, ok := peerUmask(pid); ok {
		return m
	}
	return defaultUmask
}
