package verify_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/ringtrace/ringtrace/scenarios/lab"
	"github.com/ringtrace/ringtrace/scenarios/verify"
	"github.com/ringtrace/ringtrace/tracer/kernel/kerneltest"
	"github.com/ringtrace/ringtrace/tracer/kernel/probe"
	"github.com/ringtrace/ringtrace/tracer/plan"
)

func options(t *testing.T, class plan.Class) verify.Options {
	t.Helper()
	if testing.Short() || os.Geteuid() != 0 {
		t.Skip("needs root (BPF, network namespaces): run `sudo make test`")
	}
	facts, spec, err := probe.Kernel(probe.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := plan.Build(facts, class)
	if err != nil {
		kerneltest.RequireClass(t, facts, class)
		t.Fatalf("hook class %s: %v, although this kernel has what it rests on", class, err)
	}
	return verify.Options{Facts: facts, BTF: spec, Plan: p}
}

// netnsNames lists the lab namespaces this process made (other processes
// on the machine may be running labs of their own).
func netnsNames(t *testing.T) map[string]bool {
	t.Helper()
	m := map[string]bool{}
	ents, _ := os.ReadDir("/run/netns")
	mine := fmt.Sprintf("%s%d-", lab.Prefix, os.Getpid())
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), mine) {
			m[e.Name()] = true
		}
	}
	return m
}

// TestVerifyThisKernel: every class this kernel offers keeps its promises,
// and the lab is gone afterwards.
func TestVerifyThisKernel(t *testing.T) {
	for _, class := range []plan.Class{plan.Auto, plan.Fentry, plan.Kprobe, plan.Tracepoint} {
		t.Run(string(class), func(t *testing.T) {
			o := options(t, class)
			before := netnsNames(t)
			res, err := verify.Run(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			for _, pr := range res.Promises {
				t.Logf("%-40s %-8s %-30s held=%v %s", pr.Event, pr.Promised, pr.Observed(), pr.Held, pr.Detail)
			}
			if !res.OK {
				t.Errorf("promises broken on this kernel: %s", strings.Join(res.Broken, "; "))
			}
			for _, want := range []string{plan.EvCalls, plan.EvSending, plan.EvAvailable} {
				found := false
				for _, pr := range res.Promises {
					found = found || pr.Event == want
				}
				if !found {
					t.Errorf("%q was not exercised", want)
				}
			}
			for n := range netnsNames(t) {
				if !before[n] {
					t.Errorf("namespace %s left behind", n)
				}
			}
		})
	}
}

// TestVerifyCatchesWrongRecognition breaks the plan on purpose: with the
// address ring skbs are recognised by off by one, no skb is a ring skb, so
// the exact SENDING promise must be reported broken, by name.
func TestVerifyCatchesWrongRecognition(t *testing.T) {
	o := options(t, plan.Auto)
	if o.Plan.Config.UargForm {
		o.Plan.Config.UargCompleteAddr++
	} else {
		o.Plan.Config.DestructAddr++
	}
	res, err := verify.Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.OK {
		t.Fatalf("verification passed with a wrong recognition address: %+v", res.Promises)
	}
	// The events a wrongly recognised ring skb hides: SENDING where it is
	// seen at dev_queue_xmit; where the status write reports it (a kernel
	// on which __packet_set_status is a symbol: arm64's 7.2), the driver's
	// events of the frames.
	named := false
	for _, b := range res.Broken {
		t.Logf("broken: %s", b)
		named = named || strings.HasPrefix(b, plan.EvSending+":") || strings.HasPrefix(b, plan.EvXmit+":")
	}
	if !named {
		t.Errorf("neither the SENDING nor the driver xmit promise is named broken: %v", res.Broken)
	}
}
