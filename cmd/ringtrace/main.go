// Command ringtrace traces the AF_PACKET PACKET_TX_RING transmit path with
// CO-RE eBPF and generates TX-ring load. Subcommands live one per file; each
// maps its flags onto a tracer/ package and returns errors, which main turns
// into one line on stderr and an exit status (2 for bad input, 1 otherwise).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/ringtrace/ringtrace/tracer/inputerr"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func newApp() *cli.App {
	app := &cli.App{
		Name:    "ringtrace",
		Usage:   "trace and drive the AF_PACKET PACKET_TX_RING transmit path",
		Version: version,
		Description: "ringtrace follows every TX ring frame through SEND_REQUEST -> SENDING -> AVAILABLE\n" +
			"with CO-RE eBPF (no debuginfo), and ships a TX_RING load generator.",
		Commands: []*cli.Command{
			sendCommand(),
			probeCommand(),
			traceCommand(),
			topCommand(),
			reportCommand(),
			scenariosCommand(),
			runCommand(),
		},
		HideHelpCommand: true,
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return inputerr.New("unknown command %q (see --help)", c.Args().First())
			}
			return cli.ShowAppHelp(c)
		},
		OnUsageError: usageError,
		// Errors are printed by main, once.
		ExitErrHandler: func(*cli.Context, error) {},
	}
	for _, c := range app.Commands {
		if c.OnUsageError == nil {
			c.OnUsageError = usageError
		}
		if c.ArgsUsage == "" && c.Before == nil {
			c.Before = noArguments
		}
	}
	return app
}

// noArguments refuses positional arguments for commands that take none:
// `ringtrace trace eth0` must not quietly trace every interface.
func noArguments(c *cli.Context) error {
	if c.Args().Present() {
		return inputerr.New("%s takes no arguments, got %q (see --help)", c.Command.Name, c.Args().First())
	}
	return nil
}

// usageError makes flag parsing problems one-line input errors instead of a
// help dump.
func usageError(_ *cli.Context, err error, _ bool) error {
	return inputerr.New("%v (see --help)", err)
}

func main() {
	os.Exit(run(os.Args))
}

func run(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	app := newApp()
	err := app.RunContext(ctx, interspersed(app, args))
	if err == nil {
		return 0
	}
	if msg := strings.ReplaceAll(err.Error(), "\n", "; "); msg != "" {
		fmt.Fprintf(os.Stderr, "ringtrace: %s\n", msg)
	}
	var ec cli.ExitCoder
	switch {
	case inputerr.Is(err):
		return 2
	case errors.As(err, &ec):
		return ec.ExitCode()
	}
	return 1
}
