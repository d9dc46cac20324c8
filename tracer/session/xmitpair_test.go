package session_test

import (
	"os"
	"sync/atomic"
	"testing"

	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/plan"
	"github.com/ringtrace/ringtrace/tracer/session"
	"github.com/ringtrace/ringtrace/tracer/txring"
)

// TestXmitPairs: through the qdisc, a frame's xmit start and the driver's
// return come in one record (event.XmitPair) when both are traced, and
// split into the xmit_start and xmit_done that two records gave: one of
// each per frame, the start first, on the return's CPU and thread, for the
// same skb and frame. Asked for xmit_start alone, starts come in records
// of their own.
func TestXmitPairs(t *testing.T) {
	l := newLab(t)
	const count = 32
	pid := uint32(os.Getpid())
	for _, tc := range []struct {
		name  string
		kinds []event.Kind
		pairs bool
	}{
		{"default events", nil, true},
		{"xmit_start only", []event.Kind{event.SendmsgEnter, event.SendmsgReturn, event.FrameState, event.XmitStart}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := options(t, plan.Auto)
			o.Filter = session.Filter{PID: pid}
			o.Kinds = tc.kinds
			var pairs atomic.Int64
			tr := startTracerRaw(t, o, &session.Collector{}, func(b []byte) error {
				if e, err := event.Decode(b); err == nil && e.Kind == event.XmitPair {
					pairs.Add(1)
				}
				return nil
			})
			sendRing(t, l, l.SenderIf, txring.Options{Count: count})
			evs := tr.stop(t)
			open := map[uint64]event.Event{} // skb -> its start, until its return
			starts, dones := 0, 0
			for _, e := range evs {
				if e.PID != pid {
					continue
				}
				switch e.Kind {
				case event.XmitStart:
					starts++
					if s, ok := open[e.Skb]; ok && tc.pairs {
						t.Errorf("skb %#x started again at %d before the return of its start at %d", e.Skb, e.TS, s.TS)
					}
					open[e.Skb] = e
				case event.XmitDone:
					dones++
					s, ok := open[e.Skb]
					if !ok {
						t.Errorf("xmit_done of frame %d (skb %#x) at %d without its start", e.Frame, e.Skb, e.TS)
						continue
					}
					delete(open, e.Skb)
					if s.TS > e.TS || s.CPU != e.CPU || s.TID != e.TID || s.Frame != e.Frame || s.Sk != e.Sk ||
						s.SockIno != e.SockIno || s.Dev != e.Dev || s.Ifindex != e.Ifindex || s.Comm != e.Comm {
						t.Errorf("start %+v\ndoes not match its return %+v", s, e)
					}
					if s.SndBuf <= 0 || s.Wmem < 0 || s.Pending < 0 {
						t.Errorf("start without socket counts: %+v", s)
					}
				}
			}
			t.Logf("class %s: %d xmit starts, %d returns, %d pair records", tr.plan.Class, starts, dones, pairs.Load())
			if tc.pairs {
				if starts < count || dones != starts || len(open) != 0 {
					t.Errorf("%d starts, %d returns (%d open), want %d of each", starts, dones, len(open), count)
				}
				if int(pairs.Load()) != dones {
					t.Errorf("%d pair records for %d returns", pairs.Load(), dones)
				}
			} else if starts < count || dones != 0 || pairs.Load() != 0 {
				t.Errorf("%d starts, %d returns, %d pair records; want %d starts alone", starts, dones, pairs.Load(), count)
			}
		})
	}
}
