package vm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// errNoStart means the guest never started the command: qemu ended during
// boot (an emulator or kernel crash), or a KVM guest hung. Nothing of the
// command has run, so Run may boot again.
var errNoStart = errors.New("the guest ended before the command started")

// kvmBootDeadline is how long a KVM guest may take to start the command
// (a working one needs about a second).
const kvmBootDeadline = 30 * time.Second

// consoleTail is how much of the kernel console a Result keeps.
const consoleTail = 16 << 10

// outcome collects what the channel reported; records arrive on the channel
// goroutine, the verdict is read after it ended.
type outcome struct {
	mu      sync.Mutex
	start   time.Time
	exit    int
	exited  bool
	initErr string
	started chan struct{}
}

func (oc *outcome) record(r Record, stop func()) {
	oc.mu.Lock()
	defer oc.mu.Unlock()
	switch r.Kind {
	case "start":
		if oc.start.IsZero() {
			oc.start = time.Now()
			close(oc.started)
		}
	case "exit":
		n, err := ExitStatus(r)
		if err != nil {
			oc.initErr = err.Error()
		} else {
			oc.exit, oc.exited = n, true
		}
		stop()
	case "error":
		oc.initErr = r.Args
		stop()
	}
}

// boot runs one qemu and waits for the exit record, the timeout, ctx, or
// qemu ending on its own.
func boot(ctx context.Context, m machine, nonce string, o Options) (*Result, error) {
	console := newTailBuffer(consoleTail, o.Console)
	m.Console = console
	vmCtx, stop := context.WithCancel(ctx)
	defer stop()
	runCtx, cancelTimeout := context.WithTimeout(vmCtx, o.Timeout)
	defer cancelTimeout()

	oc := &outcome{started: make(chan struct{})}
	out := o.Stdout
	if out == nil {
		out = io.Discard
	}
	// Output that cannot be written (a closed pipe) stops the guest.
	ch := NewChannel(nonce, stopOnError{out, stop}, func(r Record) { oc.record(r, stop) })

	t0 := time.Now()
	vm, chDone, err := m.start(runCtx, ch)
	if err != nil {
		return &Result{Accel: m.Accel}, err
	}
	stalled := false
	if m.Accel == AccelKVM {
		go func() {
			select {
			case <-oc.started:
			case <-runCtx.Done():
			case <-time.After(kvmBootDeadline):
				oc.mu.Lock()
				stalled = true
				oc.mu.Unlock()
				stop()
			}
		}()
	}
	waitErr := vm.Wait()
	chErr := <-chDone
	closeErr := ch.Close()
	end := time.Now()

	oc.mu.Lock()
	defer oc.mu.Unlock()
	res := &Result{Accel: m.Accel, Total: end.Sub(t0), Console: console.String()}
	if !oc.start.IsZero() {
		res.Boot = oc.start.Sub(t0)
		res.Command = end.Sub(oc.start)
	}
	switch {
	case ch.Err() != nil:
		return res, ch.Err()
	case oc.exited:
		res.ExitCode = oc.exit
		return res, nil
	case oc.initErr != "":
		return res, fmt.Errorf("guest /init failed: %s", oc.initErr)
	case stalled:
		return res, fmt.Errorf("%w: KVM guest not at /init after %s", errNoStart, kvmBootDeadline)
	case ctx.Err() != nil:
		return res, fmt.Errorf("guest stopped: %w", ctx.Err())
	case errors.Is(runCtx.Err(), context.DeadlineExceeded):
		return res, fmt.Errorf("%w after %s and was killed (%s)", ErrTimeout, o.Timeout, phase(oc.start))
	}
	detail := ""
	if err := firstErr(waitErr, chErr, closeErr); err != nil {
		detail = ": " + err.Error()
	}
	lines := strings.Join(lastLinesOf(res.Console, 8), " | ")
	if oc.start.IsZero() {
		return res, fmt.Errorf("%w (qemu ended%s); last console lines: %s", errNoStart, detail, lines)
	}
	return res, fmt.Errorf("qemu ended before the command finished%s; last console lines: %s", detail, lines)
}

// stopOnError passes writes on and calls stop at the first failure.
type stopOnError struct {
	w    io.Writer
	stop func()
}

func (s stopOnError) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	if err != nil {
		s.stop()
	}
	return n, err
}

func phase(start time.Time) string {
	if start.IsZero() {
		return "it never reached the command"
	}
	return fmt.Sprintf("the command ran for %s", time.Since(start).Round(time.Second))
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
