package matrix

import (
	"fmt"
	"strings"

	"github.com/ringtrace/ringtrace/scenarios/verify"
)

// VerifyReport is the "verify" object of `ringtrace probe --verify --json`
// (scenarios/verify): in a throwaway network namespace ringtrace sent frames
// from private TX rings in a few ways (the cases), traced them with this
// kernel's plan, and compared per logical event the precision the plan
// promised with what it observed.
type VerifyReport = verify.Result

// VerifyPromise is one logical event of a verify report.
type VerifyPromise = verify.Promise

// Verified is the state of a class whose every promise held.
const Verified = "verified"

// Broken is the state of a class with a broken promise.
const Broken = "BROKEN"

// Verification is the matrix's verdict on one class's verify report.
type Verification struct {
	State  string `json:"state"`            // Verified, Broken or Error
	Detail string `json:"detail,omitempty"` // the first broken promise, or the error
	// Problems are every broken promise and failed case.
	Problems []string      `json:"problems,omitempty"`
	Report   *VerifyReport `json:"report,omitempty"`
}

// judgeVerify reads a verify report with the exit status that came with it
// (0: every promise held, 1: one was broken; both print the report). What
// the report leaves unclear (a failed case, no promise at all, a status that
// contradicts it) is an error, never a pass.
func judgeVerify(r *VerifyReport, status int) *Verification {
	v := &Verification{Report: r}
	broken := append([]string(nil), r.Broken...)
	if len(broken) == 0 {
		for _, p := range r.Promises {
			if !p.Held {
				broken = append(broken, promiseLine(p))
			}
		}
	}
	var failed []string
	for _, c := range r.Cases {
		if c.Error != "" {
			failed = append(failed, fmt.Sprintf("case %s: %s", c.Case, c.Error))
		}
	}
	v.Problems = append(broken, failed...)
	switch {
	case len(broken) > 0:
		v.State, v.Detail = Broken, broken[0]
	case !r.OK:
		v.State, v.Detail = Broken, "the report says a promise was broken but names none"
		if len(failed) > 0 {
			v.Detail = failed[0]
		}
	case status != 0:
		v.State, v.Detail = Error, fmt.Sprintf("exit status %d, yet the report says every promise held", status)
	case len(failed) > 0:
		v.State, v.Detail = Error, failed[0]
	case len(r.Promises) == 0:
		v.State, v.Detail = Error, "the report checks no promise"
	default:
		v.State = Verified
	}
	return v
}

// promiseLine describes a promise that did not hold, for reports that list
// it only among the promises.
func promiseLine(p VerifyPromise) string {
	s := fmt.Sprintf("%s: promised %s, observed %d exact, %d bounded, %d not seen", p.Event, p.Promised, p.Exact, p.Bounded, p.NotSeen)
	if p.Detail != "" {
		s += " (" + p.Detail + ")"
	}
	return s
}

// noVerifyReport is the verdict when `probe --verify` printed no report:
// an older ringtrace without --verify, or a failure.
func noVerifyReport(payload []byte, status int) *Verification {
	return &Verification{State: Error, Detail: "no verify report: " + errorText(payload, status)}
}

// verifiedText is a class's VERIFIED column: "verified", "BROKEN: <first
// broken promise> (+N more)", "ERROR: …", "n/a" for a class the kernel
// lacks, "-" when nothing was verified.
func verifiedText(cl *Class) string {
	v := cl.Verification
	switch {
	case cl.Unavailable != "":
		return "n/a"
	case v == nil:
		return "-"
	case v.State == Verified:
		return Verified
	}
	s := v.State + ": " + v.Detail
	if n := len(v.Problems) - 1; n > 0 && v.State == Broken {
		s += fmt.Sprintf(" (+%d more)", n)
	}
	return s
}

// verifyFailures are the FAILURES lines of a class whose verification did
// not pass: each broken promise and failed case, or the error.
func verifyFailures(t *Target, cl *Class) []string {
	v := cl.Verification
	if v == nil || v.State == Verified {
		return nil
	}
	problems := v.Problems
	if v.State != Broken || len(problems) == 0 {
		problems = []string{v.Detail}
	}
	var lines []string
	for _, p := range problems {
		lines = append(lines, fmt.Sprintf("%s %s probe --verify: %s: %s", targetName(t), letterOf(t, cl.Hooks), v.State, p))
	}
	return lines
}

// targetName names a target in failure lines: its selector, and the release
// that ran when the selector does not say it ("next (7.3-cloud-amd64)").
func targetName(t *Target) string {
	if t.Host || t.Release == "" || strings.HasPrefix(t.Release, t.Name) {
		return t.Name
	}
	return t.Name + " (" + t.Release + ")"
}
