package report_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/ringtrace/ringtrace/tracer/kaddr"
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
