package kernel

import (
	"fmt"
	"runtime"
	"strings"
)

// need is when a kernel must have a feature: from version since on,
// unless its build config turns config off, or (policy) the kernel refuses
// it to root by policy (lockdown, an LSM: EPERM).
type need struct {
	since  Version
	config string
	policy bool
}

// probed is one feature: its name, when a kernel must have it, and where
// Features holds its probe's outcome.
type probed struct {
	name string
	need
	of func(*Features) *Feature
}

// needs are the features ringtrace probes, by their JSON names.
var needs = []probed{
	{"ringbuf", need{since: Version{5, 8, 0}}, func(f *Features) *Feature { return &f.RingBuf }},
	{"bpf_loop", need{since: Version{5, 17, 0}}, func(f *Features) *Feature { return &f.BPFLoop }},
	{"tp_btf", need{since: Version{5, 5, 0}, config: "CONFIG_DEBUG_INFO_BTF"}, func(f *Features) *Feature { return &f.TPBTF }},
	{"fentry", need{since: fentrySince(), config: "CONFIG_FUNCTION_TRACER", policy: true}, func(f *Features) *Feature { return &f.Fentry }},
	{"kprobe", need{config: "CONFIG_KPROBES", policy: true}, func(f *Features) *Feature { return &f.Kprobe }},
	{"test_run", need{since: Version{5, 10, 0}}, func(f *Features) *Feature { return &f.TestRun }},
	{"atomics", need{since: Version{5, 12, 0}}, func(f *Features) *Feature { return &f.Atomics }},
}

// fentrySince: BPF trampolines came to x86-64 in 5.5 and to arm64 in 6.0.
func fentrySince() Version {
	if runtime.GOARCH == "arm64" {
		return Version{6, 0, 0}
	}
	return Version{5, 5, 0}
}

// FeatureNames are the features Feature and MayLack know.
func FeatureNames() []string {
	names := make([]string, len(needs))
	for i, n := range needs {
		names[i] = n.name
	}
	return names
}

// Feature is the probed feature of that name (nil if there is none), to
// read or, in tests, to change.
func (f *Features) Feature(name string) *Feature {
	if p, ok := lookup(name); ok {
		return p.of(f)
	}
	return nil
}

func lookup(name string) (probed, bool) {
	for _, p := range needs {
		if p.name == name {
			return p, true
		}
	}
	return probed{}, false
}

// MayLack says why this kernel may lack the named feature (older than the
// feature, configured out, refused by policy, or a config that cannot be
// read), or "" when it must have it: then a failed probe is a bug, in the
// probe or in how ringtrace uses the feature.
func (f *Facts) MayLack(name string) string {
	n, ok := lookup(name)
	if !ok {
		return fmt.Sprintf("no feature %q", name)
	}
	if !f.Version.AtLeast(n.since.Major, n.since.Minor, n.since.Patch) {
		return fmt.Sprintf("Linux %s is older than %s, which brought it", f.Version, n.since)
	}
	if n.config != "" {
		switch v, ok := f.Config[n.config]; {
		case !ok && len(f.Config) == 0:
			return "the kernel's build config cannot be read"
		case !ok || v == "n":
			return n.config + " is not set"
		}
	}
	feat := n.of(&f.Features)
	if n.policy && !feat.OK && strings.Contains(feat.Why, "EPERM") {
		return "refused by the kernel's policy (EPERM)"
	}
	return ""
}
