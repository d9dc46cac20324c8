package matrix

import (
	"bytes"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakeSpec runs testdata's stand-ins for ringtrace and a test binary.
func fakeSpec(t *testing.T) Spec {
	t.Helper()
	rt, err := filepath.Abs("testdata/fake-ringtrace.sh")
	if err != nil {
		t.Fatal(err)
	}
	return Spec{
		Ringtrace: rt,
		Hooks:     Hooks(),
		Runs: []ScenarioRun{
			{Scenarios: []string{"status", "sndbuf"}, Args: []string{"--rate-scale", "0.02"}},
			{Scenarios: []string{"bypass"}},
			{Scenarios: []string{"call-return"}, Args: []string{"--frames", "1024"}},
		},
		Tests:   []TestRun{{Package: "pkg/fake", Binary: filepath.Join(filepath.Dir(rt), "fake-test.sh"), Skip: "^TestD$", Why: "because"}},
		TestEnv: []string{"FAKE_ENV=it's set"},
	}
}

// shells are the sh implementations the script must work with: the host's
// /bin/sh and, when installed, busybox ash (the guests' shell).
func shells(t *testing.T) [][]string {
	out := [][]string{{"/bin/sh", "-c"}}
	if bb, err := exec.LookPath("busybox"); err == nil {
		out = append(out, []string{bb, "sh", "-c"})
	} else {
		t.Log("busybox not installed: the script is checked with /bin/sh only")
	}
	return out
}

// runScript renders the script, runs it and collects its frames.
func runScript(t *testing.T, sh []string, spec Spec, done map[string]bool, col *collector) string {
	t.Helper()
	script := Script(spec, "0123abcd", done)
	var out bytes.Buffer
	p := NewParser("0123abcd", col.add)
	cmd := exec.Command(sh[0], append(sh[1:], script)...)
	w := io.MultiWriter(&out, p)
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v: %v\n%s\nscript:\n%s", sh, err, out.String(), script)
	}
	return out.String()
}

func TestScriptRunsAndReports(t *testing.T) {
	for _, sh := range shells(t) {
		t.Run(filepath.Base(sh[0]), func(t *testing.T) {
			spec := fakeSpec(t)
			tgt := &Target{Name: "fake"}
			col := newCollector(spec, tgt)
			out := runScript(t, sh, spec, nil, col)
			col.finish()

			if !strings.Contains(out, "progress on stderr for auto") || !strings.Contains(out, "=== RUN   TestA") {
				t.Errorf("progress did not go out unframed:\n%s", out)
			}
			if tgt.Release != "9.9.0-test" || tgt.Version != "9.9.0" {
				t.Errorf("kernel %q %q", tgt.Release, tgt.Version)
			}
			want := map[string]string{
				"auto/status": Pass, "auto/sndbuf": Pass, "auto/bypass": Pass, "auto/call-return": Pass,
				"tracepoint/status": Pass, "tracepoint/sndbuf": Fail, "tracepoint/bypass": Error, "tracepoint/call-return": Pass,
			}
			got := map[string]string{}
			for _, c := range tgt.Cells {
				got[c.Hooks+"/"+c.Scenario] = c.State
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("cell %s = %q, want %q", k, got[k], v)
				}
			}
			if len(got) != len(want) {
				t.Errorf("cells %v, want %v", got, want)
			}
			for _, c := range tgt.Cells {
				if c.Hooks+"/"+c.Scenario == "tracepoint/bypass" && !strings.Contains(c.Detail, "verifier says no") {
					t.Errorf("no-result cell detail %q lacks ringtrace's error", c.Detail)
				}
			}
			if cl := tgt.class("kprobe"); !strings.Contains(cl.Unavailable, "CONFIG_KPROBES") {
				t.Errorf("kprobe class: %+v", cl)
			}
			if cl := tgt.class("tracepoint"); cl.Letter != "C" || cl.Completion != "uarg" || len(cl.Changes) != 2 {
				t.Errorf("tracepoint class: %+v", cl)
			}
			// probe --verify: auto held, tracepoint broke a promise (exit
			// 1, its scenarios still ran), kprobe is not offered.
			for hooks, want := range map[string]string{
				"auto":       Verified,
				"kprobe":     "n/a",
				"tracepoint": "BROKEN: frame -> AVAILABLE: promised exact, observed 0 exact, 8 bounded (status-read) in veth-blocking",
			} {
				if got := tgt.class(hooks).Verified; got != want {
					t.Errorf("%s verified %q, want %q", hooks, got, want)
				}
			}
			if len(tgt.Tests) != 1 {
				t.Fatalf("tests %+v", tgt.Tests)
			}
			tr := tgt.Tests[0]
			if tr.State != Fail || tr.Status != 1 || tr.Passed != 1 || strings.Join(tr.Failed, ",") != "TestB/sub,TestB" ||
				strings.Join(tr.Skipped, ",") != "TestC" || !strings.Contains(tr.Excluded, "because") {
				t.Errorf("test result %+v", tr)
			}
			if want := "TestB/sub: b_test.go:20: trace: exit status 1: it's broken"; tr.Detail != want {
				t.Errorf("test detail %q, want %q", tr.Detail, want)
			}
		})
	}
}

// TestScriptOlderRingtrace: a ringtrace without --verify gives no report:
// every class it offers is an ERROR, never verified, while the plain probe
// still gives the plans and the scenarios still run.
func TestScriptOlderRingtrace(t *testing.T) {
	t.Setenv("FAKE_OLD_RINGTRACE", "1")
	for _, sh := range shells(t) {
		t.Run(filepath.Base(sh[0]), func(t *testing.T) {
			spec := fakeSpec(t)
			spec.Tests = nil
			tgt := &Target{Name: "fake"}
			col := newCollector(spec, tgt)
			runScript(t, sh, spec, nil, col)
			col.finish()
			for _, hooks := range []string{"auto", "tracepoint"} {
				cl := tgt.class(hooks)
				if cl.Plan == nil || cl.Verification == nil || cl.Verification.State != Error ||
					cl.Verified != "ERROR: no verify report: flag provided but not defined: -verify (see --help) (exit status 2)" {
					t.Errorf("%s: plan %v, verified %q", hooks, cl.Plan != nil, cl.Verified)
				}
			}
			if cl := tgt.class("kprobe"); cl.Verified != "n/a" || cl.Unavailable == "" {
				t.Errorf("kprobe: verified %q, unavailable %q", cl.Verified, cl.Unavailable)
			}
			if len(tgt.Cells) != 8 {
				t.Errorf("%d cells, want the scenarios of auto and tracepoint", len(tgt.Cells))
			}
			if tgt.Passed() {
				t.Error("a target nothing was verified on passed")
			}
		})
	}
}

// TestScriptRetrySkipsDone: a retry runs the probes again, and only the runs
// and tests that had not reported.
func TestScriptRetrySkipsDone(t *testing.T) {
	spec := fakeSpec(t)
	done := map[string]bool{runKey("auto", 0): true, runKey("auto", 1): true, runKey("auto", 2): true, testKey("pkg/fake"): true}
	script := Script(spec, "n", done)
	for _, absent := range []string{"run/auto/", "test/pkg/fake", "fake-test.sh"} {
		if strings.Contains(script, absent) {
			t.Errorf("retry script still has %q", absent)
		}
	}
	for _, present := range []string{"probe/auto", "probe/kprobe", "run/tracepoint/0", "run/tracepoint/2"} {
		if !strings.Contains(script, present) {
			t.Errorf("retry script lacks %q", present)
		}
	}
	tgt := &Target{Name: "fake"}
	col := newCollector(spec, tgt)
	for k := range done {
		col.done[k] = true
	}
	runScript(t, shells(t)[0], spec, done, col)
	col.finish()
	if len(tgt.Cells) != 4 {
		t.Errorf("retry produced %d cells, want the 4 tracepoint ones", len(tgt.Cells))
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{"a": "'a'", "it's": `'it'\''s'`, "": "''", "$x `y`": "'$x `y`'"} {
		if got := shq(in); got != want {
			t.Errorf("shq(%q) = %s, want %s", in, got, want)
		}
	}
}
