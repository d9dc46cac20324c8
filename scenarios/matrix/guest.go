package matrix

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ringtrace/ringtrace/scenarios/vm"
	"github.com/ringtrace/ringtrace/tracer/inputerr"
)

// errStalled is the cause given when a guest printed nothing for Options.Stall.
var errStalled = errors.New("the guest printed nothing for too long")

// fatalGrace lets a dying kernel finish printing its oops before the guest
// is stopped.
const fatalGrace = 3 * time.Second

// runGuest boots one kernel and runs the spec in it; a guest that dies is
// booted once more for the parts that had not reported.
func runGuest(ctx context.Context, o Options, sel string, progress io.Writer) *Target {
	t := &Target{Name: sel}
	spec := guestSpec(o, sel)
	col := newCollector(spec, t)
	logs, err := openLogs(o.Out, sel)
	if err != nil {
		t.Error = err.Error()
		return t
	}
	defer logs.Close()
	start := time.Now()
	for boot := 1; boot <= 2 && ctx.Err() == nil; boot++ {
		fmt.Fprintf(logs.console, "=== boot %d\n", boot)
		a := bootOnce(ctx, o, sel, spec, col, logs, progress)
		t.Attempts = append(t.Attempts, a)
		if a.Died == "" {
			break
		}
		fmt.Fprintf(progress, "vmtest: %s: the guest died (%s)\n", targetName(t), a.Died)
		if boot == 1 {
			fmt.Fprintf(progress, "vmtest: %s: booting once more for the parts that had not reported\n", targetName(t))
		}
	}
	col.finish()
	t.Seconds = time.Since(start).Seconds()
	fmt.Fprintf(progress, "vmtest: %s: done in %s: %s\n", targetName(t), time.Since(start).Round(time.Second), verdict(t))
	return t
}

// bootOnce is one boot. It returns the attempt; Died is set when the guest
// ended early and a retry may help.
func bootOnce(ctx context.Context, o Options, sel string, spec Spec, col *collector, logs *logFiles, progress io.Writer) Attempt {
	var a Attempt
	nonce, err := newNonce()
	if err != nil {
		col.t.Error = err.Error()
		return a
	}
	bootCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	watch := &consoleWatch{onFatal: func() { time.AfterFunc(fatalGrace, func() { cancel(errWedged) }) }}
	stall := newStallTimer(o.Stall, func() { cancel(errStalled) })
	defer stall.stop()
	parser := NewParser(nonce, func(f Frame) {
		a.Frames++
		col.add(f)
		if line := frameProgress(col.t, f); line != "" {
			fmt.Fprintf(progress, "vmtest: %s: %s\n", targetName(col.t), line)
		}
	})
	b := o.build(sel)
	var shares []string
	if b.TestDir != "" && len(spec.Tests) > 0 {
		shares = []string{b.TestDir}
	}
	res, err := vm.Run(bootCtx, vm.Options{
		Kernel: sel, Command: Script(spec, nonce, col.done), Binaries: []string{b.Binary}, Shares: shares,
		Timeout: o.Timeout, Accel: o.Accel, Cache: o.Cache, CPUs: o.CPUs,
		Stdout: io.MultiWriter(logs.out, parser, stall), Log: io.MultiWriter(logs.out, progress), Console: watch,
	})
	io.WriteString(logs.console, watch.String())
	if res != nil {
		a.BootSeconds, a.CommandSeconds, a.TotalSeconds = res.Boot.Seconds(), res.Command.Seconds(), res.Total.Seconds()
		if res.Kernel != nil {
			col.t.Release, col.t.Version, col.t.Accel = res.Kernel.Release, res.Kernel.Version, string(res.Accel)
		}
	}
	switch {
	case ctx.Err() != nil:
		col.t.Error = "interrupted"
	case err == nil && res.ExitCode != 0:
		col.t.Error = fmt.Sprintf("the guest script exited with status %d (see %s)", res.ExitCode, logs.outPath)
	case err == nil:
	case inputerr.Is(err), res == nil || res.Accel == "":
		col.t.Error = strings.ReplaceAll(err.Error(), "\n", "; ")
	default:
		a.Died = died(err, context.Cause(bootCtx), watch.String())
	}
	return a
}

// died describes a guest's early end: why it was stopped, or how qemu
// ended, and what its console says.
func died(err, cause error, console string) string {
	what := "qemu ended"
	switch {
	case errors.Is(cause, errWedged):
		what = "stopped: the console shows an oops or a stall"
	case errors.Is(cause, errStalled):
		what = "stopped: " + cause.Error()
	case errors.Is(err, vm.ErrTimeout):
		what = "timed out"
	}
	if c := deathCause(console); c != "" {
		return what + ": " + c
	}
	return what + ": " + firstLine(err.Error())
}

func newNonce() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("nonce: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// logFiles are a target's output log and console file in the output directory.
type logFiles struct {
	out, console io.WriteCloser
	outPath      string
}

func openLogs(dir, name string) (*logFiles, error) {
	l := &logFiles{outPath: filepath.Join(dir, name+".log")}
	var err error
	if l.out, err = os.Create(l.outPath); err != nil {
		return nil, fmt.Errorf("log file: %w", err)
	}
	if l.console, err = os.Create(filepath.Join(dir, name+".console")); err != nil {
		l.out.Close()
		return nil, fmt.Errorf("console file: %w", err)
	}
	return l, nil
}

// Close closes both files.
func (l *logFiles) Close() error {
	return errors.Join(l.out.Close(), l.console.Close())
}

// stallTimer calls fire when no Write came for d.
type stallTimer struct {
	d time.Duration
	t *time.Timer
}

func newStallTimer(d time.Duration, fire func()) *stallTimer {
	return &stallTimer{d: d, t: time.AfterFunc(d, fire)}
}

func (s *stallTimer) Write(p []byte) (int, error) {
	s.t.Reset(s.d)
	return len(p), nil
}

func (s *stallTimer) stop() { s.t.Stop() }
