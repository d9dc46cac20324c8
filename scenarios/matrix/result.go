package matrix

import (
	"time"

	"github.com/ringtrace/ringtrace/scenarios"
	"github.com/ringtrace/ringtrace/tracer/plan"
)

// Matrix is the outcome of a run: matrix.json.
type Matrix struct {
	Started  time.Time `json:"started"`
	Seconds  float64   `json:"seconds"`
	Pass     bool      `json:"pass"`
	Parallel int       `json:"parallel"` // guests booted at once
	CPUs     int       `json:"cpus"`     // vCPUs per guest
	Targets  []*Target `json:"kernels"`
}

// Target is one kernel: a guest booted under qemu, or the host.
type Target struct {
	Name     string        `json:"name"` // the selector ("6.1"), or "host"
	Host     bool          `json:"host"`
	Release  string        `json:"release,omitempty"` // `uname -r` of what ran
	Version  string        `json:"version,omitempty"` // Debian package version (guests), kernel version (host)
	Accel    string        `json:"accel,omitempty"`   // tcg or kvm (guests)
	Seconds  float64       `json:"seconds"`           // wall time of all attempts
	Attempts []Attempt     `json:"attempts"`
	Classes  []*Class      `json:"classes"`
	Cells    []*Cell       `json:"cells"`
	Tests    []*TestResult `json:"tests,omitempty"`
	// Error is why the target could not run at all (no kernel, bad binary).
	Error string `json:"error,omitempty"`
}

// Attempt is one boot (or the host's one run).
type Attempt struct {
	BootSeconds    float64 `json:"boot_s"`
	CommandSeconds float64 `json:"command_s"`
	TotalSeconds   float64 `json:"total_s"`
	Frames         int     `json:"frames"` // results it reported
	// Died says why the guest ended before the script did (a kernel
	// panic, a wedged guest that was killed, qemu gone), with the
	// console's telling lines.
	Died string `json:"died,omitempty"`
}

// Class is one --hooks value on one kernel.
type Class struct {
	Hooks      string `json:"hooks"`           // the --hooks value
	Class      string `json:"class,omitempty"` // what it resolved to: fentry, kprobe, tracepoint
	Letter     string `json:"letter,omitempty"`
	Completion string `json:"completion,omitempty"` // destructor or uarg
	// Unavailable is the probe's input error: this kernel cannot do the
	// class. ProbeError is any other failure of the probe.
	Unavailable string `json:"unavailable,omitempty"`
	ProbeError  string `json:"probe_error,omitempty"`
	// SameAs names the reference --hooks value this one resolved to the
	// same class as: its scenarios are not run twice.
	SameAs string `json:"same_as,omitempty"`
	// Verified is the VERIFIED column: "verified", "BROKEN: <first broken
	// promise>", "ERROR: …", "n/a" (the kernel lacks the class).
	// Verification has the verdict and `ringtrace probe --verify`'s report.
	Verified     string        `json:"verified,omitempty"`
	Verification *Verification `json:"verification,omitempty"`
	// Seconds is how long its scenario runs took.
	Seconds int        `json:"seconds"`
	Plan    *plan.Plan `json:"plan,omitempty"`
	Changes []Change   `json:"plan_changes,omitempty"` // against the reference class
}

// Cell states.
const (
	Pass    = "PASS"
	Fail    = "FAIL"    // an expectation failed, or the scenario reported an error
	Error   = "ERROR"   // ringtrace run gave no result for the scenario
	Died    = "DIED"    // the guest died before the scenario reported, twice
	Missing = "MISSING" // the script finished without reporting it
)

// Cell is one scenario under one class on one kernel.
type Cell struct {
	Hooks    string            `json:"hooks"`
	Scenario string            `json:"scenario"`
	State    string            `json:"state"`
	Detail   string            `json:"detail,omitempty"` // why it is not PASS
	Result   *scenarios.Result `json:"result,omitempty"` // expectations, parameters, timing
}

// TestResult is one test binary's run.
type TestResult struct {
	Package string   `json:"package"`
	State   string   `json:"state"` // PASS, FAIL, DIED, MISSING
	Status  int      `json:"exit_status"`
	Seconds int      `json:"seconds"`
	Passed  int      `json:"passed"` // top-level tests
	Failed  []string `json:"failed,omitempty"`
	Skipped []string `json:"skipped,omitempty"` // skipped by the tests themselves
	// Excluded is the -test.skip pattern the harness gave, and why.
	Excluded string `json:"excluded,omitempty"`
	Detail   string `json:"detail,omitempty"`
}

// Passed reports whether every cell, verification and test of the target
// passed.
func (t *Target) Passed() bool {
	if t.Error != "" || len(t.Cells) == 0 {
		return false
	}
	for _, cl := range t.Classes {
		if cl.Verification != nil && cl.Verification.State != Verified {
			return false
		}
	}
	for _, c := range t.Cells {
		if c.State != Pass {
			return false
		}
	}
	for _, r := range t.Tests {
		if r.State != Pass {
			return false
		}
	}
	return true
}

// class returns the target's entry for a --hooks value.
func (t *Target) class(hooks string) *Class {
	for _, c := range t.Classes {
		if c.Hooks == hooks {
			return c
		}
	}
	c := &Class{Hooks: hooks}
	t.Classes = append(t.Classes, c)
	return c
}
