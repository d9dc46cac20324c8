package report_test

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/record"
	"github.com/ringtrace/ringtrace/tracer/report"
)

const goldenDir = "../../testdata/golden"

// checkGolden compares got with testdata/golden/name; -update rewrites it.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join(goldenDir, name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./tracer/report -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (rerun with -update if intended)", path)
	}
}

// recordingNames lists the recorded traces.
func recordingNames(t *testing.T) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(recordings, "*.rtrec"))
	if len(files) == 0 {
		t.Fatal("no recordings")
	}
	var names []string
	for _, f := range files {
		names = append(names, strings.TrimSuffix(filepath.Base(f), ".rtrec"))
	}
	return names
}

type pfEvent struct {
	Name string         `json:"name"`
	Cat  string         `json:"cat"`
	Ph   string         `json:"ph"`
	TS   float64        `json:"ts"`
	Dur  *float64       `json:"dur"`
	PID  uint32         `json:"pid"`
	TID  uint32         `json:"tid"`
	S    string         `json:"s"`
	Args map[string]any `json:"args"`
}

type pfTrace struct {
	TraceEvents     []pfEvent      `json:"traceEvents"`
	DisplayTimeUnit string         `json:"displayTimeUnit"`
	Metadata        map[string]any `json:"metadata"`
}

type track struct{ pid, tid uint32 }

// perfettoOf renders rep and parses the JSON back, strictly.
func perfettoOf(t *testing.T, rep *report.Report) (*pfTrace, []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := rep.WritePerfetto(&buf); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(buf.Bytes()))
	dec.DisallowUnknownFields()
	var tr pfTrace
	if err := dec.Decode(&tr); err != nil {
		t.Fatalf("perfetto JSON does not parse: %v", err)
	}
	return &tr, buf.Bytes()
}

func (tr *pfTrace) processPID(t *testing.T, prefix string) uint32 {
	t.Helper()
	for _, e := range tr.TraceEvents {
		if e.Ph == "M" && e.Name == "process_name" && strings.HasPrefix(e.Args["name"].(string), prefix) {
			return e.PID
		}
	}
	t.Fatalf("no process named %q...", prefix)
	return 0
}

// threads maps a process's thread names to their tids.
func (tr *pfTrace) threads(pid uint32) map[string]uint32 {
	m := map[string]uint32{}
	for _, e := range tr.TraceEvents {
		if e.Ph == "M" && e.Name == "thread_name" && e.PID == pid {
			m[e.Args["name"].(string)] = e.TID
		}
	}
	return m
}

func (tr *pfTrace) on(k track, ph string) []pfEvent {
	var out []pfEvent
	for _, e := range tr.TraceEvents {
		if e.Ph == ph && e.PID == k.pid && e.TID == k.tid {
			out = append(out, e)
		}
	}
	return out
}

// checkPerfetto asserts what must hold for any report: the format, named
// tracks, times inside the trace, properly nested slices, and as many
// slices, instants and counters as the report has things.
func checkPerfetto(t *testing.T, rep *report.Report, tr *pfTrace) {
	t.Helper()
	if tr.DisplayTimeUnit != "ns" || tr.Metadata["tool"] != "ringtrace" {
		t.Errorf("displayTimeUnit %q metadata %v", tr.DisplayTimeUnit, tr.Metadata)
	}
	total := float64(rep.End-rep.Start)/1e3 + 1e-6
	procs, threads := map[uint32]bool{}, map[track]bool{}
	slices := map[track][]pfEvent{}
	count := map[string]int{}
	for _, e := range tr.TraceEvents {
		switch e.Ph {
		case "M":
			switch e.Name {
			case "process_name":
				procs[e.PID] = true
			case "thread_name":
				threads[track{e.PID, e.TID}] = true
			}
			continue
		case "X":
			if e.Dur == nil || *e.Dur < 0 || e.TS+*e.Dur > total {
				t.Errorf("slice %q at %v: duration %v outside the trace (%v us)", e.Name, e.TS, e.Dur, total)
			} else {
				slices[track{e.PID, e.TID}] = append(slices[track{e.PID, e.TID}], e)
			}
		case "C", "i":
		default:
			t.Errorf("event phase %q", e.Ph)
		}
		count[e.Ph+":"+e.Cat]++
		if e.TS < 0 || e.TS > total {
			t.Errorf("%s %q at %v us, outside the trace", e.Ph, e.Name, e.TS)
		}
		if !procs[e.PID] || (e.Ph != "C" && e.S != "p" && !threads[track{e.PID, e.TID}]) {
			t.Errorf("%s %q on an unnamed track %d/%d", e.Ph, e.Name, e.PID, e.TID)
		}
	}
	for k, ss := range slices {
		checkNesting(t, k, ss)
	}
	var calls, sleeps, drops, spans int
	for _, s := range rep.Sockets {
		calls += len(s.Calls)
		drops += len(s.Drops)
		for _, c := range s.Calls {
			sleeps += len(c.Sleeps)
		}
		checkFrameTracks(t, rep, tr, s)
		checkCounters(t, tr, s)
	}
	for _, c := range rep.CPUs {
		spans += len(c.Spans)
	}
	if count["X:sendto"] != calls || count["X:sleep"] != sleeps || count["i:drop"] != drops || count["X:softirq"] != spans {
		t.Errorf("event counts %v, want %d sendto, %d sleep, %d drop, %d softirq", count, calls, sleeps, drops, spans)
	}
}

// checkNesting: slices on one track either nest or follow each other.
func checkNesting(t *testing.T, k track, ss []pfEvent) {
	t.Helper()
	sort.SliceStable(ss, func(i, j int) bool {
		if ss[i].TS != ss[j].TS {
			return ss[i].TS < ss[j].TS
		}
		return *ss[i].Dur > *ss[j].Dur
	})
	const eps = 1e-6
	var stack []pfEvent
	for _, s := range ss {
		for len(stack) > 0 && s.TS >= stack[len(stack)-1].TS+*stack[len(stack)-1].Dur-eps {
			stack = stack[:len(stack)-1]
		}
		if n := len(stack); n > 0 && s.TS+*s.Dur > stack[n-1].TS+*stack[n-1].Dur+eps {
			t.Errorf("track %v: %q at %v overlaps %q at %v without nesting", k, s.Name, s.TS, stack[n-1].Name, stack[n-1].TS)
		}
		stack = append(stack, s)
	}
}

// checkFrameTracks: one "frame N" thread per frame of the socket, and a
// SENDING slice per transition to SENDING.
func checkFrameTracks(t *testing.T, rep *report.Report, tr *pfTrace, s *report.Socket) {
	t.Helper()
	pid := tr.processPID(t, s.Label+" ")
	th := tr.threads(pid)
	frames := map[uint32]bool{}
	want := 0
	for _, rd := range s.Rounds {
		frames[rd.Frame] = true
		for _, x := range rd.Transitions {
			if x.To == event.Sending {
				want++
			}
		}
	}
	if len(th) != len(frames) {
		t.Errorf("%s: %d frame tracks, want %d", s.Label, len(th), len(frames))
	}
	got := 0
	for name, tid := range th {
		if !strings.HasPrefix(name, "frame ") {
			t.Errorf("%s: thread %q", s.Label, name)
		}
		for _, e := range tr.on(track{pid, tid}, "X") {
			if strings.HasPrefix(e.Name, "SENDING") {
				got++
			}
		}
	}
	if got != want {
		t.Errorf("%s: %d SENDING slices, want %d", s.Label, got, want)
	}
}

// checkCounters: the three series, ending at the socket's last sample.
func checkCounters(t *testing.T, tr *pfTrace, s *report.Socket) {
	t.Helper()
	if len(s.Series) == 0 {
		return
	}
	pid := tr.processPID(t, s.Label+" ")
	last := map[string]float64{}
	for _, e := range tr.TraceEvents {
		if e.Ph == "C" && e.PID == pid {
			for _, v := range e.Args {
				last[e.Name] = v.(float64)
			}
		}
	}
	end := s.Series[len(s.Series)-1]
	want := map[string]float64{"sk_wmem_alloc": float64(end.Wmem), "sk_sndbuf": float64(end.SndBuf), "pending": float64(end.Pending)}
	for name, v := range want {
		if got, ok := last[name]; !ok || got != v {
			t.Errorf("%s: counter %s ends at %v (present %v), want %v", s.Label, name, got, ok, v)
		}
	}
}

func TestPerfettoRecordings(t *testing.T) {
	for _, name := range recordingNames(t) {
		t.Run(name, func(t *testing.T) {
			rep := replay(t, name)
			tr, raw := perfettoOf(t, rep)
			checkPerfetto(t, rep, tr)
			checkGolden(t, "perfetto-"+name+".json", raw)
		})
	}
}

// frameSlices returns the slices on a frame's track of the first socket.
func frameSlices(t *testing.T, tr *pfTrace, label string, frame string) (track, []pfEvent) {
	t.Helper()
	pid := tr.processPID(t, label+" ")
	tid, ok := tr.threads(pid)["frame "+frame]
	if !ok {
		t.Fatalf("no track for frame %s", frame)
	}
	return track{pid, tid}, tr.on(track{pid, tid}, "X")
}

func TestPerfettoStatus(t *testing.T) {
	rep := replay(t, "status")
	tr, _ := perfettoOf(t, rep)
	pid := tr.processPID(t, "sk1 ")
	if th := tr.threads(pid); len(th) != 2 {
		t.Fatalf("frame tracks %v, want frame 0 and frame 1", th)
	}
	_, ss := frameSlices(t, tr, "sk1", "1")
	var sending *pfEvent
	for i := range ss {
		if ss[i].Name == "SENDING" {
			sending = &ss[i]
		}
	}
	if sending == nil {
		t.Fatalf("frame 1 slices %v: no SENDING", ss)
	}
	var f1 *report.Round
	for _, rd := range rep.Sockets[0].Rounds {
		if rd.Frame == 1 {
			f1 = rd
		}
	}
	// The slice is the frame's time in flight (about 32 ms on the shaped link).
	if d := *sending.Dur * 1e3; math.Abs(d-float64(f1.InFlight())) > 1 || d < 24e6 || d > 45e6 {
		t.Errorf("frame 1 SENDING lasts %.0f ns, in flight %d ns, want about 32 ms", d, f1.InFlight())
	}
	if sending.Args["end_cause"] != "skb-freed" || sending.Args["end_precision"] != "exact" {
		t.Errorf("SENDING args %v", sending.Args)
	}
}

func TestPerfettoQdiscDrop(t *testing.T) {
	rep := replay(t, "qdisc-drop")
	tr, _ := perfettoOf(t, rep)
	d := rep.Sockets[0].Drops[0]
	k, ss := frameSlices(t, tr, "sk1", strconv.Itoa(int(d.Frame)))
	drops := tr.on(k, "i")
	if len(drops) != 1 || drops[0].Name != "drop: QDISC_DROP" || drops[0].Args["synchronous"] != true {
		t.Fatalf("drop instants on frame %d: %+v", d.Frame, drops)
	}
	var names []string
	for _, s := range ss {
		names = append(names, s.Name)
	}
	want := []string{"SEND_REQUEST", "SENDING", "AVAILABLE (dropped)", "SEND_REQUEST (rolled back, not sent by end of trace)"}
	if strings.Join(names, "|") != strings.Join(want, "|") {
		t.Errorf("frame %d slices %q, want %q", d.Frame, names, want)
	}
	if ss[1].Args["end_cause"] != "dropped" || ss[3].TS*1e3 < float64(d.TS-rep.Start)-1 {
		t.Errorf("SENDING %v / roll-back at %v us, drop at %d ns", ss[1].Args, ss[3].TS, d.TS-rep.Start)
	}
	call := tr.on(track{rep.Sockets[0].Calls[0].PID, rep.Sockets[0].Calls[0].TID}, "X")
	if len(call) != 1 || !strings.Contains(call[0].Args["ret"].(string), "ENOBUFS") || call[0].Args["drops"] != 1.0 {
		t.Errorf("sendto slices %+v", call)
	}
}

func TestPerfettoBoundedCompletions(t *testing.T) {
	rep := replay(t, "lo")
	tr, _ := perfettoOf(t, rep)
	n := 0
	for _, e := range tr.TraceEvents {
		if e.Name == "completion window (bounded)" {
			n++
		}
		if e.Name == "SENDING" && e.Args["end_precision"] != "bounded" {
			t.Errorf("lo SENDING slice %v: completions on lo are bounded", e.Args)
		}
	}
	if n != rep.Totals.CompletedBounded || n == 0 {
		t.Errorf("%d completion windows, want %d", n, rep.Totals.CompletedBounded)
	}
}

// syntheticReport has what the recordings lack: WRONG_FORMAT, a frame in
// flight at the end, a call still in the kernel, an asynchronous drop,
// two sockets and text that needs escaping.
func syntheticReport() *report.Report {
	const ms, us = 1_000_000, 1_000
	t0 := uint64(5_000_000_000)
	at := func(ns uint64) uint64 { return t0 + ns }
	tr := func(ns uint64, from, to event.State, c string, exact bool, lo uint64) report.Transition {
		p := event.Bounded
		if exact {
			p = event.Exact
		}
		x := report.Transition{TS: at(ns), From: from, To: to, Prec: p, Cause: cause(c)}
		if lo != 0 {
			x.TSLo = at(lo)
		}
		return x
	}
	A, R, S, W, U := event.Available, event.SendRequest, event.Sending, event.WrongFormat, event.Unknown
	sleeps := []*report.Sleep{{TID: 101, Start: at(250 * us), End: at(350 * us), Reason: event.WaitSndbuf, Waker: event.WaitSndbuf, SndBuf: 9216, Wmem: 11000, Pending: 5, Completions: 2}}
	sk1 := &report.Socket{Sk: 0xffff1, Ino: 7, Label: "sk1", PID: 100, Comm: `tx<app>&"`, Frames: 4, Devs: []string{"eth0"},
		Rounds: []*report.Round{
			{Frame: 0, Call: 0, Done: true, ExactDone: true, State: A, Dev: "eth0", Requested: at(0), Sending: at(100 * us), Available: at(400 * us),
				Transitions: []report.Transition{tr(0, U, R, "user-space", false, 0), tr(100*us, R, S, "xmit", true, 0), tr(400*us, S, A, "destructor", true, 0)}},
			{Frame: 0, Call: 1, Done: true, State: A, Dev: "eth0", Requested: at(2 * ms), Sending: at(2100 * us), Available: at(2500 * us), FreeReason: "UNHANDLED_PROTO",
				Transitions: []report.Transition{tr(2*ms, A, R, "user-space", false, 400*us), tr(2100*us, R, S, "xmit", true, 0), tr(2500*us, S, A, "orphaned-in-driver", false, 2300*us)}},
			{Frame: 1, Call: 0, Done: true, ExactDone: true, State: A, Drops: 1, Requested: at(0), Sending: at(3 * ms), Available: at(3500 * us),
				Transitions: []report.Transition{tr(0, U, R, "user-space", false, 0), tr(150*us, R, S, "xmit", true, 0), tr(160*us, S, A, "dropped", true, 0),
					tr(170*us, A, R, "rolled-back", false, 158*us), tr(3*ms, R, S, "xmit", true, 0), tr(3500*us, S, A, "destructor", true, 0)}},
			{Frame: 2, Call: 0, WrongFormat: true, State: W, Requested: at(0),
				Transitions: []report.Transition{tr(0, U, R, "user-space", false, 0), tr(120*us, R, W, "bad-frame", true, 0)}},
			{Frame: 3, Call: 0, State: S, Requested: at(0), Sending: at(200 * us),
				Transitions: []report.Transition{tr(0, U, R, "user-space", false, 0), tr(200*us, R, S, "xmit", true, 0)}},
		},
		Calls: []*report.Call{
			{TID: 101, PID: 100, Comm: "tx-worker", Enter: at(50 * us), Return: at(600 * us), Ret: 3000, FramesTaken: 3, Sleeps: sleeps, Drops: 1},
			{TID: 101, PID: 100, Comm: "tx-worker", Enter: at(2 * ms), Return: at(2600 * us), Flags: unix.MSG_DONTWAIT, DontWait: true, Ret: -int64(unix.ENOBUFS), FramesTaken: 1},
			{TID: 102, PID: 100, Comm: "tx-worker2", Enter: at(9 * ms), FramesTaken: 0,
				Sleeps: []*report.Sleep{{TID: 102, Start: at(9200 * us), Reason: event.WaitCompletion, SndBuf: 9216, Wmem: 1500, Pending: 1}}},
		},
		Series: []report.Sample{{TS: at(0), SndBuf: 9216}, {TS: at(100 * us), SndBuf: 9216, Wmem: 1500, Pending: 1},
			{TS: at(200 * us), SndBuf: 9216, Wmem: 3000, Pending: 2}, {TS: at(400 * us), SndBuf: 9216, Wmem: 1500, Pending: 1}},
		Drops: []report.Drop{{TS: at(160 * us), Frame: 1, Reason: "QDISC_DROP", Location: "__dev_queue_xmit+0xd01", Synchronous: true, Dev: "eth0"},
			{TS: at(5 * ms), Frame: event.NoFrame, Reason: "TC_EGRESS", Dev: "eth0"}},
		NCalls: 3, FrameUses: 5, NDrops: 2, SndBuf: 9216, MaxWmem: 3000, MaxPending: 2,
	}
	sk2 := &report.Socket{Sk: 0xffff2, Ino: 8, Label: "sk2", PID: 200, Comm: "other", Frames: 2, FrameUses: 1,
		Rounds: []*report.Round{{Frame: 0, Call: -1, Done: true, ExactDone: true, State: A, Requested: at(1 * ms), Sending: at(1500 * us), Available: at(1600 * us),
			Transitions: []report.Transition{tr(1*ms, U, R, "user-space", false, 0), tr(1500*us, R, S, "xmit", true, 0), tr(1600*us, S, A, "skb-freed", true, 0)}}}}
	return &report.Report{Start: t0, End: at(10 * ms), Kernel: "6.1.0-test", Class: "tracepoint", Completion: "destructor",
		Sockets: []*report.Socket{sk1, sk2},
		CPUs: []*report.CPU{{ID: 0, Spans: []report.Span{{Start: at(150 * us), End: at(180 * us), Vec: 2}, {Start: at(400 * us), End: at(420 * us), Vec: 3}}},
			{ID: 3, Spans: []report.Span{{Start: at(5 * ms), End: at(5050 * us), Vec: 3}}}},
		Diagnoses: []report.Diagnosis{{ID: "qdisc-drop", Severity: "problem", Socket: "sk1", Title: `dropped <b>1</b> frame & "rolled" it back`,
			Evidence: []string{"sk_wmem_alloc >= sk_sndbuf <script>alert(1)</script>"}}},
		Totals: report.Totals{Calls: 3, FramesSent: 5, Completed: 4, CompletedExact: 3, CompletedBounded: 1, InFlightAtEnd: 1, SyncDrops: 1, AsyncDrops: 1, RolledBack: 1, WrongFormat: 1, ENOBUFS: 1},
	}
}

// cause finds an event.Cause by name.
func cause(name string) event.Cause {
	for c := event.Cause(0); c < 64; c++ {
		if c.String() == name {
			return c
		}
	}
	panic("unknown cause " + name)
}

func TestPerfettoSynthetic(t *testing.T) {
	rep := syntheticReport()
	tr, raw := perfettoOf(t, rep)
	checkPerfetto(t, rep, tr)
	checkGolden(t, "perfetto-synthetic.json", raw)
	want := map[string]bool{"WRONG_FORMAT": false, "SENDING (not completed by end of trace)": false,
		"completion window (bounded)": false, "sendto (still in the kernel at end of trace)": false,
		"sleep: sndbuf": false, "sleep: tx-completion": false, "drop: TC_EGRESS": false, "NET_TX": false}
	for _, e := range tr.TraceEvents {
		if _, ok := want[e.Name]; ok {
			want[e.Name] = true
		}
		if e.Name == "drop: TC_EGRESS" && e.S != "p" {
			t.Errorf("a drop without a frame is process-wide: %+v", e)
		}
	}
	for n, ok := range want {
		if !ok {
			t.Errorf("no %q event", n)
		}
	}
}

// FuzzRenderers: any event sequence builds a report that renders as valid
// Perfetto JSON and as HTML. The seed is the start of a real recording
// (small seeds fuzz faster).
func FuzzRenderers(f *testing.F) {
	r, err := record.Open(filepath.Join(recordings, "qdisc-drop.rtrec"))
	if err != nil {
		f.Fatal(err)
	}
	var seed []byte
	for e, err := r.NextEvent(); err == nil && len(seed) < 16*event.RawSize; e, err = r.NextEvent() {
		seed = append(seed, event.Encode(e)...)
	}
	r.Close()
	f.Add(seed)
	f.Fuzz(func(t *testing.T, b []byte) {
		var in seq
		for ; len(b) >= event.RawSize; b = b[event.RawSize:] {
			if e, err := event.Decode(b[:event.RawSize]); err == nil {
				// The normaliser caps a corrupt scan at event.MaxScanRun
				// frames (TestNormalizerCapsCorruptScan); smaller rings
				// keep the fuzzer at thousands of inputs a second.
				e.Scan.Frames = min(e.Scan.Frames, 1<<12)
				in.evs = append(in.evs, e)
			}
		}
		rep := in.build()
		var buf bytes.Buffer
		if err := rep.WritePerfetto(&buf); err != nil || !json.Valid(buf.Bytes()) {
			t.Fatalf("perfetto: %v", err)
		}
		if err := rep.WriteHTML(&bytes.Buffer{}); err != nil {
			t.Fatal(err)
		}
	})
}
