package vm

import (
	"bytes"
	"math"
)

// ConformanceHelpers returns the helpers the bpf_conformance suite assumes
// (iovisor/ubpf ubpf_plugin/test_helpers.h): 0 gather_bytes, 1 memfrob,
// 2 no_op, 3 sqrti, 4 strcmp_ext, 5 unwind (a zero argument ends the program
// with r0 = 0). These are test helpers, not Linux helpers.
func ConformanceHelpers() map[int32]Helper {
	return map[int32]Helper{
		0: func(_ *Machine, a, b, c, d, e uint64) (uint64, error) {
			return uint64(uint8(a))<<32 | uint64(uint8(b))<<24 | uint64(uint8(c))<<16 | uint64(uint8(d))<<8 | uint64(uint8(e)), nil
		},
		1: func(m *Machine, p, n, _, _, _ uint64) (uint64, error) {
			b, err := m.Mem(p, int(min(n, 1<<30)), true)
			if err != nil {
				return 0, err
			}
			for i := range b {
				b[i] ^= 42
			}
			return 0, nil
		},
		2: func(*Machine, uint64, uint64, uint64, uint64, uint64) (uint64, error) { return 0, nil },
		3: func(_ *Machine, x, _, _, _, _ uint64) (uint64, error) {
			return uint64(math.Sqrt(float64(x))), nil
		},
		4: func(m *Machine, a, b, _, _, _ uint64) (uint64, error) {
			sa, err := m.cstring(a)
			if err != nil {
				return 0, err
			}
			sb, err := m.cstring(b)
			if err != nil {
				return 0, err
			}
			return uint64(int64(bytes.Compare(sa, sb))), nil
		},
		5: func(_ *Machine, x, _, _, _, _ uint64) (uint64, error) {
			if x == 0 {
				return 0, ErrStop
			}
			return x, nil
		},
	}
}

// cstring returns the NUL-terminated string at p (without the NUL).
func (m *Machine) cstring(p uint64) ([]byte, error) {
	r, off, ok := m.Region(p)
	if !ok || off > uint64(len(r.Data)) {
		_, err := m.Mem(p, 1, false)
		return nil, err
	}
	b := r.Data[off:]
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return b[:i], nil
	}
	_, err := m.Mem(p, len(b)+1, false)
	return nil, err
}
