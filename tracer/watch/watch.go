// Package watch owns the always-on view of TX-ring sockets that `ringtrace
// top` and the Prometheus endpoint show. An aggregating trace feeds it its
// events (send calls, sleeps, drops, the rare frame transitions) as a
// session sink; Update reads, from the kernel, the per-socket frame
// aggregates and what each socket holds now. Snapshot copies the result:
// per socket, counters that only grow and gauges of now. A socket that
// closes stays for a grace period, then leaves, so the view stays bounded
// under socket churn.
package watch

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringtrace/ringtrace/tracer/bpfobj/bpftypes"
	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/holders"
	"github.com/ringtrace/ringtrace/tracer/session"
)

// DefaultGrace is how long a closed socket stays: longer than any sane
// scrape interval, so its last counts are scraped.
const DefaultGrace = 5 * time.Minute

// Source is what Update reads from the kernel (a *session.Session).
type Source interface {
	Aggregates() (map[session.SockKey]bpftypes.RingtraceRtSockAgg, error)
	SockStates() (map[session.SockKey]session.SockState, error)
	StillSending() ([]session.Sending, error)
	Stats() session.Stats
}

// Options configure a Watch.
type Options struct {
	// Grace is how long a closed socket stays (0: DefaultGrace).
	Grace time.Duration
	// StuckAfter: a frame SENDING longer than this is stuck (0: 1 s).
	StuckAfter time.Duration
	// Now is the wall clock (nil: time.Now) and Mono CLOCK_MONOTONIC in
	// ns, the kernel's event clock (nil: event.MonotonicNow): tests set them.
	Now  func() time.Time
	Mono func() uint64
	// Holders, if set, walks the kernel's sockets for who holds ring
	// skbs (live.Trace.Holders): Update calls it when a frame is stuck.
	Holders func(why string) (*holders.Snapshot, error)
}

// Latency is a histogram of completion latency (SENDING -> AVAILABLE):
// Buckets[b] counts latencies in [2^b, 2^(b+1)) ns.
type Latency struct {
	Buckets [len(bpftypes.RingtraceRtSockAgg{}.Hist)]uint64
	Count   uint64
	SumNS   uint64
	MaxNS   uint64
}

// Socket is one TX-ring socket's view.
type Socket struct {
	Key   session.SockKey
	Label string // "socket:[INODE]", as /proc/PID/fd shows it
	Comm  string
	PID   uint32
	// Ifname is the device its frames were last seen on.
	Ifname     string
	TPVersion  int    // 1, 2, 3 (0: not known yet)
	RingFrames uint32 // ring size (0: not known yet)

	// Counters, since the trace started.
	Calls       uint64
	Bytes       uint64            // frame bytes the calls returned as sent
	Errnos      map[string]uint64 // failed calls by errno name ("ENOBUFS")
	Slept       [event.WaitCPU + 1]time.Duration
	DroppedSync uint64 // dropped inside sendto, rolled back and sent again
	DroppedLate uint64 // dropped after sendto queued them
	RolledBack  uint64 // frames tpacket_snd wrote back to SEND_REQUEST
	WrongFormat uint64
	Sent        uint64 // frames that reached SENDING
	Completed   uint64 // frames that reached AVAILABLE again
	Latency     Latency

	// Gauges, as of the last Update (or the last send call's return).
	SndBuf, Wmem int32
	SendRequest  uint32 // frames SEND_REQUEST at the last call's return
	Sending      int    // frames in flight now
	Stuck        int    // of them, SENDING longer than StuckAfter
	Oldest       time.Duration
	// Holder says who holds its stuck frames, when a walk found them in a
	// receive queue ("" otherwise).
	Holder string
	Gone   time.Time // when it closed (zero while open)
}

// Available is the ring's frames neither SEND_REQUEST nor SENDING.
func (s *Socket) Available() int {
	return max(int(s.RingFrames)-int(s.SendRequest)-s.Sending, 0)
}

// Snapshot is the view at one moment.
type Snapshot struct {
	At      time.Time
	Sockets []Socket // by inode
	Lost    uint64   // events the ring buffer dropped
}

// Watch keeps the view. Event (the trace's pipeline) and Update, Snapshot
// (any goroutine) may run concurrently.
type Watch struct {
	o     Options
	mu    sync.Mutex
	socks map[session.SockKey]*sock
	sleep map[uint32]sleeping // by thread
	lost  uint64
	// updates counts Update calls (framesDue)
	updates uint64
	// held is the latest finished walk for who holds stuck frames;
	// walking while one runs (walk)
	held    *holders.Snapshot
	walking bool
}

type sock struct {
	Socket
	inKernel bool // SockStates listed it at least once
	closed   bool // its aggregates came through Closed: final
	// goneEvent: when its SockGone event came through the pipeline. Events
	// come in order, after the reorder window (later still on a loaded
	// machine): only then are its counts final, and the grace period
	// starts. Gone (the kernel no longer lists it) can be seconds earlier.
	goneEvent time.Time
	// shown: the last Snapshot taken while it was gone. It leaves only
	// once a Snapshot has shown its final counts: a scrape (or a refresh)
	// that comes later than the grace period still gets them once.
	shown time.Time
}

type sleeping struct {
	key    session.SockKey
	start  uint64
	reason event.Wait
}

// New returns an empty Watch.
func New(o Options) *Watch {
	if o.Grace <= 0 {
		o.Grace = DefaultGrace
	}
	if o.StuckAfter <= 0 {
		o.StuckAfter = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Mono == nil {
		o.Mono = event.MonotonicNow
	}
	return &Watch{o: o, socks: map[session.SockKey]*sock{}, sleep: map[uint32]sleeping{}}
}

// sock finds or starts a socket's view; the caller holds mu.
func (w *Watch) sock(k session.SockKey) *sock {
	s := w.socks[k]
	if s == nil {
		s = &sock{Socket: Socket{Key: k, Label: fmt.Sprintf("socket:[%d]", k.Ino), Errnos: map[string]uint64{}}}
		w.socks[k] = s
	}
	return s
}

// Event takes one event of the trace (a session.Sink).
func (w *Watch) Event(e *event.Event) error {
	if e.Kind.PerCPU() || e.Sk == 0 {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	k := session.SockKey{Sk: e.Sk, Ino: e.SockIno}
	if e.Kind == event.SockGone {
		if s := w.socks[k]; s != nil {
			s.goneEvent = w.o.Now()
			if s.Gone.IsZero() {
				s.Gone = s.goneEvent
			}
			// A socket closed before any Update read its state.
			if s.TPVersion == 0 {
				s.TPVersion = e.TPVersion()
			}
			if s.RingFrames == 0 {
				s.RingFrames = e.Scan.Frames
			}
		}
		return nil
	}
	s := w.sock(k)
	if e.Comm != "" && (s.Comm == "" || e.Kind == event.SendmsgEnter) {
		s.Comm, s.PID = e.Comm, e.PID
	}
	if e.Dev != "" {
		s.Ifname = e.Dev
	}
	switch e.Kind {
	case event.SendmsgEnter:
		if e.Scan.Frames > 0 {
			s.RingFrames = e.Scan.Frames
		}
	case event.SendmsgReturn:
		s.Calls++
		switch ret := e.Ret(); {
		case ret > 0:
			s.Bytes += uint64(ret)
		case ret < 0:
			s.Errnos[errnoName(-ret)]++
		}
		s.SndBuf, s.Wmem = e.SndBuf, e.Wmem
		if e.Scan.Frames > 0 {
			s.RingFrames, s.SendRequest = e.Scan.Frames, e.Scan.SendRequest
		}
	case event.Sleep:
		w.sleep[e.TID] = sleeping{key: k, start: e.TS, reason: event.Wait(e.Aux)}
		s.SndBuf, s.Wmem = e.SndBuf, e.Wmem
	case event.Wake:
		tid := uint32(e.A[0])
		if event.Wait(e.A[1]) == event.WaitCPU { // a whole run-queue wait, ending now
			if e.TSLo != 0 && e.TSLo <= e.TS {
				s.Slept[event.WaitCPU] += time.Duration(e.TS - e.TSLo)
			}
			return nil
		}
		if sl, ok := w.sleep[tid]; ok {
			delete(w.sleep, tid)
			if d := w.socks[sl.key]; d != nil && e.TS >= sl.start && int(sl.reason) < len(d.Slept) {
				d.Slept[sl.reason] += time.Duration(e.TS - sl.start)
			}
		}
	case event.Drop:
		if e.Aux == 0 {
			s.DroppedSync++
		} else {
			s.DroppedLate++
		}
	case event.FrameState:
		switch {
		case e.New == event.SendRequest && e.Cause == event.CauseRollback:
			s.RolledBack++
		case e.New == event.WrongFormat:
			s.WrongFormat++
		}
	}
	return nil
}

// Flush does nothing (a session.Sink).
func (w *Watch) Flush() error { return nil }

// Closed takes a closed socket's final kernel aggregates (a
// session.ClosedSink); its SockGone event follows.
func (w *Watch) Closed(k session.SockKey, a bpftypes.RingtraceRtSockAgg) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.sock(k)
	s.setAgg(a)
	s.closed = true
	s.Sending, s.Stuck, s.Oldest = 0, 0, 0
	return nil
}

func (s *sock) setAgg(a bpftypes.RingtraceRtSockAgg) {
	s.Sent, s.Completed = a.Sent, a.CompletedExact+a.CompletedBounded
	s.Latency = Latency{Buckets: a.Hist, Count: a.InflightCount, SumNS: a.InflightSum, MaxNS: a.InflightMax}
}

// Update reads the kernel's side: the per-socket aggregates, each open
// socket's state, the frames in flight (for stuck ones) and the losses;
// then drops sockets closed longer than the grace period ago.
func (w *Watch) Update(src Source) error {
	aggs, err := src.Aggregates()
	if err != nil {
		return err
	}
	states, err := src.SockStates()
	if err != nil {
		return err
	}
	var sending []session.Sending
	readFrames := w.framesDue(aggs, states)
	if readFrames {
		if sending, err = src.StillSending(); err != nil {
			return err
		}
	}
	lost := src.Stats().Lost
	now, mono := w.o.Now(), w.o.Mono()
	if w.o.Holders != nil && anyStuck(sending, mono, w.o.StuckAfter) {
		w.walk()
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	held := w.held
	w.lost = lost
	for k, a := range aggs {
		s := w.socks[k]
		if s == nil {
			// Not seen yet and already closed in the kernel (it closed
			// between the two reads, or it left the view and its
			// SockGone was lost): a view started now would have no
			// comm, pid or device, and nothing would ever end it.
			if _, open := states[k]; !open {
				continue
			}
			s = w.sock(k)
		}
		if !s.closed {
			s.setAgg(a)
		}
	}
	for k, st := range states {
		s := w.sock(k)
		s.inKernel = true
		if s.PID == 0 {
			s.PID = st.PID
		}
		if st.Frames > 0 {
			s.RingFrames = st.Frames
		}
		if st.TPVersion > 0 {
			s.TPVersion = st.TPVersion
		}
		if st.Ifname != "" {
			s.Ifname = st.Ifname
		}
		s.Sending = int(max(st.Pending, 0))
		if readFrames || s.Sending == 0 {
			s.Stuck, s.Oldest, s.Holder = 0, 0, ""
		}
	}
	for _, f := range sending {
		s := w.socks[f.Sock]
		if s == nil || f.Since == 0 || f.Since > mono {
			continue
		}
		age := time.Duration(mono - f.Since)
		s.Oldest = max(s.Oldest, age)
		if age >= w.o.StuckAfter {
			s.Stuck++
			if held != nil && s.Holder == "" {
				s.Holder = holderOf(held, f)
			}
		}
	}
	for k, s := range w.socks {
		if _, open := states[k]; !open && s.inKernel && s.Gone.IsZero() {
			s.Gone = now // closed, and its SockGone event not (yet) seen
		}
		if !s.Gone.IsZero() {
			s.Sending, s.Stuck, s.Oldest = 0, 0, 0
			// The grace period runs from its SockGone event: a series
			// dropped before its last events arrive would come back
			// with partial counts. One whose SockGone was lost goes
			// after twice the grace period. Either way a Snapshot must
			// have shown it since (its final counts).
			from, wait := s.goneEvent, w.o.Grace
			if from.IsZero() {
				from, wait = s.Gone, 2*w.o.Grace
			}
			if now.Sub(from) >= wait && !s.shown.Before(from) {
				delete(w.socks, k)
			}
		}
	}
	for tid, sl := range w.sleep {
		if w.socks[sl.key] == nil {
			delete(w.sleep, tid)
		}
	}
	return nil
}

// Snapshot copies the view.
func (w *Watch) Snapshot() Snapshot {
	w.mu.Lock()
	defer w.mu.Unlock()
	snap := Snapshot{At: w.o.Now(), Lost: w.lost, Sockets: make([]Socket, 0, len(w.socks))}
	for _, s := range w.socks {
		if !s.Gone.IsZero() {
			s.shown = snap.At
		}
		c := s.Socket
		c.Errnos = make(map[string]uint64, len(s.Errnos))
		for n, v := range s.Errnos {
			c.Errnos[n] = v
		}
		snap.Sockets = append(snap.Sockets, c)
	}
	slices.SortFunc(snap.Sockets, func(a, b Socket) int {
		return cmp.Or(cmp.Compare(a.Key.Ino, b.Key.Ino), cmp.Compare(a.Key.Sk, b.Key.Sk))
	})
	return snap
}

// framesEvery: while every socket with frames in flight completes some,
// the frames are read on every framesEvery-th Update only.
const framesEvery = 10

// framesDue decides whether this Update reads the frames in flight (to
// find stuck ones): not when none is in flight; when a socket with frames
// in flight completed none since the last Update (that is how a stuck
// ring looks); else every framesEvery-th time. Reading them iterates the
// kernel's frames map, and while that map syscall runs the kernel runs no
// kprobe program on its CPU: a busy sender is not made to pay for it every
// second.
func (w *Watch) framesDue(aggs map[session.SockKey]bpftypes.RingtraceRtSockAgg, states map[session.SockKey]session.SockState) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.updates++
	inFlight := false
	for k, st := range states {
		if st.Pending <= 0 && st.Sending <= 0 {
			continue
		}
		inFlight = true
		a := aggs[k]
		if s := w.socks[k]; s == nil || !s.inKernel || a.CompletedExact+a.CompletedBounded == s.Completed {
			return true
		}
	}
	return inFlight && w.updates%framesEvery == 0
}

// walk starts a walk for who holds stuck frames, unless one is running:
// in the background, so a slow walk (a large machine, an emulated CPU)
// never holds up a refresh; Update names holders from the latest finished
// one. A failed walk names none.
func (w *Watch) walk() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.walking {
		return
	}
	w.walking = true
	go func() {
		s, err := w.o.Holders("stuck")
		w.mu.Lock()
		defer w.mu.Unlock()
		w.walking = false
		if err == nil {
			w.held = s
		}
	}()
}

// anyStuck reports whether a frame has been SENDING for at least after.
func anyStuck(sending []session.Sending, mono uint64, after time.Duration) bool {
	for _, f := range sending {
		if f.Since != 0 && f.Since <= mono && time.Duration(mono-f.Since) >= after {
			return true
		}
	}
	return false
}

// holderOf names the socket whose receive queue holds frame f's skb.
func holderOf(s *holders.Snapshot, f session.Sending) string {
	h := s.Find(holders.Frame{Sk: f.Sock.Sk, Ino: f.Sock.Ino, Frame: f.Frame})
	if h == nil {
		return ""
	}
	fam, owners := "socket", ""
	if q := s.Queue(h.Holder); q != nil {
		fam, owners = holders.FamilyName(q.Family)+" socket", holders.OwnersString(q.Owners)
	}
	who := "rx queue of "
	if h.Holder == h.Sender {
		who = "its own rx queue: "
	}
	return fmt.Sprintf("%s%s inode %d (%s)", who, fam, h.HolderIno, owners)
}

// errnoName is "ENOBUFS" for unix.ENOBUFS, "errno 999" for an unknown one.
func errnoName(n int64) string {
	if s := unix.ErrnoName(unix.Errno(n)); s != "" {
		return s
	}
	return fmt.Sprintf("errno %d", n)
}
