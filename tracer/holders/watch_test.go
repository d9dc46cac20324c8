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

// wantLines fails t for each of wants that text does not contain.
func wantLines(t *testing.T, text string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(text, want) {
			t.Errorf("missing %q in:\n%s", want, text)
		}
	}
}

func frameEv(ts uint64, frame uint32, st event.State) *event.Event {
	return &event.Event{Kind: event.FrameState, TS: ts, Sk: senderSk, SockIno: 100, Frame: frame, New: st, TID: 42, PID: 42}
}

// TestWatcher: frames SENDING past After are reported once, with the holder
// from a walk and the self-deadlock; completed frames are not; Final
// reports what is left.
func TestWatcher(t *testing.T) {
	snap, err := Decode(Encode(records()...))
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
	wantLines(t, text,
		"ringtrace: STUCK sk1: 2 frames SENDING for more than 1s (#1-#2): in the receive queue of its own sender's packet socket inode 100",
		"ringtrace: STUCK sk1: 1 frames SENDING for more than 1s (#3): in the receive queue of packet socket inode 200 (pid 50 (tap) fd 7, pid 51 (tap) fd 4)",
		"ringtrace: sk1 self-deadlock: the sender's own receive queue holds 2 of its ring frames",
		"thread 42 (sender) is blocked in sendto (0 (blocking))",
		"remedy: bind the sending socket with protocol 0",
	)
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
	wantLines(t, text, "(#5): in qdisc 8001:0 on eth0 (qlen 3, backlog 4500 B at its enqueue)", "failed: no BPF iterators")
}

func TestLocateDevice(t *testing.T) {
	var w Where
	w.Update(&event.Event{Kind: event.QdiscEnqueue, Dev: "eth0", A: [3]uint64{0x10000}})
	w.Update(&event.Event{Kind: event.QdiscDequeue, Dev: "eth0", A: [3]uint64{0x10000}})
	w.Update(&event.Event{Kind: event.XmitStart, Dev: "eth0", TS: 7})
	l := Locate(Frame{Sk: 1, Frame: 2}, &Snapshot{Why: "end"}, w, nil, 0, false)
	if l.Place != "device" || !strings.Contains(l.Summary, "handed to device eth0") || !strings.Contains(strings.Join(l.Evidence, "|"), "no socket receive queue holds its skb") {
		t.Errorf("Locate: %+v", l)
	}
	if l := Locate(Frame{Sk: 1}, nil, Where{}, nil, 0, false); l.Place != "unknown" {
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

// TestWatcherReleasedWhileWalking: frames SENDING past After whose
// completions the events deliver while the stuck walk runs are not called
// stuck: the walk found them nowhere because they had just been freed. A
// frame that completed just before the walk (its event came during it) is
// worded so; one still SENDING is reported STUCK as before.
func TestWatcherReleasedWhileWalking(t *testing.T) {
	const t0 = 1_000_000_000
	var out bytes.Buffer
	var w *Watcher
	const walkTS, walkDone = t0 + 1e9 + 100, t0 + 1e9 + 5e6
	w = NewWatcher(time.Second, &out, func(why string) (*Snapshot, error) {
		// The completions reach the watcher as it walks: #0-#2 freed
		// during the walk, #4 just before it began.
		for f := uint32(0); f < 3; f++ {
			w.Event(frameEv(walkTS+1e6*uint64(f+1), f, event.Available))
		}
		w.Event(frameEv(walkTS-50e3, 4, event.Available))
		return &Snapshot{TS: walkTS, Done: walkDone, Why: why}, nil
	})
	for f := uint32(0); f < 5; f++ {
		w.Event(frameEv(t0, f, event.Sending))
	}
	w.Event(&event.Event{Kind: event.RX, TS: t0 + 10e3, Sk: senderSk, SockIno: 100, Frame: 0, Dev: "lo"})
	w.Event(&event.Event{Kind: event.QdiscEnqueue, TS: t0 + 20, Sk: senderSk, SockIno: 100, Frame: 3, Dev: "eth0", A: [3]uint64{0x80010000, 3 | 4500<<32}})
	w.Check(t0 + 1e9)
	text := out.String()
	wantLines(t, text,
		"ringtrace: sk1: 3 frames SENDING for more than 1s (#0-#2), then released from 1.001000 s to 1.003000 s: completed while the kernel's sockets were being walked\n",
		"kernel state from 1.000000 s to 1.005000 s (stuck walk of every task's sockets): no socket receive queue holds its skb",
		"the events saw frame #0 released (AVAILABLE) at 1.001000 s, by the end of that walk",
		"before that the events saw it received on lo at 0.000010 s",
		"ringtrace: sk1: 1 frames SENDING for more than 1s (#4), then released at 0.999950 s: completed before the kernel's sockets were walked\n",
		"ringtrace: STUCK sk1: 1 frames SENDING for more than 1s (#3): in qdisc 8001:0 on eth0",
	)
	if strings.Contains(text, "unknown") || strings.Count(text, "STUCK") != 1 {
		t.Errorf("a released frame called stuck or unknown:\n%s", text)
	}
	if len(w.walking) != 0 {
		t.Errorf("walk bookkeeping left: %v", w.walking)
	}
	if s := w.Snapshots(); len(s) != 1 {
		t.Errorf("snapshots %+v", s)
	}
}

// TestWatcherSettle: a walk that leaves a frame unplaced waits Settle for
// its completion, which the session delivers a little after the walk.
func TestWatcherSettle(t *testing.T) {
	for _, settle := range []time.Duration{0, 300 * time.Millisecond} {
		var out bytes.Buffer
		var w *Watcher
		delivered := make(chan struct{})
		w = NewWatcher(time.Millisecond, &out, func(why string) (*Snapshot, error) {
			now := event.MonotonicNow()
			go func() { // freed as the walk ran, delivered 20 ms later
				defer close(delivered)
				time.Sleep(20 * time.Millisecond)
				w.Event(frameEv(now, 7, event.Available))
			}()
			return &Snapshot{TS: now - 1000, Done: now, Why: why}, nil
		})
		w.Settle = settle
		now := event.MonotonicNow()
		w.Event(frameEv(now-2e6, 7, event.Sending))
		w.Check(now)
		<-delivered
		text := out.String()
		released := strings.Contains(text, "then released at") && strings.Contains(text, "completed while the kernel's sockets were being walked")
		if settle > 0 && (!released || strings.Contains(text, "STUCK")) {
			t.Errorf("Settle %v: the completion delivered after the walk was not waited for:\n%s", settle, text)
		}
		if settle == 0 && (released || !strings.Contains(text, "STUCK sk1: 1 frames SENDING for more than 1ms (#7): unknown")) {
			t.Errorf("Settle 0: want the frame reported before its completion came:\n%s", text)
		}
	}
}

// TestLocateKernelAddresses: a held frame's evidence names its skb and frame
// address only when asked to; the holder is found either way.
func TestLocateKernelAddresses(t *testing.T) {
	snap, err := Decode(Encode(records()...))
	if err != nil {
		t.Fatal(err)
	}
	f := Frame{Sk: senderSk, Ino: 100, Frame: 1}
	plain, full := Locate(f, snap, Where{}, nil, 0, false), Locate(f, snap, Where{}, nil, 0, true)
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

// TestWatcherForgetsClosedSockets: a long trace of short-lived sockets
// keeps no per-socket state for the closed ones beyond a bounded few, and
// a late completion of a closed socket tracks nothing.
func TestWatcherForgetsClosedSockets(t *testing.T) {
	w := NewWatcher(time.Second, io.Discard, func(string) (*Snapshot, error) { return nil, errors.New("no walks") })
	const n = 10 * event.DefaultRecent
	ts := uint64(1e9)
	for i := 1; i <= n; i++ {
		sk, ino := uint64(0xffff0000+i%64), uint32(i)
		ev := func(e event.Event) {
			ts += 1000
			e.TS, e.Sk, e.SockIno, e.TID, e.PID, e.Comm = ts, sk, ino, 7, 7, "churn"
			w.Event(&e)
		}
		ev(event.Event{Kind: event.SendmsgEnter, Frame: NoFrame})
		ev(event.Event{Kind: event.FrameState, Frame: 0, New: event.Sending})
		ev(event.Event{Kind: event.SendmsgReturn, Frame: NoFrame})
		ev(event.Event{Kind: event.SockGone, Frame: NoFrame})
		ev(event.Event{Kind: event.FrameState, Frame: 1, New: event.Sending}) // late, after the close
	}
	if len(w.labels) != 0 || len(w.calls) != 0 || len(w.lastRet) != 0 || len(w.frames) != 0 || w.gone.Len() > 2*event.DefaultRecent {
		t.Errorf("after %d closed sockets: %d labels, %d call maps, %d last returns, %d frames tracked, %d remembered",
			n, len(w.labels), len(w.calls), len(w.lastRet), len(w.frames), w.gone.Len())
	}
	if w.nsock != n {
		t.Errorf("%d sockets labelled, want %d (late events of closed sockets start none)", w.nsock, n)
	}
}
