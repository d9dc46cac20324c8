package event_test

import (
	"testing"

	"github.com/ringtrace/ringtrace/tracer/event"
)

// shortWriter turns the frame_state records of a stream that a short
// record can say into short records, the way the BPF side chooses them:
// where the stream has already named the thread (its last full record,
// blind windows excepted; never an idle task, tid 0, which makes no call)
// and the device is none or the socket's own (its last full record of the
// kinds that keep it in the socket's cache: calls, sends, driver returns).
type shortWriter struct {
	comms map[uint32]string
	devs  map[uint64]string
}

func newShortWriter() *shortWriter {
	return &shortWriter{comms: map[uint32]string{}, devs: map[uint64]string{}}
}

// rewrite returns raw, or the short record standing for it.
func (w *shortWriter) rewrite(t *testing.T, raw []byte) ([]byte, bool) {
	t.Helper()
	e, err := event.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if e.Kind == event.FrameState {
		comm, named := w.comms[e.TID]
		if e.TID != 0 && named && comm == e.Comm && (e.Dev == "" || w.devs[e.Sk] == e.Dev) {
			if b, err := event.EncodeShort(e); err == nil {
				return b, true
			}
		}
	}
	if e.Kind != event.Blind {
		w.comms[e.TID] = e.Comm
	}
	switch {
	case e.Kind == event.SendmsgEnter, e.Kind == event.SendmsgCall, e.Kind == event.SendmsgReturn,
		e.Kind == event.XmitDone, e.Kind == event.FrameState && e.New != event.Available:
		if e.Dev != "" {
			w.devs[e.Sk] = e.Dev
		}
	}
	return raw, false
}

// TestShortRecordsDecodeAsFull: every recording's frame events, rewritten
// into short records where the BPF side would write them, decode to the
// same events as the full records (with a Decoder reading the stream in
// order).
func TestShortRecordsDecodeAsFull(t *testing.T) {
	total := 0
	for f, raws := range recordedRecords(t) {
		var d event.Decoder
		w := newShortWriter()
		for i, raw := range raws {
			want, err := event.Decode(raw)
			if err != nil {
				t.Fatal(err)
			}
			rec, short := w.rewrite(t, raw)
			var got event.Event
			if err := d.Decode(rec, &got); err != nil {
				t.Fatalf("%s record %d: %v", f, i, err)
			}
			if got != want {
				t.Fatalf("%s record %d (short %v): decoded %+v, want %+v", f, i, short, got, want)
			}
			if short {
				total++
			}
		}
	}
	if total == 0 {
		t.Fatal("no frame event could be short")
	}
	t.Logf("%d frame events as short records", total)
}

// TestShortRecordNames: what a short record's names come from.
func TestShortRecordNames(t *testing.T) {
	enter := event.Event{Kind: event.SendmsgEnter, TS: 1, Sk: 0x10, PID: 5, TID: 7, Comm: "sender", Ifindex: 4, Dev: "veth0"}
	frame := event.Event{Kind: event.FrameState, TS: 9, Sk: 0x10, PID: 5, TID: 7, Frame: 3, Old: event.Sending,
		New: event.Available, Cause: event.Cause(2), SndBuf: 212992, Wmem: 300, Pending: 1, SockIno: 77}
	onDev := frame
	onDev.Dev = "veth0"
	for _, tc := range []struct {
		name     string
		before   []event.Event
		short    event.Event
		comm     string
		ifindex  uint32
		dev      string
		stateful bool
	}{
		{"thread and device known", []event.Event{enter}, onDev, "sender", 4, "veth0", true},
		{"no device", []event.Event{enter}, frame, "sender", 0, "", true},
		{"without a Decoder", []event.Event{enter}, onDev, "", 0, "", false},
		{"unknown thread", []event.Event{{Kind: event.SendmsgEnter, Sk: 0x10, TID: 8, Comm: "other", Ifindex: 4, Dev: "veth0"}},
			onDev, "", 4, "veth0", true},
		{"blind window names the process", []event.Event{enter, {Kind: event.Blind, TID: 7, Comm: "leader"}},
			onDev, "sender", 4, "veth0", true},
		{"renamed thread", []event.Event{enter, {Kind: event.Wake, TID: 7, Comm: "renamed"}}, onDev, "renamed", 4, "veth0", true},
		{"an skb's device is not the socket's", []event.Event{enter, {Kind: event.XmitStart, Sk: 0x10, TID: 7, Comm: "sender", Ifindex: 9, Dev: "peer"}},
			onDev, "sender", 4, "veth0", true},
		{"the socket's device changes", []event.Event{enter, {Kind: event.XmitDone, Sk: 0x10, TID: 7, Comm: "sender", Ifindex: 6, Dev: "veth1"}},
			onDev, "sender", 6, "veth1", true},
		{"another socket's device", []event.Event{enter, {Kind: event.XmitDone, Sk: 0x20, TID: 7, Comm: "sender", Ifindex: 6, Dev: "veth1"}},
			onDev, "sender", 4, "veth0", true},
		{"a completion names the device its skb reached", []event.Event{enter, {Kind: event.FrameState, Sk: 0x10, TID: 7,
			Comm: "sender", New: event.Available, Ifindex: 2, Dev: "peer"}}, onDev, "sender", 4, "veth0", true},
		{"so does a drop", []event.Event{enter, {Kind: event.Drop, Sk: 0x10, TID: 7, Comm: "sender", Ifindex: 2, Dev: "peer"}},
			onDev, "sender", 4, "veth0", true},
		{"a send names the socket's device", []event.Event{enter, {Kind: event.FrameState, Sk: 0x10, TID: 7, Comm: "sender",
			New: event.Sending, Ifindex: 6, Dev: "veth1"}}, onDev, "sender", 6, "veth1", true},
	} {
		var d event.Decoder
		var e event.Event
		for _, b := range tc.before {
			if err := d.Decode(event.Encode(b), &e); err != nil {
				t.Fatal(err)
			}
		}
		raw, err := event.EncodeShort(tc.short)
		if err != nil {
			t.Fatal(err)
		}
		if tc.stateful {
			err = d.Decode(raw, &e)
		} else {
			e, err = event.Decode(raw)
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		want := tc.short
		want.Comm, want.Ifindex, want.Dev = tc.comm, tc.ifindex, tc.dev
		if e != want {
			t.Errorf("%s: decoded %+v, want %+v", tc.name, e, want)
		}
	}
}

// TestShortRecordRefusals: what a short record cannot say.
func TestShortRecordRefusals(t *testing.T) {
	for name, e := range map[string]event.Event{
		"another kind":      {Kind: event.Drop},
		"a drop's reason":   {Kind: event.FrameState, A: [3]uint64{2, 0, 0}},
		"a drop's location": {Kind: event.FrameState, A: [3]uint64{0, 0xffffffff81000000, 0}},
	} {
		if _, err := event.EncodeShort(e); err == nil {
			t.Errorf("%s: encoded", name)
		}
	}
}

// TestShortRecordPointers: a short record's socket and skb are pointers.
func TestShortRecordPointers(t *testing.T) {
	e := event.Event{Kind: event.FrameState, Sk: 0x1000, Skb: 0x2000, A: [3]uint64{2: 0x3000}, TS: 0x4000}
	raw, err := event.EncodeShort(e)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[event.Pointer]uint64{}
	if err := event.MapPointers(raw, func(p event.Pointer, v uint64) uint64 { seen[p] = v; return v + 1 }); err != nil {
		t.Fatal(err)
	}
	got, err := event.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 2 || seen[event.PointerSocket] != 0x1000 || seen[event.PointerSkb] != 0x2000 ||
		got.Sk != 0x1001 || got.Skb != 0x2001 || got.A[2] != 0x3000 || got.TS != 0x4000 {
		t.Errorf("mapped %v, decoded %+v", seen, got)
	}
	if err := event.MapPointers(make([]byte, event.ShortSize), func(p event.Pointer, v uint64) uint64 { return v }); err == nil {
		t.Error("a short record of kind 0 mapped")
	}
}
