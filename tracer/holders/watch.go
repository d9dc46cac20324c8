package holders

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/tick"
)

// DefaultStuckAfter is how long a frame may stay SENDING before it is
// reported as stuck.
const DefaultStuckAfter = time.Second

// Watcher follows a live trace's frames (it is a session sink) and, when
// frames stay SENDING longer than After, walks the kernel's sockets at once
// and prints who holds them on Out. Final does the same for every frame
// still SENDING when the trace ends. A frame the events see released
// before the walk's result is read is not called stuck: the walk could not
// find what had just been freed. Safe for concurrent use: the session calls
// Event, a ticker (Start) calls Check.
type Watcher struct {
	After time.Duration
	Out   io.Writer
	// Walk takes a snapshot (a walk.Loader's Walk, or a fake in tests).
	Walk func(why string) (*Snapshot, error)
	// Settle is how long after a stuck walk its result waits for the
	// completions the events have not delivered yet (the session's Lag)
	// when the walk found some of its frames in no receive queue.
	Settle time.Duration
	// KernelAddresses names skbs and frames by their kernel addresses in
	// the evidence it prints (see Locate).
	KernelAddresses bool

	mu      sync.Mutex
	frames  map[Frame]*tracked
	calls   map[Frame]map[uint32]*inCall // per socket (Frame.Frame 0), calls in progress by tid
	lastRet map[Frame]*inCall            // per socket, the last call that returned
	labels  map[Frame]string             // per open socket
	gone    event.Recent[Frame, string]  // labels of sockets closed lately
	nsock   int                          // sockets labelled so far
	cur     map[uint64]uint32
	start   uint64
	snaps   []*Snapshot
	spare   []*tracked // entries of frames that completed, for reuse: one per frame sent otherwise
	walking map[Frame]*walked
}

// walked is a frame a walk in progress looks for, and its release if the
// events saw one meanwhile.
type walked struct {
	where Where
	rel   *Release
}

// maxSpare bounds the spare entries kept for reuse.
const maxSpare = 4096

type tracked struct {
	since    uint64
	where    Where
	reported bool
}

type inCall struct {
	tid, pid uint32
	comm     string
	enter    uint64
	flags    uint64
	ret      int64
}

// NewWatcher watches for frames SENDING longer than after.
func NewWatcher(after time.Duration, out io.Writer, walk func(string) (*Snapshot, error)) *Watcher {
	return &Watcher{After: after, Out: out, Walk: walk, frames: map[Frame]*tracked{}, calls: map[Frame]map[uint32]*inCall{},
		lastRet: map[Frame]*inCall{}, labels: map[Frame]string{}, cur: map[uint64]uint32{}}
}

// sock is the socket key of e, labelled like the report labels sockets
// (sk1, sk2, ... in order of first appearance); closed: e is a late event
// of a socket that closed.
func (w *Watcher) sock(e *event.Event) (k Frame, closed bool) {
	ino := e.SockIno
	if ino == 0 {
		ino = w.cur[e.Sk]
	} else {
		w.cur[e.Sk] = ino
	}
	k = Frame{Sk: e.Sk, Ino: ino}
	if _, ok := w.labels[k]; !ok {
		if _, closed = w.gone.Get(k); closed {
			return k, true
		}
		w.nsock++
		w.labels[k] = "sk" + strconv.Itoa(w.nsock)
	}
	return k, false
}

// label is a socket's label, also for a while after it closed.
func (w *Watcher) label(s Frame) string {
	if l, ok := w.labels[s]; ok {
		return l
	}
	l, _ := w.gone.Get(s)
	return l
}

// Event takes the next ordered event.
func (w *Watcher) Event(e *event.Event) error {
	if e.Sk == 0 {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.start == 0 {
		w.start = e.TS
	}
	s, closed := w.sock(e)
	if closed {
		return nil // its frames were released at the close
	}
	f := Frame{Sk: s.Sk, Ino: s.Ino, Frame: e.Frame}
	switch e.Kind {
	case event.SendmsgEnter:
		if w.calls[s] == nil {
			w.calls[s] = map[uint32]*inCall{}
		}
		w.calls[s][e.TID] = &inCall{tid: e.TID, pid: e.PID, comm: e.Comm, enter: e.TS, flags: e.A[0]}
	case event.SendmsgReturn:
		c := w.calls[s][e.TID]
		if c == nil {
			c = &inCall{tid: e.TID, pid: e.PID, comm: e.Comm, enter: e.A[2]}
		}
		c.ret = int64(e.A[0])
		delete(w.calls[s], e.TID)
		w.lastRet[s] = c
	case event.FrameState:
		if !e.HasFrame() {
			return nil
		}
		if e.New == event.Sending {
			if t := w.frames[f]; t == nil || t.since == 0 {
				w.frames[f] = w.newTracked(e.TS)
			}
		} else {
			w.released(f, Release{TS: e.TS, Lo: e.TSLo, To: e.New.String()})
			w.untrack(f)
		}
	case event.SockGone:
		for k := range w.frames {
			if k.Sk == s.Sk && k.Ino == s.Ino {
				w.released(k, Release{TS: e.TS})
				w.untrack(k)
			}
		}
		// Forget the socket (a long trace sees many come and go); keep
		// its label a while for a walk in progress and late events.
		w.gone.Put(s, w.labels[s])
		delete(w.labels, s)
		delete(w.calls, s)
		delete(w.lastRet, s)
	default:
		if t := w.frames[f]; t != nil && e.HasFrame() {
			t.where.Update(e)
		}
	}
	return nil
}

// released notes, for a walk in progress, that frame f left SENDING.
func (w *Watcher) released(f Frame, r Release) {
	if len(w.walking) == 0 {
		return
	}
	if wk := w.walking[f]; wk != nil && wk.rel == nil {
		if t := w.frames[f]; t != nil {
			wk.where = t.where
		}
		r := r // only a walked frame's release goes to the heap
		wk.rel = &r
	}
}

func (w *Watcher) newTracked(since uint64) *tracked {
	if n := len(w.spare); n > 0 {
		t := w.spare[n-1]
		w.spare = w.spare[:n-1]
		*t = tracked{since: since}
		return t
	}
	return &tracked{since: since}
}

func (w *Watcher) untrack(f Frame) {
	t := w.frames[f]
	if t == nil {
		return
	}
	delete(w.frames, f)
	if len(w.spare) < maxSpare {
		w.spare = append(w.spare, t)
	}
}

// Flush is part of the sink interface.
func (w *Watcher) Flush() error { return nil }

// Start checks every tick until ctx ends or stop is called.
func (w *Watcher) Start(ctx context.Context, every time.Duration) (stop func()) {
	return tick.Every(ctx, every, func() { w.Check(event.MonotonicNow()) })
}

// Check reports the frames that became stuck (SENDING for After or more
// at now) since the last check, with a fresh walk of the kernel's sockets.
func (w *Watcher) Check(now uint64) {
	w.mu.Lock()
	var due []Frame
	for f, t := range w.frames {
		if !t.reported && now >= t.since && now-t.since >= uint64(w.After) {
			t.reported = true
			due = append(due, f)
		}
	}
	w.mu.Unlock()
	if len(due) > 0 {
		w.report(due, "stuck", fmt.Sprintf("SENDING for more than %v", w.After), w.Settle)
	}
}

// Final reports every frame still SENDING at the end of the trace.
func (w *Watcher) Final() {
	w.mu.Lock()
	var left []Frame
	for f := range w.frames {
		left = append(left, f)
	}
	w.mu.Unlock()
	if len(left) > 0 {
		w.report(left, "end", "still SENDING at the end of the trace", 0) // no event comes any more
	}
}

// Snapshots are the walks taken so far, in order.
func (w *Watcher) Snapshots() []*Snapshot {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]*Snapshot(nil), w.snaps...)
}

// report walks the kernel's sockets and prints, per socket and place, where
// the frames are. A frame the events saw released before the result is read
// (after settle, when the walk left frames unplaced) is no longer stuck: it
// gets a "then released" line, not a STUCK one.
func (w *Watcher) report(frames []Frame, why, what string, settle time.Duration) {
	sort.Slice(frames, func(i, j int) bool { // a group's evidence is its lowest frame's
		a, b := frames[i], frames[j]
		if a.Sk != b.Sk {
			return a.Sk < b.Sk
		}
		if a.Ino != b.Ino {
			return a.Ino < b.Ino
		}
		return a.Frame < b.Frame
	})
	w.mu.Lock()
	if w.walking == nil {
		w.walking = map[Frame]*walked{}
	}
	for _, f := range frames {
		w.walking[f] = &walked{}
	}
	w.mu.Unlock()
	snap, err := w.Walk(why)
	if err != nil {
		snap = &Snapshot{TS: event.MonotonicNow(), Why: why, Err: err.Error()}
	}
	if settle > 0 && w.unplaced(frames, snap) {
		w.settle(snap, settle)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.snaps = append(w.snaps, snap)
	type group struct {
		sock     Frame
		loc      Location
		idx      []uint32
		released bool
		from, to uint64 // release times
	}
	groups := map[string]*group{}
	var keys []string
	for _, f := range frames {
		var where Where
		if t := w.frames[f]; t != nil {
			where = t.where
		}
		var rel *Release
		if wk := w.walking[f]; wk != nil && wk.rel != nil {
			where, rel = wk.where, wk.rel
		}
		delete(w.walking, f)
		loc := Locate(f, snap, where, rel, w.start, w.KernelAddresses)
		s := Frame{Sk: f.Sk, Ino: f.Ino}
		k := fmt.Sprintf("%s\x00%v\x00%s", w.label(s), rel != nil, loc.Summary)
		g := groups[k]
		if g == nil {
			g = &group{sock: s, loc: loc, released: rel != nil}
			if rel != nil {
				g.from, g.to = rel.TS, rel.TS
			}
			groups[k] = g
			keys = append(keys, k)
		}
		if rel != nil {
			g.from, g.to = min(g.from, rel.TS), max(g.to, rel.TS)
		}
		g.idx = append(g.idx, f.Frame)
	}
	sort.Strings(keys)
	for _, k := range keys {
		g := groups[k]
		if g.released {
			when := "at " + relTime(g.from, w.start)
			if to := relTime(g.to, w.start); to != relTime(g.from, w.start) {
				when = "from " + relTime(g.from, w.start) + " to " + to
			}
			fmt.Fprintf(w.Out, "ringtrace: %s: %d frames %s (%s), then released %s: %s\n", w.label(g.sock), len(g.idx), what, FrameList(g.idx), when, g.loc.Summary)
		} else {
			fmt.Fprintf(w.Out, "ringtrace: STUCK %s: %d frames %s (%s): %s\n", w.label(g.sock), len(g.idx), what, FrameList(g.idx), g.loc.Summary)
		}
		for _, e := range g.loc.Evidence {
			fmt.Fprintf(w.Out, "ringtrace:     - %s\n", e)
		}
		if g.loc.Self && !g.released {
			title, ev := SelfDeadlock(snap.HeldBy(g.sock.Sk, g.sock.Sk), w.senderState(g.sock, snap))
			fmt.Fprintf(w.Out, "ringtrace: %s %s\n", w.label(g.sock), title)
			for _, e := range ev {
				fmt.Fprintf(w.Out, "ringtrace:     - %s\n", e)
			}
		}
	}
}

// unplaced reports whether the walk found some of frames in no receive
// queue while the events have not seen them released yet.
func (w *Watcher) unplaced(frames []Frame, snap *Snapshot) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, f := range frames {
		if wk := w.walking[f]; (wk == nil || wk.rel == nil) && snap.Find(f) == nil {
			return true
		}
	}
	return false
}

// settle waits until settle has passed since the walk ended, so that the
// completions of frames freed as it ran reach the watcher.
func (w *Watcher) settle(snap *Snapshot, settle time.Duration) {
	end := snap.Done
	if end == 0 {
		end = event.MonotonicNow()
	}
	if deadline, now := end+uint64(settle), event.MonotonicNow(); now < deadline {
		time.Sleep(time.Duration(deadline - now))
	}
}

// senderState says what the ring socket's sender is doing: from the
// events (a call still inside the kernel, or the last one returned) and
// the threads the walk read.
func (w *Watcher) senderState(s Frame, snap *Snapshot) []string {
	var out []string
	now := event.MonotonicNow()
	for _, c := range w.calls[s] {
		out = append(out, fmt.Sprintf("thread %d (%s) is blocked in sendto (%s) since %.3f s ago",
			c.tid, c.comm, event.MsgFlags(c.flags), float64(now-c.enter)/1e9))
	}
	if r := snap.Ring(s.Sk, s.Ino); r != nil {
		for _, t := range snap.BlockedSenders(r) {
			out = append(out, fmt.Sprintf("/proc/%d/task/%d/syscall: in %s on the ring's fd %d", t.PID, t.TID, t.Syscall, t.FD))
		}
	}
	if len(out) == 0 {
		if c := w.lastRet[s]; c != nil {
			out = append(out, fmt.Sprintf("the last sendto (thread %d) returned %s: the frames it queued stay SENDING until the socket reads its queue",
				c.tid, event.ReturnString(c.ret)))
		}
	}
	return out
}
