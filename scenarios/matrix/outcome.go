package matrix

import (
	"fmt"
	"strings"

	"github.com/ringtrace/ringtrace/scenarios"
)

// selfLoopDeadlocks tells whether a kernel is known to keep a sender's own
// looped-back ring frames in its receive queue (the self-loop scenario's
// self-deadlock), by release prefix: 7.2 dropped the last receiver's
// skb_orphan_frags_rx() (shared/docs/tx-completion-uarg.md, measured on
// 7.2.13; experimental's 7.3-rc7, release 7.3-cloud-amd64, did the same);
// 6.12.x (both completion forms), 6.1 and 5.10 complete at once. Kernels not
// listed have no expectation: the table shows what they did.
var selfLoopDeadlocks = []struct {
	prefix   string
	deadlock bool
}{{"7.3-", true}, {"7.3.", true}, {"7.2.", true}, {"6.12.", false}, {"6.1.", false}, {"5.10.", false}}

// kernelOutcome checks a passing scenario against what its kernel is known to
// do; it returns why it does not match, or "". A scenario passes when
// ringtrace explains whatever happened; the matrix also wants the right thing
// to have happened on each kernel.
func kernelOutcome(r *scenarios.Result) string {
	if r.Scenario != "self-loop" {
		return ""
	}
	want, known := false, false
	for _, k := range selfLoopDeadlocks {
		if strings.HasPrefix(r.Kernel, k.prefix) {
			want, known = k.deadlock, true
			break
		}
	}
	if !known {
		return ""
	}
	for _, e := range r.Expectations {
		var got bool
		switch e.Outcome {
		case scenarios.OutcomeSelfDeadlock:
			got = true
		case scenarios.OutcomeCompleted:
			got = false
		default:
			continue
		}
		if got != want {
			return fmt.Sprintf("%s, but %s is known to %s", e.What, r.Kernel,
				map[bool]string{true: "self-deadlock here", false: "complete the frames at once"}[want])
		}
	}
	return ""
}
