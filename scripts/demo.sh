#!/bin/sh
# make demo: mount a bpffs-fuse in a temp dir, create maps with the bpftool-style CLI, and show
# cat and echo on them. Usage: scripts/demo.sh [path/to/bpffs-fuse]
set -eu
BIN=$(realpath "${1:-bin/bpffs-fuse}")
MNT=$(mktemp -d /tmp/bpffs-demo.XXXXXX)
cleanup() { "$BIN" umount "$MNT" 2>/dev/null || true; rmdir "$MNT" 2>/dev/null || true; }
trap cleanup EXIT INT TERM

run() { printf '\n$ %s\n' "$*"; bash -c "$*" || printf '(exit status %s)\n' "$?"; }

cd "$MNT/.." 
echo "== bpffs-fuse demo in $MNT"
run "'$BIN' mount '$MNT'"
cd "$MNT"
run "ls -la"
run "'$BIN' map create $MNT/counters type hash key 4 value 8 entries 1024 name counters"
run "echo '1 42' > counters"
run "printf '2 100\n3 0x2a\ninsert 4 7\n' >> counters"
run "cat counters"
run "echo 'insert 1 5' > counters"
run "getfattr --only-values -n user.bpffs.error counters; echo"
run "echo 'delete 2' > counters && cat counters"
run "'$BIN' map lookup pinned $MNT/counters key 1 0 0 0"
run "'$BIN' map update pinned $MNT/counters key 9 0 0 0 value 1 0 0 0 0 0 0 0"
run "'$BIN' map dump pinned $MNT/counters"
run "'$BIN' map create $MNT/q type queue key 0 value 4 entries 8 name jobs"
run "printf '10\n20\n30\n' > q && cat q"
run "'$BIN' map pop pinned $MNT/q"
run "mkdir -p team/a && mv counters team/a/ && ls -R"
run "'$BIN' map show"
run "cat maps.debug"
run "rm team/a/counters q && '$BIN' map show"
cd /
run "'$BIN' umount '$MNT'"
