package matrix

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/ringtrace/ringtrace/scenarios"
	"github.com/ringtrace/ringtrace/tracer/kernel"
	"github.com/ringtrace/ringtrace/tracer/plan"
)

// collector turns a target's frames into its classes, cells and tests.
type collector struct {
	spec Spec
	t    *Target
	done map[string]bool // keys of the frames received
}

func newCollector(spec Spec, t *Target) *collector {
	return &collector{spec: spec, t: t, done: map[string]bool{}}
}

// add takes one frame; frames of parts already done (a retry's probes) only
// refresh the probe.
func (c *collector) add(f Frame) {
	kind, rest, _ := strings.Cut(f.Key, "/")
	switch kind {
	case "probe":
		c.probe(rest, f)
	case "verify":
		c.t.class(rest).Verification = noVerifyReport(f.Payload, f.Status)
	case "run":
		hooks, idx, _ := strings.Cut(rest, "/")
		i, err := strconv.Atoi(idx)
		if err != nil || i < 0 || i >= len(c.spec.Runs) || c.done[f.Key] {
			return
		}
		c.run(hooks, c.spec.Runs[i], f)
	case "test":
		if c.done[f.Key] {
			return
		}
		c.test(rest, f)
	default:
		return
	}
	c.done[f.Key] = true
}

// exitInput is ringtrace's exit status for bad input: a forced class the
// kernel cannot do.
const exitInput = 2

// probeOutput is what `ringtrace probe --json` prints, and `ringtrace probe
// --verify --json` with Verify.
type probeOutput struct {
	Kernel *kernel.Facts `json:"kernel"`
	Plan   *plan.Plan    `json:"plan"`
	Verify *VerifyReport `json:"verify"`
}

// probe takes the output of `probe --verify --json` (which exits 1 with its
// report when a promise was broken) or, when that printed no report, of
// `probe --json` after a "verify/" frame.
func (c *collector) probe(hooks string, f Frame) {
	cl := c.t.class(hooks)
	cl.Unavailable, cl.ProbeError = "", ""
	var p probeOutput
	readable := json.Unmarshal(f.Payload, &p) == nil && p.Plan != nil
	prefix := "--hooks=" + hooks + ": "
	switch {
	case readable && p.Verify != nil:
		cl.Verification = judgeVerify(p.Verify, f.Status)
	case f.Status == exitInput && strings.HasPrefix(lastLine(f.Payload), prefix):
		cl.Unavailable = strings.TrimPrefix(lastLine(f.Payload), prefix)
		cl.Verification = nil // nothing to verify
		return
	case f.Status != 0:
		cl.ProbeError = errorText(f.Payload, f.Status)
		return
	case !readable:
		cl.ProbeError = "unreadable output: " + firstLine(string(f.Payload))
		return
	}
	cl.Plan, cl.Class, cl.Letter, cl.Completion = p.Plan, string(p.Plan.Class), p.Plan.Class.Letter(), p.Plan.Completion
	if p.Kernel != nil && c.t.Release == "" {
		c.t.Release = p.Kernel.Release
	}
	if p.Kernel != nil && c.t.Version == "" {
		c.t.Version = p.Kernel.Version.String()
	}
}

func (c *collector) run(hooks string, r ScenarioRun, f Frame) {
	c.t.class(hooks).Seconds += max(f.Seconds, 0)
	var results []*scenarios.Result
	if err := json.Unmarshal(f.Payload, &results); err != nil || len(results) == 0 {
		for _, name := range runScenarios(r) {
			c.t.Cells = append(c.t.Cells, &Cell{Hooks: hooks, Scenario: name, State: Error,
				Detail: "no result: " + errorText(f.Payload, f.Status)})
		}
		return
	}
	for _, res := range results {
		cell := &Cell{Hooks: hooks, Scenario: res.Scenario, State: Pass, Result: res}
		switch {
		case !res.Pass && len(res.Expectations) == 0 && res.Error != "":
			cell.State, cell.Detail = Error, firstLine(res.Error)
		case !res.Pass:
			cell.State, cell.Detail = Fail, failDetail(res)
		default:
			if d := kernelOutcome(res); d != "" {
				cell.State, cell.Detail = Fail, d
			}
		}
		c.t.Cells = append(c.t.Cells, cell)
	}
}

// runScenarios names the scenarios a run covers.
func runScenarios(r ScenarioRun) []string {
	if len(r.Scenarios) > 0 {
		return r.Scenarios
	}
	var names []string
	for _, s := range scenarios.All() {
		names = append(names, s.Name)
	}
	return names
}

// failDetail lists what failed in a scenario result.
func failDetail(r *scenarios.Result) string {
	var parts []string
	n := 0
	for _, e := range r.Expectations {
		if e.Pass {
			n++
			continue
		}
		s := e.What + ": " + e.Measured
		if e.Want != "" {
			s += " (want " + e.Want + ")"
		}
		parts = append(parts, s)
	}
	if r.Error != "" {
		parts = append(parts, "error: "+firstLine(r.Error))
	}
	return fmt.Sprintf("%d/%d expectations; %s", n, len(r.Expectations), strings.Join(parts, "; "))
}

func (c *collector) test(pkg string, f Frame) {
	r := parseTestOutput(string(f.Payload))
	r.Package, r.Status, r.Seconds = pkg, f.Status, max(f.Seconds, 0)
	for _, t := range c.spec.Tests {
		if t.Package == pkg && t.Skip != "" {
			r.Excluded = t.Skip + " (" + t.Why + ")"
		}
	}
	r.State = Pass
	if f.Status != 0 || len(r.Failed) > 0 {
		r.State = Fail
	}
	c.t.Tests = append(c.t.Tests, r)
}

// parseTestOutput reads `go test -v` result lines: top-level passes and
// skips, failures at any level (subtests by their full name), and as the
// detail a panic or else the first failed test's last message (the
// `x_test.go:N: …` line before its FAIL), so a matrix summary says why.
// A failure with no such message is named by the last line it printed.
func parseTestOutput(out string) *TestResult {
	r := &TestResult{}
	var msg, last, why string
	for _, l := range strings.Split(out, "\n") {
		l = printable(l)
		trimmed := strings.TrimLeft(l, " ")
		top := len(trimmed) == len(l)
		f := strings.Fields(trimmed)
		switch {
		case len(f) >= 2 && f[0] == "===" && f[1] == "RUN":
			msg, last = "", ""
		case len(f) >= 3 && f[0] == "---" && f[1] == "PASS:":
			if top {
				r.Passed++
			}
			msg = ""
		case len(f) >= 3 && f[0] == "---" && f[1] == "SKIP:":
			if top {
				r.Skipped = append(r.Skipped, f[2])
			}
			msg = ""
		case len(f) >= 3 && f[0] == "---" && f[1] == "FAIL:":
			r.Failed = append(r.Failed, f[2])
			switch {
			case why != "":
			case msg != "":
				why = f[2] + ": " + msg
			case last != "":
				why = f[2] + ": no test message; its last output: " + last
			}
		case strings.HasPrefix(l, "panic: "):
			r.Detail = l
		case testMessage.MatchString(trimmed):
			msg = trimmed
		case trimmed != "":
			last = trimmed
		}
	}
	if len(why) > 300 {
		why = why[:300] + "…"
	}
	if r.Detail == "" {
		r.Detail = why
	}
	return r
}

// printable replaces what a terminal would act on (escape sequences, a
// carriage return from a captured screen) so that a detail reads as text.
func printable(l string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' && r != '\t' || r == 0x7f {
			return '?'
		}
		return r
	}, l)
}

// testMessage is a t.Log/t.Error line of `go test -v`.
var testMessage = regexp.MustCompile(`^[\w.-]+_test\.go:\d+: `)

// finish fills in, after the last attempt, what never reported: the cells
// and tests of the parts with no frame (DIED when the guest died, MISSING
// otherwise), which classes were not run and why, and the plan changes.
func (c *collector) finish() {
	t := c.t
	state, detail := Missing, "the script ended without reporting it"
	if n := len(t.Attempts); n > 0 && t.Attempts[n-1].Died != "" {
		state, detail = Died, "the guest died before it reported, twice: "+t.Attempts[n-1].Died
	}
	ref := t.class(c.spec.Hooks[0])
	classes := make([]*Class, 0, len(c.spec.Hooks))
	for i, h := range c.spec.Hooks {
		cl := t.class(h)
		classes = append(classes, cl)
		if i > 0 && cl.Class != "" && cl.Class == ref.Class {
			cl.SameAs = ref.Hooks
		}
		if cl.Verification == nil && cl.Unavailable == "" {
			cl.Verification = &Verification{State: Error, Detail: "no verify report: " + detail}
		}
		cl.Verified = verifiedText(cl)
		if cl.Unavailable != "" || cl.SameAs != "" {
			continue
		}
		if i > 0 && cl.Plan != nil && ref.Plan != nil {
			cl.Changes = comparePlans(ref.Plan, cl.Plan)
		}
		st, why := state, detail
		if cl.ProbeError != "" {
			st, why = Error, "probe failed: "+cl.ProbeError
		}
		for j, r := range c.spec.Runs {
			if c.done[runKey(h, j)] {
				continue
			}
			for _, name := range runScenarios(r) {
				t.Cells = append(t.Cells, &Cell{Hooks: h, Scenario: name, State: st, Detail: why})
			}
		}
	}
	t.Classes = classes
	for _, tr := range c.spec.Tests {
		if !c.done[testKey(tr.Package)] {
			t.Tests = append(t.Tests, &TestResult{Package: tr.Package, State: state, Detail: detail})
		}
	}
	if ref.Plan == nil && t.Error == "" {
		why := ref.Unavailable + ref.ProbeError
		if why == "" {
			why = detail
		}
		t.Error = fmt.Sprintf("no attach plan for --hooks=%s: %s", ref.Hooks, why)
	}
}

// errorText is a failed command's message and exit status.
func errorText(payload []byte, status int) string {
	if last := lastLine(payload); last != "" {
		return fmt.Sprintf("%s (exit status %d)", last, status)
	}
	return fmt.Sprintf("exit status %d, no output", status)
}

// lastLine is the last line of a command's output, without the
// "ringtrace: " prefix of its error messages.
func lastLine(payload []byte) string {
	lines := strings.Split(strings.TrimSpace(string(payload)), "\n")
	return strings.TrimPrefix(strings.TrimSpace(lines[len(lines)-1]), "ringtrace: ")
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
