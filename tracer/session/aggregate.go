package session

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/ringtrace/ringtrace/tracer/bpfobj/bpftypes"
	"github.com/ringtrace/ringtrace/tracer/event"
)

// SockKey names a traced socket: its address, told apart from a later
// socket at the same address by its inode.
type SockKey struct {
	Sk  uint64
	Ino uint32
}

// Aggregates reads what the kernel counted per socket in Aggregate mode,
// summed over CPUs: the sockets still open (Run handed the closed ones'
// counts to its ClosedSink), and any closed one whose SockGone event was
// lost.
func (s *Session) Aggregates() (map[SockKey]bpftypes.RingtraceRtSockAgg, error) {
	out := map[SockKey]bpftypes.RingtraceRtSockAgg{}
	var k bpftypes.RingtraceRtAggKey
	var per []bpftypes.RingtraceRtSockAgg
	it := s.objs.maps["aggs"].Iterate()
	for it.Next(&k, &per) {
		sk := SockKey{k.Sk, uint32(k.Ino)}
		out[sk] = addAgg(out[sk], per)
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read frame aggregates: %w", err)
	}
	for k, a := range out {
		out[k] = untear(a)
	}
	return out, nil
}

// untear mends what a read of a live socket's aggregates can tear. The
// kernel copies the per-CPU values one CPU after the other, each a field
// after the other, while the hooks keep counting: a frame sent and
// completed while the copy is between sent and the completion counts is
// seen completed but not sent. Every frame counted complete was sent (sent
// only drops by a rollback, before its frame is sent again), so the frames
// sent are at least those completed: the next read counts the ones missed.
func untear(a bpftypes.RingtraceRtSockAgg) bpftypes.RingtraceRtSockAgg {
	if done := a.CompletedExact + a.CompletedBounded; int64(a.Sent-done) < 0 {
		a.Sent = done
	}
	return a
}

// addAgg adds per-CPU aggregates to sum.
func addAgg(sum bpftypes.RingtraceRtSockAgg, per []bpftypes.RingtraceRtSockAgg) bpftypes.RingtraceRtSockAgg {
	for _, a := range per {
		sum.Sent += a.Sent
		sum.CompletedExact += a.CompletedExact
		sum.CompletedBounded += a.CompletedBounded
		sum.UnseenSending += a.UnseenSending
		sum.InflightCount += a.InflightCount
		sum.InflightSum += a.InflightSum
		sum.InflightMax = max(sum.InflightMax, a.InflightMax)
		for i, n := range a.Hist {
			sum.Hist[i] += n
		}
	}
	return sum
}

// takeAggregate moves a closed socket's aggregates from the kernel's map
// to sink.
func (s *Session) takeAggregate(k SockKey, sink ClosedSink) error {
	m := s.objs.maps["aggs"]
	key := bpftypes.RingtraceRtAggKey{Sk: k.Sk, Ino: uint64(k.Ino)}
	var per []bpftypes.RingtraceRtSockAgg
	if err := m.Lookup(key, &per); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil
		}
		return fmt.Errorf("read the aggregates of a closed socket: %w", err)
	}
	if err := m.Delete(key); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("delete the aggregates of a closed socket: %w", err)
	}
	return sink.Closed(k, addAgg(bpftypes.RingtraceRtSockAgg{}, per))
}

// Sending is a frame the kernel tracks as SENDING.
type Sending struct {
	Sock  SockKey
	Frame uint32
	Since uint64 // when it became SENDING (bpf_ktime_get_ns)
}

// StillSending lists the frames the kernel tracks as SENDING now: at the end
// of a trace, the frames still in flight (in Aggregate mode no event says
// so).
func (s *Session) StillSending() ([]Sending, error) {
	if s.o.Plan.Config.CallsOnly {
		return s.pastFrontier()
	}
	var out []Sending
	var k bpftypes.RingtraceRtFrameKey
	var f bpftypes.RingtraceRtFrame
	it := s.objs.maps["frames"].Iterate()
	for it.Next(&k, &f) {
		if event.State(f.State) == event.Sending {
			out = append(out, Sending{Sock: SockKey{k.Sk, k.Ino}, Frame: k.Idx, Since: f.TsSending})
		}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read frame states: %w", err)
	}
	// And those in the sockets' ranges of frame_slots.
	var sk uint64
	var ss bpftypes.RingtraceSockState
	sit := s.objs.maps["socks"].Iterate()
	for sit.Next(&sk, &ss) {
		if ss.Slots == 0 || ss.MapSending <= 0 {
			continue
		}
		key := SockKey{sk, uint32(ss.Ino)}
		err := s.slotFrames(ss, func(idx uint32, f *bpftypes.RingtraceRtFrame) {
			if event.State(f.State) == event.Sending {
				out = append(out, Sending{Sock: key, Frame: idx, Since: f.TsSending})
			}
		})
		if err != nil {
			return nil, err
		}
	}
	if err := sit.Err(); err != nil {
		return nil, fmt.Errorf("read socket states: %w", err)
	}
	return out, nil
}

// pastFrontier lists, with --detail calls, the frames each socket took
// that its completion frontier has not passed: oldest first from the
// frontier, since (at the latest) the socket's last call.
func (s *Session) pastFrontier() ([]Sending, error) {
	var out []Sending
	var sk uint64
	var ss bpftypes.RingtraceSockState
	it := s.objs.maps["socks"].Iterate()
	for it.Next(&sk, &ss) {
		if ss.Tracked == 0 || ss.N == 0 || ss.TakenTotal <= ss.DoneTotal {
			continue
		}
		n := min(ss.TakenTotal-ss.DoneTotal, uint64(ss.N))
		for i := range n {
			idx := uint32((uint64(ss.FrontierBase) + ss.DoneTotal + i) % uint64(ss.N))
			out = append(out, Sending{Sock: SockKey{sk, uint32(ss.Ino)}, Frame: idx, Since: ss.LastTs})
		}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read socket states: %w", err)
	}
	return out, nil
}

// SockState is what the kernel side holds of a traced socket now.
type SockState struct {
	PID       uint32
	Frames    uint32 // ring size (0: no ring seen yet)
	TPVersion int    // TPACKET_V1 = 1, V2 = 2, V3 = 3 (0: unknown)
	// Pending is the frames the events counted SENDING; Sending those
	// the frames map holds SENDING (the sweep re-reads them).
	Pending, Sending int32
	Ifname           string
}

// SockStates reads the kernel's state of every traced socket still open.
func (s *Session) SockStates() (map[SockKey]SockState, error) {
	out := map[SockKey]SockState{}
	var sk uint64
	var ss bpftypes.RingtraceSockState
	it := s.objs.maps["socks"].Iterate()
	for it.Next(&sk, &ss) {
		if ss.Tracked == 0 || ss.GoneTs != 0 {
			continue
		}
		st := SockState{PID: ss.Pid, Frames: ss.N, Pending: ss.Pending, Sending: ss.MapSending,
			Ifname: cString(ss.DevName[:])}
		if ss.TpVersion > 0 {
			st.TPVersion = int(ss.TpVersion)
		}
		out[SockKey{sk, uint32(ss.Ino)}] = st
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read socket states: %w", err)
	}
	return out, nil
}

// cString is a NUL-terminated kernel string.
func cString(b []int8) string {
	n := 0
	for n < len(b) && b[n] != 0 {
		n++
	}
	out := make([]byte, n)
	for i := range n {
		out[i] = byte(b[i])
	}
	return string(out)
}
