// Package walk takes holders snapshots of the running kernel: it loads the
// BPF iterator of bpf/holders.bpf.c (Walker; Loader loads it in the
// background once a trace is attached), runs it over every task's open
// files, sockets and receive queues, decodes its records with
// holders.Decode and adds what each owning thread is doing, from /proc.
// It needs root and a kernel with BPF iterators (5.8+). What a snapshot
// means — who holds which frame — is tracer/holders, which needs neither.
package walk

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/ringtrace/ringtrace/tracer/bpfobj"
	"github.com/ringtrace/ringtrace/tracer/bpfobj/bpftypes"
	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/holders"
)

// Config is what the iterator needs to recognise ring skbs (from the attach
// plan's load-time configuration).
type Config struct {
	DestructAddr     uint64 // tpacket_destruct_skb
	UargCompleteAddr uint64 // tpacket_ubuf_complete (uarg kernels), 0 if unknown
	// KernelBTF, when set, is used for CO-RE instead of /sys/kernel/btf/vmlinux.
	KernelBTF *btf.Spec
	// CheckStart (tests): when not 0, every ring the walk describes also
	// gets the iterator's search for the address of its frame head,
	// started at chunk CheckStart-1 of 32 blocks (holders.Ring.SelfCheck).
	CheckStart uint32
	// bounded (tests): load the program for kernels without bpf_loop
	// even where the kernel has it.
	bounded bool
}

// Walker holds the loaded iterator program; each Walk attaches it, reads
// one pass over every task's files and detaches. Close unloads it. Safe
// for concurrent use.
type Walker struct {
	mu   sync.Mutex
	prog *ebpf.Program
	// Bounded: the kernel has no bpf_loop (before 5.17): receive queues are
	// walked up to 256 skbs, not 65536, and a held skb's frame is searched
	// for in 64 blocks of its ring, not all.
	Bounded bool
}

// NewWalker loads the iterator (about 10 ms of verification with bpf_loop,
// about 1 s without).
func NewWalker(c Config) (*Walker, error) {
	spec, err := bpfobj.LoadHolders()
	if err != nil {
		return nil, fmt.Errorf("read embedded holders object: %w", err)
	}
	if err := spec.Variables["hcfg"].Set(bpftypes.HoldersRtHolderConfig{DestructAddr: c.DestructAddr, UargCompleteAddr: c.UargCompleteAddr, CheckStart: c.CheckStart}); err != nil {
		return nil, fmt.Errorf("set holders config: %w", err)
	}
	name, drop := bpfobj.HoldersProgHolders, "holders_bounded"
	// bpf_loop is a base helper: probed on a raw tracepoint program, as
	// tracer/kernel/probe does (a Tracing probe needs an attach target and fails).
	bounded := c.bounded || features.HaveProgramHelper(ebpf.RawTracepoint, asm.FnLoop) != nil
	if bounded {
		name, drop = drop, name
	}
	delete(spec.Programs, drop)
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{Programs: ebpf.ProgramOptions{KernelTypes: c.KernelBTF}})
	if err != nil {
		return nil, fmt.Errorf("load holders iterator: %w", err)
	}
	defer coll.Close()
	return &Walker{prog: coll.DetachProgram(name), Bounded: bounded}, nil
}

// Close unloads the iterator.
func (w *Walker) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.prog == nil {
		return nil
	}
	err := w.prog.Close()
	w.prog = nil
	return err
}

// Walk takes a snapshot: why says what asked for it.
func (w *Walker) Walk(why string) (*holders.Snapshot, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.prog == nil {
		return nil, errors.New("holders walker is closed")
	}
	ts := event.MonotonicNow()
	l, err := link.AttachIter(link.IterOptions{Program: w.prog})
	if err != nil {
		return nil, fmt.Errorf("attach holders iterator: %w", err)
	}
	defer l.Close()
	rd, err := l.Open()
	if err != nil {
		return nil, fmt.Errorf("open holders iterator: %w", err)
	}
	raw, err := io.ReadAll(rd)
	rd.Close()
	done := event.MonotonicNow()
	if err != nil {
		return nil, fmt.Errorf("read holders iterator: %w", err)
	}
	s, err := holders.Decode(raw)
	if err != nil {
		return nil, err
	}
	s.TS, s.Done, s.Why = ts, done, why
	s.Threads = threads(s, "/proc")
	s.Sort()
	return s, nil
}

// threads reads, for every process owning a TX ring or a queue with ring
// skbs, what system call each of its threads is in.
func threads(s *holders.Snapshot, proc string) []holders.Thread {
	pids := map[uint32]bool{}
	for _, r := range s.Rings {
		for _, o := range r.Owners {
			pids[o.PID] = true
		}
	}
	for _, q := range s.Queues {
		if q.RingSkbs > 0 {
			for _, o := range q.Owners {
				pids[o.PID] = true
			}
		}
	}
	var out []holders.Thread
	for pid := range pids {
		dir := filepath.Join(proc, strconv.Itoa(int(pid)), "task")
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			tid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			b, err := os.ReadFile(filepath.Join(dir, e.Name(), "syscall"))
			if err != nil {
				continue
			}
			out = append(out, ParseSyscall(pid, uint32(tid), string(b)))
		}
	}
	return out
}

// ParseSyscall reads a /proc/PID/task/TID/syscall line ("44 0x3 0x0 0x0
// 0x40 0x0 0x0 0x7ffc... 0x..." or "running" or "-1 0x... 0x...").
func ParseSyscall(pid, tid uint32, line string) holders.Thread {
	t := holders.Thread{PID: pid, TID: tid, FD: -1}
	f := strings.Fields(line)
	if len(f) == 0 {
		t.Syscall = "unknown"
		return t
	}
	if f[0] == "running" {
		t.Syscall = "running"
		return t
	}
	nr, err := strconv.Atoi(f[0])
	if err != nil {
		t.Syscall = "unknown"
		return t
	}
	arg := func(i int) uint64 {
		if i+1 >= len(f) {
			return 0
		}
		v, _ := strconv.ParseUint(strings.TrimPrefix(f[i+1], "0x"), 16, 64)
		return v
	}
	switch nr {
	case -1:
		t.Syscall = "none" // blocked outside a system call
	case unix.SYS_SENDTO:
		t.Syscall, t.FD, t.Flags = "sendto", int(arg(0)), arg(3)
	case unix.SYS_SENDMSG:
		t.Syscall, t.FD, t.Flags = "sendmsg", int(arg(0)), arg(2)
	case unix.SYS_RECVFROM:
		t.Syscall, t.FD, t.Flags = "recvfrom", int(arg(0)), arg(3)
	case unix.SYS_RECVMSG:
		t.Syscall, t.FD, t.Flags = "recvmsg", int(arg(0)), arg(2)
	case unix.SYS_PPOLL:
		t.Syscall = "poll"
	case unix.SYS_FUTEX:
		t.Syscall = "futex"
	case unix.SYS_EPOLL_PWAIT:
		t.Syscall = "epoll_wait"
	case unix.SYS_NANOSLEEP, unix.SYS_CLOCK_NANOSLEEP:
		t.Syscall = "nanosleep"
	default:
		t.Syscall = legacySyscalls[nr] // the calls newer architectures (arm64) dropped
		if t.Syscall == "" {
			t.Syscall = fmt.Sprintf("syscall(%d)", nr)
		}
	}
	return t
}
