module github.com/bpffs-fuse/bpffs-fuse

go 1.26.0

require (
	github.com/cilium/ebpf v0.22.0
	golang.org/x/sys v0.50.0
)

require github.com/hanwen/go-fuse/v2 v2.12.1
