// Package scenarios owns the reference investigations reproduced as
// self-checking runs: each scenario builds its lab (network namespaces, a
// veth pair, an emulated NIC), traces the built-in TX_RING sender, rebuilds
// the report, checks what it expects with the measured numbers — from
// physics (wire time) with tolerances, never hard-coded observations — and
// tears everything down, on success, failure, panic or signal.
package scenarios

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ringtrace/ringtrace/scenarios/lab"
	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/plan"
	"github.com/ringtrace/ringtrace/tracer/report"
	"github.com/ringtrace/ringtrace/tracer/txring"
)

// Params are the knobs a user may override per run (zero: the scenario's
// own default).
type Params struct {
	Rate      uint64 // emulated NIC rate, bits/s
	Burst     uint32 // tbf bucket, bytes (0: 1 ms at Rate, at least two frames)
	FifoLimit uint32 // pfifo child limit, packets
	MTU       int
	SndBuf    int // SO_SNDBUFFORCE request
	Bypass    bool
	Frames    int // frames to send
	Size      int // frame length (tp_len)
	// RateScale multiplies the scenario's default rate (not an explicit
	// Rate): on a slow machine, such as a TCG virtual machine, the emulated
	// link must stay slower than the CPU for the physics to hold.
	RateScale float64
}

// Scenario is one reference investigation.
type Scenario struct {
	Name  string
	Title string
	// Seed says which reference session it reproduces and what it shows.
	Seed string
	// Defaults are the scenario's parameters; Params override non-zero fields.
	Defaults Params
	// NoNIC: the sender's veth gets no tbf (the bypass scenario still has
	// one: bypassing it is the point).
	NoNIC bool
	// Kinds are the events traced (nil: all). Fewer kinds attach fewer
	// tracepoints: a scenario whose physics the tracer's own cost could
	// distort asks only for what it checks.
	Kinds []event.Kind
	// StuckAfter is how long a frame may stay SENDING before the trace
	// reports it stuck and looks for its holder (0: 1 s).
	StuckAfter time.Duration
	// Calls: its checks hold with --detail calls (no frame timelines: the
	// frames of a call are counted at its return).
	Calls bool
	// Run sends under the tracer (env.Trace) and returns the expectations.
	Run func(ctx context.Context, env *Env) ([]Expectation, error)
}

// Expectation is one checked claim, with what was measured.
type Expectation struct {
	What     string `json:"what"`
	Pass     bool   `json:"pass"`
	Measured string `json:"measured"`
	Want     string `json:"want,omitempty"`
	// Outcome is what happened, where that differs by kernel (the kernel
	// matrix compares it with what each kernel is known to do).
	Outcome Outcome `json:"outcome,omitempty"`
}

// Outcome names what happened in a scenario whose result differs by kernel.
type Outcome string

const (
	// OutcomeCompleted: the call returned with every frame AVAILABLE.
	OutcomeCompleted Outcome = "completed"
	// OutcomeSelfDeadlock: the frames stayed SENDING, held by the sender's
	// own receive queue.
	OutcomeSelfDeadlock Outcome = "self-deadlock"
)

// Result of a scenario run.
type Result struct {
	Scenario     string         `json:"scenario"`
	Pass         bool           `json:"pass"`
	Error        string         `json:"error,omitempty"`
	Expectations []Expectation  `json:"expectations"`
	Params       Params         `json:"params"`
	Kernel       string         `json:"kernel"`
	Hooks        string         `json:"hook_class"`
	Completion   string         `json:"completion"`
	Duration     time.Duration  `json:"duration_ns"`
	Files        []string       `json:"files,omitempty"`
	Report       *report.Report `json:"-"`
	Plan         *plan.Plan     `json:"-"`
}

// All lists the scenarios in reference-session order.
func All() []*Scenario {
	return []*Scenario{statusScenario(), callReturnScenario(), sndbufScenario(), sndbufBlockingScenario(),
		bypassScenario(), rxScenario(), selfLoopScenario()}
}

// Lookup finds a scenario by name.
func Lookup(name string) (*Scenario, error) {
	var names []string
	for _, s := range All() {
		if s.Name == name {
			return s, nil
		}
		names = append(names, s.Name)
	}
	sort.Strings(names)
	return nil, fmt.Errorf("unknown scenario %q (scenarios: %s)", name, strings.Join(names, ", "))
}

// merged returns the scenario defaults overridden by p's non-zero fields.
func (s *Scenario) merged(p Params) Params {
	m := s.Defaults
	if p.RateScale > 0 {
		m.Rate = uint64(float64(m.Rate) * p.RateScale)
		m.RateScale = p.RateScale
	}
	if p.Rate != 0 {
		m.Rate = p.Rate
	}
	if p.Burst != 0 {
		m.Burst = p.Burst
	}
	if p.FifoLimit != 0 {
		m.FifoLimit = p.FifoLimit
	}
	if p.MTU != 0 {
		m.MTU = p.MTU
	}
	if p.SndBuf != 0 {
		m.SndBuf = p.SndBuf
	}
	if p.Bypass {
		m.Bypass = true
	}
	if p.Frames != 0 {
		m.Frames = p.Frames
	}
	if p.Size != 0 {
		m.Size = p.Size
	}
	return m
}

func (p Params) nic() lab.NIC {
	return lab.NIC{Rate: p.Rate, Burst: p.Burst, FifoLimit: p.FifoLimit}
}

// frame is the scenarios' frame: broadcast, local experimental ethertype.
func frame(size int) txring.FrameSpec {
	return txring.FrameSpec{Dst: txring.BroadcastMAC, EtherType: txring.EtherTypeLocalExp1, Size: size}
}

func pass(what string, ok bool, measured, want string) Expectation {
	return Expectation{What: what, Pass: ok, Measured: measured, Want: want}
}
