package report

import (
	"sort"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/holders"
	"github.com/ringtrace/ringtrace/tracer/promise"
)

// Builder accumulates ordered, normalised events into a Report. Memory is
// bounded by the trace's content: per-frame rounds, calls and samples are
// kept (that is the report), but a corrupt stream cannot make it allocate
// more than its events justify.
type Builder struct {
	r        *Report
	lim      Limits
	names    event.Names
	cpus     map[uint32]*CPU
	sleeping map[uint32]*Sleep // by tid
	sleepers map[uint32]*Socket
	cur      map[uint64]uint32 // last inode seen per socket address
	labels   int
	maxCPU   uint32
	nClosed  int     // sockets closed so far
	closed   *Socket // the row closed sockets fold into (Limits.Closed)

	stuckAfter time.Duration
	snaps      []*holders.Snapshot
	blind      promise.Windows // CPU time hidden from BPF (event.Blind)
}

// NewBuilder starts an empty report. names resolves drop reasons and
// kernel addresses (either may be nil).
func NewBuilder(names event.Names) *Builder {
	return &Builder{
		r:        &Report{Events: map[string]uint64{}, socks: map[sockKey]*Socket{}},
		names:    names,
		cpus:     map[uint32]*CPU{},
		sleeping: map[uint32]*Sleep{},
		sleepers: map[uint32]*Socket{},
		cur:      map[uint64]uint32{},
	}
}

// SetLimits bounds what the builder keeps from now on (see Limits).
func (b *Builder) SetLimits(l Limits) { b.lim = l }

// SetGaps records what the tracer knows it did not see: events lost to a
// full ring buffer, hook runs the kernel skipped, and transitions reported
// twice. Set before Finish, whose diagnoses name them.
func (b *Builder) SetGaps(lost, duplicates uint64, missed map[string]uint64) {
	b.r.Lost, b.r.Duplicates, b.r.Missed = lost, duplicates, missed
}

// SetPromises gives the builder the plan's exact promises as a trace kept
// them (tracer/promise); Finish diagnoses the broken ones.
func (b *Builder) SetPromises(t []promise.Tally) { b.r.Promises = t }

// maxCPUs bounds the CPU table against corrupt input.
const maxCPUs = 8192

func (b *Builder) socket(e *event.Event) *Socket {
	if e.Sk == 0 {
		return nil
	}
	ino := e.SockIno
	if ino == 0 {
		ino = b.cur[e.Sk]
	} else {
		b.cur[e.Sk] = ino
	}
	k := sockKey{e.Sk, ino}
	s := b.r.socks[k]
	if s == nil {
		s = b.newSocket(e.Sk, ino)
	}
	return s
}

func (b *Builder) newSocket(sk uint64, ino uint32) *Socket {
	b.labels++
	s := &Socket{Sk: sk, Ino: ino, Label: "sk" + strconv.Itoa(b.labels),
		open: map[uint32]*Round{}, last: map[uint32]*Round{}, calls: map[uint32]*Call{}, devSeen: map[string]bool{}}
	s.st.init()
	b.r.socks[sockKey{sk, ino}] = s
	b.r.Sockets = append(b.r.Sockets, s)
	return s
}

// addSample appends to a socket's accounting series; with a Samples limit
// the series is downsampled, keeping each stretch's first, lowest, highest
// and last points, whenever it doubles.
func (b *Builder) addSample(s *Socket, p Sample) {
	s.SndBuf = p.SndBuf
	s.MaxWmem = max(s.MaxWmem, p.Wmem)
	s.MaxPending = max(s.MaxPending, p.Pending)
	s.Series = append(s.Series, p)
	if n := b.lim.Samples; n > 0 && len(s.Series) >= 2*n {
		s.Series = append(s.Series[:0:0], downsample(s.Series, n)...)
	}
}

// keepCall lists c on its socket unless the Calls limit is reached.
func (b *Builder) keepCall(s *Socket, c *Call) {
	s.NCalls++
	c.prev, s.lastEntered = s.lastEntered, c
	s.st.lastCall = c
	if b.lim.Calls == 0 || len(s.Calls) < b.lim.Calls {
		s.Calls = append(s.Calls, c)
	}
}

func (b *Builder) cpu(id uint32) *CPU {
	if id >= maxCPUs {
		id = maxCPUs - 1
	}
	c := b.cpus[id]
	if c == nil {
		c = &CPU{ID: id}
		b.cpus[id] = c
	}
	return c
}

// Add takes the next event (timestamp order).
func (b *Builder) Add(e *event.Event) {
	r := b.r
	if r.Start == 0 || e.TS < r.Start {
		r.Start = e.TS
	}
	if e.TS > r.End {
		r.End = e.TS
	}
	r.Events[e.Kind.String()]++
	s := b.socket(e)
	if s != nil && e.SndBuf >= 0 && e.Pending >= 0 {
		b.addSample(s, Sample{TS: e.TS, SndBuf: e.SndBuf, Wmem: e.Wmem, Pending: e.Pending})
	}
	egress := e.Kind == event.XmitStart || e.Kind == event.SendmsgEnter || (e.Kind == event.FrameState && e.New == event.Sending)
	if s != nil && e.Dev != "" && !s.devSeen[e.Dev] && egress {
		s.devSeen[e.Dev] = true
		s.Devs = append(s.Devs, e.Dev)
	}
	switch e.Kind {
	case event.SendmsgEnter:
		if s == nil {
			return
		}
		if s.PID == 0 {
			s.PID, s.Comm = e.PID, e.Comm
		}
		if e.Scan.Frames > s.Frames {
			s.Frames = e.Scan.Frames
		}
		c := &Call{TID: e.TID, PID: e.PID, Comm: e.Comm, Enter: e.TS, Flags: e.A[0],
			DontWait: e.A[0]&unix.MSG_DONTWAIT != 0, EntryScan: e.Scan}
		s.calls[e.TID] = c
		b.keepCall(s, c)
	case event.SendmsgReturn:
		if s == nil {
			return
		}
		c := s.calls[e.TID]
		if c == nil { // the trace started inside the call
			c = &Call{TID: e.TID, PID: e.PID, Comm: e.Comm, Enter: e.A[2], DontWait: e.ReturnDontWait()}
			b.keepCall(s, c)
		}
		delete(s.calls, e.TID)
		c.Return, c.Ret, c.ReturnScan, c.Signal = e.TS, e.Ret(), e.Scan, e.PendingSignal()
		c.FramesTaken = max(c.FramesTaken, int(e.N)) // the kernel's count: summary mode has no SENDING events
		c.SndBufAtRet, c.WmemAtRet, c.PendingAtRet = e.SndBuf, e.Wmem, e.Pending
		if prev := c.prev; c.Ret == 0 && prev != nil && prev.TID == c.TID && (prev.Ret > 0 || prev.LoopCall) {
			c.LoopCall = true
		}
		c.prev = nil // keep no chain of old calls alive
		b.countReturn(c.Ret)
		s.st.addCall(c, r.End)
	case event.FrameState:
		if s != nil && e.HasFrame() {
			b.frameState(s, e)
		}
	case event.Drop:
		if s == nil {
			return
		}
		d := Drop{TS: e.TS, Frame: e.Frame, Synchronous: e.Aux == 0, Dev: e.Dev,
			Reason: name(b.names.DropReason, uint32(e.A[0])), Location: b.names.Location(e.A[1])}
		s.NDrops++
		s.st.addDrop(d)
		if b.lim.Drops == 0 || len(s.Drops) < b.lim.Drops {
			s.Drops = append(s.Drops, d)
		}
		if d.Synchronous {
			r.Totals.SyncDrops++
			if c := s.calls[e.TID]; c != nil {
				c.Drops++
			}
		} else {
			r.Totals.AsyncDrops++
		}
	case event.Sleep:
		if s == nil {
			return
		}
		sl := &Sleep{TID: e.TID, Start: e.TS, Reason: event.Wait(e.Aux), SndBuf: e.SndBuf, Wmem: e.Wmem, Pending: e.Pending}
		if c := s.calls[e.TID]; c != nil {
			c.Sleeps = append(c.Sleeps, sl)
		}
		b.sleeping[e.TID] = sl
		b.sleepers[e.TID] = s
	case event.Wake:
		tid := uint32(e.A[0])
		if event.Wait(e.A[1]) == event.WaitCPU { // a whole run-queue wait, ending now
			if c := s.callIn(tid); c != nil && e.TSLo != 0 && e.TSLo <= e.TS {
				start := e.TSLo
				// A wake without a waker (timeout, signal) is seen late:
				// the run-queue wait starts when the sleep ended, not before.
				if n := len(c.Sleeps); n > 0 && c.Sleeps[n-1].End > start && c.Sleeps[n-1].End <= e.TS {
					start = c.Sleeps[n-1].End
				}
				c.Sleeps = append(c.Sleeps, &Sleep{TID: tid, Start: start, End: e.TS, Reason: event.WaitCPU, Waker: event.WaitCPU,
					SndBuf: e.SndBuf, Wmem: e.Wmem, Pending: e.Pending})
			}
			return
		}
		if sl := b.sleeping[tid]; sl != nil {
			sl.End = e.TS
			sl.Waker = event.Wait(e.Aux)
			delete(b.sleeping, tid)
			delete(b.sleepers, tid)
		}
	case event.Softirq:
		c := b.cpu(e.CPU)
		if e.TSLo == 0 || e.TSLo > e.TS {
			return
		}
		if !b.lim.Summary {
			c.Spans = append(c.Spans, Span{Start: e.TSLo, End: e.TS, Vec: e.Aux})
		}
		switch e.Aux {
		case 2:
			c.NetTX += e.TS - e.TSLo
			c.TXSpans++
		case 3:
			c.NetRX += e.TS - e.TSLo
			c.RXSpans++
		}
	case event.Blind:
		b.hidden(e)
	case event.NapiPoll:
		c := b.cpu(e.CPU)
		c.NapiPolls++
		c.NapiWork += e.A[0]
		if e.A[1] > c.Budget {
			c.Budget = e.A[1]
		}
		if e.A[0] >= e.A[1] && e.A[1] > 0 {
			c.Exhausted++
		}
		if e.Dev != "" && !contains(c.Devs, e.Dev) && len(c.Devs) < 64 {
			c.Devs = append(c.Devs, e.Dev)
		}
	case event.QdiscEnqueue, event.QdiscDequeue, event.XmitStart, event.XmitDone, event.RX:
		b.where(s, e)
	case event.SockGone:
		if s != nil {
			for _, rd := range s.open {
				if rd.State == event.Sending {
					rd.gone = e.TS
				}
				rd.State = event.Unknown
			}
			s.open = map[uint32]*Round{}
			b.nClosed++
			if b.lim.Closed > 0 && b.nClosed > b.lim.Closed {
				b.fold(s, e.TS)
			}
		}
	}
}

// maxFoldedRounds bounds the rounds the closed row lists (in summary mode,
// WRONG_FORMAT ones).
const maxFoldedRounds = 1000

// hidden adds a blind window to its task's total.
func (b *Builder) hidden(e *event.Event) {
	if e.TSLo > 0 && e.TSLo <= e.TS {
		if !b.lim.Summary {
			c := b.cpu(e.CPU)
			h := Hidden{Start: e.TSLo, End: e.TS, PID: e.PID, TID: e.TID, Comm: e.Comm}
			if n := len(c.Hidden); n > 0 && h.Start < c.Hidden[n-1].End { // recordings before the end time was the switch's
				h.Start = min(c.Hidden[n-1].End, h.End)
			}
			c.Hidden = append(c.Hidden, h)
		}
		b.blind.Add(e.TSLo, e.TS)
	}
	var h *HiddenTask
	for i := range b.r.Hidden {
		if b.r.Hidden[i].TID == e.TID {
			h = &b.r.Hidden[i]
		}
	}
	if h == nil {
		b.r.Hidden = append(b.r.Hidden, HiddenTask{PID: e.PID, TID: e.TID, Comm: e.Comm})
		h = &b.r.Hidden[len(b.r.Hidden)-1]
	}
	h.Windows++
	if e.TSLo > 0 && e.TSLo < e.TS {
		h.NS += e.TS - e.TSLo
	}
}

// inBlind reports whether rd's completion was reconstructed and a blind
// window overlaps its bounds.
func (b *Builder) inBlind(rd *Round) bool {
	if !rd.Done || rd.ExactDone {
		return false
	}
	lo, hi := rd.Available, rd.Available
	for i := len(rd.Transitions) - 1; i >= 0; i-- {
		if t := rd.Transitions[i]; t.To == event.Available {
			if t.TSLo > 0 && t.TSLo < lo {
				lo = t.TSLo
			}
			break
		}
	}
	return b.blind.Overlap(lo, hi)
}

// fold merges a socket that closed into the closed row and forgets it:
// its counts, statistics and examples stay in the report, its series and
// its own row do not.
func (b *Builder) fold(s *Socket, ts uint64) {
	c := b.closed
	if c == nil {
		c = &Socket{Label: "closed", PID: s.PID, Comm: s.Comm, open: map[uint32]*Round{}, last: map[uint32]*Round{},
			calls: map[uint32]*Call{}, devSeen: map[string]bool{}}
		c.st.init()
		b.closed = c
		b.r.Sockets = append(b.r.Sockets, c)
	}
	for _, call := range s.calls { // still in the kernel when its socket went away
		s.st.addCall(call, ts)
	}
	c.Folded++
	if c.PID != s.PID {
		c.PID = 0
	}
	if c.Comm != s.Comm {
		c.Comm = "various"
	}
	c.Frames = max(c.Frames, s.Frames)
	for _, d := range s.Devs {
		if !c.devSeen[d] && len(c.Devs) < 64 {
			c.devSeen[d] = true
			c.Devs = append(c.Devs, d)
		}
	}
	c.Rounds = appendUpTo(c.Rounds, s.Rounds, maxFoldedRounds)
	c.Calls = appendUpTo(c.Calls, s.Calls, b.lim.Calls)
	c.Drops = appendUpTo(c.Drops, s.Drops, b.lim.Drops)
	c.NCalls += s.NCalls
	c.FrameUses += s.FrameUses
	c.NDrops += s.NDrops
	c.SndBuf = s.SndBuf
	c.MaxWmem = max(c.MaxWmem, s.MaxWmem)
	c.MaxPending = max(c.MaxPending, s.MaxPending)
	c.InFlight.Merge(&s.InFlight)
	c.st.merge(&s.st)
	for tid, so := range b.sleepers {
		if so == s {
			b.sleepers[tid] = c
		}
	}
	delete(b.r.socks, sockKey{s.Sk, s.Ino})
	if b.cur[s.Sk] == s.Ino {
		delete(b.cur, s.Sk)
	}
	for i, x := range b.r.Sockets {
		if x == s {
			b.r.Sockets = append(b.r.Sockets[:i], b.r.Sockets[i+1:]...)
			break
		}
	}
}

// appendUpTo appends from to to while to has fewer than n elements (n 0:
// no bound).
func appendUpTo[T any](to, from []T, n int) []T {
	if n > 0 {
		from = from[:min(len(from), max(n-len(to), 0))]
	}
	return append(to, from...)
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func name(f func(uint32) string, code uint32) string {
	if f != nil {
		if n := f(code); n != "" {
			return n
		}
	}
	return strconv.FormatUint(uint64(code), 10)
}

func (b *Builder) countReturn(ret int64) {
	t := &b.r.Totals
	t.Calls++
	switch {
	case ret >= 0:
	case ret == -int64(unix.ENOBUFS):
		t.ENOBUFS++
	case ret == -int64(unix.EAGAIN):
		t.EAGAIN++
	case ret == -int64(unix.ETIMEDOUT):
		t.ETIMEDOUT++
	default:
		t.OtherErrors++
	}
}

// frameState advances a frame's round.
func (b *Builder) frameState(s *Socket, e *event.Event) {
	tr := Transition{TS: e.TS, TSLo: e.TSLo, From: e.Old, To: e.New, Prec: e.Prec, Cause: e.Cause, CPU: e.CPU}
	rd := s.open[e.Frame]
	if rd == nil && e.New == event.SendRequest && e.Cause == event.CauseRollback {
		// A roll-back after a completion the hooks did not label as a
		// drop: the round was not over.
		if last := s.last[e.Frame]; last != nil && last.Done {
			b.undo(s, last)
			rd = last
			s.open[e.Frame] = rd
		}
	}
	if rd == nil {
		rd = &Round{Frame: e.Frame, Call: -1, State: event.Unknown}
		s.open[e.Frame] = rd
		s.last[e.Frame] = rd
		s.FrameUses++
		if !b.lim.Summary {
			s.Rounds = append(s.Rounds, rd)
		}
	}
	// Keep a round's transition list bounded: a frame that is retried
	// forever (ENOBUFS) records its counts, not every retry.
	if len(rd.Transitions) < 64 {
		rd.Transitions = append(rd.Transitions, tr)
	}
	rd.State = e.New
	switch e.New {
	case event.SendRequest:
		if e.Cause == event.CauseRollback {
			b.r.Totals.RolledBack++
			s.st.rolledBack++
			rd.Drops++
			return
		}
		if rd.Requested == 0 {
			rd.Requested = e.TS
		}
	case event.Sending:
		if rd.Sending == 0 {
			b.r.Totals.FramesSent++
		}
		rd.Sending = e.TS
		rd.sendingExact = e.Prec == event.Exact
		if e.Dev != "" {
			rd.Dev = e.Dev
		}
		if c := s.calls[e.TID]; c != nil {
			c.FramesTaken++
			if !b.lim.Summary {
				rd.Call = indexOf(s.Calls, c)
			}
		}
	case event.Available:
		if e.Cause == event.CauseDrop {
			// Rolled back to SEND_REQUEST next: same round.
			return
		}
		rd.Available = e.TS
		rd.ExactDone = e.Prec == event.Exact
		rd.Done = true
		if e.A[1] != 0 {
			rd.FreeReason = name(b.names.DropReason, uint32(e.A[0]))
		}
		b.r.Totals.Completed++
		if rd.ExactDone {
			b.r.Totals.CompletedExact++
		} else {
			b.r.Totals.CompletedBounded++
		}
		if rd.sendingExact {
			s.InFlight.Add(rd.InFlight())
		}
		for tid, sl := range b.sleeping {
			if b.sleepers[tid] == s {
				sl.Completions++
			}
		}
		delete(s.open, e.Frame)
	case event.WrongFormat:
		rd.WrongFormat = true
		b.r.Totals.WrongFormat++
		delete(s.open, e.Frame)
		if b.lim.Summary {
			s.Rounds = append(s.Rounds, rd)
		}
	}
}

// undo takes back a round's completion.
func (b *Builder) undo(s *Socket, rd *Round) {
	t := &b.r.Totals
	t.Completed--
	if rd.ExactDone {
		t.CompletedExact--
	} else {
		t.CompletedBounded--
	}
	if rd.sendingExact {
		s.InFlight.remove(rd.InFlight())
	}
	rd.Done, rd.Available, rd.ExactDone, rd.FreeReason = false, 0, false, ""
}

func indexOf(calls []*Call, c *Call) int {
	for i := len(calls) - 1; i >= 0; i-- {
		if calls[i] == c {
			return i
		}
	}
	return -1
}

// Finish closes the report: open rounds and calls are what was still in
// flight when the trace ended. It runs the diagnoses.
func (b *Builder) Finish() *Report {
	r := b.r
	for _, sn := range b.snaps { // a walk was taken while the trace ran: it lasted at least until then
		if r.Start != 0 && sn.TS > r.End {
			r.End = sn.TS
		}
	}
	for _, s := range r.Sockets {
		for _, c := range s.calls { // still in the kernel
			s.st.addCall(c, r.End)
		}
		for _, rd := range s.open {
			if rd.State == event.Sending {
				r.Totals.InFlightAtEnd++
			}
			if b.lim.Summary {
				s.Rounds = append(s.Rounds, rd)
			}
		}
		sort.SliceStable(s.Rounds, func(i, j int) bool {
			if s.Rounds[i].Frame != s.Rounds[j].Frame {
				return s.Rounds[i].Frame < s.Rounds[j].Frame
			}
			return s.Rounds[i].firstTS() < s.Rounds[j].firstTS()
		})
	}
	if b.blind.Len() > 0 {
		for _, s := range r.Sockets {
			for _, rd := range s.Rounds {
				rd.Hidden = b.inBlind(rd)
			}
		}
	}
	for _, c := range b.cpus {
		r.CPUs = append(r.CPUs, c)
	}
	sort.Slice(r.CPUs, func(i, j int) bool { return r.CPUs[i].ID < r.CPUs[j].ID })
	b.stuck(r)
	sortStuck(r)
	r.Diagnoses = append(diagnose(r), stuckDiagnoses(r, b.snaps)...)
	return r
}

func (rd *Round) firstTS() uint64 {
	if len(rd.Transitions) > 0 {
		return rd.Transitions[0].TS
	}
	return 0
}

// SocketByLabel finds a socket ("sk1").
func (r *Report) SocketByLabel(l string) *Socket {
	for _, s := range r.Sockets {
		if s.Label == l {
			return s
		}
	}
	return nil
}
