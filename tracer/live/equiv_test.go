package live_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringtrace/ringtrace/scenarios/lab"
	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/kernel/probe"
	"github.com/ringtrace/ringtrace/tracer/live"
	"github.com/ringtrace/ringtrace/tracer/plan"
	"github.com/ringtrace/ringtrace/tracer/record"
	"github.com/ringtrace/ringtrace/tracer/report"
	"github.com/ringtrace/ringtrace/tracer/session"
	"github.com/ringtrace/ringtrace/tracer/txring"
)

// jsonLinesOf is what `ringtrace report` sees in a recording, as the JSON
// lines `trace --json` prints: its events in timestamp order, normalised
// like a live trace, named from the recording.
func jsonLinesOf(t *testing.T, path string) []byte {
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
	f := event.NewFormatter(r.Header.Monotonic, report.NamesFromRecording(r))
	norm := event.NewNormalizer()
	norm.NoFindAtReturn = r.Header.Plan.LateCompletions()
	var out []byte
	for i := range evs {
		norm.Process(&evs[i], func(e *event.Event) error {
			out = append(f.AppendJSON(out, e), '\n')
			return nil
		})
	}
	return out
}

// reportJSON is `ringtrace report --json`'s output for rep.
func reportJSON(t *testing.T, rep *report.Report) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestTraceRunAndReportAgree: one live session's events come out the same
// through every path: the JSON lines `ringtrace trace --json` prints
// (live.JSONLines), those of the recording a `ringtrace run` trace writes
// (the same session's raw records, replayed), and the report a run builds
// live is the one `ringtrace report --json` rebuilds from that recording.
func TestTraceRunAndReportAgree(t *testing.T) {
	if testing.Short() || os.Geteuid() != 0 {
		t.Skip("needs root (BPF, network namespaces): run `sudo make test`")
	}
	facts, spec, err := probe.Kernel(probe.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := plan.Build(facts, plan.Auto)
	if err != nil {
		t.Fatal(err)
	}
	l, err := lab.New(lab.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	tr, err := live.Open(live.Options{Session: session.Options{Facts: facts, BTF: spec, Plan: p, Kinds: event.Kinds(),
		Filter: session.Filter{PID: uint32(os.Getpid())}}})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	nm := live.Names(facts, false)
	began, _ := tr.Began()
	var lines, log bytes.Buffer
	out := bufio.NewWriter(&lines)
	path := filepath.Join(t.TempDir(), "equiv.rtrec")
	h := tr.Header()
	h.Tool = "ringtrace (live equivalence test)"
	rec, err := record.Create(path, h, record.Options{Symbol: nm.Symbol})
	if err != nil {
		t.Fatal(err)
	}
	// trace --json's output sink, run's report builder and recording: one
	// session feeds them all.
	err = tr.Start(context.Background(), live.Sinks{Names: nm, Log: &log,
		Out: []session.Sink{live.JSONLines(out, event.NewFormatter(began, nm))}, Report: report.NewBuilder(nm), Record: rec})
	if err != nil {
		t.Fatal(err)
	}
	<-tr.WalkerReady() // as run does: the sender starts once the iterator is loaded
	_, sendErr := txring.Run(context.Background(), txring.Options{
		Socket: txring.SocketConfig{Ifname: l.SenderIf, NetNS: l.SenderNS},
		Ring:   txring.Geometry{Version: txring.V2, Frames: 16, FrameSize: 2048, BlockSize: 4096},
		Frame:  txring.FrameSpec{Dst: txring.BroadcastMAC, EtherType: txring.EtherTypeLocalExp1, Size: 600},
		Count:  32, DontWait: true, Loop: true, Drain: 2 * time.Second})
	time.Sleep(150 * time.Millisecond)
	res, err := tr.Stop()
	if sendErr != nil {
		t.Fatal(sendErr)
	}
	if err != nil {
		t.Fatal(err)
	}
	if res.Stats.Lost != 0 {
		t.Fatalf("lost %d events", res.Stats.Lost)
	}
	if n := strings.Count(lines.String(), `"event":"frame_state"`); n < 32 {
		t.Fatalf("%d frame_state lines for 32 frames; log:\n%s", n, log.String())
	}

	if want := jsonLinesOf(t, path); !bytes.Equal(lines.Bytes(), want) {
		t.Errorf("trace --json printed %d bytes, the recording's events are %d bytes as JSON lines:\n%s",
			lines.Len(), len(want), firstDiff(lines.String(), string(want)))
	}
	r, err := record.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	replayed, err := report.ReplayWith(r, report.ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := reportJSON(t, res.Report), reportJSON(t, replayed); !bytes.Equal(got, want) {
		t.Errorf("the live report and report --json of its recording differ:\n%s", firstDiff(string(got), string(want)))
	}
}

// firstDiff shows the first line where a and b differ.
func firstDiff(a, b string) string {
	la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(la) && i < len(lb); i++ {
		if la[i] != lb[i] {
			return fmt.Sprintf("line %d:\n  got:  %s\n  want: %s", i+1, la[i], lb[i])
		}
	}
	return fmt.Sprintf("one is a prefix of the other (%d vs %d lines)", len(la), len(lb))
}
