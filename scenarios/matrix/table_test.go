package matrix

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ringtrace/ringtrace/scenarios"
	"github.com/ringtrace/ringtrace/tracer/plan"
)

func testPlan(class plan.Class, rows ...plan.Row) *plan.Plan {
	return &plan.Plan{Class: class, Completion: "destructor", Rows: rows}
}

func TestComparePlans(t *testing.T) {
	a := testPlan(plan.Fentry,
		plan.Row{Event: "sendmsg", Hook: "fentry packet_sendmsg", Precision: "exact"},
		plan.Row{Event: "return", Hook: "fexit __dev_queue_xmit", Precision: "exact"},
		plan.Row{Event: "picked", Hook: "fentry sock_alloc_send_pskb", Precision: "exact"},
		plan.Row{Event: "rollback", Hook: "status read", Precision: "bounded"},
		plan.Row{Event: "qdisc", Hook: "tp_btf qdisc_dequeue", Precision: "exact"})
	b := testPlan(plan.Kprobe,
		plan.Row{Event: "sendmsg", Hook: "kprobe packet_sendmsg", Precision: "exact"},
		plan.Row{Event: "return", Hook: "kretprobe __dev_queue_xmit", Precision: "exact"},
		plan.Row{Event: "picked", Hook: "ring scan", Precision: "bounded"},
		plan.Row{Event: "qdisc", Hook: "tp_btf qdisc_dequeue", Precision: "exact"},
		plan.Row{Event: "status write", Hook: "kprobe __packet_set_status", Precision: "exact"})
	got := comparePlans(a, b)
	want := []Change{
		{Event: "sendmsg", From: "fentry packet_sendmsg [exact]", To: "kprobe packet_sendmsg [exact]", KindOnly: true},
		{Event: "return", From: "fexit __dev_queue_xmit [exact]", To: "kretprobe __dev_queue_xmit [exact]", KindOnly: true},
		{Event: "picked", From: "fentry sock_alloc_send_pskb [exact]", To: "ring scan [bounded]"},
		{Event: "rollback", From: "status read [bounded]"},
		{Event: "status write", To: "kprobe __packet_set_status [exact]"},
	}
	if len(got) != len(want) {
		t.Fatalf("changes %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("change %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if s := changeSummary(got); s != "2 same function, other mechanism; 3 other events differ" {
		t.Errorf("summary %q", s)
	}
	if s := precisionTally(b); s != "4 exact, 1 bounded" {
		t.Errorf("tally %q", s)
	}
}

// testMatrix is a guest with a failed and a died cell, and a host that
// lacks kprobes.
func testMatrix() *Matrix {
	pa := testPlan(plan.Fentry, plan.Row{Event: "sendmsg", Hook: "fentry packet_sendmsg", Precision: "exact"})
	pc := testPlan(plan.Tracepoint, plan.Row{Event: "sendmsg", Hook: "tracepoints syscalls", Precision: "exact"})
	guest := &Target{Name: "6.1", Release: "6.1.0-56-cloud-amd64", Version: "6.1.192-2", Accel: "tcg", Seconds: 200,
		Attempts: []Attempt{{BootSeconds: 2, CommandSeconds: 100, Died: "qemu ended: Oops: int3"}, {BootSeconds: 2, CommandSeconds: 90}},
		Classes: []*Class{
			{Hooks: "auto", Class: "fentry", Letter: "A", Completion: "destructor", Plan: pa, Verification: &Verification{State: Verified}},
			{Hooks: "tracepoint", Class: "tracepoint", Letter: "C", Completion: "destructor", Plan: pc, Changes: comparePlans(pa, pc),
				Verification: &Verification{State: Broken, Detail: "frame -> AVAILABLE: promised exact, observed 0 exact, 32 bounded (status-read) in veth-blocking",
					Problems: []string{"frame -> AVAILABLE: promised exact, observed 0 exact, 32 bounded (status-read) in veth-blocking"}}},
		},
		Tests: []*TestResult{{Package: "tracer/session", State: Pass, Passed: 8}, {Package: "scenarios", State: Fail, Failed: []string{"TestX"}}},
	}
	for _, s := range scenarios.All() {
		guest.Cells = append(guest.Cells, &Cell{Hooks: "auto", Scenario: s.Name, State: Pass})
		c := &Cell{Hooks: "tracepoint", Scenario: s.Name, State: Pass}
		switch s.Name {
		case "status":
			c.State, c.Detail = Fail, "4/9 expectations; pending: [2 1 1 0 0] (want [2 1 0])"
			c.Result = &scenarios.Result{Expectations: []scenarios.Expectation{{Pass: true}, {Pass: false}}}
		case "rx":
			c.State, c.Detail = Died, "the guest died"
		}
		guest.Cells = append(guest.Cells, c)
	}
	host := &Target{Name: "host", Host: true, Release: "6.18.44", Version: "6.18.44", Seconds: 8,
		Attempts: []Attempt{{CommandSeconds: 8}},
		Classes: []*Class{
			{Hooks: "auto", Class: "tracepoint", Letter: "C", Completion: "destructor", Plan: pc, Verification: &Verification{State: Verified}},
			{Hooks: "kprobe", Unavailable: "kprobes: CONFIG_KPROBES is not set"},
			{Hooks: "tracepoint", Class: "tracepoint", Letter: "C", Completion: "destructor", Plan: pc, SameAs: "auto", Verification: &Verification{State: Verified}},
		},
	}
	for _, s := range scenarios.All() {
		host.Cells = append(host.Cells, &Cell{Hooks: "auto", Scenario: s.Name, State: Pass})
	}
	next := &Target{Name: "next", Release: "7.3-cloud-amd64", Version: "7.3~rc7-1~exp1", Accel: "tcg", Seconds: 120,
		Attempts: []Attempt{{BootSeconds: 4, CommandSeconds: 110}},
		Classes: []*Class{{Hooks: "auto", Class: "fentry", Letter: "A", Completion: "uarg", Plan: pa,
			Verification: &Verification{State: Error, Detail: "no verify report: flag provided but not defined: -verify (see --help) (exit status 2)"}}},
	}
	for _, s := range scenarios.All() {
		next.Cells = append(next.Cells, &Cell{Hooks: "auto", Scenario: s.Name, State: Pass})
	}
	return &Matrix{Seconds: 300, Parallel: 2, CPUs: 1, Targets: []*Target{guest, next, host}}
}

func TestWriteTable(t *testing.T) {
	var b bytes.Buffer
	if err := WriteTable(&b, testMatrix()); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"KERNEL                ", "COMPLETION", "call-return", "sndbuf-blocking", "PLAN",
		"6.1.0-56-cloud-amd64", "(6.1: 6.1.192-2)", "A fentry (auto)", "C tracepoint (auto)",
		"FAIL 1/2", "DIED", "n/a", "unavailable: kprobes: CONFIG_KPROBES is not set",
		"same class as --hooks=auto, not run again", "vs A: 1 other events differ",
		"PASS 8", "FAIL 1",
		"6.1: boot 1: guest died: qemu ended: Oops: int3",
		"6.1 C (tracepoint) status: FAIL: 4/9 expectations; pending",
		"6.1 test scenarios: FAIL TestX",
		"2 (guest died, booted again)", "total 5m0s, 2 guest(s) at a time, 1 vCPU(s) each",
		"C tracepoint against A fentry, on 6.1:",
		"sendmsg: fentry packet_sendmsg [exact] -> tracepoints syscalls [exact]",
		"VERIFIED", "BROKEN: frame -> AVAILABLE: promised exact, observed 0 exact, 32…",
		"6.1 C (tracepoint) probe --verify: BROKEN: frame -> AVAILABLE: promised exact, observed 0 exact, 32 bounded (status-read) in veth-blocking",
		"7.3-cloud-amd64", "(next: 7.3~rc7-1~exp1)", "ERROR: no verify report: flag provided but not defined: -verify …",
		"next (7.3-cloud-amd64) A (auto) probe --verify: ERROR: no verify report: flag provided but not defined: -verify (see --help) (exit status 2)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	// One row per kernel and class: the cells line up under the header.
	lines := strings.Split(out, "\n")
	header := lines[2]
	if !strings.HasPrefix(header, "KERNEL ") || !strings.Contains(header, "PLAN") {
		t.Fatalf("header %q", header)
	}
	// The next kernel has one class: its second label line is not a row.
	rows := append(append([]string{}, lines[3:6]...), lines[7:10]...)
	if strings.TrimSpace(lines[6]) != "(next: 7.3~rc7-1~exp1)" {
		t.Errorf("the next kernel's second line is %q", lines[6])
	}
	col := strings.Index(header, "VERIFIED")
	for i, want := range []string{"verified", "BROKEN: ", "ERROR: ", "verified", "n/a", "verified"} {
		l := rows[i]
		if strings.Index(l, "PASS")+len("PASS") > len(l) && !strings.Contains(l, "n/a") || len(l) < strings.Index(header, "PLAN") {
			t.Errorf("row %q does not reach the PLAN column of %q", l, header)
		}
		if !strings.HasPrefix(l[col:], want) {
			t.Errorf("row %q: VERIFIED is not %q", l, want)
		}
	}
}

func TestPassed(t *testing.T) {
	m := testMatrix()
	if m.Targets[0].Passed() || !m.Targets[2].Passed() {
		t.Errorf("guest passed %v, host passed %v", m.Targets[0].Passed(), m.Targets[2].Passed())
	}
	if m.Targets[1].Passed() {
		t.Error("the next kernel passed, not verified")
	}
	if (&Target{}).Passed() {
		t.Error("a target without cells passed")
	}
}
