package session

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/ringtrace/ringtrace/tracer/bpfobj"
	"github.com/ringtrace/ringtrace/tracer/bpfobj/bpftypes"
	"github.com/ringtrace/ringtrace/tracer/event"
)

// ForgetCompletion makes the tracer's kernel state look as if the
// completion of one of sk's frames had gone unseen, as when the kernel
// skips a kprobe program: a frame of sk that completed after since (ns)
// is set back to SENDING and the socket's SENDING counts raised. It
// returns the frame's index, and false when no such frame exists yet or
// fewer than taken of sk's frames have left SEND_REQUEST.
//
// It reads and rewrites the socket's state from user space, so a hook
// updating that state meanwhile is overwritten: callers wait for every
// frame to be taken (taken) and act right after a completion, when the
// next one is far away.
func (s *Session) ForgetCompletion(sk, since uint64, taken int) (uint32, bool, error) {
	return s.ForgetCompletionFrom(sk, since, taken, 0)
}

// ForgetCompletionFrom is ForgetCompletion of a frame whose index is from
// or more.
func (s *Session) ForgetCompletionFrom(sk, since uint64, taken int, from uint32) (uint32, bool, error) {
	frames, socks := s.objs.maps["frames"], s.objs.maps["socks"]
	var (
		k, pick bpftypes.RingtraceRtFrameKey
		f, pf   bpftypes.RingtraceRtFrame
		seen    int
		found   bool
		it      = frames.Iterate()
	)
	for it.Next(&k, &f) {
		if k.Sk != sk {
			continue
		}
		st := event.State(f.State)
		if st == event.Sending || st == event.Available {
			seen++
		}
		if !found && st == event.Available && f.TsSeen > since && k.Idx >= from {
			pick, pf, found = k, f, true
		}
	}
	if err := it.Err(); err != nil || !found || seen < taken {
		return 0, false, err
	}
	var ss bpftypes.RingtraceSockState
	if err := socks.Lookup(sk, &ss); err != nil {
		return 0, false, fmt.Errorf("socket %#x: %w", sk, err)
	}
	pf.State, pf.Busy = uint8(event.Sending), 1 // busy: the claim a completion takes
	if err := frames.Update(pick, pf, 0); err != nil {
		return 0, false, fmt.Errorf("frame %d: %w", pick.Idx, err)
	}
	ss.Pending++
	ss.MapSending++
	if err := socks.Update(sk, ss, 0); err != nil {
		return 0, false, fmt.Errorf("socket %#x: %w", sk, err)
	}
	return pick.Idx, true, nil
}

// Sweep runs one sweep now.
func (s *Session) Sweep() (int, error) { return s.sw.run(nil) }

// SockState returns the BPF side's state of socket sk.
func (s *Session) SockState(sk uint64) (bpftypes.RingtraceSockState, error) {
	var ss bpftypes.RingtraceSockState
	err := s.objs.maps["socks"].Lookup(sk, &ss)
	return ss, err
}

// MapEntries counts the entries of one of the session's BPF maps.
func (s *Session) MapEntries(name string) (int, error) {
	m := s.objs.maps[name]
	if m == nil {
		return 0, fmt.Errorf("no map %q", name)
	}
	n := 0
	var k, v []byte
	it := m.Iterate()
	for it.Next(&k, &v) {
		n++
	}
	return n, it.Err()
}

// CallEntry returns the BPF side's call entry of thread tid: the socket of
// its call in progress (0: an idle entry, kept between calls), and whether
// there is one.
func (s *Session) CallEntry(tid uint32) (uint64, bool) {
	var c bpftypes.RingtraceCallState
	if err := s.objs.maps["calls"].Lookup(tid, &c); err != nil {
		return 0, false
	}
	return c.Sk, true
}

// CallsInProgress counts the call entries of calls in progress: a live
// thread's idle entry (kept between its calls, deleted at its exit) is
// not one.
func (s *Session) CallsInProgress() (int, error) {
	n := 0
	var tid uint32
	var c bpftypes.RingtraceCallState
	it := s.objs.maps["calls"].Iterate()
	for it.Next(&tid, &c) {
		if c.Sk != 0 {
			n++
		}
	}
	return n, it.Err()
}

// DescribeSockets lists the sockets the BPF side tracks and their frames'
// states, for a failing test's log.
func (s *Session) DescribeSockets() []string {
	var out []string
	var sk uint64
	var ss bpftypes.RingtraceSockState
	it := s.objs.maps["socks"].Iterate()
	for it.Next(&sk, &ss) {
		states := map[uint8]int{}
		var k bpftypes.RingtraceRtFrameKey
		var f bpftypes.RingtraceRtFrame
		fit := s.objs.maps["frames"].Iterate()
		for fit.Next(&k, &f) {
			if k.Sk == sk && uint64(k.Ino) == ss.Ino {
				states[f.State]++
			}
		}
		out = append(out, fmt.Sprintf("socket %#x ino %d pid %d tracked %d n %d map_sending %d pending %d gone_ts %d: frame states %v",
			sk, ss.Ino, ss.Pid, ss.Tracked, ss.N, ss.MapSending, ss.Pending, ss.GoneTs, states))
	}
	var tid uint32
	var c bpftypes.RingtraceCallState
	cit := s.objs.maps["calls"].Iterate()
	for cit.Next(&tid, &c) {
		out = append(out, fmt.Sprintf("call of tid %d on socket %#x", tid, c.Sk))
	}
	return out
}

// The pipeline's replay harness (replay_test.go), for the external
// benchmark and test that feed it to tracer/live's sinks: tracer/live
// imports this package, so they cannot be in it.
type (
	Replay         = replay
	PipelineRunner = runner
)

// HeldEvents is how many events the runner keeps in the reorder buffer.
const HeldEvents = heldEvents

// LoadReplay is loadReplay.
func LoadReplay(tb testing.TB, jitter int) *Replay { return loadReplay(tb, jitter) }

// Names name the recordings' drop reasons and this kernel's symbols.
func (rp *replay) Names() event.Names { return rp.names }

// Len is the number of records in one round.
func (rp *replay) Len() int { return len(rp.tmpl) }

// Next is next.
func (rp *replay) Next() ([]byte, uint64) { return rp.next() }

// NewPipelineRunner is newRunner.
func NewPipelineRunner(rp *Replay, sink Sink) *PipelineRunner { return newRunner(rp, sink) }

// Run feeds n more records and delivers what is due.
func (r *runner) Run(tb testing.TB, n int) { r.run(tb, n) }

// Finish delivers everything still held.
func (r *runner) Finish(tb testing.TB) { r.finish(tb) }

// Stats are the counters of the runner's session.
func (r *runner) Stats() Stats { return r.s.stats }

// ResetStats zeroes the counters.
func (r *runner) ResetStats() { r.s.stats = Stats{PerKind: map[event.Kind]uint64{}} }

// SkbCache reports whether the session's xmit hooks cache skb -> frame
// (rt_config.skb_cache), and whether one has done so since it began (the
// BPF global skbs_used).
func (s *Session) SkbCache() (on, used bool, err error) {
	on = needSkbCache(s.o.Plan.Config, EventMask(s.o.Kinds))
	spec, err := bpfobj.LoadRingtrace()
	if err != nil {
		return on, false, err
	}
	v := spec.Variables["skbs_used"]
	if v == nil {
		return on, false, fmt.Errorf("the BPF object has no skbs_used")
	}
	m := s.objs.maps[v.SectionName]
	if m == nil {
		return on, false, fmt.Errorf("no map %s", v.SectionName)
	}
	buf := make([]byte, m.ValueSize())
	if err := m.Lookup(uint32(0), buf); err != nil {
		return on, false, fmt.Errorf("read %s: %w", v.SectionName, err)
	}
	return on, binary.NativeEndian.Uint32(buf[v.Offset:]) != 0, nil
}
