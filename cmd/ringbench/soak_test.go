package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/urfave/cli/v2"
)

// TestChurnAccounted is the short form of `make soak-churn`: short-lived
// senders one after the other (a new socket each, at addresses the slab
// hands out again) under `ringtrace trace --json` and `--summary --json`.
// Every frame the senders got back is traced AVAILABLE, nothing is lost and
// the tracer's memory stays flat. The sweep runs every millisecond so that
// it often reads a status a completion hook on another CPU is reporting at
// that moment: before completions were claimed atomically, that counted 2-3
// frames twice per 30 s of summary mode (which counts in the kernel), against
// one in a few CI runs with the default 20 ms sweep.
func TestChurnAccounted(t *testing.T) {
	if testing.Short() || os.Geteuid() != 0 {
		t.Skip("needs root (BPF, network namespaces): run `sudo make test`")
	}
	bin := filepath.Join(t.TempDir(), "ringtrace")
	if out, err := exec.Command("go", "build", "-o", bin, "../ringtrace").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	for _, mode := range []string{"stream", "summary", "calls"} {
		t.Run(mode, func(t *testing.T) {
			app := &cli.App{Name: "ringbench", Commands: []*cli.Command{soakCommand()}, ExitErrHandler: func(*cli.Context, error) {}}
			err := app.RunContext(context.Background(), []string{"ringbench", "soak", "--churn", "--ringtrace", bin,
				"--mode", mode, "--duration", "10s", "--every", "2s", "--max-growth", "0.25", "--sweep-interval", "1ms"})
			if err != nil {
				t.Errorf("soak --churn --mode %s: %v (its output says why)", mode, err)
			}
		})
	}
}
