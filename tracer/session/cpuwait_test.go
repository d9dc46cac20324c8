package session_test

import (
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringtrace/ringtrace/scenarios/lab"
	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/plan"
	"github.com/ringtrace/ringtrace/tracer/session"
	"github.com/ringtrace/ringtrace/tracer/txring"
)

// TestCPUWait: a real-time task shares the blocking sender's CPU, so the
// sender, woken by TX completions, waits runnable for that CPU. The tracer
// reports those run-queue waits inside the call (sched_switch), with the
// time the sender became runnable as the start.
func TestCPUWait(t *testing.T) {
	l := newLab(t)
	if err := l.Shape(lab.NIC{Rate: 10e6, FifoLimit: 50}); err != nil {
		t.Fatal(err)
	}
	tr := startTracer(t, plan.Auto, session.Filter{PID: uint32(os.Getpid())})
	var stop atomic.Bool
	hogging := make(chan error, 1)
	go hogCPU0(&stop, hogging)
	if err := <-hogging; err != nil {
		t.Fatalf("real-time hog: %v", err)
	}
	sum := sendRing(t, l, l.SenderIf, txring.Options{Count: 32, CPUs: []int{0}, Frame: txring.FrameSpec{Size: 1000},
		Ring: txring.Geometry{Version: txring.V2, Frames: 32, FrameSize: 2048, BlockSize: 4096}})
	stop.Store(true)
	if sum.Frames != 32 {
		t.Fatalf("sent %d frames", sum.Frames)
	}
	evs := tr.stop(t)
	var enter, ret uint64
	var waits int
	var longest uint64
	for _, e := range evs {
		switch {
		case e.Kind == event.SendmsgEnter && enter == 0:
			enter = e.TS
		case e.Kind == event.SendmsgReturn:
			ret = e.TS
		case e.Kind == event.Wake && event.Wait(e.A[1]) == event.WaitCPU:
			waits++
			longest = max(longest, e.Duration())
			if e.TSLo == 0 || e.TSLo > e.TS || uint32(e.A[0]) != e.TID {
				t.Errorf("cpu wait %+v: want a span [ts_lo, ts] of the sender's own thread", e)
			}
		}
	}
	if waits == 0 || longest < uint64(500*time.Microsecond) {
		t.Fatalf("%d cpu waits, longest %v: want the sender to wait for the hog's CPU", waits, time.Duration(longest))
	}
	if enter == 0 || ret == 0 {
		t.Fatalf("call enter %d return %d", enter, ret)
	}
	t.Logf("%d cpu waits inside the call, longest %v", waits, time.Duration(longest))
}

// hogCPU0 spins on CPU 0 as SCHED_FIFO in 3 ms bursts with 2 ms pauses
// until stop; it reports once it runs (or why it cannot).
func hogCPU0(stop *atomic.Bool, started chan<- error) {
	runtime.LockOSThread() // the thread exits with the goroutine: no RT thread returns to the pool
	var set unix.CPUSet
	set.Set(0)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		started <- err
		return
	}
	if err := unix.SchedSetAttr(0, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: 10}, 0); err != nil {
		started <- err
		return
	}
	started <- nil
	for !stop.Load() {
		for t0 := time.Now(); time.Since(t0) < 3*time.Millisecond; {
		}
		time.Sleep(2 * time.Millisecond)
	}
}
