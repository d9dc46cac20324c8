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

// needs are the features ringtrace probes, by their JSON names.
var needs = map[string]need{
	"ringbuf":  {since: Version{5, 8, 0}},
	"bpf_loop": {since: Version{5, 17, 0}},
	"tp_btf":   {since: Version{5, 5, 0}, config: "CONFIG_DEBUG_INFO_BTF"},
	"fentry":   {since: fentrySince(), config: "CONFIG_FUNCTION_TRACER", policy: true},
	"kprobe":   {config: "CONFIG_KPROBES", policy: true},
	"test_run": {since: Version{5, 10, 0}},
	"atomics":  {since: Version{5, 12, 0}},
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
	return []string{"ringbuf", "bpf_loop", "tp_btf", "fentry", "kprobe", "test_run", "atomics"}
}

// Feature is the probed feature of that name.
func (f *Features) Feature(name string) (Feature, bool) {
	switch name {
	case "ringbuf":
		return f.RingBuf, true
	case "bpf_loop":
		return f.BPFLoop, true
	case "tp_btf":
		return f.TPBTF, true
	case "fentry":
		return f.Fentry, true
	case "kprobe":
		return f.Kprobe, true
	case "test_run":
		return f.TestRun, true
	case "atomics":
		return f.Atomics, true
	}
	return Feature{}, false
}

// MayLack says why this kernel may lack the named feature (older than the
// feature, configured out, refused by policy, or a config that cannot be
// read), or "" when it must have it: then a failed probe is a bug, in the
// probe or in how ringtrace uses the feature.
func (f *Facts) MayLack(name string) string {
	n, ok := needs[name]
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
	feat, _ := f.Features.Feature(name)
	if n.policy && !feat.OK && strings.Contains(feat.Why, "EPERM") {
		return "refused by the kernel's policy (EPERM)"
	}
	return ""
}
