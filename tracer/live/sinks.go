package live

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/promise"
	"github.com/ringtrace/ringtrace/tracer/report"
	"github.com/ringtrace/ringtrace/tracer/session"
)

// TextLines is a sink that writes each event as a decoded text line
// (event.Formatter.AppendText) to w; Flush flushes w.
func TextLines(w *bufio.Writer, f *event.Formatter) session.Sink {
	return &lineSink{w: w, format: f.AppendText}
}

// JSONLines is a sink that writes each event as one JSON object per line
// (event.Formatter.AppendJSON) to w; Flush flushes w.
func JSONLines(w *bufio.Writer, f *event.Formatter) session.Sink {
	return &lineSink{w: w, format: f.AppendJSON}
}

type lineSink struct {
	w      *bufio.Writer
	format func([]byte, *event.Event) []byte
	buf    []byte
}

func (s *lineSink) Event(e *event.Event) error {
	s.buf = s.format(s.buf[:0], e)
	s.buf = append(s.buf, '\n')
	_, err := s.w.Write(s.buf)
	return err
}

func (s *lineSink) Flush() error { return s.w.Flush() }

// Tee is a sink that feeds every event to each of its sinks, in order.
type Tee []session.Sink

// Event feeds e to every sink; the first error stops it.
func (t Tee) Event(e *event.Event) error {
	for _, s := range t {
		if err := s.Event(e); err != nil {
			return err
		}
	}
	return nil
}

// Flush flushes every sink; the first error stops it.
func (t Tee) Flush() error {
	for _, s := range t {
		if err := s.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// Builder is a sink that rebuilds the report live.
func Builder(b *report.Builder) session.Sink { return builderSink{b} }

type builderSink struct{ b *report.Builder }

func (s builderSink) Event(e *event.Event) error { s.b.Add(e); return nil }
func (builderSink) Flush() error                 { return nil }

// summaryJSON is the last line of `trace --json`.
type summaryJSON struct {
	Event      string            `json:"event"`
	Lost       uint64            `json:"lost"`
	LostByKind map[string]uint64 `json:"lost_by_event,omitempty"`
	Events     uint64            `json:"events"`
	PerKind    map[string]uint64 `json:"per_event"`
	Duplicates uint64            `json:"duplicates"`
	Late       uint64            `json:"late"`
	Decode     uint64            `json:"decode_errors"`
	Overflow   map[string]uint64 `json:"overflow,omitempty"`
	Missed     map[string]uint64 `json:"missed_runs,omitempty"`
	Promises   []promise.Tally   `json:"promises,omitempty"`
}

func kindCounts(m map[event.Kind]uint64) map[string]uint64 {
	out := map[string]uint64{}
	for k, v := range m {
		out[k.String()] = v
	}
	return out
}

// WriteJSONSummary writes the session's counters and the promise tallies
// as one JSON line: the summary after JSON lines.
func WriteJSONSummary(w io.Writer, st session.Stats, promises []promise.Tally) {
	b, _ := json.Marshal(summaryJSON{Event: "summary", Lost: st.Lost, LostByKind: kindCounts(st.LostByKind),
		Events: st.Events, PerKind: kindCounts(st.PerKind), Duplicates: st.Duplicates, Late: st.Late,
		Decode: st.Decode, Overflow: st.Overflow, Missed: st.Missed, Promises: promises})
	fmt.Fprintf(w, "%s\n", b)
}

// WriteTextSummary writes the session's counters and the promises broken
// or reconstructed as "--- " lines: the summary after text lines or a
// text report.
func WriteTextSummary(w io.Writer, st session.Stats, promises []promise.Tally) {
	fmt.Fprintf(w, "--- %d events", st.Events)
	var ks []string
	for k, v := range st.PerKind {
		ks = append(ks, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(ks)
	if len(ks) > 0 {
		fmt.Fprintf(w, " (%s)", strings.Join(ks, " "))
	}
	fmt.Fprintf(w, ", lost %d", st.Lost)
	if st.Lost > 0 {
		fmt.Fprintf(w, " %v", kindCounts(st.LostByKind))
	}
	if len(st.Overflow) > 0 {
		fmt.Fprintf(w, ", tracking maps full: %v", st.Overflow)
	}
	if len(st.Missed) > 0 {
		fmt.Fprintf(w, ", hook runs the kernel skipped: %s", report.MissedString(st.Missed))
	}
	fmt.Fprintln(w)
	for _, t := range promises {
		switch {
		case t.Broken():
			fmt.Fprintf(w, "--- BROKEN PROMISE %s\n", t)
		case t.Reconstructed > 0:
			fmt.Fprintf(w, "--- reconstructed %s\n", t)
		}
	}
}
