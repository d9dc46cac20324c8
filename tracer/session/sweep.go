package session

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/ringtrace/ringtrace/tracer/bpfobj"
	"github.com/ringtrace/ringtrace/tracer/event"
)

// sweeper has the sweep program re-read the status words of the frames
// the BPF side last saw SENDING: a frame whose completion no hook saw
// (orphaned without a tracepoint, uarg pages copied out, a skipped kprobe)
// is reported as AVAILABLE, bounded by the previous read.
//
// With walk set the program finds those frames itself. Otherwise (kernels
// before 5.17) user space names them: the frames the events delivered so
// far hold SENDING, when the caller knows them. Listing the frames map
// instead (aggregating traces stream no frame events) is the last resort:
// while such a map syscall runs, and while its task is preempted inside it,
// the kernel runs no kprobe or perf-tracepoint program on that CPU. Measured
// on 5.10 class B under TCG (call-return, 1024 frames): listing every 20 ms
// made tpacket_destruct_skb's kprobe skip 1.7-2.5 % of the completions.
type sweeper struct {
	prog   *ebpf.Program
	walk   bool
	frames *ebpf.Map
	req    *ebpf.Map
	batch  int // frames the program reads per run

	keys    []bpfobj.RingtraceRtFrameKey
	vals    []bpfobj.RingtraceRtFrame
	noBatch bool
}

const sweepChunk = 4096

// run returns how many frames the kernel re-read. known, when not nil,
// names the frames to re-read (without bpf_loop).
func (w *sweeper) run(known []event.FrameRef) (int, error) {
	if w.walk {
		n, err := w.prog.Run(&ebpf.RunOptions{})
		if err != nil {
			return 0, fmt.Errorf("run sweep program: %w", err)
		}
		return int(n), nil
	}
	var sending []bpfobj.RingtraceRtFrameKey
	if known != nil {
		for _, f := range known {
			sending = append(sending, bpfobj.RingtraceRtFrameKey{Sk: f.Sk, Idx: f.Frame})
		}
	} else {
		var err error
		if sending, err = w.sendingFrames(); err != nil {
			return 0, err
		}
	}
	if w.batch <= 0 || w.batch > len(bpfobj.RingtraceRtSweep{}.Keys) {
		w.batch = len(bpfobj.RingtraceRtSweep{}.Keys)
	}
	for i := 0; i < len(sending); i += w.batch {
		var req bpfobj.RingtraceRtSweep
		n := copy(req.Keys[:w.batch], sending[i:])
		req.N = uint32(n)
		if err := w.req.Put(uint32(0), &req); err != nil {
			return 0, fmt.Errorf("write sweep request: %w", err)
		}
		if _, err := w.prog.Run(&ebpf.RunOptions{}); err != nil {
			return 0, fmt.Errorf("run sweep program: %w", err)
		}
	}
	return len(sending), nil
}

func (w *sweeper) sendingFrames() ([]bpfobj.RingtraceRtFrameKey, error) {
	var out []bpfobj.RingtraceRtFrameKey
	if !w.noBatch {
		if w.keys == nil {
			w.keys = make([]bpfobj.RingtraceRtFrameKey, sweepChunk)
			w.vals = make([]bpfobj.RingtraceRtFrame, sweepChunk)
		}
		var cursor ebpf.MapBatchCursor
		for {
			n, err := w.frames.BatchLookup(&cursor, w.keys, w.vals, nil)
			for i := 0; i < n; i++ {
				if event.State(w.vals[i].State) == event.Sending {
					out = append(out, w.keys[i])
				}
			}
			if errors.Is(err, ebpf.ErrKeyNotExist) {
				return out, nil
			}
			if errors.Is(err, ebpf.ErrNotSupported) {
				w.noBatch = true
				out = out[:0]
				break
			}
			if err != nil {
				return nil, fmt.Errorf("read frames map: %w", err)
			}
		}
	}
	var k bpfobj.RingtraceRtFrameKey
	var v bpfobj.RingtraceRtFrame
	it := w.frames.Iterate()
	for it.Next(&k, &v) {
		if event.State(v.State) == event.Sending {
			out = append(out, k)
		}
	}
	return out, it.Err()
}
