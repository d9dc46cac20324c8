package report_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/ringtrace/ringtrace/tracer/event"
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

// rewrite writes recording name again as this ringtrace records: version
// 4, with kernel addresses or without (pseudonyms). Locations are named
// from what the recording knows, as the traced machine named them.
func rewrite(t *testing.T, name string, kernelAddresses bool) []byte {
	t.Helper()
	r, err := record.Open(filepath.Join(recordings, name+".rtrec"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var recs [][]byte
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, append([]byte(nil), rec...))
	}
	h := r.Header
	h.KernelAddresses = kernelAddresses
	var buf bytes.Buffer
	w, err := record.NewWriter(&buf, h, record.Options{Symbol: report.NamesFromRecording(r).Symbol})
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range recs {
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
	}
	tr := r.Trailer
	tr.Symbols = nil // the writer names the locations
	if err := w.CloseWithTrailer(tr); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// outputs are every output of a recording: the event lines `ringtrace
// trace` prints (text, JSON) and every view of its report.
func outputs(t *testing.T, b []byte) map[string][]byte {
	t.Helper()
	r, err := record.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	evs, err := r.Events(0)
	if err != nil {
		t.Fatal(err)
	}
	names := report.NamesFromRecording(r)
	tf, jf := event.NewFormatter(r.Header.Monotonic, names), event.NewFormatter(r.Header.Monotonic, names)
	var text, jsonl []byte
	n := event.NewNormalizer()
	for i := range evs {
		n.Process(&evs[i], func(e *event.Event) error {
			text = append(tf.AppendText(text, e), '\n')
			jsonl = append(jf.AppendJSON(jsonl, e), '\n')
			return nil
		})
	}
	r, err = record.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := report.Replay(r)
	if err != nil {
		t.Fatal(err)
	}
	out := renderAll(t, rep)
	out["events.txt"], out["events.jsonl"] = text, jsonl
	return out
}

// TestPseudonymsChangeNoOutput: a recording without kernel addresses holds
// none, in its header, records or trailer, and every output of it (event
// lines, report text, JSON, Perfetto, HTML) is byte for byte that of the
// same recording with them: socket grouping, reused socket addresses,
// named drop and free locations, stuck frames' holders all survive.
func TestPseudonymsChangeNoOutput(t *testing.T) {
	for _, name := range recordingNames(t) {
		t.Run(name, func(t *testing.T) {
			raw, anon := rewrite(t, name, true), rewrite(t, name, false)
			if hits, err := kaddr.FindRecording(raw); err != nil || len(hits) == 0 {
				t.Fatalf("the recording with kernel addresses: %d found (%v)", len(hits), err)
			}
			hits, err := kaddr.FindRecording(anon)
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range hits {
				t.Errorf("kernel address in the recording without them: %v", h)
			}
			want, got := outputs(t, raw), outputs(t, anon)
			for view, b := range want {
				if !bytes.Equal(got[view], b) {
					t.Errorf("%s differs without kernel addresses:\n%s", view, lineDiff(got[view], b))
				}
			}
		})
	}
}

// lineDiff shows the first line that differs.
func lineDiff(got, want []byte) string {
	g, w := bytes.Split(got, []byte("\n")), bytes.Split(want, []byte("\n"))
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl []byte
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if !bytes.Equal(gl, wl) {
			return fmt.Sprintf("line %d:\n got %.300s\nwant %.300s", i+1, gl, wl)
		}
	}
	return "(no line differs)"
}
