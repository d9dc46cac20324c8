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

// TestUnfoldXmitPair: an xmit pair (RT_XMIT_PAIR, as net_dev_xmit's
// program writes it) decodes, through a Decoder and pseudonyms, and splits
// into the xmit_start and xmit_done that two records would have given: the
// start at its own time with its own socket counts (-1 kept: unknown).
func TestUnfoldXmitPair(t *testing.T) {
	const sk, skb = 0xffff0001, 0xffff0002
	raw := event.Encode(event.Event{
		Kind: event.XmitPair, TS: 2000, TSLo: 1500, Sk: sk ^ 0xabc, Skb: skb ^ 0xabc, SockIno: 42,
		A:   [3]uint64{0, 4352 | 0xffffffff<<32, 212992}, // wmem 4352, pending -1
		PID: 10, TID: 11, Frame: 7, CPU: 1, SndBuf: 212992, Wmem: 0, Pending: 3, Ifindex: 3,
		Old: event.Unknown, New: event.Unknown, Comm: "snd", Dev: "veth0",
	})
	if err := event.MapPointers(raw, func(p event.Pointer, v uint64) uint64 { return v ^ 0xabc }); err != nil {
		t.Fatal(err)
	}
	var d event.Decoder
	var done event.Event
	if err := d.Decode(raw, &done); err != nil {
		t.Fatal(err)
	}
	if !done.Kind.Folded() {
		t.Fatalf("decoded kind %v is not a folded one", done.Kind)
	}
	var start event.Event
	done.Unfold(&start)
	common := event.Event{Sk: sk, Skb: skb, SockIno: 42, PID: 10, TID: 11, Frame: 7, CPU: 1, Ifindex: 3,
		Old: event.Unknown, New: event.Unknown, Comm: "snd", Dev: "veth0"}
	wantStart, wantDone := common, common
	wantStart.Kind, wantStart.TS, wantStart.SndBuf, wantStart.Wmem, wantStart.Pending = event.XmitStart, 1500, 212992, 4352, -1
	wantDone.Kind, wantDone.TS, wantDone.SndBuf, wantDone.Wmem, wantDone.Pending = event.XmitDone, 2000, 212992, 0, 3
	if start != wantStart {
		t.Errorf("start\n got %+v\nwant %+v", start, wantStart)
	}
	if done != wantDone {
		t.Errorf("done\n got %+v\nwant %+v", done, wantDone)
	}
	if event.XmitPair.String() != "xmit_pair" || event.FrameState.Folded() {
		t.Errorf("kind names or folding: %v %v", event.XmitPair, event.FrameState.Folded())
	}
}
