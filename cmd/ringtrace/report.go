package main

import (
	"bufio"
	"encoding/json"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/ringtrace/ringtrace/tracer/inputerr"
	"github.com/ringtrace/ringtrace/tracer/record"
	"github.com/ringtrace/ringtrace/tracer/report"
)

func reportCommand() *cli.Command {
	return &cli.Command{
		Name:      "report",
		Usage:     "rebuild frame timelines, calls and diagnoses from a recording (no root needed)",
		UsageText: "ringtrace report FILE [--frames] [--calls] [--json] [--perfetto OUT.json] [--html OUT.html]",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "frames", Usage: "add the per-frame table"},
			&cli.BoolFlag{Name: "calls", Usage: "list every sendmsg call (default: the first 40)"},
			&cli.BoolFlag{Name: "json", Usage: "print the report (totals, diagnoses, sockets, CPUs) as JSON"},
		},
		Action: runReport,
	}
}

func openReport(c *cli.Context) (*report.Report, error) {
	if c.NArg() != 1 {
		return nil, inputerr.New("report needs exactly one recording file (made by `ringtrace trace --record FILE`)")
	}
	r, err := record.Open(c.Args().First())
	if err != nil {
		return nil, err
	}
	defer r.Close()
	rep, err := report.Replay(r)
	if err != nil {
		return nil, inputerr.New("recording %s: %v", c.Args().First(), err)
	}
	return rep, nil
}

func runReport(c *cli.Context) error {
	rep, err := openReport(c)
	if err != nil {
		return err
	}
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	if c.Bool("json") {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return rep.WriteText(out, report.TextOptions{Frames: c.Bool("frames"), AllCalls: c.Bool("calls")})
}
