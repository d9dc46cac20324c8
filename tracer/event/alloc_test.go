package event_test

import (
	"testing"

	"github.com/ringtrace/ringtrace/tracer/event"
)

// TestSteadyStateAllocations: once its frames, sockets and names are known,
// decoding, normalising and formatting an event allocates nothing.
func TestSteadyStateAllocations(t *testing.T) {
	evs := []event.Event{
		{Kind: event.SendmsgEnter, TS: 10, Sk: 1, SockIno: 9, Comm: "sender", Scan: event.Scan{Head: 0, Frames: 4, RunSendRequest: 4}},
		{Kind: event.FrameState, TS: 11, Sk: 1, SockIno: 9, Frame: 0, Old: event.SendRequest, New: event.Sending, Dev: "eth0"},
		{Kind: event.FrameState, TS: 12, Sk: 1, SockIno: 9, Frame: 0, Old: event.Sending, New: event.Available,
			Prec: event.Bounded, TSLo: 11, A: [3]uint64{2, 0xffffffff81e65670, 0}},
		// A completion no hook saw sent: split into two transitions.
		{Kind: event.FrameState, TS: 13, Sk: 1, SockIno: 9, Frame: 1, Old: event.SendRequest, New: event.Available, A: [3]uint64{0, 0, 12}},
		{Kind: event.QdiscEnqueue, TS: 14, Sk: 1, SockIno: 9, Frame: 2, A: [3]uint64{0x80010000, 1<<32 | 1, 0}},
		{Kind: event.Drop, TS: 15, Sk: 1, SockIno: 9, Frame: 3, A: [3]uint64{2, 0xffffffff81e65670, 0}},
		{Kind: event.SendmsgReturn, TS: 16, Sk: 1, SockIno: 9, A: [3]uint64{uint64(1<<64 - 105), 0, 10}},
		{Kind: event.Softirq, TS: 17, TSLo: 5, Aux: 3},
		{Kind: event.Wake, TS: 18, TSLo: 2, Sk: 1, A: [3]uint64{77, 2, 0}, Aux: 1},
	}
	raws := make([][]byte, len(evs))
	for i := range evs {
		raws[i] = event.Encode(evs[i])
	}
	// A frame event in a short record, named from the records before it.
	short, err := event.EncodeShort(event.Event{Kind: event.FrameState, TS: 19, Sk: 1, SockIno: 9, Frame: 2,
		Old: event.SendRequest, New: event.Sending, Dev: "eth0"})
	if err != nil {
		t.Fatal(err)
	}
	raws = append(raws, short)
	names := event.Names{
		DropReason: func(uint32) string { return "NOT_SPECIFIED" },
		Symbol:     func(a uint64) string { return "kfree_skb+0x1" },
	}
	var d event.Decoder
	n := event.NewNormalizer()
	f := event.NewFormatter(0, names)
	var e event.Event
	var buf []byte
	emit := func(e *event.Event) error {
		buf = f.AppendJSON(buf[:0], e)
		buf = f.AppendText(buf[:0], e)
		return nil
	}
	round := func() {
		for _, raw := range raws {
			if err := d.Decode(raw, &e); err != nil {
				t.Fatal(err)
			}
			if err := n.Process(&e, emit); err != nil {
				t.Fatal(err)
			}
		}
	}
	round() // names, sockets, frames and the buffer become known
	if allocs := testing.AllocsPerRun(100, round); allocs != 0 {
		t.Errorf("%.1f allocations per round of %d events, want 0", allocs, len(raws))
	}
}
