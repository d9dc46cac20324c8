package matrix

import (
	"testing"

	"github.com/ringtrace/ringtrace/scenarios"
)

func TestKernelOutcome(t *testing.T) {
	res := func(kernel string, deadlocked bool) *scenarios.Result {
		what, outcome := "blocking sendto: "+scenarios.SelfLoopCompleted, scenarios.OutcomeCompleted
		if deadlocked {
			what, outcome = "blocking sendto: "+scenarios.SelfLoopDeadlocked, scenarios.OutcomeSelfDeadlock
		}
		return &scenarios.Result{Scenario: "self-loop", Pass: true, Kernel: kernel,
			Expectations: []scenarios.Expectation{{What: what, Pass: true, Outcome: outcome}, {What: "after the blocking run, draining", Pass: true}}}
	}
	for _, c := range []struct {
		kernel     string
		deadlocked bool
		ok         bool
	}{
		{"7.2.13+deb14-cloud-amd64", true, true},
		{"7.3-cloud-amd64", true, true}, // experimental's 7.3-rc7
		{"7.3-cloud-amd64", false, false},
		{"7.2.13+deb14-cloud-amd64", false, false},
		{"6.12.117+deb13-cloud-amd64", false, true},
		{"6.12.117+deb13-cloud-amd64", true, false},
		{"6.1.0-56-cloud-amd64", false, true},
		{"6.18.44", true, true}, // no expectation: shown, not judged
		{"6.18.44", false, true},
	} {
		got := kernelOutcome(res(c.kernel, c.deadlocked))
		if (got == "") != c.ok {
			t.Errorf("%s deadlocked=%v: %q, want ok=%v", c.kernel, c.deadlocked, got, c.ok)
		}
	}
	other := res("7.2.13", false)
	other.Scenario = "status"
	if d := kernelOutcome(other); d != "" {
		t.Errorf("status judged: %s", d)
	}
}
