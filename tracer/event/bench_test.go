package event_test

import (
	"errors"
	"io"
	"path/filepath"
	"testing"

	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/record"
	"github.com/ringtrace/ringtrace/tracer/report"
)

// benchEvents is every recorded event, normalised, with the names of the
// recordings, and their raw records.
func benchEvents(b *testing.B) (evs []event.Event, raws [][]byte, names event.Names) {
	b.Helper()
	files, _ := filepath.Glob(filepath.Join(recordingsDir, "*.rtrec"))
	if len(files) == 0 {
		b.Fatal("no recordings")
	}
	for _, f := range files {
		r, err := record.Open(f)
		if err != nil {
			b.Fatal(err)
		}
		n := event.NewNormalizer()
		for {
			raw, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			raws = append(raws, append([]byte(nil), raw...))
			e, err := event.Decode(raw)
			if err != nil {
				b.Fatal(err)
			}
			n.Process(&e, func(e *event.Event) error { evs = append(evs, *e); return nil })
		}
		names = report.NamesFromRecording(r)
		r.Close()
	}
	return evs, raws, names
}

func BenchmarkDecoder(b *testing.B) {
	_, raws, _ := benchEvents(b)
	var d event.Decoder
	var e event.Event
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := d.Decode(raws[i%len(raws)], &e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendJSON(b *testing.B) {
	evs, _, names := benchEvents(b)
	f := event.NewFormatter(0, names)
	var buf []byte
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buf = f.AppendJSON(buf[:0], &evs[i%len(evs)])
	}
}

func BenchmarkAppendText(b *testing.B) {
	evs, _, names := benchEvents(b)
	f := event.NewFormatter(0, names)
	var buf []byte
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buf = f.AppendText(buf[:0], &evs[i%len(evs)])
	}
}
