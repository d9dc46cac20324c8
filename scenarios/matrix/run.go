package matrix

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ringtrace/ringtrace/scenarios/vm"
	"github.com/ringtrace/ringtrace/tracer/inputerr"
)

// Options configure Run.
type Options struct {
	Kernels []string  // VM kernel selectors (vm.MatrixKernels in `make vmtest`; "7.2@arm64" for arm64)
	Binary  string    // static ringtrace: copied into the guests, run on the host
	Tests   []TestRun // test binaries (BuildTests), run in every guest
	TestDir string    // the directory holding them, shared with the guests
	// Foreign are the builds for guests of another architecture than the
	// host's (Binary, Tests and TestDir are the host's).
	Foreign map[vm.Arch]Build
	// ForeignHooks are the --hooks values run on those guests (nil:
	// ForeignHooks()); the first is the reference.
	ForeignHooks []string
	Host         bool          // also run the scenarios natively on this kernel
	Parallel     int           // guests booted at once (0: 1)
	CPUs         int           // vCPUs per guest (0: 1, see DefaultCPUs)
	Out          string        // per-kernel logs and consoles go here
	Timeout      time.Duration // per boot (0: DefaultTimeout)
	Stall        time.Duration // stop a guest that printed nothing this long (0: DefaultStall)
	Accel        vm.Accel
	Cache        *vm.Cache // nil: the default cache
	Log          io.Writer // progress (nil: discarded)
}

// DefaultCPUs is one vCPU per guest. With two, qemu 7.2's multi-threaded
// TCG kills most guests of this matrix (all five kernels, every class): an
// "Oops: int3" at a static-key site (__schedule, try_to_wake_up,
// syscall_trace_enter) while tracepoints and probes are switched on and off,
// or a vCPU looping in the int3 handler until RCU reports a stall. The
// console shows the patched instruction already restored while the vCPU still
// executes the old int3: stale translated code after cross-CPU text
// patching. One vCPU per guest (or qemu's -accel tcg,thread=single, which
// scenarios/vm does not offer) avoids it, and lets two guests share the two
// host cores.
const DefaultCPUs = 1

// DefaultTimeout bounds one boot: a whole kernel's classes, verifications
// and tests take 8-15 minutes under TCG on a quiet machine, and 24 (5.10)
// on one busy with other guests. A guest that wedges is stopped sooner by
// the stall timer (DefaultStall).
const DefaultTimeout = 35 * time.Minute

// DefaultStall is how long a guest may print nothing: the longest single
// step (one scenario, one test) takes well under a minute.
const DefaultStall = 5 * time.Minute

// Run runs the matrix. Errors are input errors and an interrupted run;
// everything that happens to a kernel is in its Target.
func Run(ctx context.Context, o Options) (*Matrix, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	m := &Matrix{Started: time.Now(), Parallel: o.Parallel, CPUs: o.CPUs}
	log := &syncWriter{w: o.Log}
	if o.Host {
		m.Targets = append(m.Targets, runHost(ctx, o, log))
	}
	guests := make([]*Target, len(o.Kernels))
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range o.Parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				guests[i] = runGuest(ctx, o, o.Kernels[i], log)
			}
		}()
	}
	for i := range o.Kernels {
		if ctx.Err() != nil {
			break
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("interrupted: %w", err)
	}
	m.Targets = append(guests, m.Targets...)
	m.Seconds = time.Since(m.Started).Seconds()
	m.Pass = true
	for _, t := range m.Targets {
		if !t.Passed() {
			m.Pass = false
		}
	}
	return m, nil
}

// Validate checks o and fills in defaults; problems are input errors.
func (o *Options) Validate() error {
	if o.Parallel <= 0 {
		o.Parallel = 1
	}
	if o.CPUs <= 0 {
		o.CPUs = DefaultCPUs
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Stall <= 0 {
		o.Stall = DefaultStall
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	var err error
	if o.Binary, err = validRingtrace(o.Binary); err != nil {
		return err
	}
	for _, k := range o.Kernels {
		sel, err := vm.ParseSelector(k)
		if err != nil {
			return err
		}
		if sel.Arch == vm.HostArch() {
			continue
		}
		b := o.Foreign[sel.Arch]
		if b.Binary == "" {
			return inputerr.New("kernel %s: no %s ringtrace binary given (make build GOARCH=%s)", k, sel.Arch, sel.Arch)
		}
		if b.Binary, err = validRingtrace(b.Binary); err != nil {
			return err
		}
		o.Foreign[sel.Arch] = b
	}
	if o.Out == "" {
		return inputerr.New("no output directory given")
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return inputerr.Wrap(err, "output directory: %v", err)
	}
	return nil
}

// Build is what runs in the guests of one architecture.
type Build struct {
	Binary  string    // static ringtrace for that architecture
	Tests   []TestRun // its test binaries (BuildTests)
	TestDir string    // the directory holding them, shared with the guests
}

// build is what runs in a guest booted from selector sel.
func (o Options) build(sel string) Build {
	if s, err := vm.ParseSelector(sel); err == nil && s.Arch != vm.HostArch() {
		return o.Foreign[s.Arch]
	}
	return Build{Binary: o.Binary, Tests: o.Tests, TestDir: o.TestDir}
}

// validRingtrace checks a ringtrace binary and returns its absolute path.
func validRingtrace(bin string) (string, error) {
	if bin == "" {
		return "", inputerr.New("no ringtrace binary given")
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		return "", inputerr.Wrap(err, "binary %s: %v", bin, err)
	}
	if fi, err := os.Stat(abs); err != nil || !fi.Mode().IsRegular() {
		return "", inputerr.New("binary %s: not a file (build it first: make build)", abs)
	}
	if filepath.Base(abs) != "ringtrace" {
		return "", inputerr.New("binary %s: must be named ringtrace (the tests trace it by its command name)", abs)
	}
	return abs, nil
}

// WriteJSON writes the matrix as indented JSON.
func WriteJSON(path string, m *Matrix) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("matrix JSON: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("matrix JSON: %w", err)
	}
	return nil
}

// syncWriter serialises progress lines from parallel guests.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
