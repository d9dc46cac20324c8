package session

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/ringtrace/ringtrace/tracer/event"
)

// refReorder is the model reorder must follow: on each release, the held
// events sorted by timestamp, ties in arrival order.
type refReorder struct {
	held       []event.Event
	last, late uint64
}

func (r *refReorder) release(watermark uint64) []uint64 {
	slices.SortStableFunc(r.held, func(a, b event.Event) int {
		switch {
		case a.TS < b.TS:
			return -1
		case a.TS > b.TS:
			return 1
		}
		return 0
	})
	var out []uint64
	n := 0
	for n < len(r.held) && r.held[n].TS <= watermark {
		e := r.held[n]
		if e.TS < r.last {
			r.late++
		} else {
			r.last = e.TS
		}
		out = append(out, e.Skb)
		n++
	}
	r.held = r.held[n:]
	return out
}

// TestReorderMatchesModel: random streams, nearly ordered or not at all,
// with ties, events arriving after later ones were released, and releases
// at random watermarks.
func TestReorderMatchesModel(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 2))
	for round := 0; round < 200; round++ {
		var ro reorder
		var ref refReorder
		delay := []uint64{0, 3, 100, 5000}[round%4] // how far back an event's time can be
		now := uint64(1e6)
		var id uint64
		for step := 0; step < 50; step++ {
			for i := r.IntN(300); i > 0; i-- {
				now += r.Uint64N(4) // ties too
				id++
				e := event.Event{Kind: event.Sleep, TS: now - r.Uint64N(delay+1), Skb: id}
				ro.push(&e)
				ref.held = append(ref.held, e)
			}
			watermark := now - r.Uint64N(delay+200)
			if r.IntN(10) == 0 {
				watermark = ^uint64(0)
			}
			var got []uint64
			err := ro.release(watermark, func(e *event.Event) error { got = append(got, e.Skb); return nil })
			if err != nil {
				t.Fatal(err)
			}
			want := ref.release(watermark)
			if !slices.Equal(got, want) {
				t.Fatalf("round %d step %d: released %v\nwant %v", round, step, got, want)
			}
			if ro.late != ref.late || ro.len() != len(ref.held) {
				t.Fatalf("round %d step %d: late %d held %d, want %d and %d", round, step, ro.late, ro.len(), ref.late, len(ref.held))
			}
		}
	}
}

// TestReorderStopsOnError: the event that failed is consumed, the rest stay
// held and come out next time.
func TestReorderStopsOnError(t *testing.T) {
	var ro reorder
	for ts := uint64(1); ts <= 5; ts++ {
		ro.push(&event.Event{TS: ts})
	}
	fail := errors.New("sink full")
	var got []uint64
	err := ro.release(10, func(e *event.Event) error {
		got = append(got, e.TS)
		if e.TS == 2 {
			return fail
		}
		return nil
	})
	if !errors.Is(err, fail) || !slices.Equal(got, []uint64{1, 2}) {
		t.Fatalf("release: %v, %v", got, err)
	}
	got = got[:0]
	if err := ro.flush(func(e *event.Event) error { got = append(got, e.TS); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []uint64{3, 4, 5}) {
		t.Fatalf("flush: %v", got)
	}
}

// TestBatcherCountsDecodeErrors: bad records are skipped and counted, and
// the count is published once.
func TestBatcherCountsDecodeErrors(t *testing.T) {
	s := newTestSession()
	bt := newBatcher()
	good := event.Encode(event.Event{Kind: event.Sleep, TS: 1})
	for i := 0; i < batchSize+3; i++ {
		if bt.add(good) != (i == batchSize-1) {
			t.Fatalf("record %d: full reported wrongly", i)
		}
		if i == batchSize-1 {
			evs := bt.take()
			if len(evs) != batchSize {
				t.Fatalf("batch of %d", len(evs))
			}
			bt.recycle(evs)
		}
	}
	bt.add(make([]byte, 10))
	bt.add(make([]byte, event.RawSize))
	if evs := bt.take(); len(evs) != 3 || cap(evs) != batchSize+1 {
		t.Fatalf("batch of %d (cap %d), want 3 in a recycled batch", len(evs), cap(evs))
	}
	s.addDecodeErrors(bt)
	s.addDecodeErrors(bt)
	if s.stats.Decode != 2 {
		t.Errorf("%d decode errors, want 2", s.stats.Decode)
	}
	if bt.take() != nil {
		t.Error("empty batch handed over")
	}
}
