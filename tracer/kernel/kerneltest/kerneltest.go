// Package kerneltest keeps a missing kernel feature from hiding a broken
// probe in tests, the way cilium/ebpf's SkipIfNotSupported does: a test
// that needs a feature skips only where the kernel may lack it, and fails
// where the kernel's version and config say it must have it.
package kerneltest

import (
	"testing"

	"github.com/ringtrace/ringtrace/tracer/kernel"
	"github.com/ringtrace/ringtrace/tracer/plan"
)

// Require returns if the named feature (kernel.FeatureNames) is usable,
// skips tb if this kernel may lack it, and fails tb otherwise.
func Require(tb testing.TB, f *kernel.Facts, name string) {
	tb.Helper()
	feat, ok := f.Features.Feature(name)
	if !ok {
		tb.Fatalf("no kernel feature %q", name)
	}
	if feat.OK {
		return
	}
	if why := f.MayLack(name); why != "" {
		tb.Skipf("%s: %s (%s)", name, feat.Why, why)
	}
	tb.Fatalf("%s is unusable on Linux %s, which must have it (version and config): %s — the probe, or how ringtrace uses it, is broken",
		name, f.Version, feat.Why)
}

// Check reports, as test errors, every probed feature that is unusable
// where this kernel must have it.
func Check(tb testing.TB, f *kernel.Facts) {
	tb.Helper()
	for _, name := range kernel.FeatureNames() {
		feat, _ := f.Features.Feature(name)
		if !feat.OK && f.MayLack(name) == "" {
			tb.Errorf("%s is unusable on Linux %s, which must have it: %s", name, f.Version, feat.Why)
		}
	}
}

// RequireClass is Require for the feature a hook class rests on.
func RequireClass(tb testing.TB, f *kernel.Facts, c plan.Class) {
	tb.Helper()
	switch c {
	case plan.Fentry:
		Require(tb, f, "fentry")
	case plan.Kprobe:
		Require(tb, f, "kprobe")
	default:
		Require(tb, f, "tp_btf")
	}
}
