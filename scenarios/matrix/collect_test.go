package matrix

import (
	"errors"
	"strings"
	"testing"

	"github.com/ringtrace/ringtrace/scenarios/vm"
)

const probeJSON = `{"kernel": {"release": "6.1.0-56-cloud-amd64", "version": {"Major": 6, "Minor": 1, "Patch": 192}},
 "plan": {"class": "%s", "completion": "destructor", "rows": [{"event": "e", "hook": "h", "precision": "exact"}]}}`

// TestFinishAfterDeath: parts that never reported become DIED cells and
// tests when the last boot died; a class whose probe failed for another
// reason than bad input gets ERROR cells; the reference's plan is kept.
func TestFinishAfterDeath(t *testing.T) {
	spec := Spec{Hooks: Hooks(), Runs: GuestRuns(), Tests: []TestRun{{Package: "tracer/session"}}}
	tgt := &Target{Name: "6.1"}
	col := newCollector(spec, tgt)
	col.add(Frame{Key: "probe/auto", Payload: []byte(strings.Replace(probeJSON, "%s", "fentry", 1))})
	col.add(Frame{Key: "probe/kprobe", Status: 1, Payload: []byte("ringtrace: loading BTF: bad")})
	col.add(Frame{Key: "probe/tracepoint", Payload: []byte(strings.Replace(probeJSON, "%s", "tracepoint", 1))})
	col.add(Frame{Key: "run/auto/0", Status: 0, Seconds: 50, Payload: []byte(`[{"scenario": "status", "pass": true, "expectations": [{"pass": true}]}]`)})
	col.add(Frame{Key: "run/auto/0", Status: 0, Payload: []byte(`[{"scenario": "status", "pass": false}]`)}) // a repeat is ignored
	tgt.Attempts = []Attempt{{Died: "qemu ended: Oops: int3"}, {Died: "qemu ended: Oops: int3"}}
	col.finish()

	states := map[string]string{}
	for _, c := range tgt.Cells {
		states[c.Hooks+"/"+c.Scenario] = c.State
	}
	for key, want := range map[string]string{
		"auto/status": Pass, "auto/call-return": Died,
		"kprobe/status": Error, "kprobe/call-return": Error,
		"tracepoint/rx": Died,
	} {
		if states[key] != want {
			t.Errorf("%s = %q, want %q (%v)", key, states[key], want, states)
		}
	}
	if len(tgt.Tests) != 1 || tgt.Tests[0].State != Died {
		t.Errorf("tests %+v", tgt.Tests)
	}
	if tgt.Release != "6.1.0-56-cloud-amd64" || tgt.Version != "6.1.192" || tgt.Error != "" {
		t.Errorf("target %+v", tgt)
	}
	if tgt.class("auto").Seconds != 50 {
		t.Errorf("auto ran %ds", tgt.class("auto").Seconds)
	}
	if tgt.Passed() {
		t.Error("a target with DIED cells passed")
	}
}

// TestFinishWithoutPlan: no reference plan is an error of the whole target.
func TestFinishWithoutPlan(t *testing.T) {
	tgt := &Target{Name: "host", Host: true}
	col := newCollector(Spec{Hooks: Hooks(), Runs: HostRuns()}, tgt)
	col.add(Frame{Key: "probe/auto", Status: 2, Payload: []byte("ringtrace: ringtrace needs root")})
	col.finish()
	if !strings.Contains(tgt.Error, "needs root") || tgt.Passed() {
		t.Errorf("target error %q", tgt.Error)
	}
}

func TestDied(t *testing.T) {
	oops := "[ 5.2] Oops: int3: 0000 [#1] SMP NOPTI\n[ 5.2] RIP: 0010:try_to_wake_up+0x133/0x880\n"
	for _, tc := range []struct {
		err, cause error
		console    string
		want       string
	}{
		{errors.New("qemu ended before the command finished"), nil, oops, "qemu ended: Oops: int3: 0000 [#1] SMP NOPTI; RIP: 0010:try_to_wake_up+0x133/0x880"},
		{errors.New("guest stopped: context canceled"), errWedged, oops, "stopped: the console shows an oops or a stall: Oops: int3"},
		{errors.New("guest stopped: context canceled"), errStalled, "", "stopped: the guest printed nothing for too long: guest stopped"},
		{vm.ErrTimeout, nil, "", "timed out: guest timed out"},
	} {
		if got := died(tc.err, tc.cause, tc.console); !strings.HasPrefix(got, tc.want) {
			t.Errorf("died(%v, %v) = %q, want prefix %q", tc.err, tc.cause, got, tc.want)
		}
	}
}
