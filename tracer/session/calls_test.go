package session_test

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringtrace/ringtrace/scenarios/lab"
	"github.com/ringtrace/ringtrace/tracer/bpfobj/bpftypes"
	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/plan"
	"github.com/ringtrace/ringtrace/tracer/session"
	"github.com/ringtrace/ringtrace/tracer/txring"
)

// TestCallsOnly: with --detail calls no per-skb program runs, and still
// every frame a sender got back is counted sent and completed: frames
// completed within their call (a plain veth), calls that take the whole
// ring (head back where it was), and frames completed long after their
// non-blocking call returned, MSG_DONTWAIT or O_NONBLOCK (a 20 Mbit/s tbf:
// the frontier finds them). A blocking call's return counts all its frames
// done without reading them: the kernel returns only once none is in
// flight.
func TestCallsOnly(t *testing.T) {
	needRoot(t)
	o := options(t, plan.Auto)
	p, err := o.Plan.CallsOnly(o.Facts)
	if err != nil {
		t.Skipf("--detail calls on this kernel: %v", err)
	}
	o.Plan = p
	for _, tc := range []struct {
		name     string
		nic      *lab.NIC
		frames   int   // ring size
		batch    int   // frames per call (0: every AVAILABLE one)
		count    int64 // frames sent in all
		dontWait bool
		nonBlock bool // O_NONBLOCK on the socket, no MSG_DONTWAIT: the kernel does not wait either
	}{
		{name: "veth", frames: 64, batch: 5, count: 3000},
		{name: "whole-ring-calls", frames: 32, count: 3200},
		{name: "late-completions", nic: &lab.NIC{Rate: 20e6, FifoLimit: 1000}, frames: 256, count: 2000, dontWait: true},
		{name: "o-nonblock", nic: &lab.NIC{Rate: 20e6, FifoLimit: 1000}, frames: 256, count: 2000, nonBlock: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLab(t)
			if tc.nic != nil {
				if err := l.Shape(*tc.nic); err != nil {
					t.Fatal(err)
				}
			}
			col := &closedCollector{aggs: map[session.SockKey]bpftypes.RingtraceRtSockAgg{}}
			tr := startTracerSink(t, o, col)
			sum := sendRing(t, l, l.SenderIf, txring.Options{
				Ring:  txring.Geometry{Version: txring.V2, Frames: tc.frames, FrameSize: 2048, BlockSize: 4096},
				Frame: txring.FrameSpec{Size: 1000}, Batch: tc.batch, Count: tc.count, DontWait: tc.dontWait,
				Drain: 10 * time.Second,
				OnReady: func(socks []txring.SocketInfo) {
					if tc.nonBlock {
						if err := unix.SetNonblock(socks[0].FD, true); err != nil {
							t.Error(err)
						}
					}
				},
			})
			if sum.Frames != uint64(tc.count) {
				t.Fatalf("sender sent %d frames, want %d", sum.Frames, tc.count)
			}
			time.Sleep(200 * time.Millisecond) // a few sweeps: the socket is found closed
			evs := tr.stop(t)
			var sent, done, taken uint64
			for _, a := range col.aggs {
				sent += a.Sent
				done += a.CompletedBounded + a.CompletedExact
			}
			inFlight := false
			for _, e := range evs {
				switch e.Kind {
				case event.SendmsgReturn:
					taken += uint64(e.N)
					inFlight = inFlight || e.Pending > 0
				case event.SendmsgEnter, event.SockGone, event.Sleep, event.Wake, event.Blind:
				default:
					t.Errorf("--detail calls traced a %v event: %+v", e.Kind, e)
				}
			}
			if sent != uint64(tc.count) || done != uint64(tc.count) || taken != uint64(tc.count) {
				t.Errorf("counted %d frames sent, %d completed, %d taken by the calls; the sender sent %d", sent, done, taken, tc.count)
			}
			if (tc.dontWait || tc.nonBlock) && !inFlight {
				t.Errorf("no call returned with frames in flight: non-blocking calls taken for blocking ones (all done at return)?")
			}
		})
	}
}

// closedCollector keeps the events and the counts of the sockets that
// closed, which an aggregating session hands over.
type closedCollector struct {
	session.Collector
	aggs map[session.SockKey]bpftypes.RingtraceRtSockAgg
}

func (c *closedCollector) Closed(k session.SockKey, a bpftypes.RingtraceRtSockAgg) error {
	c.aggs[k] = a
	return nil
}
