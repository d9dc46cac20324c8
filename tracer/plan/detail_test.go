package plan_test

import (
	"errors"
	"sort"
	"strings"
	"testing"

	"github.com/ringtrace/ringtrace/tracer/inputerr"
	"github.com/ringtrace/ringtrace/tracer/kernel"
	"github.com/ringtrace/ringtrace/tracer/plan"
)

// TestCallsOnly: --detail calls keeps the send calls, the sleeps and the
// sweep, adds the close hook, and no per-skb program; its rows say frames
// are bounded and per-skb events unavailable.
func TestCallsOnly(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		fentry, kprobe, loop bool
		want                 []string
	}{
		{"class A", true, true, true, []string{"fentry_packet_sendmsg_loop", "fexit_packet_sendmsg_loop",
			"sweep_loop", "sys_enter_close_loop", "tp_sched_switch", "tp_sched_waking", "tp_thread_exit"}},
		{"class C", false, false, true, []string{"sweep_loop", "sys_enter_close_loop", "sys_enter_send_loop", "sys_enter_send_loop",
			"sys_enter_send_loop", "sys_exit_send_loop", "sys_exit_send_loop", "sys_exit_send_loop", "tp_sched_switch", "tp_sched_waking", "tp_thread_exit"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := facts(tc.fentry, tc.kprobe, tc.loop, modern...)
			f.Features.Atomics.OK = true
			full, err := plan.Build(f, plan.Auto)
			if err != nil {
				t.Fatal(err)
			}
			p, err := full.CallsOnly(f)
			if err != nil {
				t.Fatal(err)
			}
			got := p.Programs()
			sort.Strings(got)
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("programs %v, want %v", got, tc.want)
			}
			if !p.Config.CallsOnly || p.FramesTraced() || full.Config.CallsOnly || !full.FramesTraced() {
				t.Errorf("calls plan: CallsOnly %v, frames traced %v; full plan changed: %v", p.Config.CallsOnly, p.FramesTraced(), full.Config.CallsOnly)
			}
			for ev, prec := range map[string]string{plan.EvCalls: "exact", plan.EvSending: "bounded", plan.EvAvailable: "bounded",
				"qdisc, driver and drop events": "unavailable"} {
				if r, ok := p.Row(ev); !ok || r.Precision != prec {
					t.Errorf("row %q: %+v, want precision %s", ev, r, prec)
				}
			}
			if _, ok := p.Row(plan.EvXmit); ok {
				t.Errorf("calls plan keeps the driver row")
			}
			if n := p.Notes[len(p.Notes)-1]; n != plan.NotTracedNote {
				t.Errorf("last note %q", n)
			}
		})
	}
}

// TestCallsOnlyRefused: kernels without bpf_loop, cmpxchg or a sweep
// cannot count frames without hooks: an input error says which.
func TestCallsOnlyRefused(t *testing.T) {
	noLoop := facts(false, false, false, modern...)
	noAtomics := facts(false, false, true, modern...)
	noSweep := facts(false, false, true, modern...)
	noSweep.Features.Atomics.OK = true
	noSweep.Features.TestRun.OK = false
	for want, f := range map[string]*kernel.Facts{"bpf_loop": noLoop, "cmpxchg": noAtomics, "sweep": noSweep} {
		full, err := plan.Build(f, plan.Auto)
		if err != nil {
			t.Fatal(err)
		}
		_, err = full.CallsOnly(f)
		var ie *inputerr.Error
		if !errors.As(err, &ie) || !strings.Contains(err.Error(), want) {
			t.Errorf("%v, want an input error naming %s", err, want)
		}
	}
}
