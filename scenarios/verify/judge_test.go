package verify

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/plan"
)

// testPlan promises exact SENDING and AVAILABLE, bounded bypass SENDING.
func testPlan() *plan.Plan {
	return &plan.Plan{Rows: []plan.Row{
		{Event: plan.EvCalls, Hook: "syscalls", Precision: "exact"},
		{Event: plan.EvSending, Hook: "net_dev_queue", Precision: "exact"},
		{Event: plan.EvSendingBypass, Hook: "ring scan", Precision: "bounded"},
		{Event: plan.EvAvailable, Hook: "kfree", Precision: "exact"},
		{Event: plan.EvXmit, Hook: "net_dev_start_xmit", Precision: "unavailable"},
	}}
}

func frame(ts uint64, idx uint32, st event.State, prec event.Precision, cause event.Cause) event.Event {
	return event.Event{Kind: event.FrameState, TS: ts, PID: 7, Frame: idx, New: st, Prec: prec, Cause: cause}
}

func enter(ts uint64) event.Event {
	return event.Event{Kind: event.SendmsgEnter, TS: ts, PID: 7}
}

func ret(ts uint64, v int64) event.Event {
	return event.Event{Kind: event.SendmsgReturn, TS: ts, PID: 7, A: [3]uint64{uint64(v)}}
}

func TestJudgeHeld(t *testing.T) {
	s := []Send{{Case: "veth", Start: 10, End: 100, Rets: []int64{200}, Frames: []uint32{0, 1},
		Completed: map[uint32]bool{0: true, 1: true}, NFrames: 2}}
	evs := []event.Event{
		enter(10), frame(11, 0, event.Sending, event.Exact, 0), frame(12, 0, event.Available, event.Exact, 0),
		frame(13, 1, event.Sending, event.Exact, 0), frame(14, 1, event.Available, event.Exact, 0),
		ret(15, 200),
		// Another case's, outside the window.
		frame(200, 1, event.Available, event.Bounded, event.CauseScan),
	}
	res := Judge(testPlan(), s, evs, 7)
	if !res.OK || len(res.Broken) != 0 {
		t.Fatalf("broken: %v", res.Broken)
	}
	for _, pr := range res.Promises {
		if pr.Event == plan.EvXmit {
			t.Errorf("an unavailable row was judged: %+v", pr)
		}
		if pr.Event == plan.EvAvailable && (pr.Exact != 2 || pr.Bounded != 0) {
			t.Errorf("AVAILABLE: %+v", pr)
		}
	}
}

// TestJudgeSoftirqTask: a completion whose softirq ran in another task's
// time (ksoftirqd's) carries that task's pid: it is the case's by its
// socket. An event of another pid and socket is not.
func TestJudgeSoftirqTask(t *testing.T) {
	s := []Send{{Case: "veth", Start: 10, End: 100, Ino: 42, Rets: []int64{200}, Frames: []uint32{0, 1},
		Completed: map[uint32]bool{0: true, 1: true}, NFrames: 2}}
	ksoftirqd := func(e event.Event, ino uint32) event.Event { e.PID, e.SockIno = 13, ino; return e }
	evs := []event.Event{
		enter(10), frame(11, 0, event.Sending, event.Exact, 0), frame(12, 1, event.Sending, event.Exact, 0),
		ret(13, 200),
		ksoftirqd(frame(14, 0, event.Available, event.Exact, 0), 42),
		ksoftirqd(frame(15, 1, event.Available, event.Exact, 0), 43), // another socket's frame 1
	}
	res := Judge(testPlan(), s, evs, 7)
	for _, pr := range res.Promises {
		if pr.Event == plan.EvAvailable && (pr.Exact != 1 || pr.NotSeen != 1) {
			t.Errorf("AVAILABLE: %+v, want frame 0 exact (its socket's) and frame 1 not seen", pr)
		}
	}
}

func TestJudgeBrokenExactPromise(t *testing.T) {
	s := []Send{{Case: "lo", Lo: true, Start: 10, End: 100, Rets: []int64{100}, Frames: []uint32{0},
		Completed: map[uint32]bool{0: true}, NFrames: 1}}
	evs := []event.Event{
		enter(10),
		frame(11, 0, event.Sending, event.Bounded, event.CauseTaken),
		frame(12, 0, event.Available, event.Bounded, event.CauseScan),
		ret(15, 100),
	}
	res := Judge(testPlan(), s, evs, 7)
	if res.OK {
		t.Fatal("bounded observations of exact promises passed")
	}
	want := map[string]string{plan.EvSending: "1 bounded (taken-unseen in lo)", plan.EvAvailable: "1 bounded (status-read in lo)"}
	for ev, d := range want {
		found := false
		for _, b := range res.Broken {
			found = found || (strings.HasPrefix(b, ev+":") && strings.Contains(b, d))
		}
		if !found {
			t.Errorf("no broken line for %s with %q: %v", ev, d, res.Broken)
		}
	}
}

func TestJudgeBoundedPromiseNeedsAnEvent(t *testing.T) {
	s := []Send{{Case: "bypass", Bypass: true, Start: 10, End: 100, Rets: []int64{100, 0}, Frames: []uint32{0},
		Completed: map[uint32]bool{0: true}, NFrames: 1}}
	// An exact observation keeps a bounded promise; nothing seen breaks it,
	// and a missing return breaks the calls' promise.
	evs := []event.Event{enter(11), frame(12, 0, event.Available, event.Exact, 0), ret(15, 100)}
	res := Judge(testPlan(), s, evs, 7)
	if res.OK {
		t.Fatal("an unseen SENDING passed")
	}
	var sending, calls *Promise
	for i := range res.Promises {
		switch res.Promises[i].Event {
		case plan.EvSendingBypass:
			sending = &res.Promises[i]
		case plan.EvCalls:
			calls = &res.Promises[i]
		}
	}
	if sending == nil || sending.Held || sending.NotSeen != 1 || !strings.Contains(sending.Detail, "1 not seen in bypass") {
		t.Errorf("bypass SENDING: %+v", sending)
	}
	if calls == nil || calls.Held || calls.Exact != 1 || calls.NotSeen != 1 {
		t.Errorf("calls: %+v", calls)
	}
}

func TestJudgeCaseError(t *testing.T) {
	res := Judge(testPlan(), []Send{{Case: "qdisc-drop", Error: "boom"}}, nil, 7)
	if res.OK || len(res.Broken) == 0 || !strings.Contains(res.Broken[0], "qdisc-drop did not run: boom") {
		t.Errorf("%+v", res)
	}
}

// TestJudgeHiddenCase: a case that ran while the kernel hid a task's CPU
// time from BPF neither keeps nor breaks what it could not see; the next
// case is judged as usual.
func TestJudgeHiddenCase(t *testing.T) {
	s := []Send{
		{Case: "veth", Start: 10, End: 100, Rets: []int64{100}, Frames: []uint32{0}, Completed: map[uint32]bool{0: true}, NFrames: 1},
		{Case: "lo", Lo: true, Start: 200, End: 300, Rets: []int64{100}, Frames: []uint32{1}, Completed: map[uint32]bool{1: true}, NFrames: 1},
	}
	evs := []event.Event{
		enter(10), frame(11, 0, event.Sending, event.Exact, 0),
		{Kind: event.Blind, TSLo: 40, TS: 60, PID: 1, TID: 81, Comm: "process_api"},
		frame(90, 0, event.Available, event.Bounded, event.CauseScan), // found by the sweep
		ret(95, 100),
		enter(205), frame(210, 1, event.Sending, event.Exact, 0), frame(220, 1, event.Available, event.Exact, 0), ret(230, 100),
	}
	res := Judge(testPlan(), s, evs, 7)
	if !res.OK {
		t.Fatalf("broken: %v", res.Broken)
	}
	for _, pr := range res.Promises {
		if pr.Event == plan.EvAvailable && (pr.Hidden != 1 || pr.Exact != 1 || pr.Bounded != 0 || !strings.Contains(pr.Observed(), "1 hidden")) {
			t.Errorf("AVAILABLE: %+v (observed %s); want 1 exact (lo), 1 hidden (veth)", pr, pr.Observed())
		}
	}
	if want := []string{"pid 1 process_api (thread 81): 1 window, 0.000 ms"}; fmt.Sprint(res.Hidden) != fmt.Sprint(want) {
		t.Errorf("hidden tasks %q, want %q", res.Hidden, want)
	}
	// The same trace without the blind window breaks the promise.
	res = Judge(testPlan(), s, append(append([]event.Event{}, evs[:2]...), evs[3:]...), 7)
	if res.OK {
		t.Error("a bounded completion outside any blind window passed")
	}
}

// TestJudgeCallsPairUp: a call's return counts only after its own single
// entry. 7.2 once reported a poll's entry twice (a switch in the middle of
// its return); a return with no entry is not its call seen either.
func TestJudgeCallsPairUp(t *testing.T) {
	s := []Send{{Case: "veth-dontwait", Start: 10, End: 100, Rets: []int64{100, 0, 0}, Frames: []uint32{0},
		Completed: map[uint32]bool{0: true}, NFrames: 1}}
	evs := []event.Event{
		enter(10), frame(11, 0, event.Sending, event.Exact, 0), frame(12, 0, event.Available, event.Exact, 0), ret(15, 100),
		enter(20), enter(20), ret(25, 0), // entered twice
		ret(35, 0), // no entry
	}
	res := Judge(testPlan(), s, evs, 7)
	if res.OK {
		t.Fatal("unpaired calls passed")
	}
	for _, pr := range res.Promises {
		if pr.Event == plan.EvCalls && (pr.Exact != 1 || pr.NotSeen != 2) {
			t.Errorf("calls: %+v, want the first exact, the two unpaired not seen", pr)
		}
	}
}
