package session

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/ringtrace/ringtrace/tracer/bpfobj/bpftypes"
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
	graves *ebpf.Map
	req    *ebpf.Map
	batch  int // frames the program reads per run

	keys    []bpftypes.RingtraceRtFrameKey
	vals    []bpftypes.RingtraceRtFrame
	noBatch bool
}

const sweepChunk = 4096

// checkSockets asks the kernel (without bpf_loop) whether the sockets are
// still open; those closed end with a sock_gone event, and their frame
// entries are left to deleteFrames.
func (w *sweeper) checkSockets(socks []event.FrameRef) error {
	keys := make([]bpftypes.RingtraceRtFrameKey, 0, len(socks))
	for _, s := range socks {
		keys = append(keys, bpftypes.RingtraceRtFrameKey{Sk: s.Sk, Ino: s.Ino})
	}
	return w.request(keys, bpftypes.RingtraceRtSweepKindRT_SWEEP_SOCKS)
}

// dig deletes the frame entries of the sockets the kernel buried (gone,
// with a ring of n frames), where the kernel cannot loop over them itself
// (no bpf_loop).
func (w *sweeper) dig() error {
	var k bpftypes.RingtraceRtAggKey
	var g bpftypes.RingtraceRtGrave
	var dead []bpftypes.RingtraceRtAggKey
	it := w.graves.Iterate()
	for it.Next(&k, &g) {
		// Without bpf_loop no socket has a slot range (g.Slots is 0).
		if err := w.deleteFrames(k.Sk, uint32(k.Ino), g.N); err != nil {
			return err
		}
		dead = append(dead, k)
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read buried sockets: %w", err)
	}
	for _, k := range dead {
		if err := w.graves.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("forget a buried socket: %w", err)
		}
	}
	return nil
}

// deleteFrames deletes the frame entries of a socket that is gone, whose
// ring had n frames.
func (w *sweeper) deleteFrames(sk uint64, ino, n uint32) error {
	keys := make([]bpftypes.RingtraceRtFrameKey, n)
	for i := range keys {
		keys[i] = bpftypes.RingtraceRtFrameKey{Sk: sk, Idx: uint32(i), Ino: ino}
	}
	if _, err := w.frames.BatchDelete(keys, nil); err == nil || errors.Is(err, ebpf.ErrKeyNotExist) {
		return nil
	} else if !errors.Is(err, ebpf.ErrNotSupported) {
		return fmt.Errorf("delete frames of a closed socket: %w", err)
	}
	for _, k := range keys {
		if err := w.frames.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("delete frames of a closed socket: %w", err)
		}
	}
	return nil
}

// request hands keys to the bounded sweep program, a batch per run.
func (w *sweeper) request(keys []bpftypes.RingtraceRtFrameKey, kind bpftypes.RingtraceRtSweepKind) error {
	if w.batch <= 0 || w.batch > len(bpftypes.RingtraceRtSweep{}.Keys) {
		w.batch = len(bpftypes.RingtraceRtSweep{}.Keys)
	}
	for i := 0; i < len(keys); i += w.batch {
		req := bpftypes.RingtraceRtSweep{Kind: uint32(kind)}
		n := copy(req.Keys[:w.batch], keys[i:])
		req.N = uint32(n)
		if err := w.req.Put(uint32(0), &req); err != nil {
			return fmt.Errorf("write sweep request: %w", err)
		}
		if _, err := w.prog.Run(&ebpf.RunOptions{}); err != nil {
			return fmt.Errorf("run sweep program: %w", err)
		}
	}
	return nil
}

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
	var sending []bpftypes.RingtraceRtFrameKey
	if known != nil {
		for _, f := range known {
			sending = append(sending, bpftypes.RingtraceRtFrameKey{Sk: f.Sk, Idx: f.Frame, Ino: f.Ino})
		}
	} else {
		var err error
		if sending, err = w.sendingFrames(); err != nil {
			return 0, err
		}
	}
	if err := w.request(sending, bpftypes.RingtraceRtSweepKindRT_SWEEP_FRAMES); err != nil {
		return 0, err
	}
	return len(sending), nil
}

func (w *sweeper) sendingFrames() ([]bpftypes.RingtraceRtFrameKey, error) {
	var out []bpftypes.RingtraceRtFrameKey
	if !w.noBatch {
		if w.keys == nil {
			w.keys = make([]bpftypes.RingtraceRtFrameKey, sweepChunk)
			w.vals = make([]bpftypes.RingtraceRtFrame, sweepChunk)
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
	var k bpftypes.RingtraceRtFrameKey
	var v bpftypes.RingtraceRtFrame
	it := w.frames.Iterate()
	for it.Next(&k, &v) {
		if event.State(v.State) == event.Sending {
			out = append(out, k)
		}
	}
	return out, it.Err()
}
