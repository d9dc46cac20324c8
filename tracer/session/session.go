package session

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"

	"github.com/ringtrace/ringtrace/tracer/bpfobj/bpftypes"
	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/kernel"
	"github.com/ringtrace/ringtrace/tracer/plan"
)

// Filter restricts which TX-ring sockets are traced. Sockets are matched
// when a sendmsg call shows their owner; zero values match everything.
type Filter struct {
	PID    uint32
	Comm   string
	Ifname string // the interface the socket is bound to
}

// Options configure a session.
type Options struct {
	Facts  *kernel.Facts
	BTF    *btf.Spec
	Plan   *plan.Plan
	Filter Filter
	// Kinds to emit (nil: event.DefaultKinds, without per-CPU softirq and
	// napi events, which socket filters do not restrict).
	Kinds []event.Kind
	// RingBufBytes is the BPF ring buffer size (power of two, default 16 MiB).
	RingBufBytes uint32
	// MaxFrames is how many ring frames can be tracked at once (default 65536).
	MaxFrames uint32
	// SweepInterval is how often frames no hook saw complete are re-read
	// (default 20ms).
	SweepInterval time.Duration
	// Reorder is how long events are held to be put in order (default 10ms).
	Reorder time.Duration
	// Aggregate keeps frame transitions in the kernel, as per-socket counts
	// and in-flight histograms (Aggregates), instead of streaming a
	// frame_state event for each; sendmsg scans shrink to what calls need.
	// For summaries of long or fast traces. A --detail calls plan
	// (Config.CallsOnly) always aggregates.
	Aggregate bool
}

// Session is a loaded, attached trace.
type Session struct {
	o     Options
	objs  *objects
	links []link.Link
	rd    *ringbuf.Reader
	sw    *sweeper
	Ready time.Duration // from Open's start to attached

	mu    sync.Mutex
	stats Stats
	// lastGC is when closed sockets were last looked for (no bpf_loop).
	lastGC time.Time
}

// Stats are the session's counters.
type Stats struct {
	Events     uint64                `json:"events"`
	PerKind    map[event.Kind]uint64 `json:"-"`
	Lost       uint64                `json:"lost"`
	LostByKind map[event.Kind]uint64 `json:"-"`
	Duplicates uint64                `json:"duplicates"` // frame transitions reported twice (racing hooks)
	Late       uint64                `json:"late"`       // events released after a later one
	Decode     uint64                `json:"decode_errors"`
	Overflow   map[string]uint64     `json:"overflow"` // tracking maps full
	// Missed are the runs the kernel skipped, per attachment ("kprobe
	// tpacket_destruct_skb"): it runs no kprobe program while another BPF
	// program or a BPF map syscall runs on that CPU, and no tracing
	// program inside itself. Counted since Linux 6.7 (kprobes) or 5.12
	// (trampolines, tp_btf).
	Missed map[string]uint64 `json:"missed,omitempty"`
	Sweeps uint64            `json:"sweeps"`
}

func (o *Options) defaults() {
	if o.RingBufBytes == 0 {
		o.RingBufBytes = 16 << 20
	}
	if o.MaxFrames == 0 {
		o.MaxFrames = 65536
	}
	if o.SweepInterval == 0 {
		o.SweepInterval = 20 * time.Millisecond
	}
	if o.Reorder == 0 {
		o.Reorder = 10 * time.Millisecond
	}
	if o.Kinds == nil {
		o.Kinds = event.DefaultKinds()
	}
}

// Open loads and attaches everything; when it returns, every probe is live.
func Open(o Options) (*Session, error) {
	start := time.Now()
	o.defaults()
	if o.Plan.Config.CallsOnly {
		o.Aggregate = true // no frame events: the kernel counts frames
	}
	if o.RingBufBytes&(o.RingBufBytes-1) != 0 || o.RingBufBytes < uint32(os.Getpagesize()) {
		return nil, fmt.Errorf("ring buffer size %d must be a power of two of at least a page", o.RingBufBytes)
	}
	wanted := map[string]bool{}
	for _, k := range o.Kinds {
		wanted[k.String()] = true
	}
	o.Plan = o.Plan.ForEvents(func(k string) bool { return wanted[k] })
	cfg, err := rtConfig(o.Plan, o.Filter, EventMask(o.Kinds))
	if err != nil {
		return nil, err
	}
	// Events are committed without waking the reader, which polls every
	// 5 ms; a forced wake-up costs the sending CPU an interrupt per event
	// while it lasts, so it is kept for a reader that is really late: half
	// the buffer waiting (4 MiB by default, ~20 ms at full rate).
	cfg.WakeupBytes = o.RingBufBytes / 2
	if o.Aggregate {
		cfg.Aggregate, cfg.LightScans = 1, 1
	}
	objs, err := load(o.Plan, o.BTF, cfg, o.RingBufBytes, o.MaxFrames)
	if err != nil {
		return nil, err
	}
	o.BTF = nil // only loading needs it: a session holds on for hours, the spec is megabytes
	s := &Session{o: o, objs: objs}
	s.stats.PerKind = map[event.Kind]uint64{}
	s.rd, err = ringbuf.NewReader(objs.maps["events"])
	if err != nil {
		objs.Close()
		return nil, fmt.Errorf("open ring buffer: %w", err)
	}
	for _, a := range o.Plan.Attach {
		if a.Kind == plan.KindTestRun {
			s.sw = &sweeper{prog: objs.progs[a.Program], walk: o.Plan.Config.UseLoop, frames: objs.maps["frames"], graves: objs.maps["graves"], req: objs.maps["sweep_req"],
				batch: o.Plan.Config.SweepBatch}
		}
	}
	s.links, err = attach(o.Plan, objs)
	if err != nil {
		s.rd.Close()
		objs.Close()
		return nil, err
	}
	s.Ready = time.Since(start)
	return s, nil
}

// readerBatch is how long the reader holds a batch of events before it
// hands it over.
const readerBatch = 5 * time.Millisecond

// Lag is how long, at most, a frame's completion takes to reach the sink
// while the reader keeps up: the sweep finds the completions no hook saw
// (SweepInterval), the reader hands its batch over (readerBatch), and the
// next release after the reorder window lets it out (twice Reorder).
func (s *Session) Lag() time.Duration {
	return s.o.SweepInterval + readerBatch + 2*s.o.Reorder
}

// Aggregating reports whether frame transitions are kept in the kernel
// (Options.Aggregate): Run hands a closed socket's counts to its sink
// (ClosedSink); read the open sockets' with Aggregates and StillSending.
func (s *Session) Aggregating() bool { return s.o.Aggregate }

// Plan is the attach plan in effect: the one given, without the optional
// attachments the requested events do not need.
func (s *Session) Plan() *plan.Plan { return s.o.Plan }

// Close detaches every program and frees the maps. Safe to call twice.
// The links are closed at once: detaching a syscall tracepoint's perf
// event waits out an RCU grace period (50–70 ms each on this host). The
// kernel serialises part of it, so in parallel six of them took 230–260
// ms instead of 360: a q or Ctrl-C ends that much sooner.
func (s *Session) Close() error {
	errs := make([]error, len(s.links))
	var wg sync.WaitGroup
	for i, l := range s.links {
		wg.Go(func() { errs[i] = l.Close() })
	}
	wg.Wait()
	s.links = nil
	if s.rd != nil {
		if err := s.rd.Close(); err != nil {
			errs = append(errs, err)
		}
		s.rd = nil
	}
	if s.objs != nil {
		s.objs.Close()
		s.objs = nil
	}
	return errors.Join(errs...)
}

// Stats returns a snapshot of the counters, with losses, full tracking
// maps and skipped hook runs read from the kernel.
func (s *Session) Stats() Stats {
	s.mu.Lock()
	st := s.stats
	st.PerKind = copyMap(s.stats.PerKind)
	s.mu.Unlock()
	st.Lost, st.LostByKind = s.lost()
	if s.objs != nil {
		st.Overflow = map[string]uint64{}
		for i, name := range []string{"frames", "sockets", "calls", "skbs"} {
			if n := s.counter("overflow", uint32(i)); n > 0 {
				st.Overflow[name] = n
			}
		}
		st.Missed = s.missed()
	}
	return st
}

// Lost is the number of events lost so far. It reads only the loss
// counters: a periodic check should make as few map syscalls as it can,
// since while one runs the kernel runs no kprobe program on that CPU.
func (s *Session) Lost() uint64 {
	n, _ := s.lost()
	return n
}

func (s *Session) lost() (uint64, map[event.Kind]uint64) {
	var total uint64
	byKind := map[event.Kind]uint64{}
	if s.objs == nil {
		return 0, byKind
	}
	for _, k := range event.Kinds() {
		if n := s.counter("lost", uint32(k)); n > 0 {
			byKind[k] = n
			total += n
		}
	}
	// A lost one-record call is a lost entry and a lost return.
	if n := s.counter("lost", uint32(event.SendmsgCall)); n > 0 {
		byKind[event.SendmsgEnter] += n
		byKind[event.SendmsgReturn] += n
		total += 2 * n
	}
	// A lost xmit pair is a lost start and a lost return.
	if n := s.counter("lost", uint32(event.XmitPair)); n > 0 {
		byKind[event.XmitStart] += n
		byKind[event.XmitDone] += n
		total += 2 * n
	}
	// A lost short record is a lost frame_state.
	if n := s.counter("lost", uint32(event.FrameShort)); n > 0 {
		byKind[event.FrameState] += n
		total += n
	}
	return total, byKind
}

// counter sums one per-CPU counter of a BPF map (0 if it cannot be read).
func (s *Session) counter(m string, key uint32) uint64 {
	var per []uint64
	if err := s.objs.maps[m].Lookup(key, &per); err != nil {
		return 0
	}
	var n uint64
	for _, v := range per {
		n += v
	}
	return n
}

// missed reads the kernel's count of skipped runs of every attached
// program. A program attached to several hooks (the send syscalls' entry
// and exit) has one count for all of them: it is named after its first.
func (s *Session) missed() map[string]uint64 {
	out := map[string]uint64{}
	seen := map[string]bool{}
	for _, a := range s.o.Plan.Attach {
		prog := s.objs.progs[a.Program]
		if a.Kind == plan.KindTestRun || prog == nil || seen[a.Program] {
			continue
		}
		seen[a.Program] = true
		if st, err := prog.Stats(); err == nil && st.RecursionMisses > 0 {
			out[string(a.Kind)+" "+a.Target] += st.RecursionMisses
		}
	}
	return out
}

func copyMap(m map[event.Kind]uint64) map[event.Kind]uint64 {
	out := make(map[event.Kind]uint64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Sink receives ordered events. Flush is called whenever the events due so
// far have been delivered (at most every reorder interval), so buffered
// output reaches the user promptly. The event passed to Event is only valid
// during the call: a sink copies what it keeps.
type Sink interface {
	Event(*event.Event) error
	Flush() error
}

// ClosedSink is the sink an aggregating session (Options.Aggregate) runs
// with: just before a socket's SockGone event, Closed hands it what the
// kernel counted for that socket, deleted from the kernel's map. Neither
// the kernel nor the session keeps anything of a closed socket, so a trace
// of sockets that come and go stays flat in memory.
type ClosedSink interface {
	Sink
	Closed(SockKey, bpftypes.RingtraceRtSockAgg) error
}

// batchSize is how many events the reader hands to Run's loop at once.
const batchSize = 512

// Collector is a Sink that keeps every event, for callers that judge a
// whole trace once it has ended (probe --verify, tests).
type Collector struct {
	mu  sync.Mutex
	evs []event.Event
}

// Event keeps a copy of e.
func (c *Collector) Event(e *event.Event) error {
	c.mu.Lock()
	c.evs = append(c.evs, *e)
	c.mu.Unlock()
	return nil
}

// Flush does nothing: the events are kept.
func (c *Collector) Flush() error { return nil }

// Events returns the events kept so far, in delivery order.
func (c *Collector) Events() []event.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.evs
}

// batcher is the reader side of Run: it decodes records into batches of
// events, reusing the batches the loop is done with. Decode errors are
// counted here and published with each batch. add and take belong to the
// reader's goroutine, recycle to the loop's.
type batcher struct {
	dec        event.Decoder
	cur        []event.Event
	free       chan []event.Event // batches handed back by the loop
	decodeErrs uint64             // not yet published
}

// batchesAhead is how many batches the reader may hand over before the
// loop takes them (beyond that, the kernel's ring buffer holds the events:
// its memory is resident anyway). The free list keeps as many: the loop
// falls behind at each release (the sinks write 10 ms of events at once)
// and then hands back every batch the reader filled meanwhile; a free list
// shorter than the queue dropped most of them, and the reader allocated
// new ones at the next release (measured: 90 MB/s of garbage streaming
// 850 k events/s, a collection every 70 ms).
const batchesAhead = 16

func newBatcher() *batcher {
	return &batcher{free: make(chan []event.Event, batchesAhead+2)}
}

// add decodes one record into the current batch and reports whether the
// batch is full.
func (bt *batcher) add(raw []byte) bool {
	if bt.cur == nil {
		select {
		case bt.cur = <-bt.free:
		default:
			bt.cur = make([]event.Event, 0, batchSize+1) // +1: a folded record is two events
		}
	}
	n := len(bt.cur) // < batchSize, cap batchSize+1: a full batch was handed over
	bt.cur = bt.cur[:n+1]
	if err := bt.dec.Decode(raw, &bt.cur[n]); err != nil {
		bt.cur = bt.cur[:n]
		bt.decodeErrs++
		return false
	}
	if bt.cur[n].Kind.Folded() {
		bt.cur = bt.cur[:n+2]
		bt.cur[n+1] = bt.cur[n]
		bt.cur[n+1].Unfold(&bt.cur[n])
	}
	return len(bt.cur) >= batchSize
}

// take returns the current batch (nil when it is empty) and starts a new one.
func (bt *batcher) take() []event.Event {
	if len(bt.cur) == 0 {
		return nil
	}
	evs := bt.cur
	bt.cur = nil
	return evs
}

// recycle hands a batch whose events were copied out back to the reader.
func (bt *batcher) recycle(evs []event.Event) {
	if cap(evs) < batchSize {
		return
	}
	select {
	case bt.free <- evs[:0]:
	default:
	}
}

// pipeline is the consuming side of Run: it puts events in order,
// normalises, counts and delivers them. It counts locally and publishes the
// counts to the session's Stats once per release, not once per event.
type pipeline struct {
	s       *Session
	ro      reorder
	norm    *event.Normalizer
	sink    Sink
	process func(*event.Event) error // p.normalise and p.deliver, bound once
	deliver func(*event.Event) error
	events  uint64                // delivered since the last publish
	perKind []uint64              // the same by kind, indexed by event.Kind
	other   map[event.Kind]uint64 // kinds beyond perKind (none today)
	sending []event.FrameRef      // the sweep's candidates, reused
	closed  ClosedSink            // aggregating: takes closed sockets' counts
}

func (s *Session) newPipeline(sink Sink) *pipeline {
	p := &pipeline{s: s, norm: event.NewNormalizer(), sink: sink, perKind: make([]uint64, len(event.Kinds())+1)}
	p.norm.NoFindAtReturn = s.o.Plan.LateCompletions()
	p.process, p.deliver = p.normalise, p.count
	return p
}

func (p *pipeline) push(evs []event.Event) {
	for i := range evs {
		p.ro.push(&evs[i])
	}
}

// release delivers every held event up to watermark.
func (p *pipeline) release(watermark uint64) error {
	err := p.ro.release(watermark, p.process)
	p.publish()
	return err
}

// flush delivers every held event.
func (p *pipeline) flush() error {
	err := p.ro.flush(p.process)
	p.publish()
	return err
}

func (p *pipeline) normalise(e *event.Event) error { return p.norm.Process(e, p.deliver) }

func (p *pipeline) count(e *event.Event) error {
	if e.Kind == event.SockGone && p.closed != nil {
		if err := p.s.takeAggregate(SockKey{e.Sk, e.SockIno}, p.closed); err != nil {
			return err
		}
	}
	p.events++
	if int(e.Kind) < len(p.perKind) {
		p.perKind[e.Kind]++
	} else {
		if p.other == nil {
			p.other = map[event.Kind]uint64{}
		}
		p.other[e.Kind]++
	}
	return p.sink.Event(e)
}

// publish adds the counts since the last publish to the session's Stats.
func (p *pipeline) publish() {
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Events += p.events
	p.events = 0
	for k, n := range p.perKind {
		if n != 0 {
			s.stats.PerKind[event.Kind(k)] += n
			p.perKind[k] = 0
		}
	}
	for k, n := range p.other {
		s.stats.PerKind[k] += n
	}
	clear(p.other)
	s.stats.Duplicates = p.norm.Duplicates
	s.stats.Late = p.ro.late
}

// addDecodeErrors publishes the reader's decode errors.
func (s *Session) addDecodeErrors(bt *batcher) {
	if bt.decodeErrs == 0 {
		return
	}
	s.mu.Lock()
	s.stats.Decode += bt.decodeErrs
	s.mu.Unlock()
	bt.decodeErrs = 0
}

// Run streams events to sink, in timestamp order, until ctx is done or the
// sink fails. At the end it sweeps once more, drains the ring buffer and
// flushes. raw, when not nil, sees every record's bytes as read (for
// recordings), before ordering.
func (s *Session) Run(ctx context.Context, sink Sink, raw func([]byte) error) error {
	p := s.newPipeline(sink)
	if s.o.Aggregate {
		cs, ok := sink.(ClosedSink)
		if !ok {
			return errors.New("an aggregating session needs a sink that takes closed sockets' counts (session.ClosedSink)")
		}
		p.closed = cs
	}
	type batch struct {
		evs []event.Event
		err error
	}
	batches := make(chan batch, batchesAhead)
	stopRead := make(chan struct{})
	readerDone := make(chan struct{})
	bt := newBatcher()
	go func() {
		defer close(readerDone)
		defer close(batches)
		defer s.addDecodeErrors(bt)
		var rec ringbuf.Record
		for {
			// A batch is handed over when full, or at most 5ms after
			// its first event.
			if len(bt.cur) == 0 {
				s.rd.SetDeadline(time.Now().Add(readerBatch))
			}
			err := s.rd.ReadInto(&rec)
			switch {
			case err == nil:
				if raw != nil {
					if rerr := raw(rec.RawSample); rerr != nil {
						batches <- batch{err: rerr}
						return
					}
				}
				if !bt.add(rec.RawSample) {
					continue
				}
			case errors.Is(err, os.ErrDeadlineExceeded):
			case errors.Is(err, ringbuf.ErrClosed):
				if evs := bt.take(); evs != nil {
					batches <- batch{evs: evs}
				}
				return
			default:
				batches <- batch{err: fmt.Errorf("read ring buffer: %w", err)}
				return
			}
			if evs := bt.take(); evs != nil {
				s.addDecodeErrors(bt)
				batches <- batch{evs: evs}
			}
			select {
			case <-stopRead:
				if s.rd.AvailableBytes() == 0 {
					return
				}
			default:
			}
		}
	}()

	window := uint64(s.o.Reorder.Nanoseconds())
	sweepTick := time.NewTicker(s.o.SweepInterval)
	defer sweepTick.Stop()
	flushTick := time.NewTicker(s.o.Reorder)
	defer flushTick.Stop()
	var runErr error
	stopping := false
	for !stopping {
		select {
		case <-ctx.Done():
			stopping = true
		case b, ok := <-batches:
			if !ok {
				stopping = true
				break
			}
			if b.err != nil {
				runErr = b.err
				stopping = true
				break
			}
			p.push(b.evs)
			bt.recycle(b.evs)
		case <-sweepTick.C:
			if err := s.sweep(p); err != nil {
				runErr = err
				stopping = true
			}
		case <-flushTick.C:
			err := p.release(event.MonotonicNow() - window)
			if err == nil {
				err = sink.Flush()
			}
			if err != nil {
				runErr = err
				stopping = true
			}
		}
	}
	// Wind down: a last sweep so completions no hook saw are reported
	// (twice: a sweep leaves a completion it reads first to the uarg's
	// kfree hook until its next run), then drain what the kernel already
	// queued.
	for i := 0; i < 2 && runErr == nil; i++ {
		runErr = s.sweep(p)
	}
	close(stopRead)
	for b := range batches {
		if b.err != nil && runErr == nil {
			runErr = b.err
		}
		p.push(b.evs)
		bt.recycle(b.evs)
	}
	<-readerDone
	if err := p.flush(); err != nil && runErr == nil {
		runErr = err
	}
	if err := sink.Flush(); err != nil && runErr == nil {
		runErr = err
	}
	return runErr
}

// gcInterval is how often, without bpf_loop, user space asks the kernel
// which of the sockets seen sending have closed and deletes the frame
// entries of those buried (with bpf_loop the sweep does it itself, every
// run). Every sweep: at once a second, 200 sockets opened and closed in 7 s
// filled the 65536-entry frames map (rings of up to 4096 frames).
const gcInterval = 0

func (s *Session) sweep(p *pipeline) error {
	if s.sw == nil {
		return nil
	}
	if !s.sw.walk && time.Since(s.lastGC) >= gcInterval {
		s.lastGC = time.Now()
		if socks := p.norm.AppendSockets(nil); len(socks) > 0 {
			if err := s.sw.checkSockets(socks); err != nil {
				return fmt.Errorf("sweep: %w", err)
			}
		}
		if err := s.sw.dig(); err != nil {
			return fmt.Errorf("sweep: %w", err)
		}
	}
	var known []event.FrameRef
	if !s.sw.walk && !s.o.Aggregate {
		p.sending = p.norm.AppendSending(p.sending[:0])
		known = p.sending
		if len(known) == 0 {
			return nil
		}
	}
	n, err := s.sw.run(known)
	if err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	if n > 0 {
		s.mu.Lock()
		s.stats.Sweeps++
		s.mu.Unlock()
	}
	return nil
}
