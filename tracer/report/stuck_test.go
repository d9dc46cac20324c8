package report_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/holders"
	"github.com/ringtrace/ringtrace/tracer/report"
)

// TestStuckFromEvents: frames SENDING past the threshold are stuck whether
// they complete later, go with their socket or stay SENDING; a walk that
// saw one in the sender's own queue names it and the self-deadlock.
func TestStuckFromEvents(t *testing.T) {
	const sk, ino, s0 = 0xffff888100001000, 77, uint64(10e9)
	ev := func(e event.Event) *event.Event {
		e.Sk, e.SockIno, e.PID, e.TID, e.Comm = sk, ino, 9, 9, "snd"
		if e.Kind != event.FrameState && e.Frame == 0 {
			e.Frame = event.NoFrame
		}
		return &e
	}
	st := func(ts uint64, f uint32, from, to event.State) *event.Event {
		return ev(event.Event{Kind: event.FrameState, TS: ts, Frame: f, Old: from, New: to})
	}
	b := report.NewBuilder(event.Names{})
	b.SetStuckAfter(time.Second)
	b.Add(ev(event.Event{Kind: event.SendmsgEnter, TS: s0}))
	for f := uint32(0); f < 4; f++ {
		b.Add(st(s0+1, f, event.SendRequest, event.Sending))
	}
	b.Add(ev(event.Event{Kind: event.QdiscEnqueue, TS: s0 + 2, Frame: 2, Dev: "eth0", A: [3]uint64{0x80010000, 1 | 100<<32}}))
	b.Add(st(s0+500e6, 0, event.Sending, event.Available)) // 0.5 s: not stuck
	b.Add(st(s0+2e9, 1, event.Sending, event.Available))   // 2 s: stuck, completed later
	// frame 3 stays SENDING; a walk at 3 s finds it in the sender's own queue
	b.AddSnapshot(&holders.Snapshot{TS: s0 + 3e9, Why: "stuck",
		Rings:  []holders.Ring{{Sk: sk, Ino: ino, Frames: 4, Owners: []holders.Owner{{PID: 9, Comm: "snd", FD: 3}}}},
		Queues: []holders.Queue{{Sk: sk, Ino: ino, Family: 17, Qlen: 1, RingSkbs: 1, Walked: 1, Owners: []holders.Owner{{PID: 9, Comm: "snd", FD: 3}}}},
		Held:   []holders.Held{{Skb: 1, Ph: 2, Form: holders.FormUarg, Sender: sk, SenderIno: ino, Frame: 3, Holder: sk, HolderIno: ino}},
	})
	b.Add(ev(event.Event{Kind: event.SockGone, TS: s0 + 4e9})) // frame 2 (qdisc) and 3 go with the socket
	r := b.Finish()
	if r.End != s0+4e9 {
		t.Errorf("end %d", r.End)
	}
	if len(r.Stuck) != 3 {
		t.Fatalf("stuck %+v, want frames 1, 2, 3", r.Stuck)
	}
	f1, f2, f3 := r.Stuck[0], r.Stuck[1], r.Stuck[2]
	if f1.Frame != 1 || f1.Released != s0+2e9 || f1.Closed || f1.Holder.Place != "unknown" {
		t.Errorf("frame 1: %+v", f1)
	}
	if f2.Frame != 2 || !f2.Closed || f2.Holder.Place != "qdisc" || !strings.Contains(f2.Holder.Summary, "qdisc 8001:0 on eth0") {
		t.Errorf("frame 2: %+v", f2)
	}
	if f3.Frame != 3 || !f3.Closed || f3.Holder.Place != "receive-queue" || !f3.Holder.Self || f3.Holder.Form != holders.FormUarg {
		t.Errorf("frame 3: %+v", f3)
	}
	var self *report.Diagnosis
	for i, d := range r.Diagnoses {
		if d.ID == report.DiagSelfDeadlock {
			self = &r.Diagnoses[i]
		}
	}
	if self == nil || !strings.Contains(self.Title, "holds 1 of its ring frames") ||
		!strings.Contains(strings.Join(self.Evidence, "\n"), "thread 9 (snd) was blocked in sendto (0 (blocking))") {
		t.Fatalf("self-deadlock diagnosis %+v", self)
	}
	var buf bytes.Buffer
	r.WriteText(&buf, report.TextOptions{})
	if !strings.Contains(buf.String(), "STUCK FRAMES (SENDING for 1000.000 ms or more") ||
		!strings.Contains(buf.String(), "sk1 #3: 1 frames, up to 4000.000 ms, 1 released by the socket's close\n") {
		t.Errorf("text:\n%s", buf.String())
	}
}

// TestSelfLoopRecordings are recordings made under qemu by `ringtrace run
// self-loop --frames 4 --out DIR`: on 7.2.13 (uarg completion form) both
// runs leave the 4 frames in the sender's own receive queue; on 6.12.95
// (destructor form) they complete at once. The stuck frames and their
// holders are pinned as JSON (testdata/golden/stuck-*.json, -update).
func TestSelfLoopRecordings(t *testing.T) {
	for _, c := range []struct {
		name, form string
		stuck      int
		sender     string // evidence of the sender's state in the self-deadlock
	}{
		{"selfloop-7.2-blocking", "uarg", 4, "blocking sendto waited"},
		{"selfloop-7.2-dontwait", "uarg", 4, "MSG_DONTWAIT sendto returned 400 at once"},
		{"selfloop-6.12.95-blocking", "destructor", 0, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			rep := replay(t, c.name)
			if rep.Completion != c.form {
				t.Errorf("completion form %q, want %q", rep.Completion, c.form)
			}
			if len(rep.Stuck) != c.stuck {
				t.Fatalf("%d stuck frames, want %d: %+v", len(rep.Stuck), c.stuck, rep.Stuck)
			}
			d := diag(rep, report.DiagSelfDeadlock)
			if c.stuck == 0 {
				if d != nil || rep.Totals.Completed != 4 {
					t.Errorf("destructor form: %d completed, self-deadlock %+v", rep.Totals.Completed, d)
				}
			} else {
				for _, st := range rep.Stuck {
					if st.Holder.Place != "receive-queue" || !st.Holder.Self || st.Holder.Form != holders.FormUarg || st.Released != 0 {
						t.Errorf("frame #%d: %+v", st.Frame, st)
					}
				}
				if d == nil || !strings.Contains(strings.Join(d.Evidence, "\n"), c.sender) {
					t.Errorf("self-deadlock diagnosis %+v, want evidence %q", d, c.sender)
				}
			}
			got, err := json.MarshalIndent(rep.Stuck, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("../../testdata/golden", "stuck-"+c.name+".json")
			if *update {
				if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./tracer/report -update)", err)
			}
			if !bytes.Equal(append(got, '\n'), want) {
				t.Errorf("stuck frames differ from %s (rerun with -update if intended):\n%s", golden, got)
			}
		})
	}
}

// TestStuckReleasedWhileWalking: a recording's stuck walk that found a
// frame nowhere, because its completion (bounded, as a sweep finds it)
// came as the walk ran, names it released, not unknown; a walk without
// its end time (older recordings) keeps the frame unknown.
func TestStuckReleasedWhileWalking(t *testing.T) {
	const sk, ino, s0 = 0xffff888100001000, 77, uint64(10e9)
	for _, c := range []struct {
		done  uint64
		place string
	}{{s0 + 1200e6, "released"}, {0, "unknown"}} {
		b := report.NewBuilder(event.Names{})
		b.SetStuckAfter(time.Second)
		b.Add(&event.Event{Kind: event.FrameState, TS: s0, Sk: sk, SockIno: ino, Frame: 5, Old: event.SendRequest, New: event.Sending})
		b.AddSnapshot(&holders.Snapshot{TS: s0 + 1100e6, Done: c.done, Why: "stuck"})
		b.Add(&event.Event{Kind: event.FrameState, TS: s0 + 1210e6, TSLo: s0 + 1150e6, Prec: event.Bounded, Sk: sk, SockIno: ino, Frame: 5, Old: event.Sending, New: event.Available})
		r := b.Finish()
		if len(r.Stuck) != 1 {
			t.Fatalf("stuck %+v", r.Stuck)
		}
		st := r.Stuck[0]
		if st.Released != s0+1210e6 || st.Holder.Place != c.place {
			t.Errorf("walk done at %d: %+v, want place %s", c.done, st, c.place)
		}
		if c.place == "released" && (st.Holder.Summary != "completed while the kernel's sockets were being walked" ||
			!strings.Contains(strings.Join(st.Holder.Evidence, "\n"), "released (AVAILABLE) between 1.150000 s and 1.210000 s (bounded), by the end of that walk")) {
			t.Errorf("released holder %+v", st.Holder)
		}
	}
}
