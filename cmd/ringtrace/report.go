package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/ringtrace/ringtrace/tracer/inputerr"
	"github.com/ringtrace/ringtrace/tracer/outfile"
	"github.com/ringtrace/ringtrace/tracer/record"
	"github.com/ringtrace/ringtrace/tracer/report"
)

func reportCommand() *cli.Command {
	return &cli.Command{
		Name:      "report",
		ArgsUsage: "FILE",
		Usage:     "rebuild frame timelines, calls and diagnoses from a recording (no root needed)",
		UsageText: "ringtrace report FILE [--frames] [--calls] [--json] [--perfetto OUT.json] [--html OUT.html] [--quiet]",
		Flags: append([]cli.Flag{
			&cli.BoolFlag{Name: "frames", Usage: "add the per-frame table"},
			&cli.BoolFlag{Name: "calls", Usage: "list every sendmsg call (default: the first 40)"},
			&cli.BoolFlag{Name: "json", Usage: "print the report (totals, diagnoses, sockets, CPUs) as JSON"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print no report (with --perfetto / --html: only write the files)"},
			&cli.DurationFlag{Name: "stuck-after", Usage: "report a frame SENDING this long as stuck (default: what the trace used, else 1s)"},
			kernelAddressesFlagDef("show the recording's raw kernel addresses (stuck frames' skbs, unnamed locations), if it has any"),
		}, renderFlags()...),
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
	if c.IsSet("stuck-after") && c.Duration("stuck-after") <= 0 {
		return nil, inputerr.New("--stuck-after must be positive (e.g. 500ms, 2s)")
	}
	if c.Bool(kernelAddressesFlag) && !r.KernelAddresses() {
		fmt.Fprintf(os.Stderr, "ringtrace: %s holds no kernel addresses (it was recorded without --kernel-addresses): the report shows none\n", c.Args().First())
	}
	rep, err := report.ReplayWith(r, report.ReplayOptions{Limits: report.Limits{StuckAfter: c.Duration("stuck-after")},
		KernelAddresses: c.Bool(kernelAddressesFlag)})
	if err != nil {
		return nil, inputerr.New("recording %s: %v", c.Args().First(), err)
	}
	if !r.HasTrailer {
		fmt.Fprintf(os.Stderr, "ringtrace: %s ends without a trailer: the trace did not stop cleanly, so lost events and kernel symbol names are unknown and the records are unchecked\n", c.Args().First())
	}
	return rep, nil
}

func runReport(c *cli.Context) error {
	if c.Bool("quiet") {
		if c.String("perfetto") == "" && c.String("html") == "" {
			return inputerr.New("--quiet without --perfetto or --html would do nothing")
		}
		for _, f := range []string{"json", "frames", "calls"} {
			if c.Bool(f) {
				return inputerr.New("--quiet and --%s conflict: --quiet prints no report", f)
			}
		}
	}
	outs, err := createRenderFiles(c)
	if err != nil {
		return err
	}
	rep, err := openReport(c)
	if err != nil {
		outs.abort()
		return err
	}
	if err := outs.write(rep, os.Stderr); err != nil {
		return err
	}
	if c.Bool("quiet") {
		return nil
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

// kernelAddressesFlag restores raw kernel addresses in outputs (trace,
// report and run): for kernel developers on their own machine, since any of
// them defeats KASLR for whoever reads the output.
const kernelAddressesFlag = "kernel-addresses"

func kernelAddressesFlagDef(usage string) cli.Flag {
	return &cli.BoolFlag{Name: kernelAddressesFlag, Usage: usage}
}

// renderFlags are the report renderers' output files, shared by report and
// trace.
func renderFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "perfetto", Usage: "write the trace as Chrome Trace Event JSON to `OUT.json` (open it at ui.perfetto.dev)"},
		&cli.StringFlag{Name: "html", Usage: "write a self-contained HTML report (frame timeline, socket accounting) to `OUT.html`"},
	}
}

// renderFile is one --perfetto / --html output. It is opened before any
// work, so an unwritable path fails first, and made private (0600) and
// truncated only when the report is written: a failed run leaves an
// existing file as it was.
type renderFile struct {
	flag, path, what string
	render           func(*report.Report, io.Writer) error
	f                *os.File
	created          bool
}

type renderFiles []*renderFile

func createRenderFiles(c *cli.Context) (renderFiles, error) {
	var outs renderFiles
	seen := map[string]string{}
	for _, o := range []*renderFile{
		{flag: "perfetto", what: "Perfetto trace (open it at ui.perfetto.dev)", render: (*report.Report).WritePerfetto},
		{flag: "html", what: "HTML report", render: (*report.Report).WriteHTML},
	} {
		if o.path = c.String(o.flag); o.path == "" {
			continue
		}
		abs, _ := filepath.Abs(o.path)
		if other, dup := seen[abs]; dup {
			outs.abort()
			return nil, inputerr.New("--%s and --%s name the same file %s", other, o.flag, o.path)
		}
		seen[abs] = o.flag
		_, statErr := os.Stat(o.path)
		f, err := outfile.Open(o.path)
		if err != nil {
			outs.abort()
			return nil, inputerr.New("--%s %s: %v", o.flag, o.path, err)
		}
		o.f, o.created = f, errors.Is(statErr, os.ErrNotExist)
		outs = append(outs, o)
	}
	return outs, nil
}

// abort closes the files and removes those this run created.
func (outs renderFiles) abort() {
	for _, o := range outs {
		o.f.Close()
		if o.created {
			os.Remove(o.path)
		}
	}
}

// write renders rep into every file and says on w where each went.
func (outs renderFiles) write(rep *report.Report, w io.Writer) error {
	var errs []error
	for _, o := range outs {
		if err := o.writeFile(rep); err != nil {
			errs = append(errs, fmt.Errorf("--%s %s: %w", o.flag, o.path, err))
			continue
		}
		fmt.Fprintf(w, "ringtrace: wrote the %s to %s\n", o.what, o.path)
	}
	return errors.Join(errs...)
}

func (o *renderFile) writeFile(rep *report.Report) error {
	defer o.f.Close()
	if err := outfile.Private(o.f); err != nil {
		return err
	}
	if err := o.f.Truncate(0); err != nil {
		return err
	}
	bw := bufio.NewWriterSize(o.f, 256<<10)
	if err := o.render(rep, bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return o.f.Close()
}
