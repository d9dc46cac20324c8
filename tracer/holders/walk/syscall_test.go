package walk

import (
	"testing"

	"github.com/cilium/ebpf/asm"

	"github.com/ringtrace/ringtrace/tracer/bpfobj"
	"github.com/ringtrace/ringtrace/tracer/holders"
)

func TestParseSyscall(t *testing.T) {
	cases := []struct {
		line string
		want holders.Thread
	}{
		{"44 0x3 0x0 0x0 0x40 0x0 0x0 0x7ffc5e0 0x4a1b2c\n", holders.Thread{PID: 1, TID: 2, Syscall: "sendto", FD: 3, Flags: 0x40}},
		{"46 0x5 0x7ffc 0x0 0x0 0x0 0x0 0x7ffc 0x4a", holders.Thread{PID: 1, TID: 2, Syscall: "sendmsg", FD: 5}},
		{"running\n", holders.Thread{PID: 1, TID: 2, Syscall: "running", FD: -1}},
		{"-1 0x7ffc 0x4a\n", holders.Thread{PID: 1, TID: 2, Syscall: "none", FD: -1}},
		{"202 0x1 0x80 0x0 0x0 0x0 0x0 0x1 0x2", holders.Thread{PID: 1, TID: 2, Syscall: "futex", FD: -1}},
		{"", holders.Thread{PID: 1, TID: 2, Syscall: "unknown", FD: -1}},
	}
	for _, c := range cases {
		if got := ParseSyscall(1, 2, c.line); got != c.want {
			t.Errorf("ParseSyscall(%q) = %+v, want %+v", c.line, got, c.want)
		}
	}
	s := &holders.Snapshot{Rings: []holders.Ring{{Sk: 1, Owners: []holders.Owner{{PID: 1, FD: 3}}}},
		Threads: []holders.Thread{ParseSyscall(1, 2, cases[0].line), ParseSyscall(1, 3, cases[1].line)}}
	if b := s.BlockedSenders(&s.Rings[0]); len(b) != 1 || b[0].TID != 2 {
		t.Errorf("BlockedSenders = %+v, want thread 2 (sendto on fd 3; thread 3 sends on fd 5)", b)
	}
}

// TestBoundedProgramHasNoLoop: the program for kernels without bpf_loop
// neither calls it nor keeps a reference to a callback: 5.10 rejects such
// a program whole ("number of funcs in func_info doesn't match number of
// subprogs": it does not know function references), and the walks fail.
// The bpf_loop program does both.
func TestBoundedProgramHasNoLoop(t *testing.T) {
	spec, err := bpfobj.LoadHolders()
	if err != nil {
		t.Fatal(err)
	}
	uses := func(name string) (calls, refs int) {
		for _, ins := range spec.Programs[name].Instructions {
			if ins.IsBuiltinCall() && ins.Constant == int64(asm.FnLoop) {
				calls++
			}
			if ins.IsLoadOfFunctionPointer() {
				refs++
			}
		}
		return calls, refs
	}
	if calls, refs := uses(bpfobj.HoldersProgHoldersBounded); calls+refs != 0 {
		t.Errorf("%s: %d bpf_loop calls, %d callback references, want none", bpfobj.HoldersProgHoldersBounded, calls, refs)
	}
	if calls, refs := uses(bpfobj.HoldersProgHolders); calls == 0 || refs == 0 {
		t.Errorf("%s: %d bpf_loop calls, %d callback references: the check sees nothing", bpfobj.HoldersProgHolders, calls, refs)
	}
}
