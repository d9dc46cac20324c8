package report_test

import (
	"bytes"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/record"
	"github.com/ringtrace/ringtrace/tracer/report"
)

// TestSummaryLimitsKeepDiagnoses: cutting the lists changes no total,
// count or diagnosis of any recorded trace.
func TestSummaryLimitsKeepDiagnoses(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(recordings, "*.rtrec"))
	tiny := report.Limits{Calls: 1, Samples: 4, Drops: 1, Summary: true}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".rtrec")
		t.Run(name, func(t *testing.T) {
			full := replay(t, name)
			r, err := record.Open(f)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			cut, err := report.ReplayLimits(r, tiny)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(full.Totals, cut.Totals) {
				t.Errorf("totals\n full %+v\n cut  %+v", full.Totals, cut.Totals)
			}
			if !reflect.DeepEqual(full.Diagnoses, cut.Diagnoses) {
				t.Errorf("diagnoses\n full %+v\n cut  %+v", full.Diagnoses, cut.Diagnoses)
			}
			for i, s := range full.Sockets {
				c := cut.Sockets[i]
				if s.NCalls != c.NCalls || s.FrameUses != c.FrameUses || s.NDrops != c.NDrops || s.MaxWmem != c.MaxWmem ||
					s.MaxPending != c.MaxPending || s.InFlight != c.InFlight {
					t.Errorf("%s counts differ: full %d calls %d uses %d drops %d/%d, cut %d %d %d %d/%d", s.Label,
						s.NCalls, s.FrameUses, s.NDrops, s.MaxWmem, s.MaxPending, c.NCalls, c.FrameUses, c.NDrops, c.MaxWmem, c.MaxPending)
				}
				if len(c.Calls) > 1 || len(c.Drops) > 1 || len(c.Series) >= 8 {
					t.Errorf("%s kept %d calls, %d drops, %d samples", s.Label, len(c.Calls), len(c.Drops), len(c.Series))
				}
			}
		})
	}
}

// TestSummaryLimitsBounded: a long trace under SummaryLimits keeps bounded
// lists, whatever its length, and still counts everything.
func TestSummaryLimitsBounded(t *testing.T) {
	b := report.NewBuilder(event.Names{})
	b.SetLimits(report.SummaryLimits)
	const calls = 50_000
	ts := uint64(1e9)
	ev := func(e event.Event) {
		ts += 1000
		e.TS, e.Sk, e.TID, e.SockIno = ts, 0xffff1, 7, 1
		if e.SndBuf == 0 {
			e.SndBuf, e.Wmem, e.Pending = 9216, int32(ts%9000), int32(ts%7)
		}
		b.Add(&e)
	}
	for i := 0; i < calls; i++ {
		ev(event.Event{Kind: event.SendmsgEnter, Scan: event.Scan{Frames: 4}})
		ev(event.Event{Kind: event.Sleep, Aux: uint8(event.WaitSndbuf)})
		ev(event.Event{Kind: event.Wake, A: [3]uint64{7, uint64(event.WaitSndbuf)}, Aux: uint8(event.WaitSndbuf)})
		ev(event.Event{Kind: event.Drop, Aux: 0, Frame: uint32(i % 4)})
		ev(event.Event{Kind: event.SendmsgReturn, A: [3]uint64{neg(unix.ENOBUFS)}})
	}
	b.AddFrameAgg(0xffff1, 1, report.FrameAgg{Sent: 1000, CompletedExact: 990, CompletedBounded: 5})
	b.AddSending(0xffff1, 1, 3, ts-5000)
	rep := b.Finish()
	s := rep.Sockets[0]
	lim := report.SummaryLimits
	if len(s.Calls) > lim.Calls || len(s.Drops) > lim.Drops || len(s.Series) >= 2*lim.Samples {
		t.Errorf("kept %d calls, %d drops, %d samples: over %+v", len(s.Calls), len(s.Drops), len(s.Series), lim)
	}
	if s.NCalls != calls || s.NDrops != calls || rep.Totals.ENOBUFS != calls || rep.Totals.Completed != 995 || rep.Totals.FramesSent != 1000 {
		t.Errorf("counts: %d calls, %d drops, totals %+v", s.NCalls, s.NDrops, rep.Totals)
	}
	for _, id := range []string{report.DiagSndbufBlocked, report.DiagQdiscDrop, report.DiagInFlightAtEnd} {
		if diag(rep, id) == nil {
			t.Errorf("no %s diagnosis", id)
		}
	}
	if d := diag(rep, report.DiagSndbufBlocked); d != nil && !strings.Contains(d.Evidence[0], "50000 waits") {
		t.Errorf("sndbuf evidence %q: want all 50000 waits counted", d.Evidence[0])
	}
	var buf bytes.Buffer
	if err := rep.WriteText(&buf, report.TextOptions{}); err != nil || !strings.Contains(buf.String(), "lists kept to the first") {
		t.Errorf("text report (%v) does not say lists were cut:\n%s", err, buf.String())
	}
}
