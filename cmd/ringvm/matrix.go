package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/ringtrace/ringtrace/scenarios/matrix"
	"github.com/ringtrace/ringtrace/scenarios/vm"
	"github.com/ringtrace/ringtrace/tracer/inputerr"
)

func matrixCommand() *cli.Command {
	return &cli.Command{
		Name:  "matrix",
		Usage: "run the scenarios under every hook class and the root integration tests on each kernel (make vmtest)",
		UsageText: "ringvm matrix [--kernel K]... [--binary bin/ringtrace] [--binary-arm64 bin/arm64/ringtrace] [--out out/vmtest] [--parallel N] [--no-host] [--no-tests]\n" +
			"exit status: 0 every cell passed, 1 some failed, 2 bad input, 130 interrupted",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "kernel", Aliases: []string{"k"}, Usage: "kernel to boot (repeatable; default: " + strings.Join(vm.MatrixKernels(vm.ArchAMD64), " ") + "; arm64 ones: " + strings.Join(vm.MatrixKernels(vm.ArchARM64), " ") + ")"},
			&cli.StringSliceFlag{Name: "with-kernel", Usage: "kernel to boot besides the --kernel list or the default one (repeatable), e.g. 7.2@arm64"},
			&cli.StringFlag{Name: "binary", Value: "bin/ringtrace", Usage: "static ringtrace: run in the guests and on the host"},
			&cli.StringSliceFlag{Name: "foreign-hooks", Usage: "--hooks values run in guests of another architecture (default: " + strings.Join(matrix.ForeignHooks(), ",") + "; the first is the reference)"},
			&cli.StringFlag{Name: "binary-arm64", Value: "bin/arm64/ringtrace", Usage: "static arm64 ringtrace, for @arm64 kernels (make build GOARCH=arm64)"},
			&cli.StringFlag{Name: "out", Value: "out/vmtest", Usage: "where matrix.json, matrix.txt and per-kernel logs and consoles go"},
			&cli.IntFlag{Name: "parallel", Value: 2, Usage: "guests booted at once"},
			&cli.IntFlag{Name: "cpus", Value: matrix.DefaultCPUs, Usage: "vCPUs per guest (see scenarios/matrix.DefaultCPUs for why 1)"},
			&cli.BoolFlag{Name: "no-host", Usage: "do not run the scenarios natively on this kernel"},
			&cli.BoolFlag{Name: "no-tests", Usage: "do not run the integration tests in the guests"},
			&cli.StringFlag{Name: "go", Usage: "go command that builds the test binaries (default: go on PATH, else /usr/local/go/bin/go)"},
			&cli.StringFlag{Name: "timeout", Value: matrix.DefaultTimeout.String(), Usage: "kill a guest after this long (per boot)"},
			&cli.StringFlag{Name: "accel", Value: "auto", Usage: "auto, tcg or kvm"},
			cacheFlag,
		},
		Action: runMatrix,
	}
}

func runMatrix(c *cli.Context) error {
	kernels := nonEmpty(c.StringSlice("kernel"))
	if len(kernels) == 0 {
		kernels = vm.MatrixKernels(vm.ArchAMD64)
	}
	// Added kernels first: they are the emulated arm64 ones, the slowest,
	// and the longest guests first make the shortest matrix.
	kernels = append(nonEmpty(c.StringSlice("with-kernel")), kernels...)
	timeout, err := parseTimeout(c.String("timeout"))
	if err != nil {
		return err
	}
	accel, err := vm.ParseAccel(c.String("accel"))
	if err != nil {
		return err
	}
	if p := c.Int("parallel"); p < 1 || p > 8 {
		return inputerr.New("--parallel %d: want 1..8", p)
	}
	if n := c.Int("cpus"); n < 1 || n > 8 {
		return inputerr.New("--cpus %d: want 1..8", n)
	}
	cch, err := cache(c)
	if err != nil {
		return err
	}
	o := matrix.Options{Kernels: kernels, Binary: c.String("binary"), Host: !c.Bool("no-host"), Parallel: c.Int("parallel"), CPUs: c.Int("cpus"),
		Out: c.String("out"), Timeout: timeout, Accel: accel, Cache: cch, Log: os.Stderr,
		Foreign: map[vm.Arch]matrix.Build{vm.ArchARM64: {Binary: c.String("binary-arm64")}}, ForeignHooks: nonEmpty(c.StringSlice("foreign-hooks"))}
	for _, h := range o.ForeignHooks {
		if !slices.Contains(matrix.Hooks(), h) {
			return inputerr.New("--foreign-hooks %s: want some of %s", h, strings.Join(matrix.Hooks(), ", "))
		}
	}
	arches, err := guestArches(kernels)
	if err != nil {
		return err
	}
	if !arches[vm.ArchARM64] {
		delete(o.Foreign, vm.ArchARM64)
	}
	if err := o.Validate(); err != nil {
		return err
	}
	// A kernel no archive offers is bad input: say so before anything is
	// built, not as a failed row at the end. This also fetches what is
	// missing, once, before the guests start (cached: about 1 s a kernel).
	for _, k := range kernels {
		sel, _ := vm.ParseSelector(k) // parsed by guestArches
		if _, err := cch.Kernel(c.Context, sel); inputerr.Is(err) {
			return err
		}
	}
	if !c.Bool("no-tests") {
		dir, err := os.MkdirTemp("", fmt.Sprintf("ringvm-%d-tests-", os.Getpid())) // removed by the next run if this one is killed
		if err != nil {
			return fmt.Errorf("test directory: %w", err)
		}
		defer os.RemoveAll(dir)
		goTool, err := goCommand(c.String("go"))
		if err != nil {
			return err
		}
		for _, a := range vm.Arches {
			if !arches[a] {
				continue
			}
			sub := filepath.Join(dir, string(a))
			tests, err := matrix.BuildTests(c.Context, goTool, ".", sub, a, os.Stderr)
			if err != nil {
				return err
			}
			if a == vm.HostArch() {
				o.Tests, o.TestDir = tests, sub
				continue
			}
			b := o.Foreign[a]
			b.Tests, b.TestDir = tests, sub
			o.Foreign[a] = b
		}
	}
	m, err := matrix.Run(c.Context, o)
	if err != nil {
		return err
	}
	var table bytes.Buffer
	if err := matrix.WriteTable(&table, m); err != nil {
		return err
	}
	os.Stdout.Write(table.Bytes())
	if err := os.WriteFile(filepath.Join(o.Out, "matrix.txt"), table.Bytes(), 0o644); err != nil {
		return fmt.Errorf("matrix table: %w", err)
	}
	jsonPath := filepath.Join(o.Out, "matrix.json")
	if err := matrix.WriteJSON(jsonPath, m); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "vmtest: wrote %s, %s and the per-kernel logs there\n", jsonPath, filepath.Join(o.Out, "matrix.txt"))
	if !m.Pass {
		return cli.Exit("vmtest: FAIL: the matrix has failures, listed under FAILURES above", 1)
	}
	return nil
}

// guestArches are the architectures of the kernels' guests.
func guestArches(kernels []string) (map[vm.Arch]bool, error) {
	out := map[vm.Arch]bool{}
	for _, k := range kernels {
		sel, err := vm.ParseSelector(k)
		if err != nil {
			return nil, err
		}
		out[sel.Arch] = true
	}
	return out, nil
}

// goCommand finds the go command: sudo's secure_path often lacks it.
func goCommand(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/local/go/bin/go"); err == nil {
		return "/usr/local/go/bin/go", nil
	}
	return "", inputerr.New("no go command on PATH or at /usr/local/go/bin/go: give --go or --no-tests")
}
