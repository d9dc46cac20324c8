package holders

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ringtrace/ringtrace/tracer/event"
)

func frameEv(ts uint64, frame uint32, st event.State) *event.Event {
	return &event.Event{Kind: event.FrameState, TS: ts, Sk: senderSk, SockIno: 100, Frame: frame, New: st, TID: 42, PID: 42}
}

// TestWatcher: frames SENDING past After are reported once, with the holder
// from a walk and the self-deadlock; completed frames are not; Final
// reports what is left.
func TestWatcher(t *testing.T) {
	snap, err := Decode(Encode(records()))
	if err != nil {
		t.Fatal(err)
	}
	walks := 0
	var out bytes.Buffer
	w := NewWatcher(time.Second, &out, func(why string) (*Snapshot, error) {
		walks++
		s := *snap
		s.Why = why
		return &s, nil
	})
	const t0 = 1_000_000_000
	w.Event(&event.Event{Kind: event.SendmsgEnter, TS: t0, Sk: senderSk, SockIno: 100, TID: 42, PID: 42, Comm: "sender", Frame: NoFrame})
	for f := uint32(0); f < 4; f++ {
		w.Event(frameEv(t0+10, f, event.Sending))
	}
	w.Event(&event.Event{Kind: event.QdiscEnqueue, TS: t0 + 20, Sk: senderSk, SockIno: 100, Frame: 0, Dev: "eth0", A: [3]uint64{0x80010000, 3 | 4500<<32}})
	w.Event(frameEv(t0+30, 0, event.Available)) // frame 0 completes: never stuck
	w.Check(t0 + 500e6)
	if walks != 0 || out.Len() != 0 {
		t.Fatalf("reported before the threshold: %d walks, %q", walks, out.String())
	}
	w.Check(t0 + 10 + 1e9)
	text := out.String()
	if walks != 1 {
		t.Fatalf("%d walks, want 1", walks)
	}
	for _, want := range []string{
		"ringtrace: STUCK sk1: 2 frames SENDING for more than 1s (#1-#2): in the receive queue of its own sender's packet socket inode 100",
		"ringtrace: STUCK sk1: 1 frames SENDING for more than 1s (#3): in the receive queue of packet socket inode 200 (pid 50 (tap) fd 7, pid 51 (tap) fd 4)",
		"ringtrace: sk1 self-deadlock: the sender's own receive queue holds 2 of its ring frames",
		"thread 42 (sender) is blocked in sendto (0 (blocking))",
		"remedy: bind the sending socket with protocol 0",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("missing %q in:\n%s", want, text)
		}
	}
	if strings.Contains(text, "#0") {
		t.Errorf("completed frame #0 reported:\n%s", text)
	}
	out.Reset()
	w.Check(t0 + 5e9)
	if walks != 1 || out.Len() != 0 {
		t.Fatalf("stuck frames reported twice: %q", out.String())
	}
	w.Final()
	if walks != 2 || !strings.Contains(out.String(), "2 frames still SENDING at the end of the trace (#1-#2)") ||
		!strings.Contains(out.String(), "1 frames still SENDING at the end of the trace (#3)") {
		t.Fatalf("Final: %d walks, %q", walks, out.String())
	}
	if s := w.Snapshots(); len(s) != 2 || s[0].Why != "stuck" || s[1].Why != "end" {
		t.Fatalf("snapshots %+v", s)
	}
}

// TestWatcherWalkFails: a failed walk still reports the frames, from the
// events, and says the walk failed.
func TestWatcherWalkFails(t *testing.T) {
	var out bytes.Buffer
	w := NewWatcher(time.Millisecond, &out, func(string) (*Snapshot, error) { return nil, errors.New("no BPF iterators") })
	w.Event(frameEv(1e9, 5, event.Sending))
	w.Event(&event.Event{Kind: event.QdiscEnqueue, TS: 1e9 + 5, Sk: senderSk, SockIno: 100, Frame: 5, Dev: "eth0", A: [3]uint64{0x80010000, 3 | 4500<<32}})
	w.Check(2e9)
	text := out.String()
	for _, want := range []string{"(#5): in qdisc 8001:0 on eth0 (qlen 3, backlog 4500 B at its enqueue)", "failed: no BPF iterators"} {
		if !strings.Contains(text, want) {
			t.Errorf("missing %q in:\n%s", want, text)
		}
	}
}

func TestLocateDevice(t *testing.T) {
	var w Where
	w.Update(&event.Event{Kind: event.QdiscEnqueue, Dev: "eth0", A: [3]uint64{0x10000}})
	w.Update(&event.Event{Kind: event.QdiscDequeue, Dev: "eth0", A: [3]uint64{0x10000}})
	w.Update(&event.Event{Kind: event.XmitStart, Dev: "eth0", TS: 7})
	l := Locate(Frame{Sk: 1, Frame: 2}, &Snapshot{Why: "end"}, w, 0, false)
	if l.Place != "device" || !strings.Contains(l.Summary, "handed to device eth0") || !strings.Contains(strings.Join(l.Evidence, "|"), "no socket receive queue holds its skb") {
		t.Errorf("Locate: %+v", l)
	}
	if l := Locate(Frame{Sk: 1}, nil, Where{}, 0, false); l.Place != "unknown" {
		t.Errorf("no events, no walk: %+v", l)
	}
	if got := FrameList([]uint32{7, 0, 1, 2, 5}); got != "#0-#2, #5, #7" {
		t.Errorf("FrameList = %q", got)
	}
}

// TestWatcherSteadyStateAllocations: frames going SENDING -> AVAILABLE, one
// after another, cost the watcher no allocation once it has warmed up (it
// sees every frame of a stream at full rate).
func TestWatcherSteadyStateAllocations(t *testing.T) {
	w := NewWatcher(time.Second, io.Discard, func(string) (*Snapshot, error) { return &Snapshot{}, nil })
	ts := uint64(1)
	cycle := func() {
		for i := uint32(0); i < 64; i++ {
			ts++
			w.Event(&event.Event{Kind: event.FrameState, TS: ts, Sk: 1, SockIno: 9, Frame: i, Old: event.SendRequest, New: event.Sending})
			w.Event(&event.Event{Kind: event.FrameState, TS: ts, Sk: 1, SockIno: 9, Frame: i, Old: event.Sending, New: event.Available})
		}
	}
	cycle()
	if n := testing.AllocsPerRun(20, cycle); n != 0 {
		t.Fatalf("%.1f allocations per 64 frames, want 0", n)
	}
}

// TestLocateKernelAddresses: a held frame's evidence names its skb and frame
// address only when asked to; the holder is found either way.
func TestLocateKernelAddresses(t *testing.T) {
	snap, err := Decode(Encode(records()))
	if err != nil {
		t.Fatal(err)
	}
	f := Frame{Sk: senderSk, Ino: 100, Frame: 1}
	plain, full := Locate(f, snap, Where{}, 0, false), Locate(f, snap, Where{}, 0, true)
	if plain.Place != "receive-queue" || !plain.Self || plain.Summary != full.Summary {
		t.Fatalf("located %+v, with addresses %+v", plain, full)
	}
	skbAddr, frameAddr := fmt.Sprintf("%#x", uint64(block0+2048)^0xabc000), fmt.Sprintf("%#x", uint64(block0+2048))
	ev, evFull := strings.Join(plain.Evidence, "\n"), strings.Join(full.Evidence, "\n")
	if strings.Contains(ev, "0x") || !strings.Contains(ev, "skb in sk_receive_queue") || !strings.Contains(ev, "its frame address is frame #1") {
		t.Errorf("evidence without addresses:\n%s", ev)
	}
	if !strings.Contains(evFull, "skb "+skbAddr+" in") || !strings.Contains(evFull, "its frame address "+frameAddr+" is frame #1") {
		t.Errorf("evidence with addresses lacks %s or %s:\n%s", skbAddr, frameAddr, evFull)
	}
}
