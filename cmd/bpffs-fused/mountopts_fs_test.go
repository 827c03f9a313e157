package main

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseMountOptions(t *testing.T) {
	for _, c := range []struct {
		in   string
		want MountOptions
		err  bool
	}{
		{"", MountOptions{Mode: 0o777, UID: 1, GID: 2}, false},
		{"mode=0700,uid=0,gid=5", MountOptions{Mode: 0o700, UID: 0, GID: 5}, false},
		{"mode=17777", MountOptions{Mode: 0o7777, UID: 1, GID: 2}, false}, // masked with 07777
		{"mode=755,allow_other,control_group=wheel", MountOptions{Mode: 0o755, UID: 1, GID: 2, AllowOther: true, ControlGroup: "wheel"}, false},
		{"rw,nosuid,foo=bar", MountOptions{Mode: 0o777, UID: 1, GID: 2, Ignored: []string{"rw", "nosuid", "foo=bar"}}, false},
		{"mode=8", MountOptions{}, true},
		{"mode=", MountOptions{}, true},
		{"mode", MountOptions{}, true},
		{"uid=x", MountOptions{}, true},
		{"uid=-1", MountOptions{}, true},
		{"gid=4294967295", MountOptions{}, true},
		{"allow_other=1", MountOptions{}, true},
		{"control_group=", MountOptions{}, true},
		{"log=", MountOptions{}, true},
	} {
		o := defaultMountOptions(1, 2)
		err := parseMountOptions(&o, c.in)
		if c.err {
			if !errors.Is(err, unix.EINVAL) {
				t.Errorf("%q: err %v, want EINVAL", c.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if o.Mode != c.want.Mode || o.UID != c.want.UID || o.GID != c.want.GID || o.AllowOther != c.want.AllowOther ||
			o.ControlGroup != c.want.ControlGroup || strings.Join(o.Ignored, ",") != strings.Join(c.want.Ignored, ",") {
			t.Errorf("%q: got %+v, want %+v", c.in, o, c.want)
		}
	}
	// /proc/mounts form (kernel/bpf/inode.c:bpf_show_options).
	o := MountOptions{Mode: 0o755, UID: 1000, GID: 1001}
	if s := o.String(); s != "uid=1000,gid=1001,mode=755" {
		t.Errorf("String %q", s)
	}
}

func TestParseMountArgs(t *testing.T) {
	a, err := parseMountArgs([]string{"-f", "-o", "mode=700", "-ouid=3", "/x"})
	if err != nil || !a.foreground || a.dir != "/x" || a.opts.Mode != 0o700 || a.opts.UID != 3 {
		t.Fatalf("%+v %v", a, err)
	}
	// mount(8) helper form: SOURCE DIR with flags after.
	a, err = parseMountArgs([]string{"bpffs", "/y", "-n", "-o", "rw,gid=4", "-t", "fuse.bpffs-fuse"})
	if err != nil || a.dir != "/y" || a.opts.GID != 4 || a.foreground {
		t.Fatalf("%+v %v", a, err)
	}
	for _, bad := range [][]string{{}, {"a", "b", "c"}, {"-o"}, {"-x", "/d"}, {"-o", "mode=9", "/d"}} {
		if _, err := parseMountArgs(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// FuzzParseMountOptions: any option string parses or fails with EINVAL, never panics; what
// parses has a mode within 07777, and parsing the /proc/mounts form of the result gives the
// same options back.
func FuzzParseMountOptions(f *testing.F) {
	for _, s := range []string{"", "mode=0700", "uid=1,gid=2", "allow_other", "control_group=wheel",
		"mode=17777,foo", ",,,", "mode=08", "uid=99999999999", "log=/tmp/x", "debug", "=", "mode==7"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		o := defaultMountOptions(0, 0)
		err := parseMountOptions(&o, s)
		if err != nil {
			if !errors.Is(err, unix.EINVAL) {
				t.Fatalf("%q: error %v is not EINVAL", s, err)
			}
			return
		}
		if o.Mode&^0o7777 != 0 {
			t.Fatalf("%q: mode %o", s, o.Mode)
		}
		if strings.ContainsRune(o.ControlGroup, ',') {
			t.Fatalf("%q: control_group %q holds a comma", s, o.ControlGroup)
		}
		back := defaultMountOptions(0, 0)
		if err := parseMountOptions(&back, o.String()); err != nil {
			t.Fatalf("%q: String %q does not parse: %v", s, o.String(), err)
		}
		if back.Mode != o.Mode || back.UID != o.UID || back.GID != o.GID || back.AllowOther != o.AllowOther || back.ControlGroup != o.ControlGroup {
			t.Fatalf("%q: %+v → %q → %+v", s, o, o.String(), back)
		}
	})
}
