package session

import (
	"github.com/ringtrace/ringtrace/tracer/event"
)

// reorder releases events in timestamp order. BPF programs on different
// CPUs take their timestamps a little before or after they reserve their
// ring-buffer slot, so the buffer is only nearly ordered; an event is held
// until the watermark (the newest time known to be complete) passes it.
//
// Held events live in slots that are reused once released; the queue keeps
// their timestamps in release order (timestamp, then arrival). An event is
// inserted behind the last one not newer than it, searching from the tail:
// for a nearly ordered stream that is an append, and releasing takes from
// the head, so neither costs more than a few comparisons per event.
type reorder struct {
	slots []event.Event
	free  []int32 // indexes of released slots
	q     []held  // q[head:] is waiting, in release order
	head  int
	last  uint64 // timestamp of the last released event
	late  uint64 // events that arrived after a later one was released
}

type held struct {
	ts   uint64
	slot int32
}

// linearSearch is how far back from the tail push looks before it
// searches the queue by bisection.
const linearSearch = 8

// push copies e in.
func (r *reorder) push(e *event.Event) {
	var slot int32
	if n := len(r.free); n > 0 {
		slot = r.free[n-1]
		r.free = r.free[:n-1]
	} else {
		slot = int32(len(r.slots))
		r.slots = append(r.slots, event.Event{})
	}
	r.slots[slot] = *e
	h := held{ts: e.TS, slot: slot}
	n := len(r.q)
	if n == r.head || r.q[n-1].ts <= h.ts {
		r.q = append(r.q, h)
		return
	}
	// Out of order: insert after the last event with ts <= h.ts.
	i := n - 1
	for i > r.head && n-i < linearSearch && r.q[i-1].ts > h.ts {
		i--
	}
	if i > r.head && r.q[i-1].ts > h.ts {
		lo, hi := r.head, i-1 // the answer is in [lo, hi]
		for lo < hi {
			mid := int(uint(lo+hi) >> 1)
			if r.q[mid].ts > h.ts {
				hi = mid
			} else {
				lo = mid + 1
			}
		}
		i = lo
	}
	r.q = append(r.q, held{})
	copy(r.q[i+1:], r.q[i:n])
	r.q[i] = h
}

// release emits, in order, every held event with TS <= watermark. The
// event passed to emit is only valid during the call.
func (r *reorder) release(watermark uint64, emit func(*event.Event) error) error {
	var err error
	for r.head < len(r.q) && r.q[r.head].ts <= watermark {
		h := r.q[r.head]
		r.head++
		if h.ts < r.last {
			r.late++
		} else {
			r.last = h.ts
		}
		err = emit(&r.slots[h.slot])
		r.free = append(r.free, h.slot)
		if err != nil {
			break
		}
	}
	// Keep the queue at the front of its array: drop what was released
	// once that is at least half of it.
	switch {
	case r.head == len(r.q):
		r.q, r.head = r.q[:0], 0
	case r.head >= len(r.q)-r.head:
		n := copy(r.q, r.q[r.head:])
		r.q, r.head = r.q[:n], 0
	}
	return err
}

func (r *reorder) flush(emit func(*event.Event) error) error {
	return r.release(^uint64(0), emit)
}

func (r *reorder) len() int { return len(r.q) - r.head }
