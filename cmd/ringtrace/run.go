package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ringtrace/ringtrace/scenarios"
	"github.com/ringtrace/ringtrace/tracer/inputerr"
	"github.com/ringtrace/ringtrace/tracer/plan"
)

func scenariosCommand() *cli.Command {
	return &cli.Command{
		Name:  "scenarios",
		Usage: "list the reference scenarios `ringtrace run` reproduces",
		Action: func(c *cli.Context) error {
			tw := tabwriter.NewWriter(os.Stdout, 0, 8, 2, ' ', 0)
			for _, s := range scenarios.All() {
				fmt.Fprintf(tw, "%s\t%s\n", s.Name, s.Title)
			}
			return tw.Flush()
		},
	}
}

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		ArgsUsage: "NAME...",
		Usage:     "run reference scenarios in a self-made lab: trace, report, check, tear down",
		UsageText: "ringtrace run NAME... | --all  [--out DIR] [--json] [--hooks CLASS] [--rate R] [--limit N] ...",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "all", Usage: "run every scenario"},
			&cli.StringFlag{Name: "out", Usage: "write each trace's recording, text report, Perfetto JSON and HTML timeline here"},
			&cli.BoolFlag{Name: "json", Usage: "print the results as JSON on stdout (progress goes to stderr)"},
			&cli.StringFlag{Name: "hooks", Value: "auto", Usage: "hook class: auto, fentry, kprobe or tracepoint"},
			detailFlag(),
			&cli.StringFlag{Name: "rate", Usage: "emulated NIC rate, e.g. 1gbit, 100mbit, 500kbit (default: per scenario)"},
			&cli.Float64Flag{Name: "rate-scale", Usage: "multiply each scenario's default rate, e.g. 0.1 on a slow VM (expectations follow the rate)"},
			&cli.UintFlag{Name: "limit", Usage: "pfifo limit in packets of the emulated NIC"},
			&cli.IntFlag{Name: "mtu", Usage: "MTU of the lab's veth pair"},
			&cli.IntFlag{Name: "sndbuf", Usage: "SO_SNDBUFFORCE request for the sender"},
			&cli.BoolFlag{Name: "bypass", Usage: "set PACKET_QDISC_BYPASS on the sender"},
			&cli.IntFlag{Name: "frames", Usage: "frames to send"},
			&cli.IntFlag{Name: "size", Usage: "frame length (tp_len)"},
			&cli.StringFlag{Name: "tracefs", Usage: "where tracefs is, or is mounted"},
			&cli.StringFlag{Name: "btf", Usage: "kernel BTF file"},
			kernelAddressesFlagDef("show raw kernel addresses in the reports and keep them in the --out recordings: never share them"),
		},
		Action: runScenarios,
	}
}

// parseRate reads "1gbit", "100mbit", "500kbit", "1e9" (bits per second).
func parseRate(s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	l := strings.ToLower(strings.TrimSpace(s))
	mult := 1.0
	for _, u := range []struct {
		suffix string
		m      float64
	}{{"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3}, {"bit", 1}} {
		if strings.HasSuffix(l, u.suffix) {
			l, mult = strings.TrimSuffix(l, u.suffix), u.m
			break
		}
	}
	v, err := strconv.ParseFloat(l, 64)
	if err != nil || v <= 0 || v*mult < 8000 || v*mult > 400e9 {
		return 0, inputerr.New("--rate %q: want a rate like 1gbit, 100mbit or 500kbit (8kbit .. 400gbit)", s)
	}
	return uint64(v * mult), nil
}

func runScenarios(c *cli.Context) error {
	var list []*scenarios.Scenario
	switch {
	case c.Bool("all") && c.NArg() > 0:
		return inputerr.New("give scenario names or --all, not both")
	case c.Bool("all"):
		list = scenarios.All()
	case c.NArg() == 0:
		return inputerr.New("run needs scenario names or --all (see `ringtrace scenarios`)")
	}
	for _, name := range c.Args().Slice() {
		s, err := scenarios.Lookup(name)
		if err != nil {
			return inputerr.New("%v", err)
		}
		list = append(list, s)
	}
	class, err := plan.ParseClass(c.String("hooks"))
	if err != nil {
		return err
	}
	detail, err := plan.ParseDetail(c.String("detail"))
	if err != nil {
		return err
	}
	if detail == plan.DetailCalls {
		for _, s := range list {
			if !s.Calls {
				return inputerr.New("scenario %s checks frame timelines: run it with --detail frames (with --detail calls: %s)", s.Name, strings.Join(callsScenarios(), ", "))
			}
		}
	}
	rate, err := parseRate(c.String("rate"))
	if err != nil {
		return err
	}
	for _, n := range []string{"mtu", "sndbuf", "frames", "size"} {
		if c.Int(n) < 0 {
			return inputerr.New("--%s must not be negative", n)
		}
	}
	if rs := c.Float64("rate-scale"); rs < 0 || rs > 100 {
		return inputerr.New("--rate-scale %g: want a factor between 0 and 100", rs)
	}
	if m := c.Int("mtu"); m != 0 && (m < 68 || m > 65535) {
		return inputerr.New("--mtu %d: want 68..65535", m)
	}
	if sz := c.Int("size"); sz != 0 && sz < 14 {
		return inputerr.New("--size %d is smaller than an Ethernet header", sz)
	}
	if f := c.Int("frames"); f > 1<<16 {
		return inputerr.New("--frames %d: at most 65536", f)
	}
	log := io.Writer(os.Stdout)
	if c.Bool("json") {
		log = os.Stderr
	}
	runner, err := scenarios.NewRunner(scenarios.Options{
		Hooks: class, Detail: detail, Out: c.String("out"), Log: log, Tracefs: c.String("tracefs"), BTF: c.String("btf"),
		KernelAddresses: c.Bool(kernelAddressesFlag),
		Params: scenarios.Params{Rate: rate, FifoLimit: uint32(c.Uint("limit")), MTU: c.Int("mtu"),
			SndBuf: c.Int("sndbuf"), Bypass: c.Bool("bypass"), Frames: c.Int("frames"), Size: c.Int("size"),
			RateScale: c.Float64("rate-scale")},
	})
	if err != nil {
		return err
	}
	p := runner.Plan()
	fmt.Fprintf(log, "kernel %s, hook class %s (%s), TX completion %s%s\n", runner.Facts().Release, p.Class.Letter(), p.Class, completionLine(p), detailLine(p))
	var results []*scenarios.Result
	for _, s := range list {
		if c.Context.Err() != nil {
			break
		}
		fmt.Fprintf(log, "\n=== %s: %s\n    %s\n", s.Name, s.Title, s.Seed)
		res := runner.Run(c.Context, s)
		results = append(results, res)
		printResult(log, res)
	}
	if c.Bool("json") {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(results); err != nil {
			return err
		}
	}
	if len(results) > 1 {
		fmt.Fprintln(log, "\nSUMMARY")
		for _, r := range results {
			fmt.Fprintf(log, "  %-16s %s\n", r.Scenario, verdict(r))
		}
	}
	if err := c.Context.Err(); err != nil {
		return errors.New("interrupted: labs removed")
	}
	for _, r := range results {
		if !r.Pass {
			return cli.Exit("", 1)
		}
	}
	return nil
}

func verdict(r *scenarios.Result) string {
	n := 0
	for _, e := range r.Expectations {
		if e.Pass {
			n++
		}
	}
	v := "PASS"
	if !r.Pass {
		v = "FAIL"
	}
	return fmt.Sprintf("%s (%d/%d expectations) in %v", v, n, len(r.Expectations), r.Duration.Round(10*time.Millisecond))
}

func printResult(w io.Writer, r *scenarios.Result) {
	if rep := r.Report; rep != nil && len(rep.Diagnoses) > 0 {
		fmt.Fprintln(w, "diagnoses:")
		for _, d := range rep.Diagnoses {
			fmt.Fprintf(w, "  [%s] %s\n", d.Severity, d.Title)
			for _, e := range d.Evidence {
				fmt.Fprintf(w, "      - %s\n", e)
			}
		}
	}
	fmt.Fprintln(w, "expectations:")
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	for _, e := range r.Expectations {
		mark := "PASS"
		if !e.Pass {
			mark = "FAIL"
		}
		want := ""
		if e.Want != "" {
			want = "(want " + e.Want + ")"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", mark, e.What, e.Measured, want)
	}
	tw.Flush()
	if r.Error != "" {
		fmt.Fprintf(w, "  ERROR %s\n", r.Error)
	}
	for _, f := range r.Files {
		fmt.Fprintf(w, "  wrote %s\n", f)
	}
	fmt.Fprintf(w, "--- %s: %s\n", r.Scenario, verdict(r))
}

// callsScenarios names the scenarios whose checks hold with --detail calls.
func callsScenarios() []string {
	var out []string
	for _, s := range scenarios.All() {
		if s.Calls {
			out = append(out, s.Name)
		}
	}
	return out
}
