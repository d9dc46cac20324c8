package report

import (
	"github.com/ringtrace/ringtrace/tracer/event"
)

// FrameAgg is what the kernel counted for one socket's frames when the
// per-frame events were not streamed (summary mode).
type FrameAgg struct {
	Sent             uint64
	CompletedExact   uint64
	CompletedBounded uint64
	InFlight         Histogram // of completions with an exact SENDING time
}

// AddFrameAgg adds the kernel's counts for the socket at address sk with
// inode ino (call before Finish).
func (b *Builder) AddFrameAgg(sk uint64, ino uint32, a FrameAgg) {
	s := b.sock(sk, ino)
	t := &b.r.Totals
	t.FramesSent += int(a.Sent)
	t.CompletedExact += int(a.CompletedExact)
	t.CompletedBounded += int(a.CompletedBounded)
	t.Completed += int(a.CompletedExact + a.CompletedBounded)
	s.FrameUses += int(a.Sent)
	s.InFlight.Merge(&a.InFlight)
}

// AddSending records a frame the kernel still had SENDING when the trace
// ended, since when (call before Finish): in summary mode no event says so.
func (b *Builder) AddSending(sk uint64, ino uint32, frame uint32, since uint64) {
	s := b.sock(sk, ino)
	if rd := s.open[frame]; rd != nil && rd.State == event.Sending {
		return
	}
	rd := &Round{Frame: frame, Call: -1, State: event.Sending, Sending: since}
	s.open[frame] = rd
	if !b.lim.Summary {
		s.Rounds = append(s.Rounds, rd)
	}
}

// sock finds or creates the socket (sk, ino).
func (b *Builder) sock(sk uint64, ino uint32) *Socket {
	if s := b.r.socks[sockKey{sk, ino}]; s != nil {
		return s
	}
	return b.newSocket(sk, ino)
}
