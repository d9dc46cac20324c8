package event_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/ringtrace/ringtrace/tracer/event"
)

func TestDecodeRoundTrip(t *testing.T) {
	in := event.Event{Kind: event.FrameState, TS: 42, TSLo: 40, Sk: 0xffff888102bcb000, Frame: 3,
		Old: event.Sending, New: event.Available, Prec: event.Bounded, Comm: "sender", Dev: "rt-tx",
		SndBuf: 212992, Wmem: 100, Pending: 1, A: [3]uint64{74, 0xffffffff81e65670, 0}}
	out, err := event.Decode(event.Encode(in))
	if err != nil {
		t.Fatal(err)
	}
	if out != in {
		t.Errorf("round trip:\n got %+v\nwant %+v", out, in)
	}
}

func TestDecodeRejects(t *testing.T) {
	if _, err := event.Decode(make([]byte, event.RawSize-1)); err == nil {
		t.Error("short record accepted")
	}
	if _, err := event.Decode(make([]byte, event.RawSize)); err == nil {
		t.Error("record with kind 0 accepted")
	}
	b := event.Encode(event.Event{Kind: event.Kind(200)})
	if _, err := event.Decode(b); err == nil {
		t.Error("unknown kind accepted")
	}
}

// TestFrameStateJSONContract pins the documented shape of frame_state: a
// socket is its label and inode, its address only with KernelAddresses.
func TestFrameStateJSONContract(t *testing.T) {
	f := event.NewFormatter(0, event.Names{})
	e := event.Event{Kind: event.FrameState, TS: 1234, PID: 77, TID: 78, Sk: 0xffff888105469000, SockIno: 4242, Frame: 5,
		Old: event.SendRequest, New: event.Sending, SndBuf: -1, Pending: -1}
	var m map[string]any
	if err := json.Unmarshal(f.AppendJSON(nil, &e), &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"event": "frame_state", "frame": 5.0, "state": "SENDING", "old_state": "SEND_REQUEST",
		"ts_ns": 1234.0, "pid": 77.0, "sock": "sk1", "sock_ino": 4242.0, "precision": "exact"}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v (%v)", k, m[k], v, m)
		}
	}
	if s, ok := m["socket"]; ok {
		t.Errorf("socket address %v without KernelAddresses", s)
	}
	fa := event.NewFormatter(0, event.Names{KernelAddresses: true})
	m = nil
	if err := json.Unmarshal(fa.AppendJSON(nil, &e), &m); err != nil || m["socket"] != "0xffff888105469000" || m["sock"] != "sk1" {
		t.Errorf("with KernelAddresses: socket %v, sock %v (%v)", m["socket"], m["sock"], err)
	}
	for _, st := range []event.State{event.Available, event.SendRequest, event.WrongFormat} {
		e.New = st
		if err := json.Unmarshal(f.AppendJSON(nil, &e), &m); err != nil || m["state"] != st.String() {
			t.Errorf("state %v: %v %v", st, m["state"], err)
		}
	}
}

// TestEveryKindFormats: every kind renders as text and as valid JSON.
func TestEveryKindFormats(t *testing.T) {
	f := event.NewFormatter(0, event.Names{DropReason: func(uint32) string { return "QDISC_DROP" }})
	for _, k := range event.Kinds() {
		e := event.Event{Kind: k, TS: 10, TSLo: 5, Sk: 1, Frame: 2, A: [3]uint64{uint64(1 << 63), 1, 2}}
		if txt := f.Text(&e); !strings.Contains(txt, "sk1") {
			t.Errorf("%v: %q", k, txt)
		}
		var m map[string]any
		if err := json.Unmarshal(f.AppendJSON(nil, &e), &m); err != nil {
			t.Errorf("%v: invalid JSON: %v", k, err)
		}
		if m["event"] != k.String() {
			t.Errorf("%v: event=%v", k, m["event"])
		}
	}
}

func TestNormalizerExpandsAndDedupes(t *testing.T) {
	n := event.NewNormalizer()
	var out []event.Event
	emit := func(e *event.Event) error { out = append(out, *e); return nil }
	in := []event.Event{
		{Kind: event.SendmsgEnter, TS: 10, Sk: 1, Scan: event.Scan{Head: 3, Frames: 4, RunSendRequest: 2}},
		{Kind: event.FrameState, TS: 11, Sk: 1, Frame: 3, Old: event.SendRequest, New: event.Sending},
		{Kind: event.FrameState, TS: 12, Sk: 1, Frame: 3, Old: event.SendRequest, New: event.Sending}, // raced twin
		{Kind: event.FrameState, TS: 13, Sk: 1, Frame: 3, Old: event.Sending, New: event.Available},
		{Kind: event.SendmsgEnter, TS: 20, Sk: 1, Scan: event.Scan{Head: 0, Frames: 4, RunSendRequest: 0}},
		{Kind: event.SendmsgEnter, TS: 30, Sk: 1, Scan: event.Scan{Head: 3, Frames: 4, RunSendRequest: 1}},
	}
	for i := range in {
		if err := n.Process(&in[i], emit); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, e := range out {
		if e.Kind == event.FrameState {
			got = append(got, e.New.String()+"#"+string(rune('0'+e.Frame)))
		}
	}
	// Entry at 10: frames 3 and 0 (wrapping) were SEND_REQUEST. Entry at
	// 30: frame 3 again, written after its AVAILABLE at 13.
	want := "SEND_REQUEST#3 SEND_REQUEST#0 SENDING#3 AVAILABLE#3 SEND_REQUEST#3"
	if strings.Join(got, " ") != want {
		t.Errorf("got %v\nwant %v", got, want)
	}
	if n.Duplicates != 1 {
		t.Errorf("%d duplicates, want 1", n.Duplicates)
	}
	last := out[len(out)-1]
	if last.Prec != event.Bounded || last.TSLo != 13 || last.Old != event.Available {
		t.Errorf("re-request %+v: want bounded since the AVAILABLE at 13", last)
	}
}

// A corrupt recording can claim a 2^32-frame ring with every frame
// requested; the expansion stops where the kernel's scan would have.
func TestNormalizerCapsCorruptScan(t *testing.T) {
	n := event.NewNormalizer()
	count := 0
	emit := func(e *event.Event) error {
		if e.Kind == event.FrameState {
			count++
		}
		return nil
	}
	e := event.Event{Kind: event.SendmsgEnter, TS: 1, Sk: 1,
		Scan: event.Scan{Frames: ^uint32(0), RunSendRequest: ^uint32(0)}}
	if err := n.Process(&e, emit); err != nil {
		t.Fatal(err)
	}
	if count != event.MaxScanRun {
		t.Errorf("expanded %d frames, want %d", count, event.MaxScanRun)
	}
}

// A completion of a frame no hook saw sent is one raw event; the normaliser
// reports the SENDING (bounded since A[2]) and the AVAILABLE.
func TestNormalizerSplitsUnseenSending(t *testing.T) {
	n := event.NewNormalizer()
	var out []event.Event
	emit := func(e *event.Event) error { out = append(out, *e); return nil }
	raw := event.Event{Kind: event.FrameState, TS: 50, Sk: 1, Frame: 3, Old: event.SendRequest, New: event.Available,
		Prec: event.Exact, Cause: event.CauseDrop, A: [3]uint64{7, 8, 20}}
	if err := n.Process(&raw, emit); err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 {
		t.Fatalf("%d events, want 2: %+v", len(out), out)
	}
	s, a := out[0], out[1]
	if s.Old != event.SendRequest || s.New != event.Sending || s.Prec != event.Bounded || s.TSLo != 20 || s.TS != 50 ||
		s.Cause != event.CauseTaken || s.A != [3]uint64{} {
		t.Errorf("SENDING %+v", s)
	}
	if a.Old != event.Sending || a.New != event.Available || a.Prec != event.Exact || a.A != [3]uint64{7, 8, 0} {
		t.Errorf("AVAILABLE %+v", a)
	}
}

// TestNormalizerFindsCompletionsAtReturn: a blocking call returns with the
// whole ring scanned and no frame SENDING, but no hook reported frame 2's
// completion (a kprobe run the kernel skipped, on a kernel without the
// in-kernel walk at the return): it is reported there, bounded by its
// SENDING, before the return. A frame another thread sent is left alone,
// and a scan that still sees frames SENDING proves nothing.
func TestNormalizerFindsCompletionsAtReturn(t *testing.T) {
	const sk = 0xa
	sending := func(ts uint64, frame, tid uint32) event.Event {
		return event.Event{Kind: event.FrameState, TS: ts, Sk: sk, TID: tid, Frame: frame, Old: event.SendRequest, New: event.Sending}
	}
	avail := func(ts uint64, frame uint32) event.Event {
		return event.Event{Kind: event.FrameState, TS: ts, Sk: sk, TID: 1, Frame: frame, Old: event.Sending, New: event.Available}
	}
	ret := func(ts uint64, scanSending uint32) event.Event {
		return event.Event{Kind: event.SendmsgReturn, TS: ts, Sk: sk, TID: 1,
			Scan: event.Scan{Frames: 4, Scanned: 4, Sending: scanSending, Available: 4 - scanSending}}
	}
	in := []event.Event{
		sending(10, 0, 1), sending(11, 1, 1), sending(12, 2, 1), sending(13, 3, 9),
		avail(20, 0), ret(25, 2), // frames 2 (thread 1) and 3 (thread 9) still SENDING: nothing to find
		avail(30, 1), ret(40, 0),
		avail(50, 2), // the sweep, later: a duplicate
	}
	n := event.NewNormalizer()
	var got []string
	for i := range in {
		n.Process(&in[i], func(e *event.Event) error {
			s := fmt.Sprintf("%s@%d", e.Kind, e.TS)
			if e.Kind == event.FrameState {
				s = fmt.Sprintf("#%d %s %s [%d,%d] %s", e.Frame, e.New, e.Prec, e.TSLo, e.TS, e.Cause)
			}
			got = append(got, s)
			return nil
		})
	}
	want := []string{
		"#0 SENDING exact [0,10] ", "#1 SENDING exact [0,11] ", "#2 SENDING exact [0,12] ", "#3 SENDING exact [0,13] ",
		"#0 AVAILABLE exact [0,20] ", "sendmsg_return@25",
		"#1 AVAILABLE exact [0,30] ",
		"#2 AVAILABLE bounded [12,40] status-read", "sendmsg_return@40",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n.FoundAtReturn != 1 || n.Duplicates != 1 {
		t.Errorf("found at return %d, duplicates %d; want 1, 1", n.FoundAtReturn, n.Duplicates)
	}
}

// TestNormalizerRetaken: tpacket_snd takes a frame again while the kernel
// side still held its earlier use SENDING (an skb orphaned on the way and
// not yet freed). The kernel side reports that use's completion (cause
// retaken), then the new SENDING. Where a blocking return already found the
// earlier use complete, and the next entry scan saw the frame SEND_REQUEST,
// the retaken completion is a duplicate, and the new use keeps its
// SEND_REQUEST; where nothing did, it closes the earlier use.
func TestNormalizerRetaken(t *testing.T) {
	const sk = 0xa
	ev := func(ts uint64, frame uint32, old, new event.State, cause event.Cause) event.Event {
		e := event.Event{Kind: event.FrameState, TS: ts, Sk: sk, TID: 1, Frame: frame, Old: old, New: new, Cause: cause}
		if cause == event.CauseRetaken {
			e.Prec, e.TSLo = event.Bounded, 11
		}
		return e
	}
	in := []event.Event{
		// frame 0: blocking call, completion found at its return
		ev(11, 0, event.SendRequest, event.Sending, event.CauseXmit),
		{Kind: event.SendmsgReturn, TS: 20, Sk: sk, TID: 1, Scan: event.Scan{Frames: 2, Scanned: 2, Available: 2}},
		{Kind: event.SendmsgEnter, TS: 30, Sk: sk, TID: 1, Scan: event.Scan{Head: 0, Frames: 2, RunSendRequest: 1}},
		ev(31, 0, event.Sending, event.Available, event.CauseRetaken),
		ev(32, 0, event.SendRequest, event.Sending, event.CauseXmit),
		// frame 1: a MSG_DONTWAIT call's frame, nothing found its completion
		ev(40, 1, event.SendRequest, event.Sending, event.CauseXmit),
		ev(50, 1, event.Sending, event.Available, event.CauseRetaken),
		ev(51, 1, event.SendRequest, event.Sending, event.CauseXmit),
	}
	n := event.NewNormalizer()
	var got []string
	for i := range in {
		n.Process(&in[i], func(e *event.Event) error {
			if e.Kind == event.FrameState {
				got = append(got, fmt.Sprintf("#%d %s->%s %s@%d", e.Frame, e.Old, e.New, e.Cause, e.TS))
			}
			return nil
		})
	}
	want := []string{
		"#0 SEND_REQUEST->SENDING xmit@11", "#0 SENDING->AVAILABLE status-read@20",
		"#0 AVAILABLE->SEND_REQUEST user-space@30", "#0 SEND_REQUEST->SENDING xmit@32",
		"#1 SEND_REQUEST->SENDING xmit@40", "#1 SENDING->AVAILABLE retaken@50", "#1 SEND_REQUEST->SENDING xmit@51",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n.Duplicates != 1 {
		t.Errorf("%d duplicates, want 1", n.Duplicates)
	}
}
