package event_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/kaddr"
	"github.com/ringtrace/ringtrace/tracer/record"
	"github.com/ringtrace/ringtrace/tracer/report"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/events-*")

const (
	recordingsDir = "../../testdata/recordings"
	goldenDir     = "../../testdata/golden"
)

// replayOutput renders a recording the way `ringtrace trace` prints it:
// events in timestamp order (stable), normalised, as text lines and as
// JSON lines, times relative to the recording's clock base; with raw
// kernel addresses when kernelAddresses (trace --kernel-addresses).
func replayOutput(t testing.TB, path string, kernelAddresses bool) (text, jsonl []byte) {
	t.Helper()
	r, err := record.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	evs, err := r.Events(0)
	if err != nil {
		t.Fatal(err)
	}
	// Names from the trailer: only known once the records were read.
	names := report.NamesFromRecording(r)
	names.KernelAddresses = kernelAddresses
	tf := event.NewFormatter(r.Header.Monotonic, names)
	jf := event.NewFormatter(r.Header.Monotonic, names)
	var tb, jb []byte
	n := event.NewNormalizer()
	for i := range evs {
		err := n.Process(&evs[i], func(e *event.Event) error {
			tb = append(tb, tf.Text(e)...)
			tb = append(tb, '\n')
			jb = jf.AppendJSON(jb, e)
			jb = append(jb, '\n')
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return tb, jb
}

// TestGoldenEventOutput pins the text and JSON lines of every recorded
// trace byte for byte: the JSON shape is a documented contract. They hold
// no kernel address; with kernel addresses the JSON lines are the same
// plus each socket's and napi's address, and the text lines the same.
func TestGoldenEventOutput(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(recordingsDir, "*.rtrec"))
	if len(files) == 0 {
		t.Fatal("no recordings")
	}
	addrField := regexp.MustCompile(`"(socket|napi)":"0x[0-9a-f]+",?`)
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".rtrec")
		t.Run(name, func(t *testing.T) {
			text, jsonl := replayOutput(t, f, false)
			checkGolden(t, "events-"+name+".txt", text)
			checkGolden(t, "events-"+name+".jsonl", jsonl)
			for _, h := range append(kaddr.FindText(text, "text"), kaddr.FindText(jsonl, "json")...) {
				t.Errorf("kernel address in the output: %v", h)
			}
			for i, l := range bytes.Split(jsonl, []byte("\n")) {
				if bytes.Contains(l, []byte(`"sock":"sk`)) && !bytes.Contains(l, []byte(`"sock_ino":`)) {
					t.Errorf("line %d names a socket without its inode: %s", i+1, l)
				}
			}
			textA, jsonlA := replayOutput(t, f, true)
			if !bytes.Equal(textA, text) {
				t.Errorf("text lines with kernel addresses differ:\n%s", firstDiff(textA, text))
			}
			stripped := addrField.ReplaceAll(jsonlA, nil)
			stripped = bytes.ReplaceAll(stripped, []byte(",}"), []byte("}"))
			if !bytes.Equal(stripped, jsonl) {
				t.Errorf("JSON lines with kernel addresses, less them, differ:\n%s", firstDiff(stripped, jsonl))
			}
			if n := len(kaddr.FindText(jsonlA, "json")); n == 0 {
				t.Error("no socket address in the JSON lines with kernel addresses")
			}
		})
	}
}

// checkGolden compares got with testdata/golden/name; -update rewrites it.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join(goldenDir, name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./tracer/event -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (rerun with -update if intended):\n%s", path, firstDiff(got, want))
	}
}

// firstDiff shows the first line that differs.
func firstDiff(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return "line " + strconv.Itoa(i+1) + ":\n got " + gl + "\nwant " + wl
		}
	}
	return "(no line differs)"
}
