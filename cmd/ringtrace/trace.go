package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/holders"
	"github.com/ringtrace/ringtrace/tracer/inputerr"
	"github.com/ringtrace/ringtrace/tracer/live"
	"github.com/ringtrace/ringtrace/tracer/nsexec"
	"github.com/ringtrace/ringtrace/tracer/outfile"
	"github.com/ringtrace/ringtrace/tracer/plan"
	"github.com/ringtrace/ringtrace/tracer/record"
	"github.com/ringtrace/ringtrace/tracer/report"
	"github.com/ringtrace/ringtrace/tracer/session"
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
		&cli.StringFlag{Name: "cpus", Usage: "run ringtrace's own threads (reader, sweep) only on these CPUs, e.g. 1 or 2-3: keep them off a pinned sender's CPU"},
		&cli.StringFlag{Name: "record", Usage: "also write the raw event stream to this file (see `ringtrace report`)"},
		detailFlag(),
		&cli.BoolFlag{Name: "summary", Usage: "print no events: at exit, print the report (diagnoses, sockets, calls)"},
		&cli.StringFlag{Name: "ringbuf-size", Usage: "BPF ring buffer size: MiB, or with a unit (4k, 256k, 64m); a power of two, 4k .. 1024m (default: 4)"},
		&cli.UintFlag{Name: "max-frames", Value: 65536, Usage: "ring frames tracked at once, over all sockets"},
		&cli.DurationFlag{Name: "sweep-interval", Value: 20 * time.Millisecond, Usage: "how often frames no hook saw complete are re-read"},
		stuckAfterFlag(),
		kernelAddressesFlagDef("show raw kernel addresses (sockets and napi in JSON, stuck frames' skbs, unnamed locations) and keep them in the --record file: never share what it writes"),
	), append(renderFlags(), watchFlags()...)...)
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

// startRecording writes a recording header to f, if any. The recording
// keeps kernel addresses only when names show them (--kernel-addresses).
func startRecording(t *live.Trace, f *os.File, nm event.Names) (*record.Writer, error) {
	if f == nil {
		return nil, nil
	}
	h := t.Header()
	h.Tool, h.KernelAddresses = "ringtrace "+version, nm.KernelAddresses
	return record.NewWriter(f, h, record.Options{Symbol: nm.Symbol})
}

// summaryEvents are what an aggregating --summary streams: calls, sleeps,
// drops and the rare frame transitions (roll-backs, WRONG_FORMAT). Not the
// calls group's xmit_rc: one per frame where fexit/kretprobe hooks
// dev_queue_xmit, that nothing aggregated reads (a 1-vCPU 7.2 guest lost
// calls to the 68 k of them a 2 s sender made).
const summaryEvents = "frames,sendmsg_enter,sendmsg_return,sched,drop"

// detailFlag is --detail, shared by trace and run.
func detailFlag() cli.Flag {
	return &cli.StringFlag{Name: "detail", Value: string(plan.DetailFrames),
		Usage: "frames: follow every frame (per-skb hooks); calls: only the send calls and the sender's sleeps, frames counted from the ring head and a completion frontier, at almost no cost"}
}

// detailLine is what the first line of a trace or run says of --detail.
func detailLine(p *plan.Plan) string {
	if p.FramesTraced() {
		return ""
	}
	return ", send calls only (--detail calls: frames counted, not traced)"
}

// callsOnly reports whether --detail calls was asked for (a bad value is
// reported where the plan is built).
func callsOnly(c *cli.Context) bool {
	d, err := plan.ParseDetail(c.String("detail"))
	return err == nil && d == plan.DetailCalls
}

// aggregating reports whether frames are kept in the kernel: always with
// --detail calls (no frame is followed) and in top, and with --summary unless a
// recording or a timeline (--perfetto, --html) wants every frame event.
func aggregating(c *cli.Context) bool {
	if c.Command != nil && c.Command.Name == "top" {
		return true // top shows the in-kernel counts only
	}
	return callsOnly(c) || c.Bool("summary") && c.String("record") == "" && c.String("perfetto") == "" && c.String("html") == ""
}

// ringbufSize is --ringbuf-size or its default, 4 MiB. The buffer is mapped
// twice into the process (the kernel's wrap-around trick), all of it
// resident: streaming every frame at ~1M events/s needs room for about 50 k
// frame events to ride out the reader's scheduling delays without loss,
// which took 8 MiB of full records and takes 4 MiB of the short records
// frame events mostly come in (measured: 0 lost either way, peak RSS
// 61-71 -> 51-54 MiB); an aggregating --summary streams a few events per
// sendmsg call, not per frame.
func ringbufSize(c *cli.Context) string {
	if c.IsSet("ringbuf-size") {
		return c.String("ringbuf-size")
	}
	return "4"
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

func openTrace(c *cli.Context) (*live.Trace, error) {
	cpus, err := parseCPUList("cpus", c.String("cpus"))
	if err != nil {
		return nil, err
	}
	if len(cpus) > 0 {
		if err := pinProcess(cpus); err != nil {
			return nil, err
		}
	}
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
	t, err := live.Open(live.Options{ReadyFile: c.String("ready-file"), Session: session.Options{
		Facts: facts, BTF: spec, Plan: p, Kinds: kinds,
		Filter:       session.Filter{PID: uint32(c.Uint("pid")), Comm: c.String("comm"), Ifname: c.String("ifname")},
		RingBufBytes: rbBytes, MaxFrames: uint32(c.Uint("max-frames")),
		SweepInterval: c.Duration("sweep-interval"), Aggregate: aggregating(c),
	}})
	var rf *live.ReadyFileError
	if errors.As(err, &rf) {
		return nil, inputerr.New("--ready-file %s: %v", rf.Path, rf.Err)
	}
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "ringtrace: tracing TX-ring sockets, hook class %s (%s), TX completion %s%s; attached in %v\n",
		p.Class.Letter(), p.Class, completionLine(p), detailLine(p), t.Session().Ready.Round(time.Millisecond))
	return t, nil
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
	if err := checkWatchFlags(c, c.Bool("summary") && aggregating(c)); err != nil {
		outs.abort()
		return err
	}
	verification, err := verifyAtStart(c, os.Stderr)
	if err != nil {
		outs.abort()
		return err
	}
	mx, err := listenMetrics(c)
	if err != nil {
		outs.abort()
		return err
	}
	defer mx.Close()
	t, err := openTrace(c)
	if err != nil {
		outs.abort()
		return err
	}
	limitHeap(c) // after loading: collecting during it would delay attaching
	defer t.Close()
	ctx := c.Context
	if d := c.Duration("duration"); d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	out := bufio.NewWriterSize(os.Stdout, 256<<10)
	nm := live.Names(t.Facts(), c.Bool(kernelAddressesFlag))
	began, _ := t.Began()
	f := event.NewFormatter(began, nm)
	after, _ := stuckAfter(c)
	sinks := live.Sinks{Names: nm, StuckAfter: after, Log: os.Stderr, WarnLoss: true}
	switch {
	case c.Bool("summary"):
		sinks.Report = report.NewBuilder(nm)
		// Only the summary is printed: keep memory flat however long the
		// trace runs, also when every event goes to a --record file
		// (measured: 900 MB after 3 s at 800k events/s without limits).
		// Timelines (--perfetto, --html) need every frame.
		if c.String("perfetto") == "" && c.String("html") == "" {
			sinks.Report.SetLimits(report.SummaryLimits)
		}
	case c.Bool("json"):
		sinks.Out = append(sinks.Out, live.JSONLines(out, f))
	default:
		sinks.Out = append(sinks.Out, live.TextLines(out, f))
		fmt.Fprintf(out, "%14s %-5s %-22s %-4s %-6s %s\n", "TIME(s)", "CPU", "COMM/TID", "SOCK", "FRAME", "EVENT")
	}
	if sinks.Report == nil && (len(outs) > 0 || aggregating(c)) {
		// An aggregating session hands its counts to a report.
		sinks.Report = report.NewBuilder(nm)
		if len(outs) == 0 {
			sinks.Report.SetLimits(report.SummaryLimits)
		}
	}
	if sinks.Record, err = startRecording(t, recFile, nm); err != nil {
		outs.abort()
		return err
	}
	if mx.srv != nil {
		mx.start(c, t, &sinks, after, verification)
	}
	res, runErr := t.Run(ctx, sinks)
	if res == nil { // not started
		outs.abort()
		return runErr
	}
	if sinks.Record != nil {
		fmt.Fprintf(os.Stderr, "ringtrace: recorded %d events to %s\n", sinks.Record.Count(), c.String("record"))
	}
	rep, st := res.Report, res.Stats
	switch {
	case c.Bool("summary") && c.Bool("json"):
		if err := json.NewEncoder(out).Encode(summaryReportJSON{rep, st}); err != nil && runErr == nil {
			runErr = err
		}
	case c.Bool("summary"):
		if err := rep.WriteText(out, report.TextOptions{}); err != nil && runErr == nil {
			runErr = err
		}
		live.WriteTextSummary(out, st, res.Promises)
	case c.Bool("json"):
		live.WriteJSONSummary(out, st, res.Promises)
	default:
		live.WriteTextSummary(out, st, res.Promises)
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
