package probe

import (
	"os"
	"testing"

	"github.com/ringtrace/ringtrace/tracer/kernel"
)

// TestProbeThisHost checks the facts of the machine the tests run on are
// self-consistent (which hook families exist is the kernel's business).
func TestProbeThisHost(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	f, spec, err := Kernel(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if spec == nil || !f.Features.RingBuf.OK || !f.Types["packet_sock"] {
		t.Fatalf("facts %+v", f)
	}
	if f.Symbols["tpacket_destruct_skb"].Addr == 0 && f.CompletionForm() == "destructor" {
		t.Error("destructor form without tpacket_destruct_skb")
	}
	// A probe that fails where the kernel's version and config say the
	// feature must exist is broken (what kerneltest.Require fails on).
	for _, name := range kernel.FeatureNames() {
		feat := f.Features.Feature(name)
		switch why := f.MayLack(name); {
		case feat == nil:
			t.Errorf("no probed feature %q", name)
		case !feat.OK && feat.Why == "":
			t.Errorf("%s unavailable without a reason", name)
		case !feat.OK && why == "":
			t.Errorf("%s unusable on Linux %s, which must have it: %s", name, f.Version, feat.Why)
		default:
			t.Logf("%s: ok=%v %s %s", name, feat.OK, feat.Why, why)
		}
	}
	if f.CompletionForm() == "uarg" && f.Symbols["tpacket_ubuf_complete"].Addr == 0 {
		t.Error("uarg form without the text symbol tpacket_ubuf_complete")
	}
}
