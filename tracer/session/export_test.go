package session

import (
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/cilium/ebpf"

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
	socks := s.objs.maps["socks"]
	var ss bpftypes.RingtraceSockState
	if err := socks.Lookup(sk, &ss); err != nil {
		return 0, false, fmt.Errorf("socket %#x: %w", sk, err)
	}
	entries, err := s.frameEntries(sk, ss)
	if err != nil {
		return 0, false, err
	}
	var (
		pick  frameEntry
		seen  int
		found bool
	)
	for _, e := range entries {
		st := event.State(e.val.State)
		if st == event.Sending || st == event.Available {
			seen++
		}
		if !found && st == event.Available && e.val.TsSeen > since && e.key.Idx >= from {
			pick, found = e, true
		}
	}
	if !found || seen < taken {
		return 0, false, nil
	}
	pick.val.State, pick.val.Busy = uint8(event.Sending), 1 // busy: the claim a completion takes
	if err := s.putFrame(pick); err != nil {
		return 0, false, fmt.Errorf("frame %d: %w", pick.key.Idx, err)
	}
	ss.Pending++
	ss.MapSending++
	if err := socks.Update(sk, ss, 0); err != nil {
		return 0, false, fmt.Errorf("socket %#x: %w", sk, err)
	}
	return pick.key.Idx, true, nil
}

// frameEntry is one frame entry of the BPF side: in the socket's range of
// the frame_slots array (inSlots, at slot) or in the frames hash.
type frameEntry struct {
	key     bpftypes.RingtraceRtFrameKey
	val     bpftypes.RingtraceRtFrame
	inSlots bool
	slot    uint32
}

// frameEntries lists the frame entries of socket sk, whose state is ss.
func (s *Session) frameEntries(sk uint64, ss bpftypes.RingtraceSockState) ([]frameEntry, error) {
	var out []frameEntry
	base, _ := slotRange(ss.Slots)
	err := s.slotFrames(ss, func(i uint32, f *bpftypes.RingtraceRtFrame) {
		out = append(out, frameEntry{key: bpftypes.RingtraceRtFrameKey{Sk: sk, Idx: i, Ino: uint32(ss.Ino)}, val: *f, inSlots: true, slot: base + i})
	})
	if err != nil {
		return nil, err
	}
	var f bpftypes.RingtraceRtFrame
	var k bpftypes.RingtraceRtFrameKey
	it := s.objs.maps["frames"].Iterate()
	for it.Next(&k, &f) {
		if k.Sk == sk && uint64(k.Ino) == ss.Ino {
			out = append(out, frameEntry{key: k, val: f})
		}
	}
	return out, it.Err()
}

// putFrame writes a frame entry back where it lives.
func (s *Session) putFrame(e frameEntry) error {
	if e.inSlots {
		return s.objs.maps["frame_slots"].Update(e.slot, e.val, 0)
	}
	return s.objs.maps["frames"].Update(e.key, e.val, 0)
}

// SlotRange is slotRange.
func SlotRange(slots uint64) (base, span uint32) { return slotRange(slots) }

// FrameEntries counts socket sk's frame entries by state, in its slot
// range and in the frames hash.
func (s *Session) FrameEntries(sk uint64) (inSlots, inHash map[event.State]int, err error) {
	ss, err := s.SockState(sk)
	if err != nil {
		return nil, nil, err
	}
	entries, err := s.frameEntries(sk, ss)
	inSlots, inHash = map[event.State]int{}, map[event.State]int{}
	for _, e := range entries {
		if e.inSlots {
			inSlots[event.State(e.val.State)]++
		} else {
			inHash[event.State(e.val.State)]++
		}
	}
	return inSlots, inHash, err
}

// FrameSlots is the size of the session's frame_slots array
// (rt_config.frame_slots): 0 where frame entries are in the frames hash.
func (s *Session) FrameSlots() uint32 { return frameSlots(s.o.Plan, s.o.MaxFrames) }

// FrameSlotsInUse is how many slots the sockets' ranges hold: those taken
// from the array (the BPF global slots_next) less those in free ranges
// (free_slots, popped and pushed back in order).
func (s *Session) FrameSlotsInUse() (int, error) {
	next, err := s.global("slots_next", 8)
	if err != nil {
		return 0, err
	}
	q := s.objs.maps["free_slots"]
	var free []uint64
	for {
		var v uint64
		if err := q.LookupAndDelete(nil, &v); err != nil {
			if errors.Is(err, ebpf.ErrKeyNotExist) {
				break
			}
			return 0, fmt.Errorf("pop free_slots: %w", err)
		}
		free = append(free, v)
	}
	inUse := int(next)
	for _, v := range free {
		_, span := SlotRange(v)
		inUse -= int(span)
		if err := q.Update(nil, v, ebpf.UpdateAny); err != nil {
			return 0, fmt.Errorf("push free_slots: %w", err)
		}
	}
	return inUse, nil
}

// global reads a BPF global of size bytes (4 or 8) from its section's map.
func (s *Session) global(name string, size int) (uint64, error) {
	spec, err := bpfobj.LoadRingtrace()
	if err != nil {
		return 0, err
	}
	v := spec.Variables[name]
	if v == nil {
		return 0, fmt.Errorf("the BPF object has no %s", name)
	}
	m := s.objs.maps[v.SectionName]
	if m == nil {
		return 0, fmt.Errorf("no map %s", v.SectionName)
	}
	buf := make([]byte, m.ValueSize())
	if err := m.Lookup(uint32(0), buf); err != nil {
		return 0, fmt.Errorf("read %s: %w", v.SectionName, err)
	}
	if size == 4 {
		return uint64(binary.NativeEndian.Uint32(buf[v.Offset:])), nil
	}
	return binary.NativeEndian.Uint64(buf[v.Offset:]), nil
}

// Sweep runs one sweep now.
func (s *Session) Sweep() (int, error) { return s.sw.run(nil) }

// SockByIno finds the address of the socket the BPF side tracks whose inode
// is ino.
func (s *Session) SockByIno(ino uint64) (uint64, bool) {
	var sk uint64
	var ss bpftypes.RingtraceSockState
	it := s.objs.maps["socks"].Iterate()
	for it.Next(&sk, &ss) {
		if ss.Ino == ino {
			return sk, true
		}
	}
	return 0, false
}

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
		entries, err := s.frameEntries(sk, ss)
		for _, e := range entries {
			states[e.val.State]++
		}
		out = append(out, fmt.Sprintf("socket %#x ino %d pid %d tracked %d n %d slots %#x map_sending %d pending %d gone_ts %d: frame states %v (%v)",
			sk, ss.Ino, ss.Pid, ss.Tracked, ss.N, ss.Slots, ss.MapSending, ss.Pending, ss.GoneTs, states, err))
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
	v, err := s.global("skbs_used", 4)
	return on, v != 0, err
}
