package session

import (
	"fmt"

	"github.com/ringtrace/ringtrace/tracer/bpfobj"
	"github.com/ringtrace/ringtrace/tracer/event"
)

// ForgetCompletion makes the tracer's kernel state look as if the
// completion of one of sk's frames had gone unseen, as when the kernel
// skips a kprobe program: a frame of sk that completed after since (ns)
// is set back to SENDING and the socket's SENDING counts raised. It
// returns the frame's index, and false when no such frame exists yet.
func (s *Session) ForgetCompletion(sk, since uint64) (uint32, bool, error) {
	frames, socks := s.objs.maps["frames"], s.objs.maps["socks"]
	var (
		k  bpfobj.RingtraceRtFrameKey
		f  bpfobj.RingtraceRtFrame
		it = frames.Iterate()
	)
	for it.Next(&k, &f) {
		if k.Sk != sk || event.State(f.State) != event.Available || f.TsSeen <= since {
			continue
		}
		var ss bpfobj.RingtraceSockState
		if err := socks.Lookup(sk, &ss); err != nil {
			return 0, false, fmt.Errorf("socket %#x: %w", sk, err)
		}
		f.State = uint8(event.Sending)
		if err := frames.Update(k, f, 0); err != nil {
			return 0, false, fmt.Errorf("frame %d: %w", k.Idx, err)
		}
		ss.Pending++
		ss.MapSending++
		if err := socks.Update(sk, ss, 0); err != nil {
			return 0, false, fmt.Errorf("socket %#x: %w", sk, err)
		}
		return k.Idx, true, nil
	}
	return 0, false, it.Err()
}

// Sweep runs one sweep now.
func (s *Session) Sweep() (int, error) { return s.sw.run() }

// SockState returns the BPF side's state of socket sk.
func (s *Session) SockState(sk uint64) (bpfobj.RingtraceSockState, error) {
	var ss bpfobj.RingtraceSockState
	err := s.objs.maps["socks"].Lookup(sk, &ss)
	return ss, err
}
