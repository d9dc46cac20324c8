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
	feat := f.Features.Feature(name)
	if feat == nil {
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
