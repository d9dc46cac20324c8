package session_test

import (
	"math/bits"
	"slices"
	"testing"
	"time"

	"github.com/ringtrace/ringtrace/scenarios/lab"
	"github.com/ringtrace/ringtrace/tracer/bpfobj/bpftypes"
	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/plan"
	"github.com/ringtrace/ringtrace/tracer/session"
	"github.com/ringtrace/ringtrace/tracer/txring"
)

// TestAggregateHistogram: in summary mode the kernel files each frame's
// SENDING -> AVAILABLE time in a power-of-two bucket (log2 computed in
// BPF, without branches). Through a shaped NIC the times spread over
// several buckets; the highest bucket used must be the longest time's,
// and the buckets must hold every timed completion.
func TestAggregateHistogram(t *testing.T) {
	needRoot(t)
	l := newLab(t)
	if err := l.Shape(lab.NIC{Rate: 20e6, FifoLimit: 1000}); err != nil {
		t.Fatal(err)
	}
	o := options(t, plan.Auto)
	o.Aggregate = true
	// As trace --summary: no event of the skb itself (qdisc, driver,
	// receive), the rest as they come.
	for _, k := range event.Kinds() {
		if !slices.Contains([]event.Kind{event.QdiscEnqueue, event.QdiscDequeue, event.XmitStart, event.XmitDone, event.RX}, k) {
			o.Kinds = append(o.Kinds, k)
		}
	}
	col := &closedCollector{aggs: map[session.SockKey]bpftypes.RingtraceRtSockAgg{}}
	tr := startTracerSink(t, o, col)
	const count = 600
	sum := sendRing(t, l, l.SenderIf, txring.Options{
		Ring:  txring.Geometry{Version: txring.V2, Frames: 128, FrameSize: 2048, BlockSize: 4096},
		Frame: txring.FrameSpec{Size: 1000}, Count: count, Drain: 10 * time.Second,
	})
	if sum.Frames != count {
		t.Fatalf("sender sent %d frames, want %d", sum.Frames, count)
	}
	time.Sleep(200 * time.Millisecond) // a few sweeps: the socket is found closed
	// Every frame went through the qdisc. Where the uarg's kfree reports
	// completions (this host), an aggregating trace has no use for the
	// skb -> frame cache, which costs ≈ 450 ns a frame to keep.
	on, used, err := tr.sess.SkbCache()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("class %s, uarg via kfree %v: skb cache on %v, used %v", tr.plan.Class, tr.plan.Config.UargViaKfree, on, used)
	if used != on || (tr.plan.Config.UargViaKfree && on) {
		t.Errorf("skb cache on %v, used %v (uarg via kfree: %v)", on, used, tr.plan.Config.UargViaKfree)
	}
	tr.stop(t)
	if len(col.aggs) != 1 {
		t.Fatalf("counts of %d closed sockets, want 1: %+v", len(col.aggs), col.aggs)
	}
	for k, a := range col.aggs {
		if a.Sent != count || a.CompletedExact+a.CompletedBounded != count {
			t.Errorf("socket %x: %d sent, %d+%d completed, want %d", k.Sk, a.Sent, a.CompletedExact, a.CompletedBounded, count)
		}
		if a.InflightCount == 0 {
			t.Fatalf("socket %x: no completion with an exact SENDING time (%+v)", k.Sk, a)
		}
		var n uint64
		lo, hi := -1, -1
		for b, c := range a.Hist {
			n += c
			if c != 0 {
				if lo < 0 {
					lo = b
				}
				hi = b
			}
		}
		if n != a.InflightCount {
			t.Errorf("histogram holds %d completions, %d were timed", n, a.InflightCount)
		}
		if want := bits.Len64(a.InflightMax) - 1; hi != want {
			t.Errorf("highest bucket %d, the longest time %d ns is in bucket %d; histogram %v", hi, a.InflightMax, want, a.Hist)
		}
		mean := a.InflightSum / a.InflightCount
		if mean < 1<<lo || mean >= 1<<(hi+1) {
			t.Errorf("mean %d ns outside buckets %d..%d", mean, lo, hi)
		}
		if lo == hi {
			t.Errorf("every time in bucket %d through a 20 Mbit/s queue: times not spread, or not bucketed", lo)
		}
	}
}
