package plan_test

import (
	"testing"

	"github.com/ringtrace/ringtrace/tracer/bpfobj"
	"github.com/ringtrace/ringtrace/tracer/plan"
)

// TestEveryProgramExists: every program any plan can choose, over the
// kernels the plan tells apart (hook families, bpf_loop, completion form,
// inlined functions, tracepoints; --detail frames and calls), is in the
// generated BPF object. A
// renamed or dropped program fails here, without root, not on the one
// kernel of the matrix that picks it.
func TestEveryProgramExists(t *testing.T) {
	spec, err := bpfobj.LoadRingtrace()
	if err != nil {
		t.Fatal(err)
	}
	chosen := map[string]bool{}
	funcSets := [][]string{
		modern,
		append(modern, "__packet_set_status", "tpacket_snd"),
		{"packet_sendmsg", "tpacket_ubuf_complete", "__dev_queue_xmit", "sock_alloc_send_pskb"},
		{"packet_sendmsg", "tpacket_ubuf_complete", "__dev_queue_xmit", "__dev_direct_xmit", "packet_direct_xmit", "__wait_for_common"},
		// Kernels where dev_queue_xmit is the function and bypass goes
		// through packet_direct_xmit.
		{"packet_sendmsg", "tpacket_destruct_skb", "dev_queue_xmit", "packet_direct_xmit", "sock_alloc_send_pskb"},
	}
	for _, funcs := range funcSets {
		for _, hooks := range [][2]bool{{true, true}, {false, true}, {false, false}} {
			for _, loop := range []bool{true, false} {
				for _, syscalls := range []bool{true, false} {
					for _, uarg := range []bool{true, false} {
						f := facts(hooks[0], hooks[1], loop, funcs...)
						f.SyscallTPs = syscalls
						f.Types["tpacket_uarg"] = uarg
						f.Features.Atomics.OK = loop // BPF cmpxchg (5.12) comes before bpf_loop (5.17)
						for _, c := range []plan.Class{plan.Auto, plan.Fentry, plan.Kprobe, plan.Tracepoint} {
							p, err := plan.Build(f, c)
							if err != nil {
								continue // the class is not available on this kernel
							}
							attach := p.Attach
							if calls, err := p.CallsOnly(f); err == nil { // --detail calls
								attach = append(attach, calls.Attach...)
							}
							for _, a := range attach {
								chosen[a.Program] = true
								if _, ok := spec.Programs[a.Program]; !ok {
									t.Errorf("class %s, %v: plan chooses %q (%s %s), which the BPF object lacks",
										p.Class, funcs, a.Program, a.Kind, a.Target)
								}
							}
						}
					}
				}
			}
		}
	}
	// The other way round: a program no plan chooses is dead code, or a
	// kernel the facts above do not describe.
	for name := range spec.Programs {
		if !chosen[name] {
			t.Errorf("the BPF object's %q is chosen by no plan over these kernels", name)
		}
	}
}
