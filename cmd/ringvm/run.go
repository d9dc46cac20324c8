package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ringtrace/ringtrace/scenarios/vm"
	"github.com/ringtrace/ringtrace/tracer/inputerr"
)

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "boot a kernel and run a shell command in it as root",
		UsageText: "ringvm run --kernel 6.1 [--arch arm64] [--binary bin/ringtrace] [--share DIR] [--timeout 600] -- 'COMMAND'",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "kernel", Aliases: []string{"k"}, Usage: "kernel: " + strings.Join(vm.MatrixKernels(vm.ArchAMD64), ", ") + " (newest build), or an exact release like 6.1.0-56; @arm64 boots the arm64 build"},
			archFlag,
			&cli.StringSliceFlag{Name: "share", Usage: "host directory copied into the guest at the same path (repeatable)"},
			&cli.StringSliceFlag{Name: "binary", Usage: "static host executable put on the guest's PATH (repeatable)"},
			&cli.StringSliceFlag{Name: "module", Usage: "extra kernel module to load (repeatable)"},
			&cli.StringFlag{Name: "timeout", Value: "600", Usage: "kill the guest after this many seconds (or a duration like 10m)"},
			&cli.StringFlag{Name: "accel", Value: "auto", Usage: "auto (KVM if a probe shows it works, else TCG), tcg or kvm"},
			&cli.IntFlag{Name: "memory", Usage: "guest memory in MiB (default: 1024 + room for the shared files)"},
			&cli.IntFlag{Name: "cpus", Value: 1, Usage: "guest CPUs (more than one crashes TCG guests while probes attach: scenarios/vm Options.CPUs)"},
			&cli.StringFlag{Name: "workdir", Usage: "the command's working directory in the guest"},
			&cli.BoolFlag{Name: "console", Usage: "copy the kernel console to stderr"},
			&cli.BoolFlag{Name: "install-deps", EnvVars: []string{"VM_INSTALL_DEPS"}, Usage: "apt-get install missing host packages (qemu-system-x86 or qemu-system-arm, busybox-static)"},
			cacheFlag,
		},
		Action: runVM,
	}
}

func runVM(c *cli.Context) error {
	timeout, err := parseTimeout(c.String("timeout"))
	if err != nil {
		return err
	}
	accel, err := vm.ParseAccel(c.String("accel"))
	if err != nil {
		return err
	}
	cch, err := cache(c)
	if err != nil {
		return err
	}
	arch, err := guestArch(c)
	if err != nil {
		return err
	}
	o := vm.Options{
		Kernel:         c.String("kernel"),
		Arch:           arch,
		Command:        strings.Join(c.Args().Slice(), " "),
		Shares:         nonEmpty(c.StringSlice("share")),
		Binaries:       nonEmpty(c.StringSlice("binary")),
		Modules:        nonEmpty(c.StringSlice("module")),
		Timeout:        timeout,
		Accel:          accel,
		MemoryMiB:      c.Int("memory"),
		CPUs:           c.Int("cpus"),
		Workdir:        c.String("workdir"),
		Stdout:         os.Stdout,
		Log:            os.Stderr,
		Cache:          cch,
		InstallMissing: c.Bool("install-deps"),
	}
	if c.Bool("console") {
		o.Console = os.Stderr
	}
	res, err := vm.Run(c.Context, o)
	if res != nil && res.Kernel != nil && res.Accel != "" {
		fmt.Fprintln(os.Stderr, summary(res, err))
	}
	if err != nil {
		return err
	}
	if res.ExitCode != 0 {
		return cli.Exit("", res.ExitCode)
	}
	return nil
}

func summary(r *vm.Result, err error) string {
	s := fmt.Sprintf("ringvm: %s, %s: boot %.1fs, command %.1fs, total %.1fs",
		r.Kernel, r.Accel, r.Boot.Seconds(), r.Command.Seconds(), r.Total.Seconds())
	if err == nil {
		s += fmt.Sprintf(", exit status %d", r.ExitCode)
	}
	return s
}

// parseTimeout reads VM_TIMEOUT: whole seconds, or a Go duration.
func parseTimeout(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return vm.DefaultTimeout, nil
	}
	if n, err := strconv.Atoi(s); err == nil && n > 0 {
		return time.Duration(n) * time.Second, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return d, nil
	}
	return 0, inputerr.New("bad timeout %q: want seconds (e.g. 600) or a duration (e.g. 10m)", s)
}

func nonEmpty(ss []string) []string {
	var out []string
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
