// Command ringvm boots another Linux kernel under qemu and runs one shell
// command in it as root (`make vm`), fetches kernels into the cache
// (`make kernels`), or runs the kernel matrix (`make vmtest`, package
// scenarios/matrix). The work is done by scenarios/vm; this command maps flags
// onto vm.Options and exit statuses: the guest command's own status, 124 when
// the guest timed out, 2 for bad input, 130 when interrupted, 125 when the
// runner or the guest failed.
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
	"golang.org/x/sys/unix"

	"github.com/ringtrace/ringtrace/scenarios/vm"
	"github.com/ringtrace/ringtrace/tracer/inputerr"
)

// Exit statuses of ringvm itself (the command's own status otherwise).
const (
	exitInput       = 2
	exitTimeout     = 124
	exitFailure     = 125
	exitInterrupted = 130
)

func newApp() *cli.App {
	app := &cli.App{
		Name:  "ringvm",
		Usage: "run a command as root on another kernel under qemu",
		Commands: []*cli.Command{
			runCommand(),
			kernelsCommand(),
			matrixCommand(),
		},
		HideHelpCommand: true,
		OnUsageError:    usageError,
		ExitErrHandler:  func(*cli.Context, error) {},
	}
	for _, c := range app.Commands {
		c.OnUsageError = usageError
	}
	return app
}

func usageError(_ *cli.Context, err error, _ bool) error {
	return inputerr.New("%v (see --help)", err)
}

// cacheFlag is shared by both subcommands.
var cacheFlag = &cli.StringFlag{Name: "cache-dir", Usage: "kernel cache (default $RINGTRACE_CACHE or ~/.cache/ringtrace)"}

// archFlag is the guests' architecture (ARCH in make).
var archFlag = &cli.StringFlag{Name: "arch", Usage: "guest architecture: amd64 or arm64 (default: the host's; a kernel selector may also end in @arm64)"}

// guestArch reads --arch: "" when not given.
func guestArch(c *cli.Context) (vm.Arch, error) {
	if !c.IsSet("arch") || c.String("arch") == "" {
		return "", nil
	}
	return vm.ParseArch(c.String("arch"))
}

func cache(c *cli.Context) (*vm.Cache, error) {
	dir := c.String("cache-dir")
	if dir == "" {
		var err error
		if dir, err = vm.DefaultCacheDir(); err != nil {
			return nil, err
		}
	}
	return &vm.Cache{Dir: dir, Log: os.Stderr}, nil
}

func main() {
	dieWithParent()
	os.Exit(run(os.Args))
}

// dieWithParent asks for SIGTERM when the parent goes away: make does not
// pass its own SIGTERM on to a recipe, and a ringvm left running would keep
// its qemu alive until the guest timeout.
func dieWithParent() {
	ppid := os.Getppid()
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGTERM), 0, 0, 0); err != nil {
		return
	}
	if os.Getppid() != ppid { // the parent died before prctl
		_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
	}
}

func run(args []string) int {
	// A closed stdout (`| head`) must not kill ringvm before it kills qemu:
	// the write fails instead, and the run stops.
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return exitStatus(ctx, newApp().RunContext(ctx, args))
}

// exitStatus reports err on stderr and maps it to ringvm's exit status.
func exitStatus(ctx context.Context, err error) int {
	if err == nil {
		return 0
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		// The guest command's status (already reported), or the matrix's
		// verdict (1) with its message.
		if msg := err.Error(); msg != "" {
			fmt.Fprintf(os.Stderr, "ringvm: %s\n", msg)
		}
		return ec.ExitCode()
	}
	if ctx.Err() != nil && !inputerr.Is(err) {
		fmt.Fprintln(os.Stderr, "ringvm: interrupted (qemu killed, temporary files removed)")
		return exitInterrupted
	}
	fmt.Fprintf(os.Stderr, "ringvm: %s\n", strings.ReplaceAll(err.Error(), "\n", "; "))
	switch {
	case inputerr.Is(err):
		return exitInput
	case errors.Is(err, vm.ErrTimeout):
		return exitTimeout
	}
	return exitFailure
}
