package matrix

import (
	"strings"
	"testing"
)

// verifyJSON is `ringtrace probe --verify --json` as its contract shows it,
// with a verify object to fill in.
const verifyJSON = `{"kernel": {"release": "7.3-cloud-amd64", "version": {"Major": 7, "Minor": 3, "Patch": 0}},
 "plan": {"class": "fentry", "completion": "uarg", "rows": [{"event": "frame -> SENDING", "hook": "fentry __dev_queue_xmit", "precision": "exact"}]},
 "verify": %s}`

const (
	verifyHeld = `{"ok": true, "seconds": 0.41,
  "cases": [{"name": "veth-blocking", "frames": 8, "error": ""}, {"name": "lo-dontwait", "frames": 8, "error": ""}],
  "promises": [{"event": "frame -> SENDING", "hook": "tp_btf net_dev_queue (...)", "promised": "exact", "exact": 32, "bounded": 0, "not_seen": 0, "held": true, "detail": ""},
               {"event": "frame -> AVAILABLE", "hook": "fentry tpacket_ubuf_complete", "promised": "exact", "exact": 32, "bounded": 0, "not_seen": 0, "held": true, "detail": ""}],
  "broken": []}`
	verifyBroken = `{"ok": false, "seconds": 0.52,
  "cases": [{"name": "veth-blocking", "frames": 8, "error": ""}],
  "promises": [{"event": "frame -> SENDING", "hook": "tp_btf net_dev_queue (...)", "promised": "exact", "exact": 32, "bounded": 0, "not_seen": 0, "held": true, "detail": ""},
               {"event": "frame -> AVAILABLE", "hook": "status read", "promised": "exact", "exact": 0, "bounded": 32, "not_seen": 0, "held": false, "detail": "status-read"},
               {"event": "qdisc drop", "hook": "tp_btf kfree_skb", "promised": "exact", "exact": 0, "bounded": 0, "not_seen": 1, "held": false, "detail": ""}],
  "broken": ["frame -> AVAILABLE: promised exact, observed 0 exact, 32 bounded (status-read) in veth-blocking",
             "qdisc drop: promised exact, observed 0 exact, 0 bounded, 1 not seen in veth-drop"]}`
	// Broken promises listed only among the promises.
	verifyUnlisted = `{"ok": false, "cases": [], "promises": [
  {"event": "frame -> AVAILABLE", "hook": "h", "promised": "bounded", "exact": 0, "bounded": 0, "not_seen": 4, "held": false, "detail": "no completion seen"}], "broken": null}`
	verifyCaseError = `{"ok": true, "cases": [{"name": "lo-keep", "frames": 0, "error": "bind: address in use"}],
  "promises": [{"event": "e", "hook": "h", "promised": "exact", "exact": 1, "held": true}], "broken": []}`
	verifyEmpty     = `{"ok": true, "cases": [], "promises": [], "broken": []}`
	verifyNotOK     = `{"ok": false, "cases": [], "promises": [{"event": "e", "hook": "h", "promised": "exact", "exact": 1, "held": true}], "broken": []}`
	verifyNotOKCase = `{"ok": false, "cases": [{"name": "veth-drop", "frames": 1, "error": "no qdisc drop forced"}], "promises": [{"event": "e", "held": true}], "broken": []}`
)

// verifyFrame is the probe frame a `probe --verify --json` run gives.
func verifyFrame(hooks, report string, status int) Frame {
	return Frame{Key: probeKey(hooks), Status: status, Payload: []byte(strings.Replace(verifyJSON, "%s", report, 1))}
}

func TestJudgeVerify(t *testing.T) {
	for _, c := range []struct {
		name, report string
		status       int
		state        string
		verified     string // the VERIFIED column
		problems     int
	}{
		{"held", verifyHeld, 0, Verified, "verified", 0},
		{"broken", verifyBroken, 1, Broken, "BROKEN: frame -> AVAILABLE: promised exact, observed 0 exact, 32 bounded (status-read) in veth-blocking (+1 more)", 2},
		{"broken, exit 0", verifyBroken, 0, Broken, "BROKEN: frame -> AVAILABLE: promised exact, observed 0 exact, 32 bounded (status-read) in veth-blocking (+1 more)", 2},
		{"unlisted", verifyUnlisted, 1, Broken, "BROKEN: frame -> AVAILABLE: promised bounded, observed 0 exact, 0 bounded, 4 not seen (no completion seen)", 1},
		{"held, exit 1", verifyHeld, 1, Error, "ERROR: exit status 1, yet the report says every promise held", 0},
		{"held, crashed after", verifyHeld, 139, Error, "ERROR: exit status 139, yet the report says every promise held", 0},
		{"case error", verifyCaseError, 0, Error, "ERROR: case lo-keep: bind: address in use", 1},
		{"no promises", verifyEmpty, 0, Error, "ERROR: the report checks no promise", 0},
		{"not ok, none named", verifyNotOK, 1, Broken, "BROKEN: the report says a promise was broken but names none", 0},
		{"not ok, a case failed", verifyNotOKCase, 1, Broken, "BROKEN: case veth-drop: no qdisc drop forced", 1},
	} {
		tgt := &Target{Name: "next"}
		col := newCollector(Spec{Hooks: NextHooks(), Runs: GuestRuns()}, tgt)
		col.add(verifyFrame("auto", c.report, c.status))
		cl := tgt.class("auto")
		if cl.Plan == nil || cl.Class != "fentry" || cl.ProbeError != "" {
			t.Errorf("%s: the report's plan was not taken: %+v", c.name, cl)
			continue
		}
		v := cl.Verification
		if v == nil || v.State != c.state || verifiedText(cl) != c.verified || len(v.Problems) != c.problems {
			t.Errorf("%s: %+v, column %q; want %s, %q, %d problems", c.name, v, verifiedText(cl), c.state, c.verified, c.problems)
		}
		if tgt.Release != "7.3-cloud-amd64" {
			t.Errorf("%s: release %q", c.name, tgt.Release)
		}
	}
}

// TestVerifyWithoutReport: what the script frames when `probe --verify`
// printed no report, and the plain probe after it.
func TestVerifyWithoutReport(t *testing.T) {
	plain := []byte(strings.Replace(probeJSON, "%s", "fentry", 1))
	for _, c := range []struct {
		name           string
		verify, probe  Frame
		verified       string
		unavail, error bool
	}{
		{"older ringtrace",
			Frame{Key: verifyKey("auto"), Status: 2, Payload: []byte("ringtrace: flag provided but not defined: -verify (see --help)")},
			Frame{Key: probeKey("auto"), Payload: plain},
			"ERROR: no verify report: flag provided but not defined: -verify (see --help) (exit status 2)", false, false},
		{"half a report",
			Frame{Key: verifyKey("auto"), Status: 1, Payload: []byte("{\"kernel\": {\nringtrace: panic: runtime error")},
			Frame{Key: probeKey("auto"), Payload: plain},
			"ERROR: no verify report: panic: runtime error (exit status 1)", false, false},
		{"class the kernel lacks",
			Frame{Key: verifyKey("kprobe"), Status: 2, Payload: []byte("ringtrace: --hooks=kprobe: kprobes: CONFIG_KPROBES is not set")},
			Frame{Key: probeKey("kprobe"), Status: 2, Payload: []byte("ringtrace: --hooks=kprobe: kprobes: CONFIG_KPROBES is not set")},
			"n/a", true, false},
		{"bad input that is not the class",
			Frame{Key: verifyKey("auto"), Status: 2, Payload: []byte("ringtrace: ringtrace needs root")},
			Frame{Key: probeKey("auto"), Status: 2, Payload: []byte("ringtrace: ringtrace needs root")},
			"ERROR: no verify report: ringtrace needs root (exit status 2)", false, true},
	} {
		tgt := &Target{Name: "6.1"}
		col := newCollector(Spec{Hooks: []string{c.probe.Key[len("probe/"):]}, Runs: GuestRuns()}, tgt)
		col.add(c.verify)
		col.add(c.probe)
		col.finish()
		cl := tgt.Classes[0]
		if cl.Verified != c.verified || (cl.Unavailable != "") != c.unavail || (cl.ProbeError != "") != c.error {
			t.Errorf("%s: verified %q, unavailable %q, probe error %q", c.name, cl.Verified, cl.Unavailable, cl.ProbeError)
		}
	}
}

// TestVerifyNotReported: a class whose probe step never reported (the guest
// died first) is not verified, and that fails the target.
func TestVerifyNotReported(t *testing.T) {
	tgt := &Target{Name: "7.2"}
	col := newCollector(Spec{Hooks: Hooks(), Runs: GuestRuns()}, tgt)
	col.add(verifyFrame("auto", verifyHeld, 0))
	tgt.Attempts = []Attempt{{Died: "qemu ended"}}
	col.finish()
	if v := tgt.class("auto").Verified; v != Verified {
		t.Errorf("auto: %q", v)
	}
	if v := tgt.class("kprobe").Verified; !strings.HasPrefix(v, "ERROR: no verify report: the guest died") {
		t.Errorf("kprobe: %q", v)
	}
}

// TestBrokenPromiseFailsTarget: every cell passed, one promise broke: the
// target fails, and FAILURES names the kernel, the class and the event.
func TestBrokenPromiseFailsTarget(t *testing.T) {
	tgt := &Target{Name: "next"}
	col := newCollector(Spec{Hooks: NextHooks(), Runs: GuestRuns()}, tgt)
	col.add(verifyFrame("auto", verifyBroken, 1))
	for i, r := range GuestRuns() {
		var results []string
		for _, s := range r.Scenarios {
			results = append(results, `{"scenario": "`+s+`", "pass": true, "expectations": [{"pass": true}]}`)
		}
		col.add(Frame{Key: runKey("auto", i), Payload: []byte("[" + strings.Join(results, ",") + "]")})
	}
	col.finish()
	if tgt.Passed() {
		t.Fatal("a target with a broken promise passed")
	}
	lines := verifyFailures(tgt, tgt.class("auto"))
	want := []string{
		"next (7.3-cloud-amd64) A (auto) probe --verify: BROKEN: frame -> AVAILABLE: promised exact, observed 0 exact, 32 bounded (status-read) in veth-blocking",
		"next (7.3-cloud-amd64) A (auto) probe --verify: BROKEN: qdisc drop: promised exact, observed 0 exact, 0 bounded, 1 not seen in veth-drop",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("failure lines:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if v := verdict(tgt); !strings.HasPrefix(v, "FAIL (1 of ") {
		t.Errorf("verdict %q", v)
	}
}

func TestTargetName(t *testing.T) {
	for _, c := range []struct {
		t    Target
		want string
	}{
		{Target{Name: "next", Release: "7.3-cloud-amd64"}, "next (7.3-cloud-amd64)"},
		{Target{Name: "6.1", Release: "6.1.0-57-cloud-amd64"}, "6.1"},
		{Target{Name: "next"}, "next"},
		{Target{Name: "host", Host: true, Release: "6.18.44"}, "host"},
	} {
		if got := targetName(&c.t); got != c.want {
			t.Errorf("targetName(%+v) = %q, want %q", c.t, got, c.want)
		}
	}
}

func TestGuestSpec(t *testing.T) {
	o := Options{Binary: "/x/bin/ringtrace", Tests: []TestRun{{Package: "tracer/session"}}}
	full, next := guestSpec(o, "7.2"), guestSpec(o, "next")
	if strings.Join(full.Hooks, " ") != "auto kprobe tracepoint" || len(full.Tests) != 1 || full.Ringtrace != "/usr/local/bin/ringtrace" {
		t.Errorf("7.2 spec %+v", full)
	}
	if strings.Join(next.Hooks, " ") != "auto" || len(next.Tests) != 0 || len(next.Runs) != len(GuestRuns()) {
		t.Errorf("next spec %+v", next)
	}
}
