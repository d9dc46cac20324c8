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
	"golang.org/x/sys/unix"

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
	Sweeps     uint64                `json:"sweeps"`
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
	cfg.WakeupBytes = o.RingBufBytes / 8
	objs, err := load(o.Plan, o.BTF, cfg, o.RingBufBytes, o.MaxFrames)
	if err != nil {
		return nil, err
	}
	s := &Session{o: o, objs: objs}
	s.stats.PerKind = map[event.Kind]uint64{}
	s.rd, err = ringbuf.NewReader(objs.maps["events"])
	if err != nil {
		objs.Close()
		return nil, fmt.Errorf("open ring buffer: %w", err)
	}
	for _, a := range o.Plan.Attach {
		if a.Kind == plan.KindTestRun {
			s.sw = &sweeper{prog: objs.progs[a.Program], frames: objs.maps["frames"], req: objs.maps["sweep_req"],
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

// Plan is the attach plan in effect: the one given, without the optional
// attachments the requested events do not need.
func (s *Session) Plan() *plan.Plan { return s.o.Plan }

// Close detaches every program and frees the maps. Safe to call twice.
func (s *Session) Close() error {
	var errs []error
	for _, l := range s.links {
		if err := l.Close(); err != nil {
			errs = append(errs, err)
		}
	}
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

// Stats returns a snapshot of the counters, with losses read from the
// kernel.
func (s *Session) Stats() Stats {
	s.mu.Lock()
	st := s.stats
	st.PerKind = copyMap(s.stats.PerKind)
	s.mu.Unlock()
	st.LostByKind = map[event.Kind]uint64{}
	if s.objs != nil {
		var per []uint64
		for _, k := range event.Kinds() {
			if err := s.objs.maps["lost"].Lookup(uint32(k), &per); err == nil {
				var n uint64
				for _, v := range per {
					n += v
				}
				if n > 0 {
					st.LostByKind[k] = n
					st.Lost += n
				}
			}
		}
		st.Overflow = map[string]uint64{}
		for i, name := range []string{"frames", "sockets", "calls", "skbs"} {
			if err := s.objs.maps["overflow"].Lookup(uint32(i), &per); err == nil {
				var n uint64
				for _, v := range per {
					n += v
				}
				if n > 0 {
					st.Overflow[name] = n
				}
			}
		}
	}
	return st
}

func copyMap(m map[event.Kind]uint64) map[event.Kind]uint64 {
	out := make(map[event.Kind]uint64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func monotonicNow() uint64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return uint64(ts.Nano())
}

// Sink receives ordered events. Flush is called whenever the events due so
// far have been delivered (at most every reorder interval), so buffered
// output reaches the user promptly.
type Sink interface {
	Event(*event.Event) error
	Flush() error
}

// Run streams events to sink, in timestamp order, until ctx is done or the
// sink fails. At the end it sweeps once more, drains the ring buffer and
// flushes. raw, when not nil, sees every record's bytes as read (for
// recordings), before ordering.
func (s *Session) Run(ctx context.Context, sink Sink, raw func([]byte) error) error {
	emit := sink.Event
	type batch struct {
		evs []event.Event
		err error
	}
	batches := make(chan batch, 64)
	stopRead := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		defer close(batches)
		var rec ringbuf.Record
		var cur []event.Event
		for {
			s.rd.SetDeadline(time.Now().Add(5 * time.Millisecond))
			err := s.rd.ReadInto(&rec)
			switch {
			case err == nil:
				if raw != nil {
					if rerr := raw(rec.RawSample); rerr != nil {
						batches <- batch{err: rerr}
						return
					}
				}
				ev, derr := event.Decode(rec.RawSample)
				if derr != nil {
					s.mu.Lock()
					s.stats.Decode++
					s.mu.Unlock()
					continue
				}
				cur = append(cur, ev)
				if len(cur) < 512 {
					continue
				}
			case errors.Is(err, os.ErrDeadlineExceeded):
			case errors.Is(err, ringbuf.ErrClosed):
				if len(cur) > 0 {
					batches <- batch{evs: cur}
				}
				return
			default:
				batches <- batch{err: fmt.Errorf("read ring buffer: %w", err)}
				return
			}
			if len(cur) > 0 {
				batches <- batch{evs: cur}
				cur = nil
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

	var ro reorder
	norm := event.NewNormalizer()
	count := func(e *event.Event) error {
		s.mu.Lock()
		s.stats.Events++
		s.stats.PerKind[e.Kind]++
		s.mu.Unlock()
		return emit(e)
	}
	out := func(e *event.Event) error {
		err := norm.Process(e, count)
		s.mu.Lock()
		s.stats.Duplicates = norm.Duplicates
		s.mu.Unlock()
		return err
	}
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
			for i := range b.evs {
				ro.push(&b.evs[i])
			}
		case <-sweepTick.C:
			if err := s.sweep(); err != nil {
				runErr = err
				stopping = true
			}
		case <-flushTick.C:
			err := ro.release(monotonicNow()-window, out)
			if err == nil {
				err = sink.Flush()
			}
			if err != nil {
				runErr = err
				stopping = true
			}
		}
	}
	// Wind down: one last sweep so completions no hook saw are reported,
	// then drain what the kernel already queued.
	if runErr == nil {
		runErr = s.sweep()
	}
	close(stopRead)
	for b := range batches {
		if b.err != nil && runErr == nil {
			runErr = b.err
		}
		for i := range b.evs {
			ro.push(&b.evs[i])
		}
	}
	<-readerDone
	if err := ro.flush(out); err != nil && runErr == nil {
		runErr = err
	}
	if err := sink.Flush(); err != nil && runErr == nil {
		runErr = err
	}
	s.mu.Lock()
	s.stats.Late = ro.late
	s.mu.Unlock()
	return runErr
}

func (s *Session) sweep() error {
	if s.sw == nil {
		return nil
	}
	n, err := s.sw.run()
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
