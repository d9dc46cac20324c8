package report_test

import (
	"bytes"
	"fmt"
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

// TestClosedSocketsFold: under a Closed limit, sockets that close after the
// first few fold into one "closed" row. However many come and go, the rows
// stay bounded, and the totals, the per-socket counts summed over rows and
// the diagnoses (by kind) are those of the report that keeps every row.
func TestClosedSocketsFold(t *testing.T) {
	const socks, open = 500, 2
	build := func(lim report.Limits) *report.Report {
		b := report.NewBuilder(event.Names{})
		b.SetLimits(lim)
		ts := uint64(1e9)
		for i := 0; i < socks+open; i++ {
			sk, ino := 0xffff888000001000+uint64(i%7)*0x800, uint32(100+i) // addresses reused
			ev := func(e event.Event) {
				ts += 1000
				e.TS, e.Sk, e.SockIno, e.PID, e.TID, e.Comm = ts, sk, ino, uint32(1000+i%3), uint32(1000+i%3), "sender"
				if e.SndBuf == 0 {
					e.SndBuf, e.Wmem, e.Pending = 9216, int32(ts%9000), int32(ts%7)
				}
				b.Add(&e)
			}
			for c := 0; c < 3; c++ {
				ev(event.Event{Kind: event.SendmsgEnter, Scan: event.Scan{Frames: uint32(4 << (i % 3))}})
				if i%5 == 0 {
					ev(event.Event{Kind: event.Sleep, Aux: uint8(event.WaitSndbuf)})
					ev(event.Event{Kind: event.Wake, A: [3]uint64{uint64(1000 + i%3), uint64(event.WaitSndbuf)}, Aux: uint8(event.WaitSndbuf)})
				}
				if i%11 == 0 {
					ev(event.Event{Kind: event.Drop, Frame: uint32(c)})
					ev(event.Event{Kind: event.SendmsgReturn, A: [3]uint64{neg(unix.ENOBUFS)}})
					continue
				}
				ev(event.Event{Kind: event.SendmsgReturn, N: 2, A: [3]uint64{2 * 1400}})
			}
			a := report.FrameAgg{Sent: 6, CompletedExact: 5, CompletedBounded: 1}
			for f := 0; f < 5; f++ {
				a.InFlight.Add(uint64(1000 * (i + f)))
			}
			b.AddFrameAgg(sk, ino, a)
			if i < socks {
				ev(event.Event{Kind: event.SockGone})
			}
		}
		return b.Finish()
	}
	every := report.SummaryLimits
	every.Closed = 0
	all := build(every)
	folded := build(report.SummaryLimits)
	if len(all.Sockets) != socks+open || all.NSockets() != socks+open {
		t.Fatalf("unfolded: %d rows, %d sockets; want %d", len(all.Sockets), all.NSockets(), socks+open)
	}
	keep := report.SummaryLimits.Closed
	if len(folded.Sockets) != keep+open+1 || folded.NSockets() != socks+open {
		t.Errorf("folded: %d rows for %d sockets; want %d rows (%d closed kept, %d open, the closed row)",
			len(folded.Sockets), folded.NSockets(), keep+open+1, keep, open)
	}
	c := folded.SocketByLabel("closed")
	if c == nil || c.Folded != socks-keep {
		t.Fatalf("closed row %+v: want %d sockets folded", c, socks-keep)
	}
	if !reflect.DeepEqual(all.Totals, folded.Totals) {
		t.Errorf("totals\n all    %+v\n folded %+v", all.Totals, folded.Totals)
	}
	sum := func(r *report.Report) (n [4]int, h report.Histogram) {
		for _, s := range r.Sockets {
			n[0] += s.NCalls
			n[1] += s.FrameUses
			n[2] += s.NDrops
			n[3] = max(n[3], int(s.MaxWmem))
			h.Merge(&s.InFlight)
		}
		return n, h
	}
	if na, ha := sum(all); true {
		if nf, hf := sum(folded); na != nf || ha != hf {
			t.Errorf("per-socket counts: all %v %+v, folded %v %+v", na, ha, nf, hf)
		}
	}
	kinds := func(r *report.Report) map[string]int {
		m := map[string]int{}
		for _, d := range r.Diagnoses {
			m[d.ID]++
		}
		return m
	}
	ka, kf := kinds(all), kinds(folded)
	for id := range ka {
		if kf[id] == 0 {
			t.Errorf("diagnosis %s lost by folding (all: %v, folded: %v)", id, ka, kf)
		}
	}
	for _, id := range []string{report.DiagSndbufBlocked, report.DiagQdiscDrop} {
		var d *report.Diagnosis
		for i := range folded.Diagnoses {
			if x := &folded.Diagnoses[i]; x.ID == id && x.Socket == "closed" {
				d = x
			}
		}
		if d == nil {
			t.Errorf("no %s diagnosis for the closed row", id)
		}
	}
	var buf bytes.Buffer
	if err := folded.WriteText(&buf, report.TextOptions{}); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("closed: %d more sockets that closed during the trace", socks-keep)
	if out := buf.String(); !strings.Contains(out, want) || !strings.Contains(out, fmt.Sprintf("%d sockets", socks+open)) {
		t.Errorf("text report lacks %q or the socket count:\n%s", want, out)
	}
}

// TestInterruptedSends: blocking calls that return bytes with frames left
// SEND_REQUEST and a signal pending are named, by signal; a MSG_DONTWAIT
// call that stops at the sndbuf limit, or a blocking call with no signal
// pending, is not.
func TestInterruptedSends(t *testing.T) {
	b := report.NewBuilder(event.Names{})
	ts := uint64(1e9)
	call := func(flags uint64, ret uint64, left uint32, sig unix.Signal) {
		ts += 1000
		b.Add(&event.Event{Kind: event.SendmsgEnter, TS: ts, Sk: 0xffff1, SockIno: 1, TID: 7, A: [3]uint64{flags}, Scan: event.Scan{Frames: 64}})
		ts += 75_000
		aux := uint8(sig) << 1
		if flags&unix.MSG_DONTWAIT != 0 {
			aux |= 1
		}
		b.Add(&event.Event{Kind: event.SendmsgReturn, TS: ts, Sk: 0xffff1, SockIno: 1, TID: 7, A: [3]uint64{ret, 6, ts - 75_000},
			Aux: aux, Scan: event.Scan{Frames: 64, Head: 6, RunSendRequest: left}, SndBuf: -1, Wmem: -1, Pending: -1})
	}
	call(0, 8400, 58, unix.SIGURG)
	call(0, 8400, 58, unix.SIGURG)
	call(0, 1400, 1, unix.SIGUSR1)
	call(unix.MSG_DONTWAIT, 8400, 58, unix.SIGURG) // stopped at sndbuf: partial-send's
	call(0, 89600, 0, 0)                           // a whole ring
	call(0, 8400, 58, 0)                           // short, no signal: not this
	rep := b.Finish()
	var d *report.Diagnosis
	for i := range rep.Diagnoses {
		if rep.Diagnoses[i].ID == report.DiagInterrupted {
			d = &rep.Diagnoses[i]
		}
	}
	if d == nil {
		t.Fatalf("no %s diagnosis: %+v", report.DiagInterrupted, rep.Diagnoses)
	}
	if want := "3 blocking sendto calls returned early, interrupted by a signal (SIGURG 2, SIGUSR1 1)"; d.Title != want || d.Severity != "problem" {
		t.Errorf("title %q (%s), want %q (problem)", d.Title, d.Severity, want)
	}
	if ev := strings.Join(d.Evidence, "\n"); !strings.Contains(ev, "returned 8400 bytes after 0.075 ms with 58 frames left SEND_REQUEST from head 6, SIGURG pending") ||
		!strings.Contains(ev, "GODEBUG=asyncpreemptoff=1") {
		t.Errorf("evidence:\n%s", ev)
	}
}
