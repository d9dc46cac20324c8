package verify

import (
	"fmt"
	"sort"
	"strings"

	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/plan"
	"github.com/ringtrace/ringtrace/tracer/promise"
)

// Send is what one case did, as the sender saw it: the input of Judge.
type Send struct {
	Case   string `json:"name"`
	Lo     bool   `json:"lo,omitempty"`     // sent on lo (else the lab's veth)
	Bypass bool   `json:"bypass,omitempty"` // PACKET_QDISC_BYPASS
	Drop   bool   `json:"drop,omitempty"`   // every frame dropped at the qdisc
	// Start and End bound the case in event time (CLOCK_MONOTONIC ns):
	// its events are the tracer's events between them of this process, or
	// of its socket (Ino: a completion in a softirq that ran in another
	// task's time, ksoftirqd's, is that task's).
	Start uint64 `json:"-"`
	End   uint64 `json:"-"`
	Ino   uint32 `json:"-"`
	// Rets are the sendto return values, in order (-errno on error).
	Rets []int64 `json:"rets"`
	// Frames are the indices of the frames handed to the kernel.
	Frames []uint32 `json:"-"`
	// Completed are the frames AVAILABLE again at the end (in the ring);
	// Held the frames some receive queue kept until the sender drained it.
	Completed map[uint32]bool `json:"-"`
	Held      int             `json:"held,omitempty"`
	NFrames   int             `json:"frames"`
	Error     string          `json:"error,omitempty"`
}

// Promise is one logical event of the plan and what the trace saw of it.
type Promise struct {
	Event    string `json:"event"`
	Hook     string `json:"hook"`
	Promised string `json:"promised"` // exact or bounded
	Exact    int    `json:"exact"`
	Bounded  int    `json:"bounded"`
	NotSeen  int    `json:"not_seen"`
	// Hidden: observations missed or reconstructed in a case that ran
	// while the kernel hid a task's CPU time from BPF (event.Blind): no
	// hook could see them, so they neither keep nor break the promise.
	Hidden int      `json:"hidden,omitempty"`
	Held   bool     `json:"held"`
	Cases  []string `json:"cases"`
	// Detail names what broke the promise: the causes of the bounded
	// observations and the cases where something was not seen.
	Detail string `json:"detail,omitempty"`

	bounded map[string]int // cause -> count
	unseen  map[string]int // case -> count
}

// Result is a verification: ok only if every promise held and every case ran.
type Result struct {
	OK       bool      `json:"ok"`
	Seconds  float64   `json:"seconds"`
	Cases    []Send    `json:"cases"`
	Promises []Promise `json:"promises"`
	Broken   []string  `json:"broken"`
	// Hidden lists the tasks the kernel ran no BPF program for during the
	// verification (event.Blind), one line each: what happened on their
	// CPU time no hook could see, here or in any trace.
	Hidden []string `json:"hidden,omitempty"`
}

// judge tallies one plan's promises.
type judge struct {
	p     *plan.Plan
	rows  map[string]*Promise
	order []string
	// hidden: the case being judged overlapped CPU time the kernel hides
	// from BPF.
	hidden bool
}

// observe records one expected observation of a logical event: the event
// that saw it (nil: not seen). The first of candidates the plan has a row
// for is the promise it is held to; rows the plan marks unavailable promise
// nothing.
func (j *judge) observe(c string, e *event.Event, candidates ...string) {
	row, found := j.p.FirstRow(candidates...)
	if !found || (row.Precision != "exact" && row.Precision != "bounded") {
		return
	}
	pr := j.rows[row.Event]
	if pr == nil {
		pr = &Promise{Event: row.Event, Hook: row.Hook, Promised: row.Precision, bounded: map[string]int{}, unseen: map[string]int{}}
		j.rows[row.Event] = pr
		j.order = append(j.order, row.Event)
	}
	if n := len(pr.Cases); n == 0 || pr.Cases[n-1] != c {
		pr.Cases = append(pr.Cases, c)
	}
	switch {
	case j.hidden && (e == nil || (e.Prec != event.Exact && row.Precision == "exact")):
		pr.Hidden++
	case e == nil:
		pr.NotSeen++
		pr.unseen[c]++
	case e.Prec == event.Exact:
		pr.Exact++
	default:
		pr.Bounded++
		cause := e.Cause.String()
		if e.Hook.String() == "sweep" {
			cause = "sweep"
		}
		pr.bounded[cause+" in "+c]++
	}
}

// Judge compares what the cases did with the events the trace delivered
// (in order) for process pid, under plan p.
func Judge(p *plan.Plan, sends []Send, evs []event.Event, pid uint32) *Result {
	j := &judge{p: p, rows: map[string]*Promise{}}
	res := &Result{OK: true, Cases: sends}
	var blind promise.Windows // CPU time the kernel hid from BPF, on any CPU
	for i := range evs {
		if evs[i].Kind == event.Blind {
			blind.Add(evs[i].TSLo, evs[i].TS)
		}
	}
	for _, s := range sends {
		if s.Error != "" {
			res.OK = false
			res.Broken = append(res.Broken, fmt.Sprintf("case %s did not run: %s", s.Case, s.Error))
			continue
		}
		j.hidden = blind.Overlap(s.Start, s.End)
		j.send(s, window(evs, s, pid))
	}
	res.Hidden = hiddenTasks(evs)
	for _, ev := range j.order {
		pr := j.rows[ev]
		pr.Held = pr.NotSeen == 0 && (pr.Promised == "bounded" || pr.Bounded == 0)
		if !pr.Held {
			pr.Detail = detail(pr)
			res.OK = false
			res.Broken = append(res.Broken, fmt.Sprintf("%s: promised %s (%s), observed %s", pr.Event, pr.Promised, pr.Hook, pr.Observed()+"; "+pr.Detail))
		}
		res.Promises = append(res.Promises, *pr)
	}
	if len(res.Promises) == 0 && res.OK {
		res.OK = false
		res.Broken = append(res.Broken, "no promise was exercised")
	}
	return res
}

// Observed says what was seen, in a few words.
func (pr *Promise) Observed() string {
	var parts []string
	for _, x := range []struct {
		n    int
		what string
	}{{pr.Exact, "exact"}, {pr.Bounded, "bounded"}, {pr.NotSeen, "not seen"}, {pr.Hidden, "hidden"}} {
		if x.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", x.n, x.what))
		}
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}

func detail(pr *Promise) string {
	var parts []string
	if pr.Promised == "exact" {
		for _, k := range sortedKeys(pr.bounded) {
			parts = append(parts, fmt.Sprintf("%d bounded (%s)", pr.bounded[k], k))
		}
	}
	for _, k := range sortedKeys(pr.unseen) {
		parts = append(parts, fmt.Sprintf("%d not seen in %s", pr.unseen[k], k))
	}
	return strings.Join(parts, ", ")
}

func sortedKeys(m map[string]int) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// hiddenTasks sums the blind windows per task: "pid 1 process_api (thread
// 81): 2 windows, 4.2 ms".
func hiddenTasks(evs []event.Event) []string {
	type task struct {
		pid, tid uint32
		comm     string
	}
	var order []task
	windows, ns := map[task]int{}, map[task]uint64{}
	for i := range evs {
		e := &evs[i]
		if e.Kind != event.Blind {
			continue
		}
		k := task{e.PID, e.TID, e.Comm}
		if windows[k] == 0 {
			order = append(order, k)
		}
		windows[k]++
		ns[k] += e.Duration()
	}
	var out []string
	for _, k := range order {
		w := "windows"
		if windows[k] == 1 {
			w = "window"
		}
		out = append(out, fmt.Sprintf("pid %d %s (thread %d): %d %s, %.3f ms", k.pid, k.comm, k.tid, windows[k], w, float64(ns[k])/1e6))
	}
	return out
}

// window is the events of one case: this process's, or its socket's,
// between its start and end. Cases run one after the other, each on a
// socket of its own.
func window(evs []event.Event, s Send, pid uint32) []event.Event {
	var out []event.Event
	for _, e := range evs {
		ours := e.PID == pid || e.PID == 0 || s.Ino != 0 && e.SockIno == s.Ino
		if e.TS >= s.Start && e.TS <= s.End && ours && !e.Kind.PerCPU() {
			out = append(out, e)
		}
	}
	return out
}

// send judges one case's events.
func (j *judge) send(s Send, evs []event.Event) {
	// The calls: one return event per sendto, with the same value, each
	// after its own entry (one entry: not two, as a switch in the middle
	// of a return once made on 7.2).
	var rets []int64
	var paired []bool
	open, twice := map[uint32]bool{}, map[uint32]bool{}
	for _, e := range evs {
		switch e.Kind {
		case event.SendmsgEnter:
			twice[e.TID] = open[e.TID]
			open[e.TID] = true
		case event.SendmsgReturn:
			rets = append(rets, e.Ret())
			paired = append(paired, open[e.TID] && !twice[e.TID])
			open[e.TID], twice[e.TID] = false, false
		}
	}
	for i, want := range s.Rets {
		var seen *event.Event
		if i < len(rets) && rets[i] == want && paired[i] {
			seen = &event.Event{Prec: event.Exact}
		}
		j.observe(s.Case, seen, plan.EvCalls)
	}
	// A transition is held to the promise of how it was seen (a bounded
	// completion found at the driver's return is lo's promise, say); one
	// not seen at all to the promise of the main path.
	transition := func(idx uint32, match func(*event.Event) bool, unseen event.Event) {
		e := firstFrame(evs, idx, match)
		if e != nil {
			unseen = *e
		}
		j.observe(s.Case, e, plan.Promise(&unseen, s.Bypass)...)
	}
	sending := event.Event{Kind: event.FrameState, New: event.Sending, Prec: event.Exact}
	available := event.Event{Kind: event.FrameState, New: event.Available, Prec: event.Exact}
	rollback := event.Event{Kind: event.FrameState, New: event.SendRequest, Cause: event.CauseRollback}
	for _, idx := range s.Frames {
		transition(idx, func(e *event.Event) bool { return e.New == event.Sending }, sending)
		// A dropped frame completes (and is rolled back) at once.
		if s.Completed[idx] || s.Drop {
			transition(idx, func(e *event.Event) bool { return e.New == event.Available }, available)
		}
		if s.Drop {
			transition(idx, func(e *event.Event) bool { return e.New == event.SendRequest && e.Cause == event.CauseRollback }, rollback)
			j.observe(s.Case, first(evs, func(e *event.Event) bool { return e.Kind == event.Drop && e.Frame == idx }), plan.EvDrop)
		}
		if !s.Bypass && !s.Drop {
			j.observe(s.Case, first(evs, func(e *event.Event) bool { return e.Kind == event.XmitStart && e.Frame == idx }), plan.EvXmit)
		}
	}
}

func first(evs []event.Event, match func(*event.Event) bool) *event.Event {
	for i := range evs {
		if match(&evs[i]) {
			return &evs[i]
		}
	}
	return nil
}

func firstFrame(evs []event.Event, idx uint32, match func(*event.Event) bool) *event.Event {
	return first(evs, func(e *event.Event) bool { return e.Kind == event.FrameState && e.Frame == idx && match(e) })
}
