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
			{Hooks: "auto", Class: "fentry", Letter: "A", Completion: "destructor", Plan: pa},
			{Hooks: "tracepoint", Class: "tracepoint", Letter: "C", Completion: "destructor", Plan: pc, Changes: comparePlans(pa, pc)},
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
			{Hooks: "auto", Class: "tracepoint", Letter: "C", Completion: "destructor", Plan: pc},
			{Hooks: "kprobe", Unavailable: "kprobes: CONFIG_KPROBES is not set"},
			{Hooks: "tracepoint", Class: "tracepoint", Letter: "C", Completion: "destructor", Plan: pc, SameAs: "auto"},
		},
	}
	for _, s := range scenarios.All() {
		host.Cells = append(host.Cells, &Cell{Hooks: "auto", Scenario: s.Name, State: Pass})
	}
	return &Matrix{Seconds: 300, Parallel: 2, CPUs: 1, Targets: []*Target{guest, host}}
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
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	// One row per kernel and class: the cells line up under the header.
	lines := strings.Split(out, "\n")
	header := lines[1]
	for _, l := range lines[2:7] {
		if strings.Index(l, "PASS")+len("PASS") > len(l) || len(l) < strings.Index(header, "PLAN") {
			t.Errorf("row %q does not reach the PLAN column of %q", l, header)
		}
	}
}

func TestPassed(t *testing.T) {
	m := testMatrix()
	if m.Targets[0].Passed() || !m.Targets[1].Passed() {
		t.Errorf("guest passed %v, host passed %v", m.Targets[0].Passed(), m.Targets[1].Passed())
	}
	if (&Target{}).Passed() {
		t.Error("a target without cells passed")
	}
}
