package report_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/plan"
	"github.com/ringtrace/ringtrace/tracer/record"
	"github.com/ringtrace/ringtrace/tracer/report"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/report-*.txt")

const recordings = "../../testdata/recordings"

func replay(t *testing.T, name string) *report.Report {
	t.Helper()
	r, err := record.Open(filepath.Join(recordings, name+".rtrec"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rep, err := report.Replay(r)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func diag(rep *report.Report, id string) *report.Diagnosis {
	for i := range rep.Diagnoses {
		if rep.Diagnoses[i].ID == id {
			return &rep.Diagnoses[i]
		}
	}
	return nil
}

// TestGoldenText pins the text report of every recorded trace.
func TestGoldenText(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(recordings, "*.rtrec"))
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".rtrec")
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := replay(t, name).WriteText(&buf, report.TextOptions{Frames: true, AllCalls: true}); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("../../testdata/golden", "report-"+name+".txt")
			if *update {
				os.MkdirAll(filepath.Dir(golden), 0o755)
				if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./tracer/report -update)", err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Errorf("report differs from %s (rerun with -update if intended):\n%s", golden, buf.String())
			}
		})
	}
}

func TestLoopbackCompletesInDriver(t *testing.T) {
	rep := replay(t, "lo")
	if rep.Totals.Completed != 8 || rep.Totals.CompletedBounded != 8 {
		t.Errorf("totals %+v: lo frames complete inside loopback_xmit, bounded", rep.Totals)
	}
	if len(rep.Diagnoses) != 0 {
		t.Errorf("diagnoses on a clean lo trace: %+v", rep.Diagnoses)
	}
}

func TestVethCompletesExactly(t *testing.T) {
	rep := replay(t, "veth")
	s := rep.Sockets[0]
	if rep.Totals.Completed != 32 || rep.Totals.CompletedExact != 32 {
		t.Errorf("totals %+v", rep.Totals)
	}
	loops := 0
	for _, c := range s.Calls {
		if c.LoopCall {
			loops++
			if c.Ret != 0 {
				t.Errorf("loop call returned %d", c.Ret)
			}
		}
	}
	if loops == 0 {
		t.Error("no loop-until-empty call recognised")
	}
}

// TestStatusSession is reference session 1: two frames with MSG_DONTWAIT
// on a link that holds the second; the call returns while it is pending.
func TestStatusSession(t *testing.T) {
	rep := replay(t, "status")
	s := rep.Sockets[0]
	if len(s.Calls) != 2 || s.Calls[0].Ret != 2000 || s.Calls[1].Ret != 0 || !s.Calls[1].LoopCall {
		t.Fatalf("calls: %+v %+v", s.Calls[0], s.Calls[1])
	}
	if p := s.Calls[0].ReturnScan.Sending; p != 1 {
		t.Errorf("pending at the first return %d, want 1 (frame 1 still on the link)", p)
	}
	var f1 *report.Round
	for _, rd := range s.Rounds {
		if rd.Frame == 1 {
			f1 = rd
		}
	}
	// 100 kbit/s, 1600 B bucket: frame 0 takes 1000 B, frame 1 waits for
	// 400 B more = 32 ms. Physics, with a tolerance for timers.
	if d := float64(f1.InFlight()) / 1e6; d < 24 || d > 45 {
		t.Errorf("frame 1 in flight %.1f ms, want about 32 ms", d)
	}
	if f1.Available < s.Calls[0].Return {
		t.Error("frame 1 completed before the call returned")
	}
}

func TestQdiscDrop(t *testing.T) {
	rep := replay(t, "qdisc-drop")
	d := diag(rep, report.DiagQdiscDrop)
	if d == nil || !strings.Contains(strings.Join(d.Evidence, " "), "QDISC_DROP at __dev_queue_xmit") {
		t.Fatalf("qdisc-drop diagnosis: %+v", d)
	}
	if rep.Totals.ENOBUFS != 1 || rep.Totals.SyncDrops != 1 || rep.Totals.RolledBack != 1 {
		t.Errorf("totals %+v", rep.Totals)
	}
}

func TestSndbufBlocking(t *testing.T) {
	rep := replay(t, "sndbuf-blocking")
	if diag(rep, report.DiagSndbufBlocked) == nil || diag(rep, report.DiagCompletionWait) == nil {
		t.Fatalf("diagnoses %+v", rep.Diagnoses)
	}
	c := rep.Sockets[0].Calls[0]
	if c.Return == 0 || c.Ret != 32*1400 {
		t.Errorf("call %+v", c)
	}
	for _, rd := range rep.Sockets[0].Rounds {
		if !rd.Done || rd.Available > c.Return {
			t.Errorf("frame %d: done %v at %d, call returned at %d: a blocking call returns after every frame is AVAILABLE", rd.Frame, rd.Done, rd.Available, c.Return)
		}
	}
}

func TestDontwaitPartialVerdict(t *testing.T) {
	rep := replay(t, "dontwait-partial")
	d := diag(rep, report.DiagDontwaitBug)
	if d == nil || !strings.Contains(d.Title, "not affected") {
		t.Fatalf("verdict %+v", d)
	}
	if diag(rep, report.DiagPartialSend) == nil {
		t.Error("no partial-send diagnosis")
	}
}

func TestBypassHasNoQdisc(t *testing.T) {
	rep := replay(t, "bypass")
	if rep.Events["qdisc_enqueue"] != 0 || rep.Totals.Completed != 16 {
		t.Errorf("events %v totals %+v", rep.Events, rep.Totals)
	}
}

// ---- synthetic sequences: what this kernel cannot produce ----

type seq struct {
	ts  uint64
	evs []event.Event
}

func (s *seq) add(e event.Event) {
	s.ts += 1000
	if e.TS == 0 {
		e.TS = s.ts
	}
	if e.Sk == 0 && e.Kind != event.Softirq && e.Kind != event.NapiPoll {
		e.Sk = 0xffff8881
	}
	if e.TID == 0 {
		e.TID = 42
	}
	if e.Kind == event.FrameState || e.Kind == event.SendmsgReturn || e.Kind == event.Drop {
		e.SndBuf, e.Wmem, e.Pending = 9216, 1000, 1
	} else {
		e.SndBuf, e.Wmem, e.Pending = -1, -1, -1
	}
	if e.Frame == 0 && e.Kind != event.FrameState && e.Kind != event.FramePicked && e.Kind != event.Drop {
		e.Frame = event.NoFrame
	}
	s.evs = append(s.evs, e)
}

func (s *seq) build() *report.Report {
	b := report.NewBuilder(event.Names{})
	n := event.NewNormalizer()
	for i := range s.evs {
		n.Process(&s.evs[i], func(e *event.Event) error { b.Add(e); return nil })
	}
	return b.Finish()
}

// neg encodes -errno as the BPF side stores a return value.
func neg(e unix.Errno) uint64 { return uint64(-int64(e)) }

func frameEv(f uint32, from, to event.State, prec event.Precision, hook event.Hook) event.Event {
	return event.Event{Kind: event.FrameState, Frame: f, Old: from, New: to, Prec: prec, Hook: hook}
}

// TestClassATrace: fentry hooks give exact picks, SENDING and AVAILABLE.
func TestClassATrace(t *testing.T) {
	var s seq
	fe := event.Hook(1)
	s.add(event.Event{Kind: event.SendmsgEnter, Hook: fe, Scan: event.Scan{Head: 0, Frames: 2, RunSendRequest: 2, SendRequest: 2}})
	for f := uint32(0); f < 2; f++ {
		s.add(event.Event{Kind: event.FramePicked, Frame: f, Hook: fe})
		s.add(frameEv(f, event.SendRequest, event.Sending, event.Exact, fe))
		s.add(event.Event{Kind: event.XmitRC, Hook: fe})
		s.add(frameEv(f, event.Sending, event.Available, event.Exact, fe))
	}
	s.add(event.Event{Kind: event.SendmsgReturn, Hook: fe, A: [3]uint64{3000, 0, 1000}})
	rep := s.build()
	if rep.Totals.Completed != 2 || rep.Totals.CompletedExact != 2 || rep.Totals.Calls != 1 {
		t.Errorf("totals %+v", rep.Totals)
	}
	if c := rep.Sockets[0].Calls[0]; c.FramesTaken != 2 || c.Ret != 3000 {
		t.Errorf("call %+v", c)
	}
}

// TestPre41DontwaitAffected: on a kernel before 4.1 a MSG_DONTWAIT call
// sleeps in the sndbuf wait: the verdict is "affected".
func TestPre41DontwaitAffected(t *testing.T) {
	var s seq
	s.add(event.Event{Kind: event.SendmsgEnter, A: [3]uint64{unix.MSG_DONTWAIT}, Scan: event.Scan{Frames: 8, RunSendRequest: 8}})
	s.add(frameEv(0, event.SendRequest, event.Sending, event.Exact, 0))
	s.add(event.Event{Kind: event.Sleep, Aux: uint8(event.WaitSndbuf)})
	s.add(event.Event{Kind: event.Wake, A: [3]uint64{42, uint64(event.WaitSndbuf)}, Aux: uint8(event.WaitSndbuf)})
	s.add(frameEv(0, event.Sending, event.Available, event.Exact, 0))
	s.add(event.Event{Kind: event.SendmsgReturn, Aux: 1, A: [3]uint64{1500, 0, 1000}})
	d := diag(s.build(), report.DiagDontwaitBug)
	if d == nil || !strings.Contains(d.Title, "AFFECTED") || d.Severity != "problem" {
		t.Fatalf("verdict %+v", d)
	}
}

func TestWrongFormatStuck(t *testing.T) {
	var s seq
	s.add(event.Event{Kind: event.SendmsgEnter, Scan: event.Scan{Frames: 4, RunSendRequest: 4, SendRequest: 4}})
	s.add(frameEv(0, event.SendRequest, event.WrongFormat, event.Bounded, 0))
	s.add(event.Event{Kind: event.SendmsgReturn, A: [3]uint64{neg(unix.EMSGSIZE), 0, 1000},
		Scan: event.Scan{Frames: 4, SendRequest: 3, WrongFormat: 1}})
	d := diag(s.build(), report.DiagWrongFormat)
	if d == nil || !strings.Contains(strings.Join(d.Evidence, " "), "3 SEND_REQUEST frames") {
		t.Fatalf("diagnosis %+v", d)
	}
}

func TestSndtimeoAndInFlight(t *testing.T) {
	var s seq
	s.add(event.Event{Kind: event.SendmsgEnter, Scan: event.Scan{Frames: 2, RunSendRequest: 1}})
	s.add(frameEv(0, event.SendRequest, event.Sending, event.Exact, 0))
	s.add(event.Event{Kind: event.Sleep, Aux: uint8(event.WaitCompletion)})
	s.add(event.Event{Kind: event.Wake, A: [3]uint64{42, uint64(event.WaitCompletion)}, Aux: uint8(event.WaitOther)})
	s.add(event.Event{Kind: event.SendmsgReturn, A: [3]uint64{neg(unix.ETIMEDOUT), 0, 1000}})
	rep := s.build()
	if diag(rep, report.DiagTimedOut) == nil || diag(rep, report.DiagInFlightAtEnd) == nil {
		t.Fatalf("diagnoses %+v", rep.Diagnoses)
	}
	if rep.Totals.InFlightAtEnd != 1 {
		t.Errorf("in flight %d", rep.Totals.InFlightAtEnd)
	}
}

func TestSoftirqBudget(t *testing.T) {
	var s seq
	for i := 0; i < 5; i++ {
		s.add(event.Event{Kind: event.NapiPoll, CPU: 1, Dev: "eth0", A: [3]uint64{64, 64}})
		s.add(event.Event{Kind: event.Softirq, CPU: 1, Aux: 3, TSLo: s.ts})
	}
	rep := s.build()
	d := diag(rep, report.DiagSoftirqBudget)
	if d == nil || !strings.Contains(d.Title, "5 of 5") {
		t.Fatalf("diagnosis %+v", d)
	}
}

// FuzzBuilder: any event sequence (decoded from arbitrary bytes) builds a
// report and renders without panicking.
func FuzzBuilder(f *testing.F) {
	var s seq
	s.add(event.Event{Kind: event.SendmsgEnter, Scan: event.Scan{Frames: 4, RunSendRequest: 4}})
	s.add(frameEv(1, event.SendRequest, event.Sending, event.Exact, 0))
	s.add(event.Event{Kind: event.Drop, Frame: 1})
	s.add(frameEv(1, event.Sending, event.Available, event.Exact, 0))
	var seed []byte
	for _, e := range s.evs {
		seed = append(seed, event.Encode(e)...)
	}
	f.Add(seed)
	f.Fuzz(func(t *testing.T, b []byte) {
		bld := report.NewBuilder(event.Names{})
		n := event.NewNormalizer()
		for len(b) >= event.RawSize {
			e, err := event.Decode(b[:event.RawSize])
			b = b[event.RawSize:]
			if err != nil {
				continue
			}
			n.Process(&e, func(e *event.Event) error { bld.Add(e); return nil })
		}
		rep := bld.Finish()
		if err := rep.WriteText(&bytes.Buffer{}, report.TextOptions{Frames: true, AllCalls: true}); err != nil {
			t.Fatal(err)
		}
	})
}

// TestCPUWait: a blocking call that spent most of its time runnable without
// a CPU is diagnosed, and the wait is in the call's sleeps; a MSG_DONTWAIT
// call preempted the same way is not a sndbuf sleep (no pre-4.1 verdict).
func TestCPUWait(t *testing.T) {
	var s seq
	s.add(event.Event{Kind: event.SendmsgEnter, Scan: event.Scan{Frames: 2, RunSendRequest: 2}})
	s.add(frameEv(0, event.SendRequest, event.Sending, event.Exact, 0))
	s.ts += 3e6
	s.add(event.Event{Kind: event.Wake, TS: s.ts, TSLo: s.ts - 2e6, A: [3]uint64{42, uint64(event.WaitCPU)}, Aux: uint8(event.WaitCPU)})
	s.add(frameEv(0, event.Sending, event.Available, event.Exact, 0))
	s.add(event.Event{Kind: event.SendmsgReturn, A: [3]uint64{1500, 0, 1000}})
	s.add(event.Event{Kind: event.SendmsgEnter, A: [3]uint64{unix.MSG_DONTWAIT}, Scan: event.Scan{Frames: 2, RunSendRequest: 1}})
	s.add(event.Event{Kind: event.Wake, TSLo: s.ts - 500, A: [3]uint64{42, uint64(event.WaitCPU)}, Aux: uint8(event.WaitCPU)})
	s.add(event.Event{Kind: event.SendmsgReturn, Aux: 1, A: [3]uint64{1500, 1, s.ts - 500}})
	rep := s.build()
	c := rep.Sockets[0].Calls[0]
	if got := c.Slept(event.WaitCPU, rep.End); got != 2e6 {
		t.Errorf("cpu wait %d ns, want 2e6", got)
	}
	d := diag(rep, report.DiagCPUWait)
	if d == nil || d.Severity != "problem" || !strings.Contains(d.Title, "2.00") || !strings.Contains(d.Title, "for a CPU inside sendto") {
		t.Fatalf("diagnosis %+v", d)
	}
	if v := diag(rep, report.DiagDontwaitBug); v != nil && strings.Contains(v.Title, "AFFECTED") {
		t.Errorf("a preempted MSG_DONTWAIT call is not the sndbuf bug: %+v", v)
	}
}

// TestGapsDiagnosed: what the tracer knows it missed is named, with the
// counts, in the report's diagnoses.
func TestGapsDiagnosed(t *testing.T) {
	b := report.NewBuilder(event.Names{})
	b.SetGaps(3, 0, map[string]uint64{"kprobe tpacket_destruct_skb": 2, "kretprobe packet_sendmsg": 1})
	rep := b.Finish()
	if d := diag(rep, report.DiagLost); d == nil || !strings.Contains(d.Title, "3 events were lost") {
		t.Errorf("lost events: %+v", d)
	}
	d := diag(rep, report.DiagMissedRuns)
	if d == nil || !strings.Contains(d.Title, "skipped 3 runs") ||
		!strings.Contains(strings.Join(d.Evidence, "\n"), "kprobe tpacket_destruct_skb=2, kretprobe packet_sendmsg=1") {
		t.Fatalf("missed runs: %+v", d)
	}
	if d := diag(report.NewBuilder(event.Names{}).Finish(), report.DiagMissedRuns); d != nil {
		t.Errorf("no gaps, yet %+v", d)
	}
}

// TestNotTraced: a --detail calls trace says, in every rendering, that its
// frames were counted, not traced; a --detail frames trace says nothing.
func TestNotTraced(t *testing.T) {
	for _, tc := range []struct {
		p    *plan.Plan
		want bool
	}{{&plan.Plan{Class: plan.Tracepoint, Detail: plan.DetailCalls}, true}, {&plan.Plan{Class: plan.Tracepoint}, false}} {
		rep := replay(t, "veth")
		rep.SetPlan(tc.p)
		var text, html, pf bytes.Buffer
		if err := rep.WriteText(&text, report.TextOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := rep.WriteHTML(&html); err != nil {
			t.Fatal(err)
		}
		if err := rep.WritePerfetto(&pf); err != nil {
			t.Fatal(err)
		}
		for name, b := range map[string]*bytes.Buffer{"text": &text, "html": &html, "perfetto": &pf} {
			if got := strings.Contains(b.String(), "frame detail not traced"); got != tc.want {
				t.Errorf("detail %q: %s says frames were not traced: %v, want %v", tc.p.Detail, name, got, tc.want)
			}
		}
	}
}

// TestHiddenCPUTime replays a trace of this host's 6.18 build, which runs no
// BPF program while PID 1's threads are current: three completions of a
// blocking sendto happened in softirqs on such threads' time and were found
// by the sweep, after the call returned. They are named as hidden, neither
// as a broken promise nor as frames the call returned before.
func TestHiddenCPUTime(t *testing.T) {
	rep := replay(t, "hidden-pid1")
	d := diag(rep, report.DiagHiddenTasks)
	if d == nil || d.Severity != "warning" || !strings.Contains(d.Title, "pid 1 process_api") || !strings.Contains(d.Title, "3 frame events missed there") {
		t.Fatalf("hidden-cpu-time diagnosis: %+v", d)
	}
	if diag(rep, report.DiagBrokenPromise) != nil || diag(rep, report.DiagReconstructed) != nil {
		t.Errorf("the hidden completions were held against the plan: %+v", rep.Diagnoses)
	}
	var windows int
	for _, h := range rep.Hidden {
		windows += h.Windows
		if h.PID != 1 || h.Comm != "process_api" || h.NS == 0 {
			t.Errorf("hidden task %+v: want pid 1 process_api, some time", h)
		}
	}
	if windows != 3 {
		t.Errorf("hidden tasks %+v: want 3 windows in all", rep.Hidden)
	}
	var hidden uint64
	for _, p := range rep.Promises {
		hidden += p.Hidden
		if p.Broken() {
			t.Errorf("promise broken: %s", p)
		}
	}
	var rounds, late int
	ret := rep.Sockets[0].Calls[0].Return
	for _, rd := range rep.Sockets[0].Rounds {
		if rd.Hidden {
			rounds++
		}
		if rd.Available > ret && !rd.Hidden {
			late++
		}
	}
	if hidden != 3 || rounds != 3 || late != 0 || rep.Totals.CompletedBounded != 3 {
		t.Errorf("%d reconstructions excused, %d rounds hidden, %d completed after the return unexplained, %d completions bounded: want 3, 3, 0, 3",
			hidden, rounds, late, rep.Totals.CompletedBounded)
	}
}
