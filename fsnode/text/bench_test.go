package text

import (
	"encoding/binary"
	"fmt"
	"testing"
)

// BenchmarkEncode formats 1e6 entries (key 4 B, value 8 B) into a reused 64 KiB buffer, as
// a streaming read does: one op is the whole map.
func BenchmarkEncode(b *testing.B) {
	for _, s := range []Shape{shHash, shPcpu} {
		b.Run(s.Type.String(), func(b *testing.B) {
			const n = 1_000_000
			e := NewEncoder(s)
			key, value := make([]byte, s.KeySize), make([]byte, s.ValueBufSize())
			buf := make([]byte, 0, 64<<10)
			total := 0
			b.ReportAllocs()
			for b.Loop() {
				for i := range uint32(n) {
					binary.LittleEndian.PutUint32(key, i)
					binary.LittleEndian.PutUint64(value, uint64(i)*3)
					if len(buf)+e.MaxEntryLen() > cap(buf) {
						total += len(buf)
						buf = buf[:0]
					}
					buf = e.AppendEntry(buf, key, value)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/entry")
			b.SetBytes(int64(total+len(buf)) / int64(b.N))
		})
	}
}

// BenchmarkParse parses 1e5 update lines in each form, fed in 128 KiB writes as FUSE
// delivers them (lines cut at write boundaries included); one op is all 1e5 lines.
func BenchmarkParse(b *testing.B) {
	const n = 100_000
	forms := map[string]func(i int) string{
		"decimal": func(i int) string { return fmt.Sprintf("%d %d\n", i, i*7) },
		"hex":     func(i int) string { return fmt.Sprintf("0x%x 0x%x\n", i, i*7) },
		"printed": func(i int) string {
			var k [4]byte
			var v [8]byte
			binary.LittleEndian.PutUint32(k[:], uint32(i))
			binary.LittleEndian.PutUint64(v[:], uint64(i*7))
			return string(NewEncoder(shHash).AppendEntry(nil, k[:], v[:]))
		},
		"bpftool": func(i int) string {
			return fmt.Sprintf("update key %d %d 0 0 value hex %02x 0 0 0 0 0 0 0\n", i&255, i>>8&255, i&255)
		},
	}
	for _, name := range []string{"decimal", "hex", "printed", "bpftool"} {
		var text []byte
		for i := range n {
			text = append(text, forms[name](i)...)
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			b.ReportAllocs()
			p := NewParser(shHash)
			for b.Loop() {
				count := 0
				for off := 0; off < len(text); off += 128 << 10 {
					ops, err := p.Feed(text[off:min(off+128<<10, len(text))])
					if err != nil {
						b.Fatal(err)
					}
					count += len(ops)
				}
				ops, err := p.Flush()
				if err != nil || count+len(ops) != n {
					b.Fatalf("%d ops, %v", count+len(ops), err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/line")
		})
	}
}
