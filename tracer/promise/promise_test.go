package promise_test

import (
	"strings"
	"testing"

	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/plan"
	"github.com/ringtrace/ringtrace/tracer/promise"
	"github.com/ringtrace/ringtrace/tracer/record"
)

// uargPlan is this host's plan: every SENDING and AVAILABLE exact, bypass
// SENDING bounded.
func uargPlan() *plan.Plan {
	return &plan.Plan{Rows: []plan.Row{
		{Event: plan.EvSending, Hook: "tp_btf net_dev_queue", Precision: "exact"},
		{Event: plan.EvSendingBypass, Hook: "ring scan", Precision: "bounded"},
		{Event: plan.EvAvailable, Hook: "tp_btf kfree", Precision: "exact"},
	}}
}

// destructorPlan is a class C destructor plan: lo's completions are
// promised bounded.
func destructorPlan() *plan.Plan {
	p := uargPlan()
	p.Rows = append(p.Rows, plan.Row{Event: plan.EvAvailableDriver, Hook: "status read", Precision: "bounded"})
	return p
}

func enter(sk uint64, bypass bool) event.Event {
	e := event.Event{Kind: event.SendmsgEnter, Sk: sk}
	if bypass {
		e.A[2] = 1
	}
	return e
}

func state(sk uint64, st event.State, prec event.Precision, cause event.Cause) event.Event {
	return event.Event{Kind: event.FrameState, Sk: sk, New: st, Prec: prec, Cause: cause}
}

func feed(w *promise.Watch, evs ...event.Event) {
	for i := range evs {
		w.Event(&evs[i])
	}
}

func tally(t *testing.T, w *promise.Watch, ev string) promise.Tally {
	t.Helper()
	for _, x := range w.Tallies() {
		if x.Event == ev {
			return x
		}
	}
	t.Fatalf("no tally for %q in %+v", ev, w.Tallies())
	return promise.Tally{}
}

func TestReconstructedSendingWarnsOnce(t *testing.T) {
	var warnings []string
	w := promise.New(uargPlan(), func(s string) { warnings = append(warnings, s) })
	feed(w, enter(1, false))
	for i := 0; i < 100; i++ {
		feed(w, state(1, event.Sending, event.Exact, 0))
	}
	feed(w, state(1, event.Sending, event.Bounded, event.CauseTaken))
	if len(warnings) != 0 {
		t.Fatalf("warned after one reconstruction: %v", warnings)
	}
	for i := 0; i < 5; i++ {
		feed(w, state(1, event.Sending, event.Bounded, event.CauseTaken))
	}
	s := tally(t, w, plan.EvSending)
	if s.Kept != 100 || s.Reconstructed != 6 || !s.Broken() {
		t.Errorf("tally %+v", s)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], plan.EvSending) || !strings.Contains(warnings[0], "taken-unseen 6") && !strings.Contains(warnings[0], "taken-unseen 2") {
		t.Errorf("warnings %q", warnings)
	}
}

func TestBypassSendingIsPromisedBounded(t *testing.T) {
	w := promise.New(uargPlan(), nil)
	feed(w, enter(2, true), state(2, event.Sending, event.Bounded, event.CauseTaken),
		state(2, event.Available, event.Exact, 0))
	for _, x := range w.Tallies() {
		if x.Event == plan.EvSending || x.Reconstructed != 0 {
			t.Errorf("a bypassing socket's bounded SENDING was judged: %+v", x)
		}
	}
	// Without the flag (old recordings) SENDING is not judged at all.
	w = promise.New(uargPlan(), nil).WithoutBypassFlag()
	feed(w, enter(3, false), state(3, event.Sending, event.Bounded, event.CauseTaken))
	if len(w.Tallies()) != 0 {
		t.Errorf("judged SENDING without the bypass flag: %+v", w.Tallies())
	}
}

func TestCompletionsByPath(t *testing.T) {
	lo := state(4, event.Available, event.Bounded, event.CauseDriverOrphan)
	sweep := state(4, event.Available, event.Bounded, event.CauseOrphaned)
	sweep.Hook = event.HookSweep

	// Destructor kernel, tracepoints: lo's bounded completion is its path's promise.
	w := promise.New(destructorPlan(), nil)
	feed(w, lo, state(4, event.Available, event.Exact, 0))
	if a := tally(t, w, plan.EvAvailable); a.Kept != 2 || a.Reconstructed != 0 {
		t.Errorf("destructor plan: %+v", a)
	}
	// This host: every completion has an exact hook; the sweep finding one
	// is a reconstruction, whatever the device.
	w = promise.New(uargPlan(), nil)
	feed(w, lo, sweep, state(4, event.Available, event.Exact, 0))
	a := tally(t, w, plan.EvAvailable)
	if a.Kept != 1 || a.Reconstructed != 2 || a.Causes["sweep"] != 1 || a.Causes["orphaned-in-driver"] != 1 {
		t.Errorf("uarg plan: %+v", a)
	}
}

func TestUnderThreshold(t *testing.T) {
	w := promise.New(uargPlan(), func(s string) { t.Errorf("warned: %s", s) })
	for i := 0; i < 999; i++ {
		feed(w, state(5, event.Available, event.Exact, 0))
	}
	feed(w, state(5, event.Available, event.Bounded, event.CauseScan), state(5, event.Available, event.Bounded, event.CauseScan))
	if a := tally(t, w, plan.EvAvailable); a.Broken() || a.Reconstructed != 2 {
		t.Errorf("%+v", a)
	}
}

// TestRecordings: the recorded traces in testdata (destructor and uarg
// kernels, classes A to C) kept their plans' promises.
func TestRecordings(t *testing.T) {
	for _, name := range []string{"veth", "lo", "status", "qdisc-drop", "sndbuf-blocking", "bypass", "selfloop-6.12.95-blocking"} {
		t.Run(name, func(t *testing.T) {
			r, err := record.Open("../../testdata/recordings/" + name + ".rtrec")
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			evs, err := r.Events(0)
			if err != nil {
				t.Fatal(err)
			}
			w := promise.New(r.Header.Plan, nil).WithoutBypassFlag()
			n := event.NewNormalizer()
			for i := range evs {
				n.Process(&evs[i], func(e *event.Event) error { return w.Event(e) })
			}
			if len(w.Tallies()) == 0 {
				t.Fatal("no promise exercised")
			}
			for _, x := range w.Tallies() {
				t.Logf("%s", x)
				if x.Broken() {
					t.Errorf("broken: %s", x)
				}
			}
		})
	}
}

// TestAggregatedCompletions: trace --summary's in-kernel counts are judged
// where every completion is promised exact, and left alone where some
// paths are promised bounded.
func TestAggregatedCompletions(t *testing.T) {
	w := promise.New(uargPlan(), nil)
	w.Completions(90, 10)
	if a := tally(t, w, plan.EvAvailable); a.Kept != 90 || a.Reconstructed != 10 || !a.Broken() {
		t.Errorf("%+v", a)
	}
	w = promise.New(destructorPlan(), nil)
	w.Completions(90, 10)
	if len(w.Tallies()) != 0 {
		t.Errorf("judged aggregates of a plan with bounded completion paths: %+v", w.Tallies())
	}
}

// TestHiddenWindowsExcuse: a completion reconstructed within CPU time the
// kernel hides from BPF is not held against the plan, whether the blind
// window is reported before or after it; one outside every window is.
func TestHiddenWindowsExcuse(t *testing.T) {
	avail := func(lo, hi uint64) event.Event {
		e := state(1, event.Available, event.Bounded, event.CauseScan)
		e.TSLo, e.TS, e.Hook = lo, hi, event.HookSweep
		return e
	}
	blind := func(lo, hi uint64) event.Event {
		return event.Event{Kind: event.Blind, TSLo: lo, TS: hi, PID: 1, TID: 81, Comm: "process_api"}
	}
	var warned []string
	w := promise.New(uargPlan(), func(s string) { warned = append(warned, s) })
	evs := []event.Event{enter(1, false)}
	for i := 0; i < 50; i++ {
		evs = append(evs, state(1, event.Available, event.Exact, event.CauseXmit))
	}
	evs = append(evs,
		blind(100, 200), avail(150, 300), // window first
		avail(1000, 1500), blind(1200, 1300), // window reported after the sweep found it
	)
	feed(w, evs...)
	got := tally(t, w, plan.EvAvailable)
	if got.Reconstructed != 2 || got.Hidden != 2 || got.Broken() || len(warned) != 0 {
		t.Fatalf("two reconstructions inside blind windows: tally %+v broken %v, warnings %q; want 2 reconstructed, 2 hidden, not broken, no warning", got, got.Broken(), warned)
	}
	if s := got.String(); !strings.Contains(s, "2 in CPU time the kernel hides from BPF") {
		t.Errorf("String() = %q: does not say the hidden ones", s)
	}
	feed(w, avail(5000, 6000), avail(7000, 8000)) // no window: a hook that did not fire
	got = tally(t, w, plan.EvAvailable)
	if got.Reconstructed != 4 || got.Hidden != 2 || !got.Broken() || len(warned) != 1 {
		t.Fatalf("two more outside any window: tally %+v broken %v, warnings %q; want 4 reconstructed, 2 hidden, broken (2 of 54), one warning", got, got.Broken(), warned)
	}
}

// TestSkippedRunsExcuse: reconstructions up to the number of runs the
// kernel skipped of the promised hook's program are not held against the
// plan; skipped runs of other programs excuse nothing.
func TestSkippedRunsExcuse(t *testing.T) {
	w := promise.New(uargPlan(), nil)
	evs := []event.Event{enter(1, false)}
	for i := 0; i < 100; i++ {
		evs = append(evs, state(1, event.Available, event.Exact, event.CauseXmit))
	}
	for i := 0; i < 3; i++ {
		e := state(1, event.Available, event.Bounded, event.CauseScan)
		e.Hook = event.HookSweep
		evs = append(evs, e)
	}
	feed(w, evs...)
	if got := tally(t, w, plan.EvAvailable); !got.Broken() || got.Skipped != 0 {
		t.Fatalf("no skipped runs: tally %+v, want broken (3 of 103) and nothing skipped", got)
	}
	w.Skipped(map[string]uint64{"tp_btf net_dev_queue": 40})
	if got := tally(t, w, plan.EvAvailable); !got.Broken() || got.Skipped != 0 {
		t.Fatalf("another program's skipped runs: tally %+v, want broken, nothing excused", got)
	}
	w.Skipped(map[string]uint64{"tp_btf kfree": 2})
	got := tally(t, w, plan.EvAvailable)
	if got.Skipped != 2 || got.Share() > 0.02 || got.Broken() {
		t.Fatalf("2 skipped runs of the hook: tally %+v share %.3f, want 2 excused, 1 of 103 counted, not broken", got, got.Share())
	}
	if s := got.String(); !strings.Contains(s, "2 as many as the runs the kernel skipped") {
		t.Errorf("String() = %q: does not say the skipped ones", s)
	}
	w.Skipped(map[string]uint64{"tp_btf kfree": 100})
	if got := tally(t, w, plan.EvAvailable); got.Skipped != 3 {
		t.Errorf("more skipped runs than reconstructions: Skipped %d, want 3 (at most the reconstructions)", got.Skipped)
	}
}

// TestCallsPairUp: a thread's send calls pair up, entry then return. The
// 7.2 failure: a switch in the middle of a poll's return sent its held
// entry, and the return sent it again in its one record.
func TestCallsPairUp(t *testing.T) {
	p := uargPlan()
	p.Rows = append(p.Rows, plan.Row{Event: plan.EvCalls, Hook: "tracepoints syscalls:sys_{enter,exit}_send{to,msg,mmsg}", Precision: "exact"})
	call := func(k event.Kind, tid uint32, ts uint64) event.Event {
		e := event.Event{Kind: k, TID: tid, TS: ts, Sk: 1}
		if k == event.SendmsgReturn {
			e.A[2] = ts - 1 // the call's entry time
		}
		return e
	}
	var warned []string
	w := promise.New(p, func(s string) { warned = append(warned, s) })
	feed(w,
		call(event.SendmsgReturn, 7, 5), // a call already in progress when the trace began: not judged
		call(event.SendmsgEnter, 7, 10), call(event.SendmsgReturn, 7, 20),
		call(event.SendmsgEnter, 8, 21), // another thread's call, blocked at the end: not judged
		call(event.SendmsgEnter, 7, 30), call(event.SendmsgEnter, 7, 30), call(event.SendmsgReturn, 7, 40))
	got := tally(t, w, plan.EvCalls)
	if got.Kept != 2 || got.Reconstructed != 1 || got.Causes["entry without return"] != 1 || !got.Broken() {
		t.Fatalf("a call entered twice: tally %+v, want 2 paired, 1 entry without return, broken", got)
	}
	feed(w, call(event.SendmsgEnter, 7, 50), call(event.SendmsgReturn, 7, 60), call(event.SendmsgReturn, 7, 70))
	got = tally(t, w, plan.EvCalls)
	if got.Kept != 3 || got.Causes["return without entry"] != 1 {
		t.Fatalf("a return without its entry: tally %+v, want 3 paired, 1 return without entry", got)
	}
	if len(warned) != 1 || !strings.Contains(warned[0], "sendmsg enter/return") {
		t.Errorf("warnings %q, want one, about the calls", warned)
	}
	// Lost call events and the hook's skipped runs excuse as many.
	w.Lost(1)
	w.Skipped(map[string]uint64{"tracepoint syscalls/sys_exit_sendto": 1, "tp_btf net_dev_queue": 5})
	if got := tally(t, w, plan.EvCalls); got.Skipped != 2 || got.Broken() {
		t.Errorf("1 lost and 1 skipped run: tally %+v, want both excused", got)
	}
	// A plan without an exact calls promise judges none.
	w = promise.New(uargPlan(), nil)
	feed(w, call(event.SendmsgEnter, 7, 30), call(event.SendmsgEnter, 7, 30))
	for _, x := range w.Tallies() {
		if x.Event == plan.EvCalls {
			t.Errorf("calls judged without a promise: %+v", x)
		}
	}
}

// TestWatchDoesNotAllocate: the watch sees every frame event of a
// streaming trace (a million a second): judging one must not allocate.
func TestWatchDoesNotAllocate(t *testing.T) {
	w := promise.New(uargPlan(), nil)
	evs := []event.Event{enter(1, false), state(1, event.Sending, event.Exact, event.CauseXmit),
		state(1, event.Available, event.Exact, event.CauseXmit)}
	feed(w, evs...) // the tallies exist
	if n := testing.AllocsPerRun(100, func() { feed(w, evs...) }); n != 0 {
		t.Errorf("%.1f allocations per call and its two frame events, want 0", n)
	}
}

// TestCallsBounded: a long trace's thread churn does not grow the watch
// without end; what it forgets is not judged.
func TestCallsBounded(t *testing.T) {
	p := uargPlan()
	p.Rows = append(p.Rows, plan.Row{Event: plan.EvCalls, Hook: "syscalls", Precision: "exact"})
	w := promise.New(p, nil)
	for tid := uint32(1); tid <= 3*(1<<16); tid++ {
		feed(w, event.Event{Kind: event.SendmsgEnter, TID: tid, TS: uint64(tid)},
			event.Event{Kind: event.SendmsgReturn, TID: tid, TS: uint64(tid) + 1})
	}
	if n := promise.TrackedThreads(w); n > 1<<16 {
		t.Errorf("%d threads tracked, want at most %d", n, 1<<16)
	}
	if got := tally(t, w, plan.EvCalls); got.Kept != 3*(1<<16) || got.Reconstructed != 0 {
		t.Errorf("tally %+v, want every call paired", got)
	}
}
