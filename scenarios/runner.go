package scenarios

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/cilium/ebpf/btf"

	"github.com/ringtrace/ringtrace/scenarios/lab"
	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/inputerr"
	"github.com/ringtrace/ringtrace/tracer/kernel"
	"github.com/ringtrace/ringtrace/tracer/kernel/probe"
	"github.com/ringtrace/ringtrace/tracer/live"
	"github.com/ringtrace/ringtrace/tracer/plan"
	"github.com/ringtrace/ringtrace/tracer/promise"
	"github.com/ringtrace/ringtrace/tracer/record"
	"github.com/ringtrace/ringtrace/tracer/report"
	"github.com/ringtrace/ringtrace/tracer/session"
)

// Options configure a Runner.
type Options struct {
	Hooks plan.Class
	// Detail is plan.DetailCalls to trace the send calls only ("" or
	// DetailFrames: every frame). Only scenarios with Calls set run so.
	Detail  plan.Detail
	Params  Params
	Out     string    // directory for recordings, Perfetto and HTML files ("" = none)
	Log     io.Writer // progress lines (nil: discarded)
	Tracefs string
	BTF     string
	// KernelAddresses shows raw kernel addresses in the reports and the
	// progress lines (event.Names), and keeps them in the recordings.
	KernelAddresses bool
}

// Runner runs scenarios on this kernel. It probes the kernel once.
type Runner struct {
	o     Options
	facts *kernel.Facts
	btf   *btf.Spec
	plan  *plan.Plan
	names event.Names
}

// NewRunner probes the kernel and builds the attach plan.
func NewRunner(o Options) (*Runner, error) {
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Hooks == "" {
		o.Hooks = plan.Auto
	}
	facts, spec, err := probe.Kernel(probe.Options{TracefsPath: o.Tracefs, BTFPath: o.BTF})
	if err != nil {
		return nil, err
	}
	p, err := plan.Build(facts, o.Hooks)
	if err != nil {
		return nil, err
	}
	if o.Detail == plan.DetailCalls {
		if p, err = p.CallsOnly(facts); err != nil {
			return nil, err
		}
	}
	if o.Out != "" {
		if err := os.MkdirAll(o.Out, 0o755); err != nil {
			return nil, inputerr.New("--out %s: %v", o.Out, err)
		}
	}
	return &Runner{o: o, facts: facts, btf: spec, plan: p, names: live.Names(facts, o.KernelAddresses)}, nil
}

// Plan is the attach plan the runner uses.
func (r *Runner) Plan() *plan.Plan { return r.plan }

// Facts are the kernel facts.
func (r *Runner) Facts() *kernel.Facts { return r.facts }

// Run runs one scenario. Whatever happens — failure, panic, ctx
// cancelled by a signal — the lab is removed before it returns.
func (r *Runner) Run(ctx context.Context, s *Scenario) (res *Result) {
	start := time.Now()
	res = &Result{Scenario: s.Name, Params: s.merged(r.o.Params), Kernel: r.facts.Release,
		Hooks: string(r.plan.Class), Completion: r.plan.Completion}
	defer func() {
		if p := recover(); p != nil {
			res.Error = fmt.Sprintf("panic: %v\n%s", p, debug.Stack())
		}
		res.Duration = time.Since(start)
		res.Pass = res.Error == "" && len(res.Expectations) > 0
		for _, e := range res.Expectations {
			if !e.Pass {
				res.Pass = false
			}
		}
	}()
	if !s.Calls && !r.plan.FramesTraced() {
		res.Error = fmt.Sprintf("%s checks frame timelines: run it with --detail frames", s.Name)
		return res
	}
	if removed, err := lab.CleanStale(); err != nil {
		res.Error = fmt.Sprintf("clean stale labs: %v", err)
		return res
	} else if len(removed) > 0 {
		fmt.Fprintf(r.o.Log, "removed %d namespaces left by a killed run: %v\n", len(removed), removed)
	}
	l, err := lab.New(lab.Config{MTU: res.Params.MTU})
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer l.Close()
	shape := "no qdisc"
	if !s.NoNIC {
		if err := l.Shape(res.Params.nic()); err != nil {
			res.Error = err.Error()
			return res
		}
		shape = fmt.Sprintf("tbf %s", rateString(res.Params.Rate))
		if res.Params.FifoLimit > 0 {
			shape += fmt.Sprintf(" + pfifo limit %d", res.Params.FifoLimit)
		}
	}
	fmt.Fprintf(r.o.Log, "lab: netns %s / %s, veth %s -> %s, %s\n", l.SenderNSName(), l.PeerNSName(), l.SenderIf, l.PeerIf, shape)
	env := &Env{r: r, s: s, res: res, Lab: l, Params: res.Params, Log: r.o.Log}
	exps, err := s.Run(ctx, env)
	if len(exps) > 0 {
		exps = append(exps, promisesHeld(env.promises))
	}
	res.Expectations = exps
	if err != nil {
		res.Error = err.Error()
	}
	return res
}

func rateString(bps uint64) string {
	switch {
	case bps >= 1e9 && bps%1e9 == 0:
		return fmt.Sprintf("%d Gbit/s", bps/1e9)
	case bps >= 1e6 && bps%1e6 == 0:
		return fmt.Sprintf("%d Mbit/s", bps/1e6)
	case bps >= 1e3 && bps%1e3 == 0:
		return fmt.Sprintf("%d kbit/s", bps/1e3)
	}
	return fmt.Sprintf("%d bit/s", bps)
}

// Env is what a scenario works with.
type Env struct {
	r      *Runner
	s      *Scenario
	res    *Result
	Lab    *lab.Lab
	Params Params
	Log    io.Writer
	// promises are the plan's exact promises as each trace kept them.
	promises []promise.Tally
}

// FramesTraced reports whether the traces follow every frame (not
// --detail calls).
func (e *Env) FramesTraced() bool { return e.r.plan.FramesTraced() }

// availableAtReturn is how many frames of the socket were AVAILABLE when
// call c returned: from the frame timelines or, with --detail calls, the
// frames the call took less those still in flight at its return. hidden
// counts the frames completed later per the trace whose completion was
// found by a status read around CPU time the kernel hides from BPF: when
// they completed, the trace cannot say.
func availableAtReturn(env *Env, s *report.Socket, c *report.Call) (done, hidden int) {
	if !env.FramesTraced() {
		return max(c.FramesTaken-int(c.PendingAtRet), 0), 0
	}
	for _, rd := range s.Rounds {
		switch {
		case rd.Done && rd.Available <= c.Return:
			done++
		case rd.Done && rd.Hidden:
			hidden++
		}
	}
	return done, hidden
}

// atReturn says what availableAtReturn found.
func atReturn(done, hidden, frames int) string {
	s := fmt.Sprintf("%d of %d AVAILABLE at return", done, frames)
	if hidden > 0 {
		s += fmt.Sprintf(", %d completed in CPU time the kernel hides from BPF (when: not known)", hidden)
	}
	return s
}

// Trace runs send while tracing this process, waits for the frames'
// completions to be reported, and returns the report. label names the
// output files ("<scenario>-<label>") when several traces are taken.
func (e *Env) Trace(ctx context.Context, label string, send func(ctx context.Context) error) (*report.Report, error) {
	r := e.r
	kinds := e.s.Kinds
	if kinds == nil {
		kinds = event.Kinds()
	}
	t, err := live.Open(live.Options{Session: session.Options{Facts: r.facts, BTF: r.btf, Plan: r.plan, Kinds: kinds,
		Filter: session.Filter{PID: uint32(os.Getpid())}}})
	if err != nil {
		return nil, err
	}
	defer t.Close()
	// Interrupted while loading (seconds under emulation): send nothing.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sinks := live.Sinks{Names: r.names, StuckAfter: e.s.StuckAfter, Log: e.Log, Report: report.NewBuilder(r.names)}
	base := e.s.Name
	if label != "" {
		base += "-" + label
	}
	if r.o.Out != "" {
		h := t.Header()
		h.Tool, h.Note, h.KernelAddresses = "ringtrace run "+e.s.Name, e.s.Title, r.o.KernelAddresses
		sinks.Record, err = record.Create(filepath.Join(r.o.Out, base+".rtrec"), h, record.Options{Symbol: r.names.Symbol})
		if err != nil {
			return nil, err
		}
	}
	if err := t.Start(ctx, sinks); err != nil {
		return nil, err
	}
	// The sender starts once the iterator is loaded (a failed load only
	// fails the walks): a scenario's stuck checks then always find it, and
	// under TCG its load (0.3-0.7 s of CPU) does not compete with the
	// sender whose timing the scenario checks. The probes were live before.
	select {
	case <-t.WalkerReady():
	case <-ctx.Done():
	}
	sendErr := ctx.Err()
	if sendErr == nil {
		sendErr = send(ctx)
	}
	// Completions land after the call returns (a shaped link holds
	// frames): let the sender's drain and the sweep catch up.
	select {
	case <-ctx.Done():
	case <-time.After(150 * time.Millisecond):
	}
	res, runErr := t.Stop()
	rep, st := res.Report, res.Stats
	e.promises = append(e.promises, res.Promises...)
	if sinks.Record != nil {
		e.res.Files = append(e.res.Files, filepath.Join(r.o.Out, base+".rtrec"))
		files, err := writeViews(rep, r.o.Out, base)
		e.res.Files = append(e.res.Files, files...)
		if err != nil && runErr == nil {
			runErr = err
		}
	}
	e.res.Report, e.res.Plan = rep, r.plan
	if err := errors.Join(sendErr, runErr); err != nil {
		return rep, err
	}
	if st.Lost > 0 {
		return rep, fmt.Errorf("the trace lost %d events", st.Lost)
	}
	return rep, ctx.Err()
}

// promisesHeld is every scenario's last expectation: the plan's exact hooks
// saw the frames (at most promise.Threshold of any promise's events
// reconstructed). A kernel that changed under the plan fails here even when
// the reconstructed timelines would pass the scenario's own checks.
func promisesHeld(ts []promise.Tally) Expectation {
	var kept, recon uint64
	var broken []string
	for _, t := range ts {
		kept += t.Kept
		recon += t.Reconstructed
		if t.Broken() {
			broken = append(broken, t.String())
		}
	}
	measured := fmt.Sprintf("%d events as promised, %d reconstructed", kept, recon)
	if len(broken) > 0 {
		measured = strings.Join(broken, "; ")
	}
	return pass("the attach plan's exact hooks saw the frames (its promises held)", len(broken) == 0,
		measured, fmt.Sprintf("<= %.0f %% of any promise's events reconstructed", 100*promise.Threshold))
}
