// Command ringbench runs ringtrace's benchmarks: measurements of ringtrace
// side by side with a reference tool in one run, interleaved, printing the
// ratios. Benchmarks print numbers; they never fail on a missed target.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/ringtrace/ringtrace/tracer/inputerr"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	app := &cli.App{
		Name:            "ringbench",
		Usage:           "benchmarks ringtrace against reference tools",
		HideHelpCommand: true,
		Commands:        []*cli.Command{sendBenchCommand(), overheadCommand(), percallCommand(), soakCommand(), nullTracerCommand()},
		ExitErrHandler:  func(*cli.Context, error) {},
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return inputerr.New("%v (see --help)", err)
		},
	}
	if err := app.RunContext(ctx, os.Args); err != nil {
		fmt.Fprintf(os.Stderr, "ringbench: %v\n", err)
		if inputerr.Is(err) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}
