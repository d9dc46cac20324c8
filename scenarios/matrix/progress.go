package matrix

import (
	"fmt"
	"strings"
)

// frameProgress is the progress line for a frame the collector just took.
func frameProgress(t *Target, f Frame) string {
	kind, rest, _ := strings.Cut(f.Key, "/")
	switch kind {
	case "probe":
		cl := t.class(rest)
		switch {
		case cl.Unavailable != "":
			return fmt.Sprintf("--hooks=%s: unavailable: %s", rest, cl.Unavailable)
		case cl.ProbeError != "":
			return fmt.Sprintf("--hooks=%s: probe failed: %s", rest, cl.ProbeError)
		}
		return fmt.Sprintf("--hooks=%s: class %s (%s), TX completion %s, %s", rest, cl.Letter, cl.Class, cl.Completion, verifiedText(cl))
	case "run":
		hooks, _, _ := strings.Cut(rest, "/")
		var parts []string
		for _, c := range t.Cells {
			if c.Hooks == hooks {
				parts = append(parts, c.Scenario+" "+cellText(t, t.class(hooks), c.Scenario))
			}
		}
		return fmt.Sprintf("%s: %s", letterOf(t, hooks), strings.Join(parts, ", "))
	case "test":
		for _, r := range t.Tests {
			if r.Package == rest {
				return fmt.Sprintf("test %s: %s", rest, testText(t, rest))
			}
		}
	}
	return ""
}

// verdict sums a target up in a few words.
func verdict(t *Target) string {
	if t.Error != "" {
		return "ERROR: " + t.Error
	}
	bad, verified := 0, 0
	for _, cl := range t.Classes {
		if v := cl.Verification; v != nil {
			verified++
			if v.State != Verified {
				bad++
			}
		}
	}
	for _, c := range t.Cells {
		if c.State != Pass {
			bad++
		}
	}
	for _, r := range t.Tests {
		if r.State != Pass {
			bad++
		}
	}
	if bad == 0 {
		return fmt.Sprintf("PASS (%d classes verified, %d scenario runs, %d test binaries)", verified, len(t.Cells), len(t.Tests))
	}
	return fmt.Sprintf("FAIL (%d of %d verifications, scenario runs and test binaries did not pass)", bad, verified+len(t.Cells)+len(t.Tests))
}
