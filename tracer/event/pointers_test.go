package event_test

import (
	"testing"

	"github.com/ringtrace/ringtrace/tracer/event"
)

// TestMapPointers: the socket and skb of every kind, the location of drops
// and frame transitions and the napi of napi polls are kernel pointers;
// nothing else is touched, and zero fields are left zero.
func TestMapPointers(t *testing.T) {
	const sk, skb, loc, napi = 0xffff888105469000, 0xffff8881022a4e00, 0xffffffff81e65670, 0xffff888627d2d1c8
	for _, k := range event.Kinds() {
		in := event.Event{Kind: k, TS: 10, TSLo: 5, Sk: sk, SockIno: 9, Skb: skb, A: [3]uint64{7, loc, napi}, Frame: 3, Comm: "c"}
		b := event.Encode(in)
		seen := map[event.Pointer]uint64{}
		if err := event.MapPointers(b, func(p event.Pointer, v uint64) uint64 {
			seen[p] = v
			return uint64(p) * 100
		}); err != nil {
			t.Fatal(err)
		}
		got, err := event.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		want := in
		want.Sk, want.Skb = 100, 200
		wantSeen := map[event.Pointer]uint64{event.PointerSocket: sk, event.PointerSkb: skb}
		switch k {
		case event.Drop, event.FrameState:
			want.A[1], wantSeen[event.PointerLocation] = 300, loc
		case event.NapiPoll:
			want.A[2], wantSeen[event.PointerNapi] = 400, napi
		}
		if got != want {
			t.Errorf("%v: mapped to\n%+v, want\n%+v", k, got, want)
		}
		if len(seen) != len(wantSeen) {
			t.Errorf("%v: pointers %v, want %v", k, seen, wantSeen)
		}
		for p, v := range wantSeen {
			if seen[p] != v {
				t.Errorf("%v: %v was %#x, want %#x", k, p, seen[p], v)
			}
		}
	}
	zero := event.Encode(event.Event{Kind: event.Drop, TS: 1})
	if err := event.MapPointers(zero, func(p event.Pointer, v uint64) uint64 {
		t.Errorf("called for %v = %#x, a field pointing nowhere", p, v)
		return v
	}); err != nil {
		t.Fatal(err)
	}
}

func TestMapPointersRejects(t *testing.T) {
	never := func(event.Pointer, uint64) uint64 { panic("called") }
	if err := event.MapPointers(make([]byte, event.RawSize-1), never); err == nil {
		t.Error("short record accepted")
	}
	if err := event.MapPointers(event.Encode(event.Event{Kind: event.Kind(200), Sk: 1}), never); err == nil {
		t.Error("unknown kind accepted")
	}
}

func TestMapPointersAllocations(t *testing.T) {
	b := event.Encode(event.Event{Kind: event.FrameState, Sk: 1, Skb: 2, A: [3]uint64{0, 3, 0}})
	f := func(_ event.Pointer, v uint64) uint64 { return v + 1 }
	if n := testing.AllocsPerRun(100, func() { event.MapPointers(b, f) }); n != 0 {
		t.Errorf("%.1f allocations per record, want 0", n)
	}
}
