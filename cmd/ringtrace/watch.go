package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/urfave/cli/v2"

	"github.com/ringtrace/ringtrace/scenarios/verify"
	"github.com/ringtrace/ringtrace/tracer/inputerr"
	"github.com/ringtrace/ringtrace/tracer/live"
	"github.com/ringtrace/ringtrace/tracer/metrics"
	"github.com/ringtrace/ringtrace/tracer/plan"
	"github.com/ringtrace/ringtrace/tracer/watch"
)

// watchFlags are the always-on flags of `top` and `trace --summary`.
func watchFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "metrics-addr", Usage: "serve Prometheus metrics at `HOST:PORT`/metrics (e.g. 127.0.0.1:9717; with trace, needs --summary)"},
		&cli.DurationFlag{Name: "metrics-grace", Value: watch.DefaultGrace, Usage: "how long a closed socket's series stay once its last events are in (longer than the scrape interval; a later scrape still gets its final counts, once)"},
		&cli.BoolFlag{Name: "metrics-runtime", Usage: "also export ringtrace's own Go runtime and process series"},
		&cli.BoolFlag{Name: "verify", Usage: "prove the plan at start (as `probe --verify`) and say so in ringtrace_plan_info"},
	}
}

// checkWatchFlags rejects bad always-on flags before anything is attached.
func checkWatchFlags(c *cli.Context, watching bool) error {
	if c.IsSet("metrics-addr") && !watching {
		return inputerr.New("--metrics-addr exports the in-kernel counts of trace --summary (add --summary, or use `ringtrace top`)")
	}
	if c.Duration("metrics-grace") <= 0 {
		return inputerr.New("--metrics-grace must be positive (e.g. 5m)")
	}
	if c.Bool("verify") && callsOnly(c) {
		return inputerr.New("--verify proves the per-frame hooks: --detail calls has none")
	}
	return nil
}

// verifyAtStart runs --verify: "verified" or "broken" (a broken plan is
// traced anyway, and said so), "not-run" without it.
func verifyAtStart(c *cli.Context, log io.Writer) (string, error) {
	if !c.Bool("verify") {
		return "not-run", nil
	}
	facts, spec, p, err := probeKernel(c)
	if err != nil {
		return "", err
	}
	res, err := verify.Run(c.Context, verify.Options{Facts: facts, BTF: spec, Plan: p, Log: log})
	if err != nil {
		return "", err
	}
	if !res.OK {
		fmt.Fprintf(os.Stderr, "ringtrace: --verify: the plan's promises are broken on this kernel: %v\n", res.Broken)
		return "broken", nil
	}
	return "verified", nil
}

// watching is the always-on view of a live trace, and its endpoint.
type watching struct {
	w   *watch.Watch
	t   *live.Trace
	srv *metrics.Server
	reg *prometheus.Registry
}

// listenMetrics opens the --metrics-addr endpoint (nil without it), before
// anything is attached: a bad address fails first.
func listenMetrics(c *cli.Context) (*watching, error) {
	x := &watching{}
	addr := c.String("metrics-addr")
	if addr == "" {
		return x, nil
	}
	x.reg = metrics.NewRegistry(c.Bool("metrics-runtime"))
	srv, err := metrics.Listen(addr, x.reg)
	if err != nil {
		return nil, inputerr.New("--metrics-addr %s: %v", addr, err)
	}
	x.srv = srv
	return x, nil
}

// start plugs the watch into the trace's sinks and, with --metrics-addr,
// exports it. verification is verifyAtStart's.
func (x *watching) start(c *cli.Context, t *live.Trace, sinks *live.Sinks, stuck time.Duration, verification string) {
	x.t = t
	x.w = watch.New(watch.Options{Grace: c.Duration("metrics-grace"), StuckAfter: stuck, Holders: t.Holders})
	sinks.Out = append(sinks.Out, x.w)
	sinks.Closed = x.w
	if x.srv == nil {
		return
	}
	p := t.Plan()
	detail := plan.DetailFrames
	if !p.FramesTraced() {
		detail = plan.DetailCalls
	}
	x.reg.MustRegister(metrics.NewCollector(x.w, t.Session(), metrics.PlanInfo{Kernel: t.Facts().Release,
		Class: string(p.Class), Completion: p.Completion, Detail: string(detail), Verification: verification, Version: version}))
	fmt.Fprintf(os.Stderr, "ringtrace: Prometheus metrics at http://%s/metrics\n", x.srv.Addr)
}

// snapshot brings the view up to date from the kernel and copies it.
func (x *watching) snapshot() (watch.Snapshot, error) {
	err := x.w.Update(x.t.Session())
	return x.w.Snapshot(), err
}

// Close stops the endpoint.
func (x *watching) Close() error {
	if x == nil || x.srv == nil {
		return nil
	}
	return x.srv.Close()
}
