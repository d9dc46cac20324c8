package report_test

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/ringtrace/ringtrace/tracer/kaddr"
	"github.com/ringtrace/ringtrace/tracer/record"
	"github.com/ringtrace/ringtrace/tracer/report"
)

// renderAll is every view of a report: text (every frame, every call),
// JSON, Perfetto and HTML.
func renderAll(t *testing.T, rep *report.Report) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	var text, perfetto, html bytes.Buffer
	if err := rep.WriteText(&text, report.TextOptions{Frames: true, AllCalls: true}); err != nil {
		t.Fatal(err)
	}
	if err := rep.WritePerfetto(&perfetto); err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteHTML(&html); err != nil {
		t.Fatal(err)
	}
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	out["text"], out["perfetto"], out["html"], out["json"] = text.Bytes(), perfetto.Bytes(), html.Bytes(), js
	return out
}

// TestReportsHoldNoKernelAddresses: no view of any recording's report
// names a kernel address (the stuck frames' evidence used to name their
// skbs and frames).
func TestReportsHoldNoKernelAddresses(t *testing.T) {
	for _, name := range recordingNames(t) {
		t.Run(name, func(t *testing.T) {
			for view, b := range renderAll(t, replay(t, name)) {
				for _, h := range kaddr.FindText(b, view) {
					t.Errorf("kernel address in the %s report: %v", view, h)
				}
			}
		})
	}
}

// TestReplayKernelAddresses: asked for, a report names the kernel addresses
// its recording has (a stuck frame's skb and frame), and is otherwise the
// same.
func TestReplayKernelAddresses(t *testing.T) {
	r, err := record.Open(filepath.Join(recordings, "selfloop-7.2-blocking.rtrec"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rep, err := report.ReplayWith(r, report.ReplayOptions{KernelAddresses: true})
	if err != nil {
		t.Fatal(err)
	}
	with, without := renderAll(t, rep), renderAll(t, replay(t, "selfloop-7.2-blocking"))
	addr := regexp.MustCompile(` 0xff[0-9a-f]{14}`)
	for view, b := range with {
		if len(kaddr.FindText(b, view)) == 0 {
			t.Errorf("%s report names no kernel address", view)
		}
		if got := addr.ReplaceAll(b, nil); !bytes.Equal(got, without[view]) {
			t.Errorf("%s report with addresses, less them, differs from the one without", view)
		}
	}
}
