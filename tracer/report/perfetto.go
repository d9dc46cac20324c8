package report

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/ringtrace/ringtrace/tracer/event"
)

// segment is one stretch of time a frame spent in one state, rebuilt from
// its rounds' transitions. The Perfetto and HTML renderers draw these.
type segment struct {
	Frame                uint32
	State                event.State
	Start, End           uint64 // ns; a bounded end is its upper bound
	EndLo                uint64 // bounded end: the earliest it can have been
	StartCause, EndCause event.Cause
	StartExact, EndExact bool
	NextState            event.State // the state the segment ended in (if it ended)
	RolledBack           bool        // SEND_REQUEST again after a synchronous drop
	Dropped              bool        // AVAILABLE because the qdisc dropped it (rolled back next)
	Open                 bool        // still in this state when the trace ended
	Round                *Round
}

// Name is the segment's display name: the state, qualified.
func (g *segment) Name() string {
	switch {
	case g.Dropped:
		return "AVAILABLE (dropped)"
	case g.State == event.SendRequest && g.RolledBack && g.Open:
		return "SEND_REQUEST (rolled back, not sent by end of trace)"
	case g.State == event.SendRequest && g.RolledBack:
		return "SEND_REQUEST (rolled back)"
	case g.State == event.SendRequest && g.Open:
		return "SEND_REQUEST (not sent by end of trace)"
	case g.State == event.Sending && g.Open:
		return "SENDING (not completed by end of trace)"
	}
	return g.State.String()
}

// Window reports whether the segment's end is only known as an interval
// that starts after the segment does, and names it.
func (g *segment) Window() (string, bool) {
	if g.Open || g.EndExact || g.EndLo <= g.Start {
		return "", false
	}
	if g.NextState == event.Available && g.EndCause != event.CauseDrop {
		return "completion window (bounded)", true
	}
	return g.NextState.String() + " window (bounded)", true
}

// frameSegments rebuilds the state segments of a socket's frames, ordered
// by frame and time; a frame's last state lasts until its next round
// starts or the trace ends.
func frameSegments(s *Socket, end uint64) []segment {
	var out []segment
	for i, rd := range s.Rounds {
		next, open := end, true
		if i+1 < len(s.Rounds) && s.Rounds[i+1].Frame == rd.Frame {
			next, open = s.Rounds[i+1].firstTS(), false
		}
		out = roundSegments(out, rd, next, open)
	}
	return out
}

func roundSegments(out []segment, rd *Round, next uint64, open bool) []segment {
	trs := roundTransitions(rd)
	for i, t := range trs {
		if t.To == event.Unknown {
			continue
		}
		g := segment{Frame: rd.Frame, State: t.To, Start: t.TS, StartCause: t.Cause, StartExact: t.Exact(), EndExact: true, Round: rd,
			RolledBack: t.To == event.SendRequest && t.Cause == event.CauseRollback,
			Dropped:    t.To == event.Available && t.Cause == event.CauseDrop}
		if i+1 < len(trs) {
			n := trs[i+1]
			g.End, g.EndCause, g.EndExact, g.NextState = n.TS, n.Cause, n.Exact(), n.To
			if !n.Exact() {
				g.EndLo = n.TSLo
			}
		} else {
			g.End, g.Open = next, open
		}
		g.End = max(g.End, g.Start)
		g.EndLo = min(max(g.EndLo, g.Start), g.End)
		out = append(out, g)
	}
	return out
}

// roundTransitions is a round's transitions, completed from its summary
// fields when the builder stopped recording them (long retry loops).
func roundTransitions(rd *Round) []Transition {
	trs := rd.Transitions
	if len(trs) == 0 {
		return nil
	}
	last := trs[len(trs)-1]
	trs = trs[:len(trs):len(trs)]
	if rd.Sending > last.TS && (rd.Done || rd.State == event.Sending) {
		trs = append(trs, Transition{TS: rd.Sending, From: last.To, To: event.Sending, Prec: event.Exact})
	}
	if rd.Done && last.To != event.Available && rd.Available >= trs[len(trs)-1].TS {
		p := event.Bounded
		if rd.ExactDone {
			p = event.Exact
		}
		trs = append(trs, Transition{TS: rd.Available, From: event.Sending, To: event.Available, Prec: p})
	}
	return trs
}

// socketTitle names a socket for track and row headers.
func socketTitle(s *Socket) string {
	t := s.Label
	if s.Comm != "" {
		t += " " + s.Comm
	}
	if s.PID != 0 {
		t += fmt.Sprintf(" pid %d", s.PID)
	}
	if len(s.Devs) > 0 {
		t += " (" + strings.Join(s.Devs, ",") + ")"
	}
	return t
}

// Synthetic Perfetto process and thread ids lie above the kernel's largest
// pid (2^22), so they never collide with the senders' real ones, and apart
// from each other (a process's main thread has its pid as tid).
const (
	synthPID = 1 << 23
	synthTID = 1 << 24
)

// traceEvent is one Chrome Trace Event.
type traceEvent struct {
	Name  string         `json:"name"`
	Cat   string         `json:"cat,omitempty"`
	Ph    string         `json:"ph"`
	TS    float64        `json:"ts"`
	Dur   *float64       `json:"dur,omitempty"`
	PID   uint32         `json:"pid"`
	TID   uint32         `json:"tid,omitempty"`
	Scope string         `json:"s,omitempty"`
	Args  map[string]any `json:"args,omitempty"`
}

// perfetto streams a report's trace events.
type perfetto struct {
	r       *Report
	w       *bufio.Writer
	n       int    // events written
	nextTID uint32 // next synthetic thread id
	err     error
}

// WritePerfetto writes the report as Chrome Trace Event JSON, which
// ui.perfetto.dev and chrome://tracing open: a process per socket with a
// thread per ring frame (its SEND_REQUEST / SENDING phases as slices, drops
// as instants, sk_wmem_alloc / sk_sndbuf / pending as counters), a process
// per sender with its sendto calls and their sleeps, and a "CPUs" process
// with the NET_RX / NET_TX softirq runs. Times are microseconds from the
// start of the trace; the output is deterministic.
func (r *Report) WritePerfetto(w io.Writer) error {
	p := &perfetto{r: r, w: bufio.NewWriter(w), nextTID: synthTID}
	p.raw(`{"traceEvents":[`)
	for i, s := range r.Sockets {
		p.socket(s, synthPID+1+uint32(i), i)
	}
	p.senders(len(r.Sockets))
	p.cpus(len(r.Sockets) + 1)
	p.raw("\n],\"displayTimeUnit\":\"ns\",\"metadata\":")
	p.json(r.perfettoMetadata())
	p.raw("}\n")
	if p.err != nil {
		return fmt.Errorf("write perfetto trace: %w", p.err)
	}
	if err := p.w.Flush(); err != nil {
		return fmt.Errorf("write perfetto trace: %w", err)
	}
	return nil
}

func (r *Report) perfettoMetadata() map[string]any {
	m := map[string]any{
		"tool": "ringtrace", "kernel": r.Kernel, "hook_class": r.Class, "tx_completion": r.Completion,
		"start_ns": r.Start, "duration_ns": r.End - r.Start, "events_lost": r.Lost,
		"totals": r.Totals, "diagnoses": r.Diagnoses,
	}
	if n := r.NotTraced(); n != "" {
		m["detail"], m["not_traced"] = r.Detail, n
	}
	return m
}

func (p *perfetto) raw(s string) {
	if p.err == nil {
		_, p.err = p.w.WriteString(s)
	}
}

func (p *perfetto) json(v any) {
	if p.err != nil {
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		p.err = err
		return
	}
	_, p.err = p.w.Write(b)
}

func (p *perfetto) emit(e traceEvent) {
	if p.n > 0 {
		p.raw(",\n")
	} else {
		p.raw("\n")
	}
	p.n++
	p.json(e)
}

// us is ts in microseconds from the start of the trace.
func (p *perfetto) us(ts uint64) float64 {
	if ts <= p.r.Start {
		return 0
	}
	return float64(ts-p.r.Start) / 1e3
}

// slice emits a complete event from start to end.
func (p *perfetto) slice(name, cat string, pid, tid uint32, start, end uint64, args map[string]any) {
	d := 0.0
	if end > start {
		d = float64(end-start) / 1e3
	}
	p.emit(traceEvent{Name: name, Cat: cat, Ph: "X", TS: p.us(start), Dur: &d, PID: pid, TID: tid, Args: args})
}

func (p *perfetto) process(pid uint32, name string, sort int) {
	p.emit(traceEvent{Name: "process_name", Ph: "M", PID: pid, Args: map[string]any{"name": name}})
	p.emit(traceEvent{Name: "process_sort_index", Ph: "M", PID: pid, Args: map[string]any{"sort_index": sort}})
}

func (p *perfetto) thread(pid, tid uint32, name string, sort int) {
	p.emit(traceEvent{Name: "thread_name", Ph: "M", PID: pid, TID: tid, Args: map[string]any{"name": name}})
	p.emit(traceEvent{Name: "thread_sort_index", Ph: "M", PID: pid, TID: tid, Args: map[string]any{"sort_index": sort}})
}

// newThread names the next synthetic thread of pid.
func (p *perfetto) newThread(pid uint32, name string, sort int) uint32 {
	tid := p.nextTID
	p.nextTID++
	p.thread(pid, tid, name, sort)
	return tid
}

func (p *perfetto) socket(s *Socket, pid uint32, sort int) {
	p.process(pid, socketTitle(s), sort)
	tids := map[uint32]uint32{}
	track := func(frame uint32) uint32 {
		if tid, ok := tids[frame]; ok {
			return tid
		}
		tid := p.newThread(pid, fmt.Sprintf("frame %d", frame), int(frame))
		tids[frame] = tid
		return tid
	}
	for _, g := range frameSegments(s, p.r.End) {
		if g.State == event.Available && !g.Dropped {
			continue // idle between rounds
		}
		tid := track(g.Frame)
		p.slice(g.Name(), "frame", pid, tid, g.Start, g.End, segmentArgs(s, &g))
		if name, ok := g.Window(); ok {
			p.slice(name, "frame", pid, tid, g.EndLo, g.End,
				map[string]any{"earliest_us": p.us(g.EndLo), "latest_us": p.us(g.End), "cause": g.EndCause.String()})
		}
	}
	for _, d := range s.Drops {
		e := traceEvent{Name: "drop: " + d.Reason, Cat: "drop", Ph: "i", TS: p.us(d.TS), PID: pid, Scope: "p",
			Args: map[string]any{"reason": d.Reason, "location": d.Location, "synchronous": d.Synchronous, "dev": d.Dev}}
		if d.Frame != event.NoFrame {
			e.TID, e.Scope, e.Args["frame"] = track(d.Frame), "t", d.Frame
		}
		p.emit(e)
	}
	p.counters(s, pid)
}

func segmentArgs(s *Socket, g *segment) map[string]any {
	a := map[string]any{"socket": s.Label, "frame": g.Frame, "cause": g.StartCause.String(), "start_precision": precision(g.StartExact)}
	rd := g.Round
	if g.Open {
		a["end"] = "end of trace"
	} else {
		a["end_cause"], a["end_precision"] = g.EndCause.String(), precision(g.EndExact)
	}
	if rd.Drops > 0 {
		a["drops"] = rd.Drops
	}
	if rd.Dev != "" {
		a["dev"] = rd.Dev
	}
	if rd.FreeReason != "" && g.State == event.Sending {
		a["free_reason"] = rd.FreeReason
	}
	if rd.Call >= 0 {
		a["sendto_call"] = rd.Call
	}
	if h := stuckHolder(g); h != nil {
		a["stuck_in"], a["holder"] = h.Place, h.Summary
	}
	return a
}

func precision(exact bool) string {
	if exact {
		return event.Exact.String()
	}
	return event.Bounded.String()
}

// counters emits the socket's accounting series, one point per change.
func (p *perfetto) counters(s *Socket, pid uint32) {
	var last Sample
	for i, v := range s.Series {
		for _, c := range []struct {
			name, unit string
			v, prev    int32
		}{
			{"sk_wmem_alloc", "bytes", v.Wmem, last.Wmem},
			{"sk_sndbuf", "bytes", v.SndBuf, last.SndBuf},
			{"pending", "frames", v.Pending, last.Pending},
		} {
			if i == 0 || c.v != c.prev {
				p.emit(traceEvent{Name: c.name, Ph: "C", TS: p.us(v.TS), PID: pid, Args: map[string]any{c.unit: c.v}})
			}
		}
		last = v
	}
}

// senders emits a process per sender pid, a thread per tid, and the calls.
func (p *perfetto) senders(sort int) {
	procs, threads := map[uint32]bool{}, map[[2]uint32]bool{}
	for _, s := range p.r.Sockets {
		for _, c := range s.Calls {
			if !procs[c.PID] {
				procs[c.PID] = true
				p.process(c.PID, fmt.Sprintf("sender pid %d (%s)", c.PID, c.Comm), sort)
			}
			if k := [2]uint32{c.PID, c.TID}; !threads[k] {
				threads[k] = true
				p.thread(c.PID, c.TID, c.Comm, int(c.TID))
			}
			p.call(s, c)
		}
	}
}

func (p *perfetto) call(s *Socket, c *Call) {
	end, name := c.Return, "sendto"
	if end == 0 {
		end, name = p.r.End, "sendto (still in the kernel at end of trace)"
	}
	args := map[string]any{"socket": s.Label, "flags": event.MsgFlags(c.Flags), "frames": c.FramesTaken,
		"slept_sndbuf_us":        float64(c.Slept(event.WaitSndbuf, p.r.End)) / 1e3,
		"slept_tx_completion_us": float64(c.Slept(event.WaitCompletion, p.r.End)) / 1e3,
		"waited_for_cpu_us":      float64(c.Slept(event.WaitCPU, p.r.End)) / 1e3,
		"ring_at_entry":          c.EntryScan, "ring_at_return": c.ReturnScan}
	if c.Return != 0 {
		args["ret"] = event.ReturnString(c.Ret)
	}
	if c.Drops > 0 {
		args["drops"] = c.Drops
	}
	if c.LoopCall {
		args["loop_call"] = true
	}
	p.slice(name, "sendto", c.PID, c.TID, c.Enter, end, args)
	for _, sl := range c.Sleeps {
		se := sl.End
		if se == 0 {
			se = p.r.End
		}
		start, stop := max(sl.Start, c.Enter), min(se, end) // nested in the call
		args := map[string]any{"sk_wmem_alloc": sl.Wmem, "sk_sndbuf": sl.SndBuf, "pending": sl.Pending,
			"completions_meanwhile": sl.Completions, "still_asleep_at_end": sl.End == 0}
		if sl.End != 0 {
			args["woken_by"] = sl.Waker.String()
		}
		name := "sleep: " + sl.Reason.String()
		if sl.Reason == event.WaitCPU {
			name = "runnable, waiting for a CPU"
		}
		p.slice(name, "sleep", c.PID, c.TID, start, max(start, stop), args)
	}
}

func (p *perfetto) cpus(sort int) {
	if len(p.r.CPUs) == 0 {
		return
	}
	pid := uint32(synthPID)
	p.process(pid, "CPUs (network softirqs)", sort)
	for _, c := range p.r.CPUs {
		tid := p.newThread(pid, fmt.Sprintf("CPU %d", c.ID), int(c.ID))
		for _, sp := range c.Spans {
			p.slice(softirqName(sp.Vec), "softirq", pid, tid, sp.Start, sp.End, nil)
		}
		for _, h := range c.Hidden {
			p.slice(fmt.Sprintf("hidden from BPF: %s/%d", h.Comm, h.TID), "hidden", pid, tid, h.Start, h.End,
				map[string]any{"pid": h.PID, "why": "the kernel runs no BPF program while this task is current: events on its time are missing"})
		}
	}
}

func softirqName(vec uint8) string {
	switch vec {
	case 2:
		return "NET_TX"
	case 3:
		return "NET_RX"
	}
	return fmt.Sprintf("softirq %d", vec)
}
