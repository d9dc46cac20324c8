package session

import (
	"encoding/binary"
	"fmt"

	"github.com/ringtrace/ringtrace/tracer/bpfobj/bpftypes"
	"github.com/ringtrace/ringtrace/tracer/plan"
)

// frameSlots is the size of the frame_slots array: maxFrames rounded up to
// a power of two (a socket's range is one), or 0 where frame entries stay
// in the frames hash. Taking and returning ranges needs cmpxchg, and the
// walks that clean up after a socket need bpf_loop; with --detail calls
// almost no frame has an entry.
func frameSlots(p *plan.Plan, maxFrames uint32) uint32 {
	if !p.Config.UseLoop || !p.Config.Claims || p.Config.CallsOnly || maxFrames == 0 || maxFrames > 1<<30 {
		return 0
	}
	n := uint32(1)
	for n < maxFrames {
		n <<= 1
	}
	return n
}

// slotRange is the first slot and the size of a socket's range of
// frame_slots (sock_state.slots: class << 32 | first slot + 1); 0, 0 for
// none.
func slotRange(slots uint64) (base, span uint32) {
	if slots == 0 {
		return 0, 0
	}
	return uint32(slots) - 1, 1 << (slots >> 32 & 31)
}

// slotFrames reads the frame entries socket state ss holds in its range of
// frame_slots, from the array's memory (no syscall per slot), and calls fn
// with each one the socket owns, by frame index.
func (s *Session) slotFrames(ss bpftypes.RingtraceSockState, fn func(idx uint32, f *bpftypes.RingtraceRtFrame)) error {
	base, span := slotRange(ss.Slots)
	if span == 0 {
		return nil
	}
	m := s.objs.maps["frame_slots"]
	mem, err := m.Memory()
	if err != nil {
		return fmt.Errorf("map frame_slots: %w", err)
	}
	size := (m.ValueSize() + 7) &^ 7 // array values sit on 8-byte boundaries
	buf := make([]byte, span*size)
	if _, err := mem.ReadAt(buf, int64(base)*int64(size)); err != nil {
		return fmt.Errorf("read slots %d+%d: %w", base, span, err)
	}
	frames := make([]bpftypes.RingtraceRtFrame, span)
	if n := binary.Size(frames[0]); n != int(size) {
		return fmt.Errorf("frame_slots holds %d-byte slots, struct rt_frame decodes %d bytes", size, n)
	}
	if _, err := binary.Decode(buf, binary.NativeEndian, frames); err != nil {
		return fmt.Errorf("decode slots %d+%d: %w", base, span, err)
	}
	for i := range frames {
		if uint64(frames[i].SockIno) == ss.Ino&0xffffffff {
			fn(uint32(i), &frames[i])
		}
	}
	return nil
}
