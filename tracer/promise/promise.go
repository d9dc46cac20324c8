// Package promise watches an attach plan's promises while a trace runs. A
// plan promises, per logical event, to see it exactly or within bounds; a
// kernel that changed under the tracer (a hook that no longer fires, a ring
// skb no longer recognised) keeps producing events, only reconstructed ones.
// Watch counts, for every frame transition the plan promises to see
// exactly, the events that were exact and those that had to be
// reconstructed, and says once when reconstructions pass the threshold.
// It is pure: recordings are judged the same way as live traces.
package promise

import (
	"fmt"
	"sort"
	"strings"

	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/plan"
)

// Threshold: a promise is broken when more than this share of the events
// it covers were reconstructed.
const Threshold = 0.01

// Tally is one exact promise and what a trace saw of it.
type Tally struct {
	Event         string            `json:"event"`
	Hook          string            `json:"hook"`
	Kept          uint64            `json:"kept"` // seen as promised (exactly, or along a path promised bounded)
	Reconstructed uint64            `json:"reconstructed"`
	Causes        map[string]uint64 `json:"causes,omitempty"` // how the reconstructed ones were found
	// Hidden: reconstructed events whose window overlaps CPU time the
	// kernel runs no BPF program in (blind windows): no hook could see
	// them, so they do not count against the plan.
	Hidden uint64 `json:"hidden,omitempty"`
	// Skipped: reconstructed events, at most as many as the runs the
	// kernel skipped of the promised hook's own programs (its recursion
	// guard: a softirq that interrupts the program and reaches the same
	// hook). Counted against the plan only beyond that number.
	Skipped uint64 `json:"skipped,omitempty"`
}

// Share is the part of the events that was reconstructed where a hook could
// have seen it.
func (t Tally) Share() float64 {
	if n := t.Kept + t.Reconstructed; n > 0 {
		return float64(t.Reconstructed-min(t.Hidden+t.Skipped, t.Reconstructed)) / float64(n)
	}
	return 0
}

// Broken reports whether more than Threshold of the events were
// reconstructed.
func (t Tally) Broken() bool { return t.Share() > Threshold }

// String says it in one line.
func (t Tally) String() string {
	s := fmt.Sprintf("%s: promised exact (%s), %d of %d events reconstructed (%.1f %%", t.Event, t.Hook,
		t.Reconstructed, t.Kept+t.Reconstructed, 100*t.Share())
	if len(t.Causes) > 0 {
		s += ": " + causes(t.Causes)
	}
	if t.Hidden > 0 {
		s += fmt.Sprintf("; %d in CPU time the kernel hides from BPF, not counted", t.Hidden)
	}
	if t.Skipped > 0 {
		s += fmt.Sprintf("; %d as many as the runs the kernel skipped of the hook, not counted", t.Skipped)
	}
	return s + ")"
}

func causes(m map[string]uint64) string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	var parts []string
	for _, k := range ks {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// minWarn is how many reconstructions it takes before Watch warns live: one
// lone miss (a hook run the kernel skipped) is counted, not announced.
const minWarn = 2

// Watch is a session.Sink that tallies the plan's exact promises. Not safe
// for concurrent use (sinks are called from one goroutine).
type Watch struct {
	p    *plan.Plan
	warn func(string)
	// noBypassFlag: the events do not say which sockets bypass the qdisc
	// (recordings older than the flag), so SENDING cannot be judged.
	noBypassFlag bool
	bypass       map[uint64]bool // socket -> its last call sent with PACKET_QDISC_BYPASS
	rows         map[string]*Tally
	warned       map[string]bool
	// blind: the kernel's blind windows seen so far; open: reconstructed
	// events not (yet) inside one: a window is reported when it ends, which
	// can be after the sweep reported what happened in it.
	blind Windows
	open  []openEvent
	// missed: the kernel's skipped runs per attachment ("raw_tp kfree"),
	// as the session counts them (Skipped).
	missed map[string]uint64
	// calls: per thread seen sending, the entry time of its call in
	// progress, 0 between calls (callEnter, callReturn).
	calls map[uint32]uint64
	// lostCalls: send call events the ring buffer lost (Lost).
	lostCalls uint64
}

// window is a span of time, in event timestamps.
type window struct{ lo, hi uint64 }

func (w window) overlaps(o window) bool { return w.lo <= o.hi && o.lo <= w.hi }

// Windows keeps the latest windows of CPU time the kernel ran no BPF
// program in (event.Blind), to tell which events could not have been seen.
type Windows struct{ w []window }

// Add records the window [lo, hi].
func (ws *Windows) Add(lo, hi uint64) { ws.w = keepLast(append(ws.w, window{lo, hi})) }

// Overlap reports whether a window overlaps [lo, hi].
func (ws *Windows) Overlap(lo, hi uint64) bool {
	for i := len(ws.w) - 1; i >= 0; i-- {
		if ws.w[i].overlaps(window{lo, hi}) {
			return true
		}
	}
	return false
}

// Len is how many windows are kept.
func (ws *Windows) Len() int { return len(ws.w) }

// openEvent is a reconstructed event no blind window explains so far.
type openEvent struct {
	w     window
	tally string
}

// maxThreads bounds the threads whose calls Watch pairs up: beyond it, it
// forgets them all (a day of thread churn must not grow it without end).
const maxThreads = 1 << 16

// maxWindows bounds what Windows keeps, and Watch of open reconstructed
// events: the oldest go first (a long trace keeps judging
// its recent events).
const maxWindows = 4096

// New watches p's promises; warn (may be nil) is called once per promise,
// as soon as it is broken.
func New(p *plan.Plan, warn func(string)) *Watch {
	return &Watch{p: p, warn: warn, bypass: map[uint64]bool{}, rows: map[string]*Tally{}, warned: map[string]bool{},
		calls: map[uint32]uint64{}}
}

// WithoutBypassFlag is for events whose sendmsg entries do not say whether
// the socket bypasses the qdisc (recordings before format version 3): a
// frame's SENDING is then not judged, since a bypassing socket's is
// reconstructed by design.
func (w *Watch) WithoutBypassFlag() *Watch { w.noBypassFlag = true; return w }

// Event counts e if it is a frame transition the plan promises exactly,
// or a send call's entry or return.
func (w *Watch) Event(e *event.Event) error {
	switch e.Kind {
	case event.SendmsgEnter:
		w.bypass[e.Sk] = e.QdiscBypass()
		w.callEnter(e)
		return nil
	case event.SendmsgReturn:
		w.callReturn(e)
		return nil
	case event.SockGone:
		delete(w.bypass, e.Sk)
		return nil
	case event.Blind:
		w.blindWindow(window{e.TSLo, e.TS})
		return nil
	case event.FrameState:
	default:
		return nil
	}
	if (e.New == event.SendRequest && e.Cause != event.CauseRollback) || (e.New == event.Sending && w.noBypassFlag) {
		return nil // user space's writes: no hook is promised
	}
	// row: the promise of the path the event says the frame took; main:
	// the transition's promise (for a completion, the completion hook's).
	row, ok := w.p.FirstRow(plan.Promise(e, w.bypass[e.Sk])...)
	if !ok {
		return nil
	}
	main := row
	if e.New == event.Available {
		main, _ = w.p.Row(plan.EvAvailable)
	}
	if main.Precision != "exact" {
		return nil // the plan promises no exact hook for this transition
	}
	t := w.tally(main)
	// Exact, or bounded along a path the plan promises bounded (lo's
	// driver orphan on a destructor kernel): kept. Bounded where the plan
	// promised exact: reconstructed.
	if e.Prec == event.Exact || row.Precision == "bounded" {
		t.Kept++
		return nil
	}
	c := e.Cause.String()
	if e.Hook == event.HookSweep {
		c = "sweep"
	}
	w.miss(t, c, window{e.TSLo, e.TS})
	return nil
}

// miss counts one event of t's promise that was not seen as promised, with
// its cause, over window ew (where it could have happened).
func (w *Watch) miss(t *Tally, cause string, ew window) {
	t.Reconstructed++
	t.Causes[cause]++
	if ew.lo == 0 || ew.lo > ew.hi {
		ew.lo = ew.hi
	}
	if w.blind.Overlap(ew.lo, ew.hi) {
		t.Hidden++
	} else {
		w.open = keepLast(append(w.open, openEvent{ew, t.Event}))
	}
	w.check(t)
}

// callsTally is the tally of the plan's send call promise, nil where it
// promises no exact hook for the calls.
func (w *Watch) callsTally() *Tally {
	r, ok := w.p.Row(plan.EvCalls)
	if !ok || r.Precision != "exact" {
		return nil
	}
	return w.tally(r)
}

// callEnter: a thread's calls pair up, entry then return. An entry while
// the thread's previous call is still open means that call's return was
// never seen, or its entry was reported twice (a kernel that preempts the
// hook's programs mid-way, as 7.2 did to the held entries).
func (w *Watch) callEnter(e *event.Event) {
	if t := w.callsTally(); t != nil {
		if open := w.calls[e.TID]; open != 0 {
			w.miss(t, "entry without return", window{open, e.TS})
		}
	}
	_, known := w.calls[e.TID]
	w.forgetIfFull(known)
	w.calls[e.TID] = max(e.TS, 1)
}

// callReturn: a return pairs with its thread's open entry. One with no
// entry is judged only once the thread's calls were seen since the trace
// began (its first return may be of a call already in progress then).
func (w *Watch) callReturn(e *event.Event) {
	open, known := w.calls[e.TID]
	w.forgetIfFull(known)
	w.calls[e.TID] = 0
	t := w.callsTally()
	switch {
	case t == nil || !known:
	case open != 0:
		t.Kept++
	default:
		w.miss(t, "return without entry", window{e.A[2], e.TS})
	}
}

// forgetIfFull forgets every thread's calls before a thread not yet known
// would make them more than maxThreads: threads come and go.
func (w *Watch) forgetIfFull(known bool) {
	if !known && len(w.calls) >= maxThreads {
		clear(w.calls)
	}
}

// Lost gives the number of send call events (entries, returns) the ring
// buffer lost: that many unpaired calls are not held against the plan.
func (w *Watch) Lost(calls uint64) { w.lostCalls = calls }

// blindWindow records a window of CPU time no BPF program ran in, and
// excuses the reconstructed events it explains.
func (w *Watch) blindWindow(b window) {
	w.blind.Add(b.lo, b.hi)
	kept := w.open[:0]
	for _, o := range w.open {
		if o.w.overlaps(b) {
			if t := w.rows[o.tally]; t != nil {
				t.Hidden++
			}
			continue
		}
		kept = append(kept, o)
	}
	w.open = kept
}

func keepLast[T any](s []T) []T {
	if len(s) > maxWindows {
		return append(s[:0], s[len(s)-maxWindows:]...)
	}
	return s
}

func (w *Watch) tally(r plan.Row) *Tally {
	t := w.rows[r.Event]
	if t == nil {
		t = &Tally{Event: r.Event, Hook: r.Hook, Causes: map[string]uint64{}}
		w.rows[r.Event] = t
	}
	return t
}

// check warns, once per promise, when t is broken.
func (w *Watch) check(t *Tally) {
	if t.Reconstructed-t.Hidden >= minWarn && t.Broken() && !w.warned[t.Event] && w.warn != nil {
		w.warned[t.Event] = true
		w.warn(t.String())
	}
}

// Completions counts completions the kernel aggregated (trace --summary
// streams no frame events): exact ones, and bounded ones found by a status
// read. They are judged only where the plan promises every completion
// exactly; where some paths are promised bounded (lo on a destructor kernel
// with tracepoints only) the counts do not say which path a frame took.
func (w *Watch) Completions(exact, bounded uint64) {
	main, ok := w.p.Row(plan.EvAvailable)
	if !ok || main.Precision != "exact" || exact+bounded == 0 {
		return
	}
	for _, alt := range []string{plan.EvAvailableDriver, plan.EvAvailableOrphaned, plan.EvAvailableSweep} {
		if _, ok := w.p.Row(alt); ok {
			return
		}
	}
	t := w.tally(main)
	t.Kept += exact
	t.Reconstructed += bounded
	if bounded > 0 {
		t.Causes["status-read"] += bounded
	}
	w.check(t)
}

// Flush does nothing.
func (*Watch) Flush() error { return nil }

// Skipped gives the runs the kernel skipped per attachment (session
// Stats.Missed: "kind target" -> runs). A promise whose hook names a
// skipped attachment is not held responsible for that many of its
// reconstructed events: the kernel refused to run the hook, which the
// plan cannot avoid. Tallies apply it.
func (w *Watch) Skipped(missed map[string]uint64) { w.missed = missed }

// Tallies returns the promises exercised so far, in the plan's row order.
func (w *Watch) Tallies() []Tally {
	var out []Tally
	for _, r := range w.p.Rows {
		if t, ok := w.rows[r.Event]; ok {
			c := *t
			c.Skipped = 0
			if open := c.Reconstructed - min(c.Hidden, c.Reconstructed); open > 0 {
				skipped := skippedRuns(w.missed, c.Hook)
				if r.Event == plan.EvCalls {
					skipped = callRunsSkipped(w.missed) + w.lostCalls
				}
				c.Skipped = min(open, skipped)
			}
			out = append(out, c)
		}
	}
	return out
}

// skippedRuns adds up the skipped runs of the attachments a hook
// description names ("raw_tp kfree of the uarg, …" names "raw_tp kfree").
func skippedRuns(missed map[string]uint64, hook string) uint64 {
	var n uint64
	for k, v := range missed {
		if i := strings.Index(hook, k); i >= 0 && (i+len(k) == len(hook) || !isIdent(hook[i+len(k)])) {
			n += v
		}
	}
	return n
}

// callRunsSkipped adds up the skipped runs of the send call hooks, whose
// row names them in brace shorthand ("syscalls:sys_{enter,exit}_send…").
func callRunsSkipped(missed map[string]uint64) uint64 {
	var n uint64
	for k, v := range missed {
		if strings.Contains(k, "packet_sendmsg") || strings.Contains(k, "syscalls/sys_enter_send") ||
			strings.Contains(k, "syscalls/sys_exit_send") {
			n += v
		}
	}
	return n
}

func isIdent(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
