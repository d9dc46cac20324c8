package session

import (
	"fmt"
	"os"
	"testing"

	"github.com/cilium/ebpf/btf"

	"github.com/ringtrace/ringtrace/tracer/kernel"
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
	facts, kbtf, err := kernel.Probe(kernel.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Where bpf_loop exists, the bounded-loop programs of older kernels
	// are verified too (a plan built as if it did not).
	variants := []bool{facts.Features.BPFLoop.OK}
	if facts.Features.BPFLoop.OK {
		variants = append(variants, false)
	}
	tried := 0
	for _, class := range []plan.Class{plan.Fentry, plan.Kprobe, plan.Tracepoint} {
		for _, loop := range variants {
			f := *facts
			f.Features.BPFLoop.OK = loop
			p, err := plan.Build(&f, class)
			if err != nil {
				t.Logf("%s: not on this kernel: %v", class, err)
				break
			}
			tried++
			for _, summary := range []bool{false, true} {
				name := fmt.Sprintf("%s/%s/%s", class, map[bool]string{true: "bpf_loop", false: "bounded"}[loop],
					map[bool]string{false: "stream", true: "summary"}[summary])
				t.Run(name, func(t *testing.T) { verifyPlan(t, p, kbtf, summary) })
			}
		}
	}
	if tried == 0 {
		t.Fatal("no hook class can be planned on this kernel")
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
