package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/kaddr"
	"github.com/ringtrace/ringtrace/tracer/record"
)

const statusRecording = "../../testdata/recordings/status.rtrec"

// checkRendered asserts that the --perfetto and --html files hold a trace
// and a report page, readable by their owner only.
func checkRendered(t *testing.T, perfetto, html string) {
	t.Helper()
	checkPrivate(t, perfetto, html)
	b, err := os.ReadFile(perfetto)
	if err != nil {
		t.Fatal(err)
	}
	var tr struct {
		TraceEvents []map[string]any `json:"traceEvents"`
	}
	if err := json.Unmarshal(b, &tr); err != nil || len(tr.TraceEvents) == 0 {
		t.Errorf("--perfetto file: %v, %d events", err, len(tr.TraceEvents))
	}
	page, err := os.ReadFile(html)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), `id="frame-timeline"`) || !strings.Contains(string(page), `class="frame-row"`) {
		t.Errorf("--html file has no frame timeline (%d bytes)", len(page))
	}
}

// checkPrivate asserts that output files have mode 0600, as perf.data.
func checkPrivate(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); m != 0o600 {
			t.Errorf("%s: mode %o, want 600", filepath.Base(p), m)
		}
	}
}

func TestReportRenderFlags(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	pf, hf := filepath.Join(dir, "t.json"), filepath.Join(dir, "t.html")
	if err := os.WriteFile(pf, []byte("an older, public trace"), 0o644); err != nil {
		t.Fatal(err) // an existing file becomes private when rewritten
	}

	r := runBin(t, bin, nil, "report", statusRecording, "--perfetto", pf, "--html", hf)
	if r.code != 0 || !strings.Contains(r.stdout, "DIAGNOSES") {
		t.Fatalf("exit %d, stdout %q, stderr %q: want the text report too", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "to "+pf) || !strings.Contains(r.stderr, "to "+hf) {
		t.Errorf("stderr %q does not say where the files went", r.stderr)
	}
	checkRendered(t, pf, hf)

	if r := runBin(t, bin, nil, "report", "--quiet", "--html", hf, statusRecording); r.code != 0 || r.stdout != "" {
		t.Errorf("--quiet: exit %d, stdout %q", r.code, r.stdout)
	}

	keep := filepath.Join(dir, "keep.html")
	os.WriteFile(keep, []byte("keep"), 0o644)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"html-unwritable", []string{"report", "--html", "/nonexistent/dir/x.html", statusRecording}, "--html"},
		{"perfetto-unwritable", []string{"report", "--perfetto", dir, statusRecording}, "--perfetto"},
		{"same-file", []string{"report", "--perfetto", hf, "--html", hf, statusRecording}, "same file"},
		{"bad-recording-keeps-file", []string{"report", "--html", keep, filepath.Join(dir, "nosuch.rtrec")}, "nosuch"},
		{"trace-unwritable", []string{"trace", "--html", "/nonexistent/dir/x.html"}, "--html"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkOneLineError(t, runBin(t, bin, nil, tc.args...), tc.want)
		})
	}
	if b, _ := os.ReadFile(keep); string(b) != "keep" {
		t.Errorf("a failed run changed an existing output file: %q", b)
	}
	if fi, err := os.Stat(keep); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("a failed run changed an existing output file's mode: %v", fi.Mode())
	}
}

// TestTraceRenderFlags: a live trace builds the report and writes both
// files at exit, while still printing its events.
func TestTraceRenderFlags(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	pf, hf, rec := filepath.Join(dir, "t.json"), filepath.Join(dir, "t.html"), filepath.Join(dir, "t.rtrec")
	out, errs := traceWhileSending(t, bin, []string{"--duration", "10s", "--perfetto", pf, "--html", hf, "--record", rec},
		[]string{"--frames", "4", "--count", "8", "--size", "64"}, 200*time.Millisecond)
	if !strings.Contains(out, "SENDING -> AVAILABLE") || !strings.Contains(errs, "to "+hf) {
		t.Errorf("stdout %d bytes, stderr %q: want the events and where the files went", len(out), errs)
	}
	checkRendered(t, pf, hf)
	checkPrivate(t, rec)
}

// TestReportKernelAddresses: a report names no kernel address unless asked
// to, and then names those its recording has (a stuck frame's skb).
func TestReportKernelAddresses(t *testing.T) {
	bin := buildBinary(t)
	rec := "../../testdata/recordings/selfloop-7.2-blocking.rtrec"
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"report", rec, "--frames"}, false},
		{[]string{"report", rec, "--json"}, false},
		{[]string{"report", rec, "--frames", "--kernel-addresses"}, true},
		{[]string{"report", "--kernel-addresses", "--json", rec}, true},
	} {
		r := runBin(t, bin, nil, tc.args...)
		if r.code != 0 {
			t.Fatalf("%v: exit %d: %s", tc.args, r.code, r.stderr)
		}
		if hits := kaddr.FindText([]byte(r.stdout+r.stderr), "output"); (len(hits) > 0) != tc.want {
			t.Errorf("%v: kernel addresses %v, want some: %v", tc.args, hits, tc.want)
		}
	}
	// A recording made without kernel addresses has none to show: it says so.
	anon := filepath.Join(t.TempDir(), "anon.rtrec")
	w, err := record.Create(anon, record.Header{Tool: "test"}, record.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(event.Encode(event.Event{Kind: event.FrameState, TS: 1000, Sk: 0xffff888105469000, SockIno: 7, Frame: 0,
		Old: event.SendRequest, New: event.Sending}))
	if err := w.CloseWithTrailer(record.Trailer{}); err != nil {
		t.Fatal(err)
	}
	r := runBin(t, bin, nil, "report", anon, "--kernel-addresses", "--frames")
	if r.code != 0 || !strings.Contains(r.stderr, "holds no kernel addresses") || !strings.Contains(r.stdout, "sk1") {
		t.Errorf("exit %d, stderr %q, stdout %q", r.code, r.stderr, r.stdout)
	}
}
