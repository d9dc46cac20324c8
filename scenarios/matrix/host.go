package matrix

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"syscall"
	"time"
)

// hostWaitDelay is how long the host's script may take to clean up (labs
// removed by ringtrace on SIGTERM) after an interrupt.
const hostWaitDelay = 15 * time.Second

// runHost runs the scenarios natively on this machine's kernel, with the same
// script and parser as the guests (no tests: `sudo make test` runs those).
func runHost(ctx context.Context, o Options, progress io.Writer) *Target {
	t := &Target{Name: "host", Host: true}
	spec := Spec{Ringtrace: o.Binary, Hooks: Hooks(), Runs: HostRuns()}
	col := newCollector(spec, t)
	logs, err := openLogs(o.Out, "host")
	if err != nil {
		t.Error = err.Error()
		return t
	}
	defer logs.Close()
	nonce, err := newNonce()
	if err != nil {
		t.Error = err.Error()
		return t
	}
	var a Attempt
	parser := NewParser(nonce, func(f Frame) {
		a.Frames++
		col.add(f)
		if line := frameProgress(t, f); line != "" {
			fmt.Fprintf(progress, "vmtest: host: %s\n", line)
		}
	})
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", Script(spec, nonce, nil))
	out := io.MultiWriter(logs.out, parser) // one writer: one pipe, in order
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, stopped with SIGTERM as a whole: ringtrace
	// removes its lab on SIGTERM.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = hostWaitDelay
	start := time.Now()
	err = cmd.Run()
	a.CommandSeconds = time.Since(start).Seconds()
	a.TotalSeconds = a.CommandSeconds
	t.Attempts = append(t.Attempts, a)
	switch {
	case ctx.Err() != nil:
		t.Error = "interrupted"
	case err != nil:
		t.Error = fmt.Sprintf("the host script: %v (see %s)", err, logs.outPath)
	}
	col.finish()
	t.Seconds = a.TotalSeconds
	fmt.Fprintf(progress, "vmtest: host: done in %s: %s\n", time.Since(start).Round(time.Second), verdict(t))
	return t
}
