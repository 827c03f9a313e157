package engine

import (
	"fmt"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/bpffs-fuse/bpffs-fuse/objects"
)

// Caps is a set of capabilities, as bits numbered like include/uapi/linux/capability.h.
type Caps uint64

// The capabilities bpf(2) checks.
const (
	CapDacOverride Caps = 1 << unix.CAP_DAC_OVERRIDE
	CapNetAdmin    Caps = 1 << unix.CAP_NET_ADMIN
	CapSysAdmin    Caps = 1 << unix.CAP_SYS_ADMIN
	CapPerfmon     Caps = 1 << unix.CAP_PERFMON
	CapBPF         Caps = 1 << unix.CAP_BPF
	// CapAll is every capability root has.
	CapAll Caps = 1<<(unix.CAP_LAST_CAP+1) - 1
)

// Cred is a process's credentials.
type Cred struct {
	UID, GID uint32
	Groups   []uint32
	Caps     Caps
	// Umask is the process's file mode creation mask (current_umask()): pins it creates
	// get 0600 &^ Umask (kernel/bpf/inode.c:bpf_obj_do_pin).
	Umask uint32
}

// Root returns the credentials of uid 0 with every capability.
func Root() Cred { return Cred{Caps: CapAll} }

// Has reports whether c holds every capability in want.
func (c Cred) Has(want Caps) bool { return c.Caps&want == want }

// bpfCapable is include/linux/capability.h:bpf_capable: CAP_BPF or CAP_SYS_ADMIN.
func (c Cred) bpfCapable() bool { return c.Has(CapBPF) || c.Has(CapSysAdmin) }

// InGroup reports whether gid is c's primary or a supplementary group.
func (c Cred) InGroup(gid uint32) bool {
	if c.GID == gid {
		return true
	}
	for _, g := range c.Groups {
		if g == gid {
			return true
		}
	}
	return false
}

// File access modes: the kernel's FMODE_CAN_READ and FMODE_CAN_WRITE.
const (
	modeRead  uint8 = 1
	modeWrite uint8 = 2
)

// file is an open file description: one object and the access it was opened with.
type file struct {
	obj  objects.Object
	mode uint8
	refs atomic.Int32 // descriptors sharing it (dup)
}

// fdTable is published atomically; writers copy on growth and hold Process.mu.
type fdTable struct {
	files []atomic.Pointer[file]
}

// Process is one user of the engine: credentials and an fd table. Commands are methods on it.
type Process struct {
	eng  *Engine
	cred Cred
	// bpfOK caches cred.bpfCapable() (credentials never change): checkBPF runs on every
	// command.
	bpfOK bool

	mu     sync.Mutex // serializes fd allocation and close
	table  atomic.Pointer[fdTable]
	exited bool
}

// maxFDs bounds a process's table, like RLIMIT_NOFILE (EMFILE past it).
const maxFDs = 1 << 20

// NewProcess returns a process with the given credentials and an empty fd table. Fds start at
// 0; the Go API has no stdin, stdout and stderr to skip.
func (e *Engine) NewProcess(cred Cred) *Process {
	p := &Process{eng: e, cred: cred, bpfOK: cred.bpfCapable()}
	p.table.Store(&fdTable{files: make([]atomic.Pointer[file], 16)})
	return p
}

// Engine returns the engine the process belongs to.
func (p *Process) Engine() *Engine { return p.eng }

// Cred returns the process's credentials.
func (p *Process) Cred() Cred { return p.cred }

// install puts f at the lowest free descriptor (fs/file.c:alloc_fd).
func (p *Process) install(f *file) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exited {
		return -1, fmt.Errorf("process has exited: %w", unix.EBADF)
	}
	t := p.table.Load()
	for fd := range t.files {
		if t.files[fd].Load() == nil {
			f.refs.Add(1)
			t.files[fd].Store(f)
			return fd, nil
		}
	}
	n := len(t.files)
	if n >= maxFDs {
		return -1, fmt.Errorf("%d fds open: %w", n, unix.EMFILE)
	}
	nt := &fdTable{files: make([]atomic.Pointer[file], 2*n)}
	for i := range t.files {
		nt.files[i].Store(t.files[i].Load())
	}
	f.refs.Add(1)
	nt.files[n].Store(f)
	p.table.Store(nt)
	return n, nil
}

// get returns the file behind fd, or EBADF.
func (p *Process) get(fd int) (*file, error) {
	t := p.table.Load()
	if fd < 0 || fd >= len(t.files) {
		return nil, fmt.Errorf("fd %d: %w", fd, unix.EBADF)
	}
	f := t.files[fd].Load()
	if f == nil {
		return nil, fmt.Errorf("fd %d: %w", fd, unix.EBADF)
	}
	return f, nil
}

// InstallFD opens a new descriptor for obj, as the kernel's anon-inode fds for BPF objects.
// fileFlags are BPF_F_RDONLY / BPF_F_WRONLY (0: read-write). The descriptor takes over one
// user reference to obj that the caller already holds; on error the caller keeps it.
func (p *Process) InstallFD(obj objects.Object, fileFlags uint32) (int, error) {
	mode := modeRead | modeWrite
	switch fileFlags & (objects.FRdonly | objects.FWronly) {
	case objects.FRdonly:
		mode = modeRead
	case objects.FWronly:
		mode = modeWrite
	case objects.FRdonly | objects.FWronly:
		return -1, fmt.Errorf("BPF_F_RDONLY and BPF_F_WRONLY together: %w", unix.EINVAL)
	}
	return p.install(&file{obj: obj, mode: mode})
}

// Object returns the object behind fd with a new kernel-internal reference the caller must Put.
func (p *Process) Object(fd int) (objects.Object, error) {
	f, err := p.get(fd)
	if err != nil {
		return nil, err
	}
	f.obj.Inc()
	return f.obj, nil
}

// Close closes fd (close(2)); the object's user reference goes with the last descriptor that
// shares the open file.
func (p *Process) Close(fd int) error {
	p.mu.Lock()
	t := p.table.Load()
	if fd < 0 || fd >= len(t.files) || t.files[fd].Load() == nil {
		p.mu.Unlock()
		return fmt.Errorf("close fd %d: %w", fd, unix.EBADF)
	}
	f := t.files[fd].Swap(nil)
	p.mu.Unlock()
	p.release(f)
	return nil
}

func (p *Process) release(f *file) {
	if f.refs.Add(-1) == 0 {
		f.obj.PutUser()
	}
}

// Dup returns a new descriptor for the same open file (dup(2)).
func (p *Process) Dup(fd int) (int, error) {
	f, err := p.get(fd)
	if err != nil {
		return -1, err
	}
	return p.install(f)
}

// Exit closes every descriptor; the process cannot open new ones afterwards.
func (p *Process) Exit() {
	p.mu.Lock()
	p.exited = true
	t := p.table.Load()
	var open []*file
	for i := range t.files {
		if f := t.files[i].Swap(nil); f != nil {
			open = append(open, f)
		}
	}
	p.mu.Unlock()
	for _, f := range open {
		p.release(f)
	}
}

// NumFDs returns how many descriptors are open.
func (p *Process) NumFDs() int {
	t := p.table.Load()
	n := 0
	for i := range t.files {
		if t.files[i].Load() != nil {
			n++
		}
	}
	return n
}

// checkBPF is the gate at the top of kernel/bpf/syscall.c:__sys_bpf with
// kernel.unprivileged_bpf_disabled set: without CAP_BPF or CAP_SYS_ADMIN, every command fails
// with EPERM.
func (p *Process) checkBPF() error {
	if !p.bpfOK {
		return fmt.Errorf("bpf(2) needs CAP_BPF or CAP_SYS_ADMIN: %w", unix.EPERM)
	}
	return nil
}

// otherFile stands for an open file that is not a BPF object: a process's stdin, stdout and
// stderr. bpf(2) commands given such an fd fail as on Linux (EINVAL: not a map).
type otherFile struct{}

func (otherFile) ID() uint32       { return 0 }
func (otherFile) Inc()             {}
func (otherFile) Put()             {}
func (otherFile) IncUser()         {}
func (otherFile) PutUser()         {}
func (otherFile) TryInc() bool     { return true }
func (otherFile) TryIncUser() bool { return true }

// OpenStdio occupies fds 0, 1 and 2 with files that are not BPF objects, as a real process's
// stdin, stdout and stderr are, so that its first BPF fd is 3 and an fd argument of 0 (an unset
// inner_map_fd, say) names a file that is not a map, as it would on Linux. Processes that stand
// for another program (the control server's connections) use it.
func (p *Process) OpenStdio() {
	for i := 0; i < 3; i++ {
		p.install(&file{obj: otherFile{}})
	}
}
