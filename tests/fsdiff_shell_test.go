package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// shCase is one shell command line run on both trees, in the case directory, from the same
// starting state.
type shCase struct {
	name   string
	setup  []string
	script string
}

// shCases drive the filesystem with the real tools a user would type (coreutils, sh builtins), so
// the comparison covers their exit status and the errno text they print, not only the syscalls.
var shCases = []shCase{
	{"mkdir", nil, "mkdir x"},
	{"mkdir-p", nil, "mkdir -p x/y/z"},
	{"mkdir-m", nil, "mkdir -m 0700 x"},
	{"mkdir-exists", dirA, "mkdir a"},
	{"mkdir-dot-prefix", nil, "mkdir .x"},
	{"mkdir-dotted", nil, "mkdir a.b"},
	{"mkdir-p-dotted", nil, "mkdir -p x/a.b/c"},
	{"rmdir", dirA, "rmdir a"},
	{"rmdir-non-empty", []string{"d a", "p a/m"}, "rmdir a"},
	{"rmdir-pin", pinM, "rmdir m"},
	{"rm-pin", pinM, "rm m"},
	{"rm-f-missing", nil, "rm -f x"},
	{"rm-missing", nil, "rm x"},
	{"rm-dotted-missing", nil, "rm x.y"},
	{"rm-f-dotted-missing", nil, "rm -f x.y"},
	{"rm-dir", dirA, "rm a"},
	{"rm-r-tree", []string{"d a", "d a/b", "p a/m", "p a/b/n", "s a/l m"}, "rm -r a"},
	{"rm-rf-tree", []string{"d a", "d a/b", "p a/b/n", "m a/b 0"}, "rm -rf a"},
	{"mv-pin", pinM, "mv m x"},
	{"mv-pin-over-pin", pinMN, "mv m n"},
	{"mv-pin-dotted", pinM, "mv m a.b"},
	{"mv-pin-into-dir", []string{"p m", "d a"}, "mv m a"},
	{"mv-pin-into-dir-slash", []string{"p m", "d a"}, "mv m a/"},
	{"mv-dir-into-itself", []string{"d a", "d a/b"}, "mv a a/b"},
	{"mv-dir-over-non-empty", []string{"d a", "d b", "d b/a", "p b/a/m"}, "mv a b"},
	{"mv-n", pinMN, "mv -n m n; echo $?"},
	{"mv-T-exists-dir", []string{"d a", "d b", "p b/m"}, "mv -T a b"},
	{"ln-pin", pinM, "ln m l"},
	{"ln-dir", dirA, "ln a l"},
	{"ln-exists", pinMN, "ln m n"},
	{"ln-f", pinMN, "ln -f m n"},
	{"ln-dotted", pinM, "ln m a.b"},
	{"ln-s", nil, "ln -s a.b s"},
	{"ln-s-dotted-name", nil, "ln -s x a.b"},
	{"ln-s-exists", pinM, "ln -s x m"},
	{"ln-sf", []string{"s s x"}, "ln -sf y s"},
	{"ln-s-into-dir", dirA, "ln -s ../x a"},
	{"touch-new", nil, "touch x"},
	{"touch-existing-pin", pinM, "touch m"},
	{"touch-existing-dir", dirA, "touch a"},
	{"touch-c-missing", nil, "touch -c x"},
	{"touch-dotted", nil, "touch x.y"},
	{"touch-d", pinM, "touch -d @1000000000 m && stat -c '%Y %X' m"},
	{"redirect-new", nil, "echo hi > x"},
	{"redirect-dir", dirA, "echo hi > a"},
	{"redirect-dotted", nil, "echo hi > x.y"},
	{"mkfifo", nil, "mkfifo f"},
	{"mknod-c", nil, "mknod q c 1 3"},
	{"mknod-p", nil, "mknod q p"},
	{"chmod-pin", pinM, "chmod 644 m"},
	{"chmod-R", []string{"d a", "p a/m", "d a/b"}, "chmod -R go+rx a"},
	{"chown-pin", pinM, "chown 1:2 m"},
	{"chown-h-symlink", []string{"s s m"}, "chown -h 3:4 s"},
	{"chgrp-dir", dirA, "chgrp 5 a"},
	{"ls-la", []string{"d a", "p m", "h l m", "s s a.b", "m a 0750"}, "ls -la --time-style=+"},
	{"ls-R", []string{"d a", "d a/b", "p a/m", "p a/b/n"}, "ls -R"},
	{"stat-f", nil, "stat -f -c '%s %S %l %b %f %a %c %d' ."},
	{"find", []string{"d a", "d a/b", "p a/m", "s a/b/l ../m"}, "find . -printf '%p %y %M %n %U %G %l\\n' | sort"},
	{"readlink", []string{"s s a.b/c"}, "readlink s"},
	{"umask-077-mkdir", nil, "umask 077 && mkdir x"},
	{"atime-relatime", dirA, "touch a; t0=$(stat -c %x a); sleep 0.02; ls a; t1=$(stat -c %x a); sleep 0.02; ls a; " +
		"t2=$(stat -c %x a); [ \"$t0\" = \"$t1\" ] && echo first-ls-kept || echo first-ls-updated; " +
		"[ \"$t1\" = \"$t2\" ] && echo second-ls-kept || echo second-ls-updated"},
	{"ls-f-order", []string{"d c", "p a", "d b", "s e x"}, "ls -f"},
	{"ls-f-order-after-renames", []string{"d c", "p a", "d b", "s e x", "h l a"},
		"mv c f && mv -T b a2 && ln -s y z && ls -f"},
	{"cat-pin", pinM, "cat m"},
	{"echo-pin", pinM, "echo '1 2' > m"},
	{"truncate-pin", pinM, "truncate -s 0 m"},
}

// nocapCases run as root without the capabilities that bypass file permissions
// (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_CHOWN, CAP_FSETID), on objects owned by
// uid 1, so the kernel's permission checks (bpffs: generic VFS; bpffs-fuse: the same VFS checks
// through default_permissions) decide.
var nocapCases = []shCase{
	{"mkdir-in-foreign-dir", []string{"d a", "o a 1"}, "mkdir a/x"},
	{"mkdir-in-foreign-0777-dir", []string{"d a", "o a 1", "m a 0777"}, "mkdir a/x"},
	{"rm-foreign-pin-sticky-dir", []string{"m . 1777", "p m", "o m 1"}, "rm -f m"},
	{"rm-own-pin-sticky-dir", []string{"m . 1777", "p m"}, "rm -f m"},
	{"rm-pin-in-foreign-dir", []string{"d a", "p a/m", "o a 1"}, "rm -f a/m"},
	{"mv-foreign-pin-sticky-dir", []string{"m . 1777", "p m", "o m 1"}, "mv m n"},
	{"chmod-foreign-pin", []string{"p m", "o m 1"}, "chmod 666 m"},
	{"chown-own-pin", []string{"p m"}, "chown 1 m"},
	{"chgrp-own-pin-own-group", []string{"p m", "o m 1"}, "chgrp 0 m"},
	{"touch-foreign-pin-0600", []string{"p m", "o m 1"}, "touch m"},
	{"touch-foreign-pin-0666", []string{"p m", "o m 1", "m m 0666"}, "touch m"},
	{"touch-d-foreign-pin-0666", []string{"p m", "o m 1", "m m 0666"}, "touch -d @1000000000 m"},
	{"cat-foreign-pin", []string{"p m", "o m 1"}, "cat m"},
	{"ls-foreign-0700-dir", []string{"d a", "p a/m", "o a 1", "m a 0700"}, "ls a"},
	{"ln-foreign-pin", []string{"p m", "o m 1"}, "ln m l"},
	{"ln-s-in-foreign-dir", []string{"d a", "o a 1"}, "ln -s x a/l"},
	{"rmdir-foreign-dir-sticky", []string{"m . 1777", "d a", "o a 1"}, "rmdir a"},
	{"mkdir-setgid-dir", []string{"d a", "o a 1", "m a 02777"}, "mkdir a/x && stat -c '%a %u %g' a/x"},
}

// userCases run as uid 1, gid 1 with no supplementary groups: owners of new objects come from
// the caller (inode_init_owner), and the sticky and setgid rules apply.
var userCases = []shCase{
	{"mkdir", []string{"m . 0777"}, "mkdir x"},
	{"mkdir-setgid-parent", []string{"d a", "m a 02777"}, "mkdir a/x && stat -c '%a %u %g' a/x"},
	{"ln-s", []string{"m . 0777"}, "ln -s target l"},
	{"ln-root-pin", []string{"m . 0777", "p m", "m m 0666"}, "ln m l"},
	{"rm-root-pin-sticky", []string{"m . 1777", "p m"}, "rm -f m"},
	{"mv-root-pin-sticky", []string{"m . 1777", "p m"}, "mv m n"},
	{"rename-own-dir-over-root-dir-sticky", []string{"m . 1777", "d r"}, "mkdir x && mv -T x r"},
	{"chmod-own-dir", []string{"m . 0777"}, "mkdir x && chmod 700 x && chmod g+s x && stat -c %a x"},
	{"chgrp-own-dir-foreign-group", []string{"m . 0777"}, "mkdir x && chgrp 2 x"},
	{"touch-root-pin-0666", []string{"p m", "m m 0666"}, "touch -c m"},
	{"ls-root-0700-dir", []string{"d a", "m a 0700"}, "ls a"},
	{"mkdir-root-0755-dir", nil, "mkdir x"},
}

// TestFSDiffShellNoCaps runs nocapCases (root without the permission-bypassing capabilities) and
// userCases (uid 1) under setpriv on both trees and compares as TestFSDiffShell does.
func TestFSDiffShellNoCaps(t *testing.T) {
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("setpriv not installed")
	}
	k := kernelTree(t, "")
	o := oursTree(t, "-o", "allow_other")
	const drop = "setpriv --inh-caps=-dac_override,-dac_read_search,-fowner,-chown,-fsetid " +
		"--bounding-set=-dac_override,-dac_read_search,-fowner,-chown,-fsetid sh -c "
	const user = "setpriv --reuid=1 --regid=1 --clear-groups sh -c "
	withUmask(0o022, func() {
		for i, c := range nocapCases {
			c.script = drop + shQuote(c.script)
			t.Run(c.name, func(t *testing.T) {
				want := shResultOn(t, k, 500+i, c)
				got := shResultOn(t, o, 500+i, c)
				diffOrKnown(t, "nocap/"+c.name, want, got)
			})
		}
		for i, c := range userCases {
			c.script = user + shQuote(c.script)
			t.Run("uid1/"+c.name, func(t *testing.T) {
				want := shResultOn(t, k, 600+i, c)
				got := shResultOn(t, o, 600+i, c)
				diffOrKnown(t, "uid1/"+c.name, want, got)
			})
		}
	})
}

// shResultOn runs one shell case on one tree.
func shResultOn(t *testing.T, tr *fsTree, i int, c shCase) string {
	dir := filepath.Join(tr.root, fmt.Sprintf("s%03d", i))
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatalf("%s: %v", tr.name, err)
	}
	applySetup(t, tr, dir, c.setup)
	before := snapshot(t, dir)
	tick()
	r := sh(t, dir, "umask 022; "+c.script)
	after := snapshot(t, dir)
	return fmt.Sprintf("exit %d\nstdout:\n%sstderr:\n%s--\n%s", r.Code, r.Stdout, r.Stderr, render(before, after, nil))
}

// TestFSDiffShell runs every shCase with sh -c on a kernel bpffs and on bpffs-fuse and compares exit
// status, stdout, stderr (so the errno text coreutils prints) and the resulting tree.
func TestFSDiffShell(t *testing.T) {
	k := kernelTree(t, "")
	o := oursTree(t)
	withUmask(0o022, func() {
		for i, c := range shCases {
			t.Run(c.name, func(t *testing.T) {
				want := shResultOn(t, k, i, c)
				got := shResultOn(t, o, i, c)
				diffOrKnown(t, "sh/"+c.name, want, got)
			})
		}
	})
}
