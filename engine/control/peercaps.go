package control

import (
	"bufio"
	"os"
	"strconv"
	"strings"

	"github.com/bpffs-fuse/bpffs-fuse/engine"
)

// grantedCaps are the capabilities the policy gives every admitted caller: what bpf(2) asks for.
const grantedCaps = engine.CapBPF | engine.CapSysAdmin | engine.CapPerfmon | engine.CapNetAdmin

// peerCaps returns the capabilities a connecting process really holds (CapEff in
// /proc/PID/status), so that file-permission overrides (CAP_DAC_OVERRIDE,
// CAP_DAC_READ_SEARCH, CAP_FOWNER, ...) apply to OBJ_GET and OBJ_PIN only when the caller would
// have them on Linux. The BPF capabilities are added by the policy. When the status cannot be
// read (the process is gone, or another pid namespace), uid 0 is taken to hold every
// capability and anyone else none.
func peerCaps(pid int32, uid uint32) engine.Caps {
	caps, ok := readCapEff(pid)
	return capsFor(caps, ok, uid)
}

// capsFor is peerCaps for a CapEff already read (ok false: unreadable).
func capsFor(caps engine.Caps, ok bool, uid uint32) engine.Caps {
	if !ok {
		if uid == 0 {
			return engine.CapAll
		}
		caps = 0
	}
	return caps | grantedCaps
}

func readCapEff(pid int32) (engine.Caps, bool) {
	if pid <= 0 {
		return 0, false
	}
	f, err := os.Open("/proc/" + strconv.Itoa(int(pid)) + "/status")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return 0, false
			}
			return engine.Caps(n), true
		}
	}
	return 0, false
}
