package session

import (
	"container/heap"

	"github.com/ringtrace/ringtrace/tracer/event"
)

// reorder releases events in timestamp order. BPF programs on different
// CPUs take their timestamps a little before or after they reserve their
// ring-buffer slot, so the buffer is only nearly ordered; an event is held
// until the watermark (the newest time known to be complete) passes it.
type reorder struct {
	h    evHeap
	last uint64 // timestamp of the last released event
	late uint64 // events that arrived after a later one was released
	seq  uint64
}

type item struct {
	ev  event.Event
	seq uint64 // arrival order breaks timestamp ties
}

type evHeap []item

func (h evHeap) Len() int { return len(h) }
func (h evHeap) Less(i, j int) bool {
	if h[i].ev.TS != h[j].ev.TS {
		return h[i].ev.TS < h[j].ev.TS
	}
	return h[i].seq < h[j].seq
}
func (h evHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *evHeap) Push(x any)   { *h = append(*h, x.(item)) }
func (h *evHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

func (r *reorder) push(e *event.Event) {
	r.seq++
	heap.Push(&r.h, item{ev: *e, seq: r.seq})
}

// release emits, in order, every held event with TS <= watermark.
func (r *reorder) release(watermark uint64, emit func(*event.Event) error) error {
	for len(r.h) > 0 && r.h[0].ev.TS <= watermark {
		it := heap.Pop(&r.h).(item)
		if it.ev.TS < r.last {
			r.late++
		} else {
			r.last = it.ev.TS
		}
		if err := emit(&it.ev); err != nil {
			return err
		}
	}
	return nil
}

func (r *reorder) flush(emit func(*event.Event) error) error {
	return r.release(^uint64(0), emit)
}

func (r *reorder) len() int { return len(r.h) }
