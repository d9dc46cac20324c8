package session_test

import (
	"os"
	"testing"
	"time"

	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/plan"
	"github.com/ringtrace/ringtrace/tracer/session"
	"github.com/ringtrace/ringtrace/tracer/txring"
)

// TestEntryScanRun: a call's entry scan reads the SEND_REQUEST run from
// the kernel's head across block boundaries and the ring's end: on a ring
// of 16 frames, 4 to a block, with head at 11 (the last frame of its
// block), a run of 10 frames wrapping to frame 4 and an AVAILABLE frame 5
// is reported as such, and with bpf_loop only those 11 frames are read
// (without it, the scan counts the whole ring).
func TestEntryScanRun(t *testing.T) {
	l := newLab(t)
	o := options(t, plan.Auto)
	o.Filter = session.Filter{PID: uint32(os.Getpid())}
	tr := startTracerWith(t, o)
	r := labRing(t, l, 16, 1024)
	pkt := txring.FrameSpec{Dst: txring.BroadcastMAC, EtherType: txring.EtherTypeLocalExp1, Size: 100}.Build()
	request := func(from, n int) {
		for i := 0; i < n; i++ {
			r.Fill((from+i)%16, pkt)
			r.SetStatus((from+i)%16, txring.SendRequest)
		}
	}
	request(0, 11)
	if _, err := r.Send(0); err != nil {
		t.Fatal(err)
	}
	if c := r.WaitAvailable(2 * time.Second); c.Available != 16 {
		t.Fatalf("frames after the first call: %+v", c)
	}
	request(11, 10)
	if _, err := r.Send(0); err != nil {
		t.Fatal(err)
	}
	r.WaitAvailable(2 * time.Second)
	var enters []event.Event
	for _, e := range tr.stop(t) {
		if e.Kind == event.SendmsgEnter && e.Sk != 0 {
			enters = append(enters, e)
		}
	}
	if len(enters) != 2 {
		t.Fatalf("%d call entries, want 2", len(enters))
	}
	s := enters[1].Scan
	want := event.Scan{Head: 11, Frames: 16, RunSendRequest: 10, SendRequest: 10, Available: 1, Scanned: 11}
	if f := o.Facts.Features.Feature("bpf_loop"); f == nil || !f.OK {
		want.Available, want.Scanned = 6, 16
	}
	if s != want {
		t.Errorf("second call's entry scan %+v, want %+v", s, want)
	}
	if s := enters[0].Scan; s.Head != 0 || s.RunSendRequest != 11 {
		t.Errorf("first call's entry scan %+v, want a run of 11 from 0", s)
	}
}
