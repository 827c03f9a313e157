package tests

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestFSQueueListingLarge: a queue longer than one listing chunk (4096) is listed whole, oldest
// first, without popping, and the listing pushes back into an empty queue as the same content.
func TestFSQueueListingLarge(t *testing.T) {
	d := mountFS(t)
	const n = 10000
	mustSh(t, d, fmt.Sprintf("%q map create %s/q type queue key 0 value 4 entries %d name bigq", bin, d, n))
	var in strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&in, "%d\n", i)
	}
	if err := os.WriteFile(d+"/q", []byte(in.String()), 0); err != nil {
		t.Fatal(err)
	}
	out := mustSh(t, d, "cat q")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != n+1 || !strings.HasPrefix(lines[0], "# queue name bigq") {
		t.Fatalf("%d lines, first %q", len(lines), lines[0])
	}
	for _, i := range []int{0, 4095, 4096, n - 1} {
		want := fmt.Sprintf("%02x %02x 00 00", i&0xff, i>>8)
		if lines[i+1] != want {
			t.Fatalf("value %d listed as %q, want %q", i, lines[i+1], want)
		}
	}
	if again := mustSh(t, d, "cat q"); again != out {
		t.Fatal("listing popped or changed the queue")
	}
	mustSh(t, d, fmt.Sprintf("%q map create %s/q2 type queue key 0 value 4 entries %d name bigq2", bin, d, n))
	mustSh(t, d, "grep -v '^#' q > /tmp/bpffs-q-$$ && cat /tmp/bpffs-q-$$ > q2; rm -f /tmp/bpffs-q-$$")
	if got := mustSh(t, d, "grep -v '^#' q2"); got != strings.Join(lines[1:], "\n")+"\n" {
		t.Fatal("round trip through an empty queue changed the content")
	}
}
