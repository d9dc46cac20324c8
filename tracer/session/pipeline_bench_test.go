package session_test

import (
	"bufio"
	"bytes"
	"cmp"
	"io"
	"maps"
	"slices"
	"testing"

	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/live"
	"github.com/ringtrace/ringtrace/tracer/session"
)

// BenchmarkPipeline measures Run's work per event, reader and loop on one
// core: decode into batches, reorder push and release, normalise, count,
// and the output line `ringtrace trace` writes (tracer/live's JSON and
// text sinks) to a bufio.Writer on io.Discard.
func BenchmarkPipeline(b *testing.B) {
	sinks := []struct {
		name string
		new  func(w *bufio.Writer, f *event.Formatter) session.Sink
	}{
		{"json", live.JSONLines},
		{"text", live.TextLines},
	}
	for _, jitter := range []int{0, 8} {
		rp := session.LoadReplay(b, jitter)
		for _, sk := range sinks {
			name := sk.name
			if jitter > 0 {
				name += "/jitter"
			}
			b.Run(name, func(b *testing.B) {
				sink := sk.new(bufio.NewWriterSize(io.Discard, 256<<10), event.NewFormatter(0, rp.Names()))
				r := session.NewPipelineRunner(rp, sink)
				r.Run(b, 200_000) // warm up: maps, slots, batches, buffers at their working size
				r.ResetStats()
				b.ReportAllocs()
				b.ResetTimer()
				r.Run(b, b.N)
				b.StopTimer()
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/event")
				b.ReportMetric(float64(r.Stats().Events)/float64(b.N), "out/event")
			})
		}
	}
}

// TestPipelineMatchesReplay: recorded records, interleaved as several
// CPUs would deliver them, come out of the batcher and pipeline as the
// JSON lines of the same records sorted (stably) and normalised, and the
// published counts add up.
func TestPipelineMatchesReplay(t *testing.T) {
	rp := session.LoadReplay(t, 8)
	n := session.HeldEvents + 3*rp.Len() + 100 // releases before the final flush
	var got bytes.Buffer
	sink := live.JSONLines(bufio.NewWriter(&got), event.NewFormatter(0, rp.Names()))
	run := session.NewPipelineRunner(rp, sink)
	run.Run(t, n)
	run.Finish(t)

	same := session.LoadReplay(t, 8)
	var evs []event.Event
	for i := 0; i < n; i++ {
		raw, _ := same.Next()
		e, err := event.Decode(raw)
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, e)
	}
	slices.SortStableFunc(evs, func(a, b event.Event) int { return cmp.Compare(a.TS, b.TS) })
	var want []byte
	f := event.NewFormatter(0, same.Names())
	norm := event.NewNormalizer()
	perKind := map[event.Kind]uint64{}
	for i := range evs {
		norm.Process(&evs[i], func(e *event.Event) error {
			perKind[e.Kind]++
			want = append(f.AppendJSON(want, e), '\n')
			return nil
		})
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("pipeline output (%d bytes) differs from the sorted replay (%d bytes)", got.Len(), len(want))
	}
	st := run.Stats()
	var total uint64
	for _, c := range perKind {
		total += c
	}
	if st.Events != total || !maps.Equal(st.PerKind, perKind) || st.Duplicates != norm.Duplicates || st.Late != 0 || st.Decode != 0 {
		t.Errorf("stats %+v, want %d events %v, %d duplicates", st, total, perKind, norm.Duplicates)
	}
}
