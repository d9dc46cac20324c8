package main

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ringtrace/ringtrace/scenarios/matrix"
	"github.com/ringtrace/ringtrace/scenarios/vm"
	"github.com/ringtrace/ringtrace/tracer/inputerr"
)

func TestParseTimeout(t *testing.T) {
	for in, want := range map[string]time.Duration{"": 600 * time.Second, "20": 20 * time.Second, " 600 ": 600 * time.Second, "90s": 90 * time.Second, "10m": 10 * time.Minute} {
		if got, err := parseTimeout(in); err != nil || got != want {
			t.Errorf("parseTimeout(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"0", "-5", "abc", "5x"} {
		if _, err := parseTimeout(bad); err == nil {
			t.Errorf("parseTimeout(%q) accepted", bad)
		}
	}
}

// TestBadInputExitsTwo: input errors are found before anything is fetched
// or booted, so this needs neither network nor qemu.
func TestBadInputExitsTwo(t *testing.T) {
	for _, args := range [][]string{
		{"ringvm", "run", "--kernel", "banana", "--", "true"},
		{"ringvm", "run", "--kernel", "6.1"},
		{"ringvm", "run", "--kernel", "6.1", "--share", "/nonexistent/dir", "--", "true"},
		{"ringvm", "run", "--kernel", "6.1", "--timeout", "soon", "--", "true"},
		{"ringvm", "run", "--kernel", "6.1", "--accel", "xen", "--", "true"},
		{"ringvm", "run", "--no-such-flag"},
		{"ringvm", "kernels", "4.x"},
		{"ringvm", "matrix", "--kernel", "banana", "--no-tests"},
		{"ringvm", "matrix", "--parallel", "0", "--no-tests"},
		{"ringvm", "matrix", "--cpus", "-1", "--no-tests"},
		{"ringvm", "matrix", "--binary", "/nonexistent/ringtrace", "--no-tests"},
		{"ringvm", "matrix", "--timeout", "soon", "--no-tests"},
	} {
		if got := run(args); got != exitInput {
			t.Errorf("%v: exit %d, want %d", args[1:], got, exitInput)
		}
	}
}

// TestExitStatus: a failed matrix exits 1 (it used to exit 125: its
// cli.Exit carried a message), a guest command's status passes through.
func TestExitStatus(t *testing.T) {
	ctx := context.Background()
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	for _, c := range []struct {
		ctx  context.Context
		err  error
		want int
	}{
		{ctx, nil, 0},
		{ctx, cli.Exit("vmtest: FAIL: the matrix has failures, listed under FAILURES above", 1), 1},
		{ctx, cli.Exit("", 3), 3},
		{ctx, inputerr.New("bad"), exitInput},
		{ctx, fmt.Errorf("boot: %w", vm.ErrTimeout), exitTimeout},
		{ctx, errors.New("qemu failed"), exitFailure},
		{cancelled, errors.New("context canceled"), exitInterrupted},
	} {
		if got := exitStatus(c.ctx, c.err); got != c.want {
			t.Errorf("exitStatus(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}

// TestMatrixTimeoutDefault: the CLI's per-boot timeout is the matrix's own
// default (a 20 m flag default once cut 5.10's 24-minute boots short).
func TestMatrixTimeoutDefault(t *testing.T) {
	for _, f := range matrixCommand().Flags {
		if sf, ok := f.(*cli.StringFlag); ok && sf.Name == "timeout" {
			if d, err := parseTimeout(sf.Value); err != nil || d != matrix.DefaultTimeout {
				t.Errorf("--timeout default %q, want matrix.DefaultTimeout %v", sf.Value, matrix.DefaultTimeout)
			}
			return
		}
	}
	t.Error("matrix has no --timeout flag")
}
