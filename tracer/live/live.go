// Package live owns a live trace from load to final summary: it opens the
// session (load, attach, the ready file), loads the stuck-frame iterator in
// the background, feeds the ordered events to the trace's sinks (text or
// JSON lines, the report builder, the promise watch, the stuck-frame
// watcher), writes the recording, runs the background checks (stuck
// frames, losses) and, when the trace stops, gathers what the kernel still
// holds into the recording's trailer, the report and a Result.
//
// `ringtrace trace` and the scenario runner behind `ringtrace run` both
// trace through it: Open, Start, then Stop (or Run until a context ends).
package live

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ringtrace/ringtrace/tracer/bpfobj/bpftypes"
	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/holders"
	"github.com/ringtrace/ringtrace/tracer/holders/walk"
	"github.com/ringtrace/ringtrace/tracer/kernel"
	"github.com/ringtrace/ringtrace/tracer/plan"
	"github.com/ringtrace/ringtrace/tracer/promise"
	"github.com/ringtrace/ringtrace/tracer/record"
	"github.com/ringtrace/ringtrace/tracer/report"
	"github.com/ringtrace/ringtrace/tracer/session"
	"github.com/ringtrace/ringtrace/tracer/tick"
)

// Options configure Open.
type Options struct {
	// Session is what to load and attach (Facts, BTF and Plan are needed).
	Session session.Options
	// ReadyFile, if set, is created with this process's id once every
	// probe is attached.
	ReadyFile string
}

// ReadyFileError is Open's failure to write Options.ReadyFile.
type ReadyFileError struct {
	Path string
	Err  error
}

func (e *ReadyFileError) Error() string { return fmt.Sprintf("ready file %s: %v", e.Path, e.Err) }
func (e *ReadyFileError) Unwrap() error { return e.Err }

// Trace is an open live trace. Its methods are for one goroutine; Close
// releases everything, whatever state the trace is in.
type Trace struct {
	facts  *kernel.Facts
	sess   *session.Session
	walker *walk.Loader // the stuck-frame iterator, loading since the probes were attached
	start  uint64       // CLOCK_MONOTONIC once attached
	wall   time.Time

	run *running // between Start and Stop
}

// Open loads and attaches the session, writes the ready file and starts
// loading the stuck-frame iterator. When it returns every probe is live.
func Open(o Options) (*Trace, error) {
	sess, err := session.Open(o.Session)
	if err != nil {
		return nil, err
	}
	if o.ReadyFile != "" {
		if err := os.WriteFile(o.ReadyFile, []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o644); err != nil {
			sess.Close()
			return nil, &ReadyFileError{Path: o.ReadyFile, Err: err}
		}
	}
	t := &Trace{facts: o.Session.Facts, sess: sess}
	// After the ready file, so the load never delays it; before any frame
	// can be stuck, so the first walk does not wait for it.
	p := sess.Plan()
	t.walker = walk.Load(walk.Config{DestructAddr: p.Config.DestructAddr,
		UargCompleteAddr: p.Config.UargCompleteAddr, KernelBTF: o.Session.BTF})
	t.start, t.wall = event.MonotonicNow(), time.Now()
	return t, nil
}

// Session is the attached session.
func (t *Trace) Session() *session.Session { return t.sess }

// Facts are the kernel facts the trace was opened with.
func (t *Trace) Facts() *kernel.Facts { return t.facts }

// Plan is the attach plan in effect (Session.Plan).
func (t *Trace) Plan() *plan.Plan { return t.sess.Plan() }

// Began is when the trace started: CLOCK_MONOTONIC in ns, the time
// output lines count from, and the wall clock.
func (t *Trace) Began() (monotonic uint64, wall time.Time) { return t.start, t.wall }

// WalkerReady is closed once the stuck-frame iterator has loaded (or
// failed to: then only the walks fail).
func (t *Trace) WalkerReady() <-chan struct{} { return t.walker.Ready() }

// Holders walks the kernel's sockets for the receive queues holding ring
// skbs (the stuck-frame iterator): who holds frames stuck SENDING.
func (t *Trace) Holders(why string) (*holders.Snapshot, error) { return t.walker.Walk(why) }

// Header is a recording header for this trace: its start, kernel, plan
// and command line. The caller adds Tool, Note and KernelAddresses.
func (t *Trace) Header() record.Header {
	return record.Header{Created: t.wall, Monotonic: t.start, Kernel: t.facts, Plan: t.sess.Plan(), Command: os.Args}
}

// Close unloads the stuck-frame iterator, then detaches the probes. A
// trace still running is stopped first, its result dropped.
func (t *Trace) Close() error {
	if t.run != nil {
		t.Stop()
	}
	return errors.Join(t.walker.Close(), t.sess.Close())
}

// Sinks are where a trace's events go. Every trace has a promise watch
// and, unless the session aggregates in the kernel, a stuck-frame watcher;
// the rest is plugged in here.
type Sinks struct {
	// Names name what the watcher prints (KernelAddresses shows raw ones).
	Names event.Names
	// StuckAfter is how long a frame may stay SENDING before it is
	// reported stuck (0: holders.DefaultStuckAfter).
	StuckAfter time.Duration
	// Log gets the warnings: broken promises, stuck frames and, with
	// WarnLoss, losses as they happen (nil: discarded).
	Log      io.Writer
	WarnLoss bool
	// Out are the output sinks (TextLines, JSONLines), fed first.
	Out []session.Sink
	// Report, if set, is fed every event and finished by Stop into
	// Result.Report. An aggregating session needs one.
	Report *report.Builder
	// Record, if set, gets every raw record, and its trailer at Stop.
	Record *record.Writer
	// Closed, if set, also gets an aggregating session's closed sockets'
	// counts (a watch.Watch): it is fed the events as one of Out.
	Closed session.ClosedSink
}

// Result is what a stopped trace gathered.
type Result struct {
	Report    *report.Report // nil without Sinks.Report
	Stats     session.Stats
	Promises  []promise.Tally
	Snapshots []*holders.Snapshot // the stuck-frame walks, the end's included
}

// running is a started trace.
type running struct {
	s        Sinks
	promises *promise.Watch
	watch    *holders.Watcher // nil when aggregating
	cancel   context.CancelFunc
	done     chan struct{} // closed when the session's Run has returned
	err      error         // Run's, once done
	stop     []func()      // the background checks
}

// Start runs the trace in the background until ctx ends or Stop is called:
// the session, the stuck-frame watcher and, with s.WarnLoss, the loss
// watcher.
func (t *Trace) Start(ctx context.Context, s Sinks) error {
	if t.run != nil {
		return errors.New("live trace already started")
	}
	aggregate := t.sess.Aggregating()
	if aggregate && s.Report == nil {
		return errors.New("an aggregating live trace needs a report builder")
	}
	if s.StuckAfter == 0 {
		s.StuckAfter = holders.DefaultStuckAfter
	}
	if s.Log == nil {
		s.Log = io.Discard
	}
	r := &running{s: s, done: make(chan struct{})}
	tee := append(Tee(nil), s.Out...)
	if s.Report != nil {
		tee = append(tee, Builder(s.Report))
	}
	r.promises = promise.New(t.sess.Plan(), WarnPromise(s.Log))
	tee = append(tee, r.promises)
	if !aggregate {
		r.watch = holders.NewWatcher(s.StuckAfter, s.Log, t.walker.Walk)
		r.watch.Settle = t.sess.Lag()
		r.watch.KernelAddresses = s.Names.KernelAddresses
		tee = append(tee, r.watch)
	}
	var sink session.Sink = tee
	if aggregate {
		sink = closedTee{tee, s.Report, r.promises, s.Closed}
	}
	var raw func([]byte) error
	if s.Record != nil {
		raw = s.Record.Write
	}
	ctx, r.cancel = context.WithCancel(ctx)
	go func() {
		r.err = t.sess.Run(ctx, sink, raw)
		close(r.done)
	}()
	if s.WarnLoss {
		r.stop = append(r.stop, watchLoss(ctx, t.sess, s.Log))
	}
	if r.watch != nil {
		r.stop = append(r.stop, r.watch.Start(ctx, stuckTick(s.StuckAfter)))
		go warnIteratorLoad(ctx, t.walker, s.Log)
	}
	t.run = r
	return nil
}

// iteratorLoad is the stuck-frame iterator's load, as warnIteratorLoad
// waits for it (a *walk.Loader).
type iteratorLoad interface {
	Ready() <-chan struct{}
	Loaded() (time.Duration, error)
}

// warnIteratorLoad says, as soon as the stuck-frame iterator's load has
// failed, that stuck frames will be reported without their holders: else
// only the first stuck frame's walk would show it, perhaps never.
func warnIteratorLoad(ctx context.Context, l iteratorLoad, w io.Writer) {
	select {
	case <-ctx.Done():
		return
	case <-l.Ready():
	}
	if _, err := l.Loaded(); err != nil {
		fmt.Fprintf(w, "ringtrace: WARNING: the stuck-frame iterator did not load, stuck frames will be reported without who holds them: %v\n", err)
	}
}

// Done is closed when the started trace has ended by itself (its context
// ended, or a sink failed): Stop then says why.
func (t *Trace) Done() <-chan struct{} {
	if t.run == nil {
		return nil
	}
	return t.run.done
}

// Run starts the trace and stops it once ctx ends (or the trace fails).
func (t *Trace) Run(ctx context.Context, s Sinks) (*Result, error) {
	if err := t.Start(ctx, s); err != nil {
		return nil, err
	}
	select {
	case <-ctx.Done():
	case <-t.run.done:
	}
	return t.Stop()
}

// Stop ends the started trace and finalises it: the watcher's last walk,
// the recording's trailer, in aggregate mode the kernel's aggregates, then
// the report. The error is the session's, else the first of the rest; the
// Result is complete either way.
func (t *Trace) Stop() (*Result, error) {
	r := t.run
	if r == nil {
		return nil, errors.New("live trace not started")
	}
	t.run = nil
	r.cancel()
	<-r.done
	for i := len(r.stop) - 1; i >= 0; i-- {
		r.stop[i]()
	}
	runErr := r.err
	res := &Result{}
	if r.watch != nil {
		r.watch.Final() // who holds the frames still SENDING
		res.Snapshots = r.watch.Snapshots()
	}
	res.Stats = t.sess.Stats()
	r.promises.Skipped(res.Stats.Missed)
	r.promises.Lost(res.Stats.LostByKind[event.SendmsgEnter] + res.Stats.LostByKind[event.SendmsgReturn])
	res.Promises = r.promises.Tallies()
	if r.s.Record != nil {
		tr := record.Trailer{Lost: res.Stats.Lost, Missed: res.Stats.Missed, Holders: res.Snapshots,
			StuckAfterNS: uint64(r.s.StuckAfter), Promises: res.Promises}
		if err := r.s.Record.CloseWithTrailer(tr); err != nil && runErr == nil {
			runErr = fmt.Errorf("write recording: %w", err)
		}
	}
	b := r.s.Report
	if t.sess.Aggregating() {
		n, err := addAggregates(b, r.promises, t.sess)
		if err != nil && runErr == nil {
			runErr = err
		}
		if n > 0 { // frames still SENDING: who holds them
			snap, err := t.walker.Walk("end")
			if err != nil {
				snap = &holders.Snapshot{TS: event.MonotonicNow(), Why: "end", Err: err.Error()}
			}
			res.Snapshots = append(res.Snapshots, snap)
		}
		res.Promises = r.promises.Tallies()
	}
	if b != nil {
		b.SetStuckAfter(r.s.StuckAfter)
		for _, s := range res.Snapshots {
			b.AddSnapshot(s)
		}
		b.SetGaps(res.Stats.Lost, res.Stats.Duplicates, res.Stats.Missed)
		b.SetPromises(res.Promises)
		res.Report = b.Finish()
		res.Report.Kernel = t.facts.Release
		res.Report.SetPlan(t.sess.Plan())
	}
	return res, runErr
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
		addAggregate(b, w, k, a)
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

// closedTee feeds an aggregating session's events to its sinks, and a
// closed socket's kernel counts to the builder and the promise watch just
// before its SockGone event.
type closedTee struct {
	Tee
	b    *report.Builder
	w    *promise.Watch
	also session.ClosedSink // nil: none
}

func (t closedTee) Closed(k session.SockKey, a bpftypes.RingtraceRtSockAgg) error {
	addAggregate(t.b, t.w, k, a)
	if t.also != nil {
		return t.also.Closed(k, a)
	}
	return nil
}

// addAggregate gives the builder and the promise watch what the kernel
// counted for one socket.
func addAggregate(b *report.Builder, w *promise.Watch, k session.SockKey, a bpftypes.RingtraceRtSockAgg) {
	b.AddFrameAgg(k.Sk, k.Ino, frameAggOf(a))
	w.Completions(a.CompletedExact, a.CompletedBounded)
}

// frameAggOf converts the kernel's per-socket aggregate.
func frameAggOf(a bpftypes.RingtraceRtSockAgg) report.FrameAgg {
	f := report.FrameAgg{Sent: a.Sent, CompletedExact: a.CompletedExact, CompletedBounded: a.CompletedBounded}
	f.InFlight.Count, f.InFlight.Sum, f.InFlight.Max = a.InflightCount, a.InflightSum, a.InflightMax
	f.InFlight.Buckets = a.Hist
	return f
}

// stuckTick is how often the watcher looks for stuck frames: a tenth of the
// threshold, between 10 ms and 100 ms.
func stuckTick(after time.Duration) time.Duration {
	return min(max(after/10, 10*time.Millisecond), 100*time.Millisecond)
}

// watchLoss reports ring-buffer losses on w as they happen: loss is never
// silent.
func watchLoss(ctx context.Context, s *session.Session, w io.Writer) (stop func()) {
	var reported uint64
	return tick.Every(ctx, time.Second, func() {
		if lost := s.Lost(); lost > reported {
			fmt.Fprintf(w, "ringtrace: LOST %d events so far (ring buffer full: raise --ringbuf-size or narrow --events)\n", lost)
			reported = lost
		}
	})
}

// WarnPromise prints on w, once per promise, that the plan's exact hook is
// no longer what sees the events: the kernel may have changed under the
// plan.
func WarnPromise(w io.Writer) func(string) {
	return func(s string) {
		fmt.Fprintf(w, "ringtrace: WARNING: broken promise: %s; has the kernel changed? run `ringtrace probe --verify`\n", s)
	}
}

// Names are how a live trace on this kernel names drop reasons and kernel
// text addresses; kernelAddresses shows raw addresses.
func Names(f *kernel.Facts, kernelAddresses bool) event.Names {
	sym := &kernel.Symbolizer{}
	return event.Names{
		DropReason:      func(code uint32) string { return f.DropReasons[code] },
		Symbol:          sym.Lookup,
		KernelAddresses: kernelAddresses,
	}
}
