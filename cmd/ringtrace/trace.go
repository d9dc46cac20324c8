package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/ebpf/btf"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/holders"
	"github.com/ringtrace/ringtrace/tracer/inputerr"
	"github.com/ringtrace/ringtrace/tracer/kernel"
	"github.com/ringtrace/ringtrace/tracer/nsexec"
	"github.com/ringtrace/ringtrace/tracer/outfile"
	"github.com/ringtrace/ringtrace/tracer/plan"
	"github.com/ringtrace/ringtrace/tracer/promise"
	"github.com/ringtrace/ringtrace/tracer/record"
	"github.com/ringtrace/ringtrace/tracer/report"
	"github.com/ringtrace/ringtrace/tracer/session"
	"github.com/ringtrace/ringtrace/tracer/tick"
)

// Event groups for --events.
var eventGroups = map[string][]event.Kind{
	"frames":  {event.FrameState, event.SockGone},
	"calls":   {event.SendmsgEnter, event.SendmsgReturn, event.XmitRC},
	"sched":   {event.Sleep, event.Wake},
	"qdisc":   {event.QdiscEnqueue, event.QdiscDequeue, event.Drop},
	"xmit":    {event.XmitStart, event.XmitDone},
	"rx":      {event.RX},
	"softirq": {event.Softirq, event.NapiPoll},
}

const defaultEvents = "frames,calls,sched,qdisc,xmit"

// parseEvents turns "frames,calls,drop" (groups or kind names, or "all")
// into kinds.
func parseEvents(s string) ([]event.Kind, error) {
	set := map[event.Kind]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		switch {
		case part == "":
		case part == "all":
			for _, k := range event.Kinds() {
				set[k] = true
			}
		case eventGroups[part] != nil:
			for _, k := range eventGroups[part] {
				set[k] = true
			}
		default:
			k, ok := event.ParseKind(part)
			if !ok {
				var names []string
				for g := range eventGroups {
					names = append(names, g)
				}
				sort.Strings(names)
				return nil, inputerr.New("--events: unknown group or event %q (groups: %s, all; or an event name such as frame_state)", part, strings.Join(names, ", "))
			}
			set[k] = true
		}
	}
	if len(set) == 0 {
		return nil, inputerr.New("--events selects nothing")
	}
	var kinds []event.Kind
	for _, k := range event.Kinds() {
		if set[k] {
			kinds = append(kinds, k)
		}
	}
	return kinds, nil
}

// parseRingbufSize reads --ringbuf-size: a number of MiB, or a number with
// a k/m unit (KiB, MiB). The kernel wants a power of two of whole pages.
func parseRingbufSize(v string) (uint32, error) {
	s := strings.ToLower(strings.TrimSuffix(strings.TrimSuffix(strings.TrimSpace(v), "ib"), "b"))
	shift := 20
	switch {
	case strings.HasSuffix(s, "k"):
		s, shift = strings.TrimSuffix(s, "k"), 10
	case strings.HasSuffix(s, "m"):
		s = strings.TrimSuffix(s, "m")
	}
	n, err := strconv.ParseUint(s, 10, 32)
	b := n << shift
	if err != nil || n == 0 || b&(b-1) != 0 || b < uint64(os.Getpagesize()) || b > 1<<30 {
		return 0, inputerr.New("--ringbuf-size %q: want a power of two from 4k to 1024m (a plain number is MiB)", v)
	}
	return uint32(b), nil
}

func traceFlags() []cli.Flag {
	return append(append(kernelFlags(),
		&cli.UintFlag{Name: "pid", Usage: "only sockets used by this process (tgid)"},
		&cli.StringFlag{Name: "comm", Usage: "only sockets used by tasks with this name"},
		&cli.StringFlag{Name: "ifname", Usage: "only sockets bound to this interface"},
		&cli.DurationFlag{Name: "duration", Usage: "stop after this long (default: until Ctrl-C)"},
		&cli.StringFlag{Name: "events", Value: defaultEvents, Usage: "event groups (frames, calls, sched, qdisc, xmit, rx, softirq, all) or event names; softirq/napi events are per CPU and not restricted by --pid/--comm/--ifname"},
		&cli.BoolFlag{Name: "json", Usage: "one JSON object per event; the last line is the summary"},
		&cli.StringFlag{Name: "ready-file", Usage: "create this file once every probe is attached"},
		&cli.StringFlag{Name: "record", Usage: "also write the raw event stream to this file (see `ringtrace report`)"},
		&cli.BoolFlag{Name: "summary", Usage: "print no events: at exit, print the report (diagnoses, sockets, calls)"},
		&cli.StringFlag{Name: "ringbuf-size", Usage: "BPF ring buffer size: MiB, or with a unit (4k, 256k, 64m); a power of two, 4k .. 1024m (default: 8, or 4 with an aggregating --summary)"},
		&cli.UintFlag{Name: "max-frames", Value: 65536, Usage: "ring frames tracked at once, over all sockets"},
		&cli.DurationFlag{Name: "sweep-interval", Value: 20 * time.Millisecond, Usage: "how often frames no hook saw complete are re-read"},
		stuckAfterFlag(),
		kernelAddressesFlagDef("show raw kernel addresses (sockets and napi in JSON, stuck frames' skbs, unnamed locations) and keep them in the --record file: never share what it writes"),
	), renderFlags()...)
}

func traceCommand() *cli.Command {
	return &cli.Command{
		Name:      "trace",
		Usage:     "stream decoded, ordered TX-ring events until Ctrl-C or --duration",
		UsageText: "ringtrace trace [--pid PID] [--comm NAME] [--ifname IF] [--json] [--duration D] [--perfetto OUT.json] [--html OUT.html]",
		Flags:     traceFlags(),
		Action:    runTrace,
	}
}

// traceSession holds what a trace needs, for trace and (later) run.
type traceSession struct {
	facts  *kernel.Facts
	plan   *plan.Plan
	sess   *session.Session
	walker *holders.Loader // the stuck-frame iterator, loading since the probes were attached
	start  uint64
	wall   time.Time
}

// Close unloads the stuck-frame iterator, then detaches the probes.
func (ts *traceSession) Close() error {
	return errors.Join(ts.walker.Close(), ts.sess.Close())
}

// startRecording writes a recording header to f, if any, and returns the
// raw-record callback for Session.Run. The recording keeps kernel
// addresses only when names show them (--kernel-addresses).
func (ts *traceSession) startRecording(f *os.File, nm event.Names) (*record.Writer, func([]byte) error, error) {
	if f == nil {
		return nil, nil, nil
	}
	w, err := record.NewWriter(f, record.Header{
		Tool: "ringtrace " + version, Created: ts.wall, Monotonic: ts.start,
		Kernel: ts.facts, Plan: ts.plan, Command: os.Args, KernelAddresses: nm.KernelAddresses,
	}, record.Options{Symbol: nm.Symbol})
	if err != nil {
		return nil, nil, err
	}
	return w, w.Write, nil
}

// summaryEvents are what an aggregating --summary streams: calls, sleeps,
// drops and the rare frame transitions (roll-backs, WRONG_FORMAT).
const summaryEvents = "frames,calls,sched,drop"

// aggregating reports whether --summary keeps frames in the kernel: not when
// a recording or a timeline (--perfetto, --html) wants every frame event.
func aggregating(c *cli.Context) bool {
	return c.Bool("summary") && c.String("record") == "" && c.String("perfetto") == "" && c.String("html") == ""
}

// ringbufSize is --ringbuf-size or its default for the mode. The buffer is
// mapped twice into the process (the kernel's wrap-around trick), all of it
// resident: streaming every frame at ~1M events/s needs 8 MiB to ride out
// the reader's scheduling delays without loss; an aggregating --summary
// streams a few events per sendmsg call, not per frame.
func ringbufSize(c *cli.Context) string {
	switch {
	case c.IsSet("ringbuf-size"):
		return c.String("ringbuf-size")
	case aggregating(c):
		return "4"
	}
	return "8"
}

// heapLimit is the soft limit trace puts on the Go heap when it keeps no
// per-event history (no --perfetto or --html timeline): what it holds is
// bounded (the reorder window, per-socket state, the report's tables),
// and without a limit the collector lets the heap double that between
// cycles. GOMEMLIMIT, when set, wins.
const heapLimit = 36 << 20

func limitHeap(c *cli.Context) {
	if os.Getenv("GOMEMLIMIT") != "" || c.String("perfetto") != "" || c.String("html") != "" {
		return
	}
	debug.SetMemoryLimit(heapLimit)
}

func openTrace(c *cli.Context) (*traceSession, error) {
	evs := c.String("events")
	if aggregating(c) && !c.IsSet("events") {
		evs = summaryEvents
	}
	kinds, err := parseEvents(evs)
	if err != nil {
		return nil, err
	}
	rbBytes, err := parseRingbufSize(ringbufSize(c))
	if err != nil {
		return nil, err
	}
	if c.Uint("max-frames") == 0 {
		return nil, inputerr.New("--max-frames must be positive")
	}
	if c.Duration("duration") < 0 || c.Duration("sweep-interval") <= 0 {
		return nil, inputerr.New("--duration and --sweep-interval must be positive")
	}
	if _, err := stuckAfter(c); err != nil {
		return nil, err
	}
	if len(c.String("comm")) > 15 || len(c.String("ifname")) > 15 {
		return nil, inputerr.New("--comm and --ifname are at most 15 characters (kernel limits)")
	}
	if pid := c.Uint("pid"); pid != 0 {
		if err := unix.Kill(int(pid), 0); errors.Is(err, unix.ESRCH) {
			return nil, inputerr.New("--pid %d: no such process", pid)
		}
	}
	if ifname := c.String("ifname"); ifname != "" && len(nsexec.Where(ifname)) == 0 {
		fmt.Fprintf(os.Stderr, "ringtrace: no interface %q exists now, in any network namespace: tracing sockets bound to one later\n", ifname)
	}
	facts, spec, p, err := probeKernel(c)
	if err != nil {
		return nil, err
	}
	sess, err := session.Open(session.Options{
		Facts: facts, BTF: spec, Plan: p, Kinds: kinds,
		Filter:       session.Filter{PID: uint32(c.Uint("pid")), Comm: c.String("comm"), Ifname: c.String("ifname")},
		RingBufBytes: rbBytes, MaxFrames: uint32(c.Uint("max-frames")),
		SweepInterval: c.Duration("sweep-interval"), Aggregate: aggregating(c),
	})
	if err != nil {
		return nil, err
	}
	if path := c.String("ready-file"); path != "" {
		if err := os.WriteFile(path, []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o644); err != nil {
			sess.Close()
			return nil, inputerr.New("--ready-file %s: %v", path, err)
		}
	}
	var ts traceSession
	ts.facts, ts.sess, ts.plan = facts, sess, sess.Plan()
	// After the ready file, so the load never delays it; before any frame
	// can be stuck, so the first walk does not wait for it.
	ts.walker = loadWalker(ts.plan, spec)
	ts.start, ts.wall = event.MonotonicNow(), time.Now()
	fmt.Fprintf(os.Stderr, "ringtrace: tracing TX-ring sockets, hook class %s (%s), TX completion %s; attached in %v\n",
		p.Class.Letter(), p.Class, completionLine(p), sess.Ready.Round(time.Millisecond))
	return &ts, nil
}

// textSink prints decoded lines; jsonSink one object per line.
type textSink struct {
	w   *bufio.Writer
	f   *event.Formatter
	buf []byte
}

func (s *textSink) Event(e *event.Event) error {
	s.buf = s.f.AppendText(s.buf[:0], e)
	s.buf = append(s.buf, '\n')
	_, err := s.w.Write(s.buf)
	return err
}
func (s *textSink) Flush() error { return s.w.Flush() }

type jsonSink struct {
	w   *bufio.Writer
	f   *event.Formatter
	buf []byte
}

func (s *jsonSink) Event(e *event.Event) error {
	s.buf = s.f.AppendJSON(s.buf[:0], e)
	s.buf = append(s.buf, '\n')
	_, err := s.w.Write(s.buf)
	return err
}
func (s *jsonSink) Flush() error { return s.w.Flush() }

// teeSink feeds every event to several sinks.
type teeSink []session.Sink

func (t teeSink) Event(e *event.Event) error {
	for _, s := range t {
		if err := s.Event(e); err != nil {
			return err
		}
	}
	return nil
}

func (t teeSink) Flush() error {
	for _, s := range t {
		if err := s.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// builderSink rebuilds the report live.
type builderSink struct{ b *report.Builder }

func (s builderSink) Event(e *event.Event) error { s.b.Add(e); return nil }
func (builderSink) Flush() error                 { return nil }

func names(f *kernel.Facts, kernelAddresses bool) event.Names {
	sym := &kernel.Symbolizer{}
	return event.Names{
		DropReason:      func(code uint32) string { return f.DropReasons[code] },
		Symbol:          sym.Lookup,
		KernelAddresses: kernelAddresses,
	}
}

func runTrace(c *cli.Context) error {
	// Fail on an unwritable --record before attaching anything.
	var recFile *os.File
	if path := c.String("record"); path != "" {
		f, err := outfile.Create(path)
		if err != nil {
			return inputerr.New("--record %s: %v", path, err)
		}
		recFile = f
		defer f.Close()
	}
	outs, err := createRenderFiles(c) // --perfetto, --html: checked before attaching too
	if err != nil {
		return err
	}
	ts, err := openTrace(c)
	if err != nil {
		outs.abort()
		return err
	}
	limitHeap(c) // after loading: collecting during it would delay attaching
	defer ts.Close()
	ctx := c.Context
	if d := c.Duration("duration"); d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	out := bufio.NewWriterSize(os.Stdout, 256<<10)
	nm := names(ts.facts, c.Bool(kernelAddressesFlag))
	f := event.NewFormatter(ts.start, nm)
	var sinks teeSink
	var builder *report.Builder
	switch {
	case c.Bool("summary"):
		builder = report.NewBuilder(nm)
		// Only the summary is printed: keep memory flat however long the
		// trace runs, also when every event goes to a --record file
		// (measured: 900 MB after 3 s at 800k events/s without limits).
		// Timelines (--perfetto, --html) need every frame.
		if c.String("perfetto") == "" && c.String("html") == "" {
			builder.SetLimits(report.SummaryLimits)
		}
		sinks = append(sinks, builderSink{builder})
	case c.Bool("json"):
		sinks = append(sinks, &jsonSink{w: out, f: f})
	default:
		sinks = append(sinks, &textSink{w: out, f: f})
		fmt.Fprintf(out, "%14s %-5s %-22s %-4s %-6s %s\n", "TIME(s)", "CPU", "COMM/TID", "SOCK", "FRAME", "EVENT")
	}
	if builder == nil && len(outs) > 0 {
		builder = report.NewBuilder(nm)
		sinks = append(sinks, builderSink{builder})
	}
	promises := promise.New(ts.plan, warnPromise(os.Stderr))
	sinks = append(sinks, promises)
	after, _ := stuckAfter(c)
	var watch *holders.Watcher
	if !aggregating(c) {
		watch = holders.NewWatcher(after, os.Stderr, ts.walker.Walk)
		watch.Settle = ts.sess.Lag()
		watch.KernelAddresses = nm.KernelAddresses
		sinks = append(sinks, watch)
	}
	var sink session.Sink = sinks
	rec, raw, err := ts.startRecording(recFile, nm)
	if err != nil {
		outs.abort()
		return err
	}
	stopLoss := watchLoss(ctx, ts.sess, os.Stderr)
	stopWatch := func() {}
	if watch != nil {
		stopWatch = watch.Start(ctx, stuckTick(after))
	}
	runErr := ts.sess.Run(ctx, sink, raw)
	stopWatch()
	stopLoss()
	var snaps []*holders.Snapshot
	if watch != nil {
		watch.Final()
		snaps = watch.Snapshots()
	}
	st := ts.sess.Stats()
	if rec != nil {
		tr := record.Trailer{Lost: st.Lost, Missed: st.Missed, Holders: snaps, StuckAfterNS: uint64(after),
			Promises: promises.Tallies()}
		if err := rec.CloseWithTrailer(tr); err != nil && runErr == nil {
			runErr = fmt.Errorf("write recording: %w", err)
		}
		fmt.Fprintf(os.Stderr, "ringtrace: recorded %d events to %s\n", rec.Count(), c.String("record"))
	}
	if aggregating(c) {
		n, err := addAggregates(builder, promises, ts.sess)
		if err != nil && runErr == nil {
			runErr = err
		}
		if n > 0 { // frames still SENDING: who holds them
			snap, err := ts.walker.Walk("end")
			if err != nil {
				snap = &holders.Snapshot{TS: event.MonotonicNow(), Why: "end", Err: err.Error()}
			}
			snaps = append(snaps, snap)
		}
	}
	var rep *report.Report
	if builder != nil {
		builder.SetStuckAfter(after)
		for _, s := range snaps {
			builder.AddSnapshot(s)
		}
		builder.SetGaps(st.Lost, st.Duplicates, st.Missed)
		builder.SetPromises(promises.Tallies())
		rep = builder.Finish()
		rep.Kernel, rep.Class, rep.Completion = ts.facts.Release, string(ts.plan.Class), ts.plan.Completion
	}
	switch {
	case c.Bool("summary") && c.Bool("json"):
		if err := json.NewEncoder(out).Encode(summaryReportJSON{rep, st}); err != nil && runErr == nil {
			runErr = err
		}
	case c.Bool("summary"):
		if err := rep.WriteText(out, report.TextOptions{}); err != nil && runErr == nil {
			runErr = err
		}
		writeTextSummary(out, st, promises.Tallies())
	case c.Bool("json"):
		writeJSONSummary(out, st, promises.Tallies())
	default:
		writeTextSummary(out, st, promises.Tallies())
	}
	if err := out.Flush(); err != nil && runErr == nil {
		runErr = err
	}
	if err := outs.write(rep, os.Stderr); err != nil && runErr == nil {
		runErr = err
	}
	return runErr
}

// summaryReportJSON is `trace --summary --json`: one object, the report and the
// session's counters.
type summaryReportJSON struct {
	Report  *report.Report `json:"report"`
	Session session.Stats  `json:"session"`
}

// addAggregates gives the builder (and the promise watch) what the kernel
// counted in aggregate mode: per-socket frame counts and in-flight times,
// and the frames still SENDING (how many: the returned count).
func addAggregates(b *report.Builder, w *promise.Watch, s *session.Session) (int, error) {
	aggs, err := s.Aggregates()
	if err != nil {
		return 0, err
	}
	for k, a := range aggs {
		b.AddFrameAgg(k.Sk, k.Ino, report.FrameAggOf(a))
		w.Completions(a.CompletedExact, a.CompletedBounded)
	}
	sending, err := s.StillSending()
	if err != nil {
		return 0, err
	}
	for _, f := range sending {
		b.AddSending(f.Sock.Sk, f.Sock.Ino, f.Frame, f.Since)
	}
	return len(sending), nil
}

// stuckAfterFlag is --stuck-after, shared by trace and report.
func stuckAfterFlag() cli.Flag {
	return &cli.DurationFlag{Name: "stuck-after", Value: holders.DefaultStuckAfter,
		Usage: "report a frame SENDING this long as stuck, and find who holds it (a receive queue, a qdisc, the device)"}
}

// stuckAfter reads --stuck-after.
func stuckAfter(c *cli.Context) (time.Duration, error) {
	d := c.Duration("stuck-after")
	if d <= 0 {
		return 0, inputerr.New("--stuck-after must be positive (e.g. 500ms, 2s)")
	}
	return d, nil
}

// stuckTick is how often the watcher looks for stuck frames: a tenth of the
// threshold, between 10 ms and 100 ms.
func stuckTick(after time.Duration) time.Duration {
	return min(max(after/10, 10*time.Millisecond), 100*time.Millisecond)
}

// loadWalker starts loading the stuck-frame iterator in the background,
// with the kernel BTF the probes were loaded with (the --btf override, or
// the kernel's, parsed once); the loader drops it once loaded.
func loadWalker(p *plan.Plan, spec *btf.Spec) *holders.Loader {
	return holders.Load(holders.Config{DestructAddr: p.Config.DestructAddr, UargCompleteAddr: p.Config.UargCompleteAddr, KernelBTF: spec})
}

// watchLoss reports ring-buffer losses on stderr as they happen: loss is
// never silent.
func watchLoss(ctx context.Context, s *session.Session, w io.Writer) (stop func()) {
	var reported uint64
	return tick.Every(ctx, time.Second, func() {
		if lost := s.Lost(); lost > reported {
			fmt.Fprintf(w, "ringtrace: LOST %d events so far (ring buffer full: raise --ringbuf-size or narrow --events)\n", lost)
			reported = lost
		}
	})
}

type summaryJSON struct {
	Event      string            `json:"event"`
	Lost       uint64            `json:"lost"`
	LostByKind map[string]uint64 `json:"lost_by_event,omitempty"`
	Events     uint64            `json:"events"`
	PerKind    map[string]uint64 `json:"per_event"`
	Duplicates uint64            `json:"duplicates"`
	Late       uint64            `json:"late"`
	Decode     uint64            `json:"decode_errors"`
	Overflow   map[string]uint64 `json:"overflow,omitempty"`
	Missed     map[string]uint64 `json:"missed_runs,omitempty"`
	Promises   []promise.Tally   `json:"promises,omitempty"`
}

func kindCounts(m map[event.Kind]uint64) map[string]uint64 {
	out := map[string]uint64{}
	for k, v := range m {
		out[k.String()] = v
	}
	return out
}

func writeJSONSummary(w io.Writer, st session.Stats, promises []promise.Tally) {
	b, _ := json.Marshal(summaryJSON{Event: "summary", Lost: st.Lost, LostByKind: kindCounts(st.LostByKind),
		Events: st.Events, PerKind: kindCounts(st.PerKind), Duplicates: st.Duplicates, Late: st.Late,
		Decode: st.Decode, Overflow: st.Overflow, Missed: st.Missed, Promises: promises})
	fmt.Fprintf(w, "%s\n", b)
}

// warnPromise prints, once per promise, that the plan's exact hook is no
// longer what sees the events: the kernel may have changed under the plan.
func warnPromise(w io.Writer) func(string) {
	return func(s string) {
		fmt.Fprintf(w, "ringtrace: WARNING: broken promise: %s; has the kernel changed? run `ringtrace probe --verify`\n", s)
	}
}

func writeTextSummary(w io.Writer, st session.Stats, promises []promise.Tally) {
	fmt.Fprintf(w, "--- %d events", st.Events)
	var ks []string
	for k, v := range st.PerKind {
		ks = append(ks, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(ks)
	if len(ks) > 0 {
		fmt.Fprintf(w, " (%s)", strings.Join(ks, " "))
	}
	fmt.Fprintf(w, ", lost %d", st.Lost)
	if st.Lost > 0 {
		fmt.Fprintf(w, " %v", kindCounts(st.LostByKind))
	}
	if len(st.Overflow) > 0 {
		fmt.Fprintf(w, ", tracking maps full: %v", st.Overflow)
	}
	if len(st.Missed) > 0 {
		fmt.Fprintf(w, ", hook runs the kernel skipped: %s", report.MissedString(st.Missed))
	}
	fmt.Fprintln(w)
	for _, t := range promises {
		switch {
		case t.Broken():
			fmt.Fprintf(w, "--- BROKEN PROMISE %s\n", t)
		case t.Reconstructed > 0:
			fmt.Fprintf(w, "--- reconstructed %s\n", t)
		}
	}
}
