package txring

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// quietSignals are the signals a blocking send holds off: the Go runtime's
// preemption signal (SIGURG, sent to any thread running a goroutine it
// wants back) and signals nobody waits on. A signal that arrives while
// tpacket_snd sleeps (for sndbuf, or for completions) makes it return
// early with the bytes queued so far: a C sender, which gets none of them,
// blocks until every frame went out, and so does this one. SIGINT and
// SIGTERM stay deliverable, so Ctrl-C still interrupts a send that would
// never return.
var quietSignals = []unix.Signal{unix.SIGURG, unix.SIGCHLD, unix.SIGWINCH, unix.SIGPROF}

// sendto calls sendto(2); a blocking one runs with quietSignals blocked on
// its thread.
func sendto(fd int, p uintptr, n int, flags int) (uintptr, unix.Errno) {
	if flags&unix.MSG_DONTWAIT == 0 {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var set, old unix.Sigset_t
		for _, s := range quietSignals {
			set.Val[(s-1)/64] |= 1 << ((uint(s) - 1) % 64)
		}
		if err := unix.PthreadSigmask(unix.SIG_BLOCK, &set, &old); err == nil {
			defer unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)
		}
	}
	r, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(fd), p, uintptr(n), uintptr(flags), 0, 0)
	return r, e
}
