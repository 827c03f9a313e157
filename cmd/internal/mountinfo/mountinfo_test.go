package mountinfo

import "testing"

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		`/tmp/a\040b`: "/tmp/a b", `/x\011y\134z`: "/x\ty\\z", `/plain`: "/plain", `/trail\04`: `/trail\04`,
	} {
		if got := Unescape(in); got != want {
			t.Errorf("Unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseLine(t *testing.T) {
	for _, c := range []struct {
		line, dir string
		ok        bool
	}{
		{`36 25 0:32 / /tmp/a\040b rw,nosuid - fuse.bpffs-fuse bpffs rw,user_id=0`, "/tmp/a b", true},
		{`36 25 0:32 / /run/x rw shared:1 - fuse bpffs-fuse rw`, "/run/x", true},
		{`36 25 0:32 / /run/y rw - fuse sshfs rw`, "", false},
		{`22 27 0:21 / /proc rw,relatime - proc proc rw`, "", false},
		{`short line`, "", false},
	} {
		dir, ok := parseLine(c.line)
		if dir != c.dir || ok != c.ok {
			t.Errorf("parseLine(%q) = %q, %v; want %q, %v", c.line, dir, ok, c.dir, c.ok)
		}
	}
}
