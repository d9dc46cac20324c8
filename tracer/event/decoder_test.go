package event_test

import (
	"errors"
	"io"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/record"
)

// recordedRecords returns the raw records of every recording, by file, in
// file order.
func recordedRecords(tb testing.TB) map[string][][]byte {
	tb.Helper()
	files, _ := filepath.Glob(filepath.Join(recordingsDir, "*.rtrec"))
	if len(files) == 0 {
		tb.Fatal("no recordings")
	}
	recs := map[string][][]byte{}
	for _, f := range files {
		r, err := record.Open(f)
		if err != nil {
			tb.Fatal(err)
		}
		for {
			raw, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				tb.Fatalf("%s: %v", f, err)
			}
			recs[f] = append(recs[f], append([]byte(nil), raw...))
		}
		r.Close()
	}
	return recs
}

// TestDecoderMatchesDecode: a Decoder decodes every recorded record, aligned
// or not, exactly like Decode.
func TestDecoderMatchesDecode(t *testing.T) {
	var d event.Decoder
	unaligned := make([]byte, event.RawSize+1)[1:]
	n := 0
	for f, raws := range recordedRecords(t) {
		for _, raw := range raws {
			want, err := event.Decode(raw)
			if err != nil {
				t.Fatal(err)
			}
			var got event.Event
			if err := d.Decode(raw, &got); err != nil || got != want {
				t.Fatalf("%s: Decoder gives %+v (%v), want %+v", f, got, err, want)
			}
			copy(unaligned, raw)
			if err := d.Decode(unaligned, &got); err != nil || got != want {
				t.Fatalf("%s, unaligned: Decoder gives %+v (%v), want %+v", f, got, err, want)
			}
			n++
		}
	}
	if n == 0 {
		t.Fatal("no records")
	}
}

// TestDecoderRejects: the checks of Decode, and the event is left alone.
func TestDecoderRejects(t *testing.T) {
	bad := map[string][]byte{
		"short":        make([]byte, event.RawSize-1),
		"kind 0":       make([]byte, event.RawSize),
		"unknown kind": event.Encode(event.Event{Kind: event.Kind(200)}),
		"precision":    event.Encode(event.Event{Kind: event.FrameState, Prec: event.Bounded + 1}),
		"short kind 0": make([]byte, event.ShortSize),
		"short precision": func() []byte {
			b, _ := event.EncodeShort(event.Event{Kind: event.FrameState, Prec: event.Bounded + 1})
			return b
		}(),
	}
	var d event.Decoder
	for name, b := range bad {
		e := event.Event{Comm: "untouched"}
		err := d.Decode(b, &e)
		_, want := event.Decode(b)
		if err == nil || want == nil || err.Error() != want.Error() {
			t.Errorf("%s: Decoder error %v, Decode error %v", name, err, want)
		}
		if e != (event.Event{Comm: "untouched"}) {
			t.Errorf("%s: event changed to %+v", name, e)
		}
	}
}

// TestDecoderInterning: names stay right when the string table fills and
// starts over, and when consecutive records alternate between names.
func TestDecoderInterning(t *testing.T) {
	var d event.Decoder
	var e event.Event
	for i := 0; i < 10000; i++ {
		comm := "task" + strconv.Itoa(i%5000)
		dev := []string{"eth0", "", "veth1"}[i%3]
		if err := d.Decode(event.Encode(event.Event{Kind: event.Sleep, Comm: comm, Dev: dev}), &e); err != nil {
			t.Fatal(err)
		}
		if e.Comm != comm || e.Dev != dev {
			t.Fatalf("record %d: comm %q dev %q, want %q %q", i, e.Comm, e.Dev, comm, dev)
		}
	}
}
