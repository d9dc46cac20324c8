package live

import (
	"bufio"
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/session"
)

type countSink struct {
	events, flushes int
	err             error
}

func (c *countSink) Event(*event.Event) error { c.events++; return c.err }
func (c *countSink) Flush() error             { c.flushes++; return c.err }

// TestTee: every sink gets every event in order; the first error stops it.
func TestTee(t *testing.T) {
	a, b := &countSink{}, &countSink{}
	tee := Tee{a, b}
	tee.Event(&event.Event{})
	tee.Flush()
	if a.events != 1 || b.events != 1 || a.flushes != 1 || b.flushes != 1 {
		t.Fatalf("a %+v, b %+v", a, b)
	}
	fail := errors.New("full")
	a.err = fail
	if err := tee.Event(&event.Event{}); !errors.Is(err, fail) || b.events != 1 {
		t.Fatalf("error %v, b got %d events", err, b.events)
	}
}

// TestLines: the line sinks write the formatter's text and JSON, one line
// per event, and reach the writer on Flush.
func TestLines(t *testing.T) {
	e := &event.Event{Kind: event.Sleep, TS: 2e9, CPU: 1, PID: 7, TID: 8, Comm: "sender"}
	for _, tc := range []struct {
		name string
		sink func(*bufio.Writer, *event.Formatter) session.Sink
		want func(*event.Formatter) []byte
	}{
		{"text", TextLines, func(f *event.Formatter) []byte { return f.AppendText(nil, e) }},
		{"json", JSONLines, func(f *event.Formatter) []byte { return f.AppendJSON(nil, e) }},
	} {
		var out bytes.Buffer
		s := tc.sink(bufio.NewWriter(&out), event.NewFormatter(1e9, event.Names{}))
		s.Event(e)
		s.Event(e)
		if out.Len() != 0 {
			t.Errorf("%s: written before Flush", tc.name)
		}
		s.Flush()
		line := append(tc.want(event.NewFormatter(1e9, event.Names{})), '\n')
		if want := append(append([]byte{}, line...), line...); !bytes.Equal(out.Bytes(), want) {
			t.Errorf("%s: %q, want %q", tc.name, out.Bytes(), want)
		}
	}
}

// TestStuckTick: a tenth of the threshold, within 10 ms .. 100 ms.
func TestStuckTick(t *testing.T) {
	for after, want := range map[time.Duration]time.Duration{
		time.Second: 100 * time.Millisecond, 500 * time.Millisecond: 50 * time.Millisecond,
		10 * time.Millisecond: 10 * time.Millisecond, time.Minute: 100 * time.Millisecond,
	} {
		if got := stuckTick(after); got != want {
			t.Errorf("stuckTick(%v) = %v, want %v", after, got, want)
		}
	}
}
