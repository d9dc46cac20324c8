package event_test

import (
	"testing"

	"github.com/ringtrace/ringtrace/tracer/event"
)

// TestUnfoldCall: a one-record call (RT_SENDMSG_CALL, as the BPF side
// writes it) decodes and splits into the entry and return events that two
// records would have given.
func TestUnfoldCall(t *testing.T) {
	const dontwait = 0x40
	raw := event.Encode(event.Event{
		Kind: event.SendmsgCall, TS: 2000, TSLo: 1500, Sk: 0xffff0001 ^ 0xabc, SockIno: 42,
		Skb:  dontwait | 7<<32, // flags, head at entry
		A:    [3]uint64{0, 7, 1500},
		Scan: event.Scan{Head: 7, Frames: 64, Sending: 1, Scanned: 1},
		PID:  10, TID: 11, Frame: 7, CPU: 1, SndBuf: 4096, Wmem: 100, Pending: 1, Ifindex: 3,
		Old: event.Sending, New: 1, Prec: 1, Aux: 1, Hook: event.Hook(1), Comm: "snd", Dev: "veth0",
	})
	// Recordings without kernel addresses map pointers to pseudonyms: the
	// call's skb field holds its entry's flags and head, not a pointer.
	if err := event.MapPointers(raw, func(p event.Pointer, v uint64) uint64 { return v ^ 0xabc }); err != nil {
		t.Fatal(err)
	}
	ret, err := event.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if ret.Kind != event.SendmsgCall {
		t.Fatalf("decoded kind %v", ret.Kind)
	}
	var enter event.Event
	ret.Unfold(&enter)
	wantEnter := event.Event{
		Kind: event.SendmsgEnter, TS: 1500, Sk: 0xffff0001, SockIno: 42, A: [3]uint64{dontwait, 7, 1},
		Scan: event.Scan{Head: 7, Frames: 64, Sending: 1, Scanned: 1},
		PID:  10, TID: 11, Frame: 7, CPU: 1, SndBuf: 4096, Wmem: 100, Pending: 1, Ifindex: 3,
		Old: event.Unknown, New: event.Unknown, Hook: event.Hook(1), Comm: "snd", Dev: "veth0",
	}
	if enter != wantEnter {
		t.Errorf("entry\n got %+v\nwant %+v", enter, wantEnter)
	}
	wantRet := event.Event{
		Kind: event.SendmsgReturn, TS: 2000, Sk: 0xffff0001, SockIno: 42, A: [3]uint64{0, 7, 1500},
		Scan: event.Scan{Head: 7, Frames: 64, Sending: 1, Scanned: 1},
		PID:  10, TID: 11, Frame: 7, CPU: 1, SndBuf: 4096, Wmem: 100, Pending: 1,
		Old: event.Unknown, New: event.Unknown, Aux: 1, Hook: event.Hook(1), Comm: "snd",
	}
	if ret != wantRet {
		t.Errorf("return\n got %+v\nwant %+v", ret, wantRet)
	}
	// With light scans (in-kernel aggregation) the entry counted no frame.
	light := event.Event{Kind: event.SendmsgCall, TS: 2000, TSLo: 1500, Skb: 7 << 32, Scan: event.Scan{Head: 7, Frames: 64},
		Old: event.Available, New: 0}
	light.Unfold(&enter)
	if want := (event.Scan{Head: 7, Frames: 64}); enter.Scan != want {
		t.Errorf("light entry scan %+v, want %+v", enter.Scan, want)
	}
	if _, ok := event.ParseKind("sendmsg_call"); ok {
		t.Error("sendmsg_call can be asked for: it is never delivered")
	}
}
