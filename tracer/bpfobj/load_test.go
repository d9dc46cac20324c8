package bpfobj_test

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/rlimit"

	"github.com/ringtrace/ringtrace/tracer/bpfobj"
)

// TestTracepointProgramsLoad loads, one by one, every program a class C
// (tracepoints only) plan can use on this kernel, in both loop variants,
// so a verifier regression shows up as a named failure rather than as a
// tracer that will not start.
func TestTracepointProgramsLoad(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to load BPF programs")
	}
	// Before 5.11 BPF memory is charged to RLIMIT_MEMLOCK (ringtrace lifts
	// it in kernel.Probe; this test loads without probing).
	if err := rlimit.RemoveMemlock(); err != nil {
		t.Fatal(err)
	}
	kernel, err := btf.LoadKernelSpec()
	if err != nil {
		t.Skipf("no kernel BTF: %v", err)
	}
	haveLoop := features.HaveProgramHelper(ebpf.RawTracepoint, asm.FnLoop) == nil
	spec, err := bpfobj.LoadRingtrace()
	if err != nil {
		t.Fatal(err)
	}
	// Read-only config decides which branches the verifier walks: load
	// both the streaming and the summary (in-kernel aggregation) setups.
	stream := bpfobj.RingtraceRtConfig{DestructAddr: 1, MaxScan: 1 << 16, Events: ^uint32(0),
		AvailViaTp: 1, SendingViaTp: 1, CallsViaSyscalls: 1, KfreeHasReason: 1}
	summary := stream
	summary.Aggregate, summary.LightScans = 1, 1
	for _, mode := range []struct {
		name string
		cfg  bpfobj.RingtraceRtConfig
	}{{"stream", stream}, {"summary", summary}} {
		t.Run(mode.name, func(t *testing.T) { loadEach(t, spec, kernel, mode.cfg, haveLoop) })
	}
}

func loadEach(t *testing.T, spec *ebpf.CollectionSpec, kernel *btf.Spec, cfg bpfobj.RingtraceRtConfig, haveLoop bool) {
	spec = spec.Copy()
	if err := spec.Variables["cfg"].Set(cfg); err != nil {
		t.Fatal(err)
	}
	for name, ps := range spec.Programs {
		if !strings.HasPrefix(name, "tp_") && !strings.HasPrefix(name, "sys_") && !strings.HasPrefix(name, "sweep_") {
			continue // fentry/kprobe programs are proven in VMs (make vmtest)
		}
		if strings.HasSuffix(name, "_loop") && !haveLoop {
			continue
		}
		if name == "tp_qdisc_enqueue" {
			var td *btf.Typedef
			if kernel.TypeByName("btf_trace_qdisc_enqueue", &td) != nil {
				continue
			}
		}
		t.Run(name, func(t *testing.T) {
			one := spec.Copy()
			for n := range one.Programs {
				if n != name {
					delete(one.Programs, n)
				}
			}
			coll, err := ebpf.NewCollectionWithOptions(one, ebpf.CollectionOptions{
				Programs: ebpf.ProgramOptions{KernelTypes: kernel}})
			if err != nil {
				var ve *ebpf.VerifierError
				if errors.As(err, &ve) {
					t.Fatalf("%v: %v", ve.Cause, strings.Join(ve.Log[max(0, len(ve.Log)-6):], " | "))
				}
				t.Fatal(err)
			}
			coll.Close()
			_ = ps
		})
	}
}
