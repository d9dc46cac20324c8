package session

import (
	"fmt"
	"os"
	"testing"

	"github.com/cilium/ebpf/btf"

	"github.com/ringtrace/ringtrace/tracer/kernel/kerneltest"
	"github.com/ringtrace/ringtrace/tracer/kernel/probe"
	"github.com/ringtrace/ringtrace/tracer/plan"
)

// TestPlansVerify loads, through the production loader, every program of
// every hook class this kernel offers, once with per-frame streaming and
// once with in-kernel summaries (the read-only config decides which
// branches the verifier walks), with every event kind enabled. A verifier
// regression then shows up as a named failure on each kernel of the matrix
// (make vmtest), not as a tracer that will not start. Nothing is attached.
func TestPlansVerify(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to load BPF programs")
	}
	facts, kbtf, err := probe.Kernel(probe.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Where bpf_loop exists, the bounded-loop programs of older kernels
	// are verified too (a plan built as if it did not).
	variants := []bool{facts.Features.BPFLoop.OK}
	if facts.Features.BPFLoop.OK {
		variants = append(variants, false)
	}
	for _, class := range []plan.Class{plan.Fentry, plan.Kprobe, plan.Tracepoint} {
		t.Run(string(class), func(t *testing.T) {
			for _, loop := range variants {
				f := *facts
				f.Features.BPFLoop.OK = loop
				p, err := plan.Build(&f, class)
				if err != nil {
					kerneltest.RequireClass(t, facts, class)
					t.Fatalf("%v, although this kernel has what the class rests on", err)
				}
				for _, summary := range []bool{false, true} {
					name := fmt.Sprintf("%s/%s", map[bool]string{true: "bpf_loop", false: "bounded"}[loop],
						map[bool]string{false: "stream", true: "summary"}[summary])
					t.Run(name, func(t *testing.T) { verifyPlan(t, p, kbtf, summary) })
				}
			}
			// Kernels before 5.12 get the cmpxchg rewritten into a load.
			if facts.Features.Atomics.OK {
				f := *facts
				f.Features.Atomics.OK = false
				p, err := plan.Build(&f, class)
				if err != nil {
					t.Fatal(err)
				}
				t.Run("without-cmpxchg", func(t *testing.T) { verifyPlan(t, p, kbtf, false) })
			}
		})
	}
}

func verifyPlan(t *testing.T, p *plan.Plan, kbtf *btf.Spec, summary bool) {
	cfg, err := rtConfig(p, Filter{}, ^uint32(0))
	if err != nil {
		t.Fatal(err)
	}
	if summary {
		cfg.Aggregate, cfg.LightScans = 1, 1
	}
	objs, err := load(p, kbtf, cfg, 1<<16, 1024)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d programs verified", len(objs.progs))
	objs.Close()
}
