package watch_test

import (
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringtrace/ringtrace/tracer/bpfobj/bpftypes"
	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/holders"
	"github.com/ringtrace/ringtrace/tracer/session"
	"github.com/ringtrace/ringtrace/tracer/watch"
)

// fakeSource is the kernel's side as a test sets it.
type fakeSource struct {
	aggs    map[session.SockKey]bpftypes.RingtraceRtSockAgg
	states  map[session.SockKey]session.SockState
	sending []session.Sending
	lost    uint64
	reads   int // StillSending calls
}

func (f *fakeSource) Aggregates() (map[session.SockKey]bpftypes.RingtraceRtSockAgg, error) {
	return f.aggs, nil
}
func (f *fakeSource) SockStates() (map[session.SockKey]session.SockState, error) {
	return f.states, nil
}
func (f *fakeSource) StillSending() ([]session.Sending, error) {
	f.reads++
	return f.sending, nil
}
func (f *fakeSource) Stats() session.Stats { return session.Stats{Lost: f.lost} }

// clock is a settable wall and monotonic clock.
type clock struct {
	wall time.Time
	mono uint64
}

func (c *clock) advance(d time.Duration) {
	c.wall = c.wall.Add(d)
	c.mono += uint64(d)
}

func newWatch(c *clock, grace time.Duration) *watch.Watch {
	return watch.New(watch.Options{Grace: grace, StuckAfter: time.Second,
		Now: func() time.Time { return c.wall }, Mono: func() uint64 { return c.mono }})
}

// scrape is a scrape d after the last: the clock moves on, then the view
// is brought up to date and copied, as the metrics collector does.
func scrape(t *testing.T, c *clock, w *watch.Watch, src watch.Source, d time.Duration) []watch.Socket {
	t.Helper()
	c.advance(d)
	if err := w.Update(src); err != nil {
		t.Fatal(err)
	}
	return w.Snapshot().Sockets
}

// enobufs is a send call's -ENOBUFS return, as the event carries it.
var enobufs = func() uint64 { v := -int64(unix.ENOBUFS); return uint64(v) }()

func TestEventsAndUpdate(t *testing.T) {
	c := &clock{wall: time.Unix(1000, 0), mono: 10e9}
	w := newWatch(c, time.Minute)
	k := session.SockKey{Sk: 0xffff1, Ino: 77}
	ev := func(e event.Event) {
		e.Sk, e.SockIno, e.Comm, e.PID = k.Sk, k.Ino, "sender", 42
		if err := w.Event(&e); err != nil {
			t.Fatal(err)
		}
	}
	ev(event.Event{Kind: event.SendmsgEnter, TS: 100, TID: 43, Scan: event.Scan{Frames: 64}})
	ev(event.Event{Kind: event.Sleep, TS: 200, TID: 43, Aux: uint8(event.WaitSndbuf), SndBuf: 4096, Wmem: 5000})
	ev(event.Event{Kind: event.Wake, TS: 700, A: [3]uint64{43, uint64(event.WaitSndbuf)}})
	ev(event.Event{Kind: event.Wake, TS: 900, TSLo: 750, A: [3]uint64{43, uint64(event.WaitCPU)}})
	ev(event.Event{Kind: event.Drop, TS: 950, Aux: 0})
	ev(event.Event{Kind: event.FrameState, TS: 960, Frame: 3, Old: event.Available, New: event.SendRequest, Cause: event.CauseRollback})
	ev(event.Event{Kind: event.SendmsgReturn, TS: 1000, TID: 43, A: [3]uint64{64000}, SndBuf: 4096, Wmem: 100,
		Scan: event.Scan{Frames: 64, SendRequest: 5}})
	ev(event.Event{Kind: event.SendmsgReturn, TS: 2000, TID: 43, A: [3]uint64{enobufs}, SndBuf: 4096})
	// softirq events name no socket
	if err := w.Event(&event.Event{Kind: event.Softirq, TS: 5}); err != nil {
		t.Fatal(err)
	}

	var hist [40]uint64
	hist[10], hist[20] = 3, 1
	src := &fakeSource{
		aggs:    map[session.SockKey]bpftypes.RingtraceRtSockAgg{k: {Sent: 70, CompletedExact: 60, CompletedBounded: 4, InflightCount: 4, InflightSum: 5000, InflightMax: 2e6, Hist: hist}},
		states:  map[session.SockKey]session.SockState{k: {PID: 42, Frames: 64, TPVersion: 3, Pending: 6, Sending: 6, Ifname: "eth0"}},
		sending: []session.Sending{{Sock: k, Frame: 1, Since: c.mono - 3e9}, {Sock: k, Frame: 2, Since: c.mono - 1e6}},
		lost:    9,
	}
	if err := w.Update(src); err != nil {
		t.Fatal(err)
	}
	snap := w.Snapshot()
	if len(snap.Sockets) != 1 || snap.Lost != 9 {
		t.Fatalf("snapshot %+v", snap)
	}
	s := snap.Sockets[0]
	checks := []struct {
		what      string
		got, want any
	}{
		{"label", s.Label, "socket:[77]"},
		{"comm", s.Comm, "sender"},
		{"pid", s.PID, uint32(42)},
		{"ifname", s.Ifname, "eth0"},
		{"version", s.TPVersion, 3},
		{"ring", s.RingFrames, uint32(64)},
		{"calls", s.Calls, uint64(2)},
		{"bytes", s.Bytes, uint64(64000)},
		{"ENOBUFS", s.Errnos["ENOBUFS"], uint64(1)},
		{"sndbuf sleep", s.Slept[event.WaitSndbuf], 500 * time.Nanosecond},
		{"cpu wait", s.Slept[event.WaitCPU], 150 * time.Nanosecond},
		{"sync drops", s.DroppedSync, uint64(1)},
		{"rolled back", s.RolledBack, uint64(1)},
		{"sent", s.Sent, uint64(70)},
		{"completed", s.Completed, uint64(64)},
		{"latency count", s.Latency.Count, uint64(4)},
		{"sndbuf", s.SndBuf, int32(4096)},
		{"in flight", s.Sending, 6},
		{"stuck", s.Stuck, 1},
		{"oldest", s.Oldest, 3 * time.Second},
		{"send request", s.SendRequest, uint32(5)},
		{"available", s.Available(), 64 - 5 - 6},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
}

// A socket that closes between two updates shows its ring's size and
// TPACKET version from its SockGone (no Update saw its state).
func TestClosedBeforeUpdate(t *testing.T) {
	c := &clock{wall: time.Unix(1000, 0), mono: 10e9}
	w := newWatch(c, time.Minute)
	k := session.SockKey{Sk: 3, Ino: 3}
	w.Event(&event.Event{Kind: event.SendmsgReturn, Sk: k.Sk, SockIno: k.Ino, Comm: "brief", PID: 5, A: [3]uint64{100}})
	w.Closed(k, bpftypes.RingtraceRtSockAgg{Sent: 1, CompletedExact: 1})
	w.Event(&event.Event{Kind: event.SockGone, Sk: k.Sk, SockIno: k.Ino, A: [3]uint64{3}, Scan: event.Scan{Frames: 16}})
	if err := w.Update(&fakeSource{}); err != nil {
		t.Fatal(err)
	}
	snap := w.Snapshot()
	if len(snap.Sockets) != 1 {
		t.Fatalf("snapshot %+v", snap)
	}
	if s := snap.Sockets[0]; s.TPVersion != 3 || s.RingFrames != 16 || s.Gone.IsZero() {
		t.Errorf("closed socket: version %d, ring %d, gone %v; want 3, 16, gone", s.TPVersion, s.RingFrames, s.Gone)
	}
}

// A closed socket keeps its final counts for the grace period, then
// leaves; nothing is read from the kernel for frames when none is in
// flight.
func TestGracePeriod(t *testing.T) {
	c := &clock{wall: time.Unix(1000, 0), mono: 10e9}
	w := newWatch(c, 5*time.Minute)
	a, b := session.SockKey{Sk: 1, Ino: 1}, session.SockKey{Sk: 2, Ino: 2}
	src := &fakeSource{
		aggs:   map[session.SockKey]bpftypes.RingtraceRtSockAgg{a: {Sent: 5}, b: {Sent: 7}},
		states: map[session.SockKey]session.SockState{a: {Frames: 8}, b: {Frames: 8}},
	}
	if err := w.Update(src); err != nil {
		t.Fatal(err)
	}
	// a closes: its final counts come through Closed, then its SockGone.
	w.Closed(a, bpftypes.RingtraceRtSockAgg{Sent: 6, CompletedExact: 6})
	w.Event(&event.Event{Kind: event.SockGone, Sk: a.Sk, SockIno: a.Ino})
	delete(src.aggs, a)
	delete(src.states, a)
	// b closes with its SockGone lost: it is gone once the kernel no
	// longer lists it.
	delete(src.states, b)
	c.advance(time.Minute)
	if err := w.Update(src); err != nil {
		t.Fatal(err)
	}
	snap := w.Snapshot()
	if len(snap.Sockets) != 2 || snap.Sockets[0].Sent != 6 || snap.Sockets[0].Gone.IsZero() || snap.Sockets[1].Gone.IsZero() {
		t.Fatalf("within the grace period: %+v", snap.Sockets)
	}
	if n := len(scrape(t, c, w, src, 4*time.Minute)); n != 1 {
		t.Errorf("%d sockets 5 minutes after a closed, want 1 (b's SockGone was lost)", n)
	}
	if n := len(scrape(t, c, w, src, 5*time.Minute)); n != 1 {
		t.Errorf("%d sockets 9 minutes after b closed, want 1 (b stays twice the grace period)", n)
	}
	if n := len(scrape(t, c, w, src, time.Minute)); n != 0 {
		t.Errorf("%d sockets after both grace periods, want 0", n)
	}
	if src.reads != 0 {
		t.Errorf("frames read %d times with none in flight", src.reads)
	}
}

// TestGraceFromSockGone: on a loaded machine the pipeline can release a
// socket's last events seconds after the kernel stopped listing it. Its
// series stay until the grace period after its SockGone event: dropped
// sooner, the late events would bring it back with partial counts.
func TestGraceFromSockGone(t *testing.T) {
	c := &clock{wall: time.Unix(1000, 0), mono: 10e9}
	w := newWatch(c, 3*time.Second)
	a := session.SockKey{Sk: 1, Ino: 1}
	src := &fakeSource{states: map[session.SockKey]session.SockState{a: {Frames: 8}}}
	if err := w.Update(src); err != nil {
		t.Fatal(err)
	}
	delete(src.states, a) // closed in the kernel
	w.Update(src)
	c.advance(4 * time.Second) // the pipeline lags
	w.Update(src)
	if n := len(w.Snapshot().Sockets); n != 1 {
		t.Fatalf("%d sockets past the grace period from the close, its last events not in: want 1", n)
	}
	w.Event(&event.Event{Kind: event.SendmsgReturn, Sk: a.Sk, SockIno: a.Ino, A: [3]uint64{1500}})
	w.Event(&event.Event{Kind: event.SockGone, Sk: a.Sk, SockIno: a.Ino})
	c.advance(2 * time.Second)
	w.Update(src)
	snap := w.Snapshot()
	if len(snap.Sockets) != 1 || snap.Sockets[0].Calls != 1 || snap.Sockets[0].Bytes != 1500 {
		t.Fatalf("within the grace period from its SockGone: %+v, want its one late call counted", snap.Sockets)
	}
	if n := len(scrape(t, c, w, src, time.Second)); n != 0 {
		t.Errorf("%d sockets the grace period after its SockGone, want 0", n)
	}
}

func TestRatesOf(t *testing.T) {
	prev := &watch.Socket{Sent: 100, Bytes: 1000}
	cur := &watch.Socket{Sent: 1100, Bytes: 1000 + 125e6}
	// this interval: 98 frames in [512, 1024) ns, 2 in [1 ms, 2 ms)
	cur.Latency.Buckets[9] = 98
	cur.Latency.Buckets[20] = 2
	prev.Latency.Buckets[20] = 0
	r := watch.RatesOf(prev, cur, 2*time.Second)
	if r.FramesPerSec != 500 || r.BitsPerSec != 500e6 {
		t.Errorf("rates %+v", r)
	}
	if r.P50 != 1024*time.Nanosecond || r.P99 != 1<<21*time.Nanosecond || r.Max != 1<<21*time.Nanosecond || r.Completed != 100 {
		t.Errorf("latency %+v", r)
	}
	if r := watch.RatesOf(cur, cur, time.Second); r.FramesPerSec != 0 || r.P99 != 0 {
		t.Errorf("nothing happened: %+v", r)
	}
}

// The frames map is read to find stuck frames only when a socket with
// frames in flight completed none since the last Update, or every tenth
// Update: a busy sender is not made to pay for the read every second.
func TestFramesReadOnlyWhenDue(t *testing.T) {
	c := &clock{wall: time.Unix(1000, 0), mono: 10e9}
	w := newWatch(c, time.Minute)
	k := session.SockKey{Sk: 1, Ino: 1}
	src := &fakeSource{
		aggs:    map[session.SockKey]bpftypes.RingtraceRtSockAgg{k: {Sent: 10}},
		states:  map[session.SockKey]session.SockState{k: {Frames: 8, Pending: 2}},
		sending: []session.Sending{{Sock: k, Frame: 0, Since: c.mono - 2e9}},
	}
	w.Update(src) // first sight: read
	if src.reads != 1 || w.Snapshot().Sockets[0].Stuck != 1 {
		t.Fatalf("first update: %d reads, %+v", src.reads, w.Snapshot().Sockets)
	}
	for i := 2; i <= 20; i++ {
		a := src.aggs[k]
		a.CompletedExact++ // progress every time
		src.aggs[k] = a
		w.Update(src)
	}
	if src.reads != 1+2 { // the 10th and 20th updates
		t.Errorf("%d frame reads in 20 updates with progress, want 3", src.reads)
	}
	w.Update(src) // no progress
	if src.reads != 4 {
		t.Errorf("no read after an update without progress (%d reads)", src.reads)
	}
	src.states[k] = session.SockState{Frames: 8}
	w.Update(src)
	if src.reads != 4 || w.Snapshot().Sockets[0].Stuck != 0 {
		t.Errorf("nothing in flight: %d reads, stuck %d", src.reads, w.Snapshot().Sockets[0].Stuck)
	}
}

// A frame stuck in a receive queue is named by the latest walk, which
// runs in the background: the refresh that starts it is not held up.
func TestHolderFromBackgroundWalk(t *testing.T) {
	c := &clock{wall: time.Unix(1000, 0), mono: 10e9}
	k := session.SockKey{Sk: 0xa0, Ino: 5}
	release := make(chan struct{})
	w := watch.New(watch.Options{StuckAfter: time.Second, Now: func() time.Time { return c.wall }, Mono: func() uint64 { return c.mono },
		Holders: func(string) (*holders.Snapshot, error) {
			<-release
			return &holders.Snapshot{
				Held:   []holders.Held{{Sender: k.Sk, SenderIno: k.Ino, Frame: 3, Holder: k.Sk, HolderIno: k.Ino}},
				Queues: []holders.Queue{{Sk: k.Sk, Ino: k.Ino, Family: 17, Owners: []holders.Owner{{PID: 42, Comm: "sender"}}}},
			}, nil
		}})
	src := &fakeSource{
		aggs:    map[session.SockKey]bpftypes.RingtraceRtSockAgg{k: {Sent: 4}},
		states:  map[session.SockKey]session.SockState{k: {Frames: 8, Pending: 1}},
		sending: []session.Sending{{Sock: k, Frame: 3, Since: c.mono - 5e9}},
	}
	done := make(chan struct{})
	go func() { w.Update(src); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Update waited for the walk")
	}
	if s := w.Snapshot().Sockets[0]; s.Stuck != 1 || s.Holder != "" {
		t.Fatalf("before the walk ends: stuck %d, holder %q", s.Stuck, s.Holder)
	}
	close(release)
	var holder string
	for i := 0; i < 100 && holder == ""; i++ {
		time.Sleep(10 * time.Millisecond)
		w.Update(src)
		holder = w.Snapshot().Sockets[0].Holder
	}
	if want := "its own rx queue: packet socket inode 5"; !strings.HasPrefix(holder, want) {
		t.Errorf("holder %q, want it to start with %q", holder, want)
	}
}

// TestFinalCountsShownOnce: a scrape that comes later than the grace period
// after a socket's SockGone (a stalled machine, a scrape interval longer than
// the grace) still gets its final counts once; the next one does not.
func TestFinalCountsShownOnce(t *testing.T) {
	c := &clock{wall: time.Unix(1000, 0), mono: 10e9}
	w := newWatch(c, 3*time.Second)
	a, b := session.SockKey{Sk: 1, Ino: 1}, session.SockKey{Sk: 2, Ino: 2}
	src := &fakeSource{
		aggs:   map[session.SockKey]bpftypes.RingtraceRtSockAgg{a: {Sent: 5}, b: {Sent: 1}},
		states: map[session.SockKey]session.SockState{a: {Frames: 8}, b: {Frames: 8}},
	}
	w.Update(src)
	w.Snapshot()
	// a closes: final counts, SockGone. b closes with its SockGone lost.
	w.Closed(a, bpftypes.RingtraceRtSockAgg{Sent: 9, CompletedExact: 9})
	w.Event(&event.Event{Kind: event.SockGone, Sk: a.Sk, SockIno: a.Ino})
	delete(src.aggs, a)
	delete(src.states, a)
	delete(src.states, b)
	socks := scrape(t, c, w, src, 10*time.Second) // none meanwhile
	if len(socks) != 2 || socks[0].Sent != 9 || socks[0].Gone.IsZero() {
		t.Fatalf("first scrape past the grace period: %+v, want both, a with its final 9 frames", socks)
	}
	if socks := scrape(t, c, w, src, time.Second); len(socks) != 1 || socks[0].Key != b {
		t.Fatalf("next scrape: %+v, want only b (its SockGone lost: twice the grace period, from when the kernel stopped listing it)", socks)
	}
	// b: gone since the Update that no longer found it (t+10 s).
	if n := len(scrape(t, c, w, src, 4*time.Second)); n != 1 {
		t.Errorf("%d sockets 5 s after b was found closed, want 1", n)
	}
	if n := len(scrape(t, c, w, src, time.Second)); n != 0 {
		t.Errorf("%d sockets, want 0: b was shown closed, twice the grace period ago", n)
	}
}

// TestNoViewFromClosedAggregates: aggregates the kernel still holds for a
// socket it no longer lists (its SockGone lost, its view already gone) do
// not bring back a view with no comm, pid or device that nothing ends.
func TestNoViewFromClosedAggregates(t *testing.T) {
	c := &clock{wall: time.Unix(1000, 0), mono: 10e9}
	w := newWatch(c, 3*time.Second)
	a := session.SockKey{Sk: 1, Ino: 1}
	src := &fakeSource{aggs: map[session.SockKey]bpftypes.RingtraceRtSockAgg{a: {Sent: 5}}}
	for range 3 {
		if socks := scrape(t, c, w, src, 10*time.Second); len(socks) != 0 {
			t.Fatalf("%+v, want no view of a socket the kernel does not list", socks)
		}
	}
}
