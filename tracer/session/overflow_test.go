package session_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/plan"
	"github.com/ringtrace/ringtrace/tracer/session"
	"github.com/ringtrace/ringtrace/tracer/txring"
)

// TestRingBufferOverflow: with a one-page ring buffer and nobody reading,
// 256 frames produce far more frame events than fit. Every one the kernel
// could not reserve is counted, per kind: received + lost is exactly what
// the frames produced (SENDING and AVAILABLE each), in full records (frame
// events alone) and in short ones (with the call entries that name their
// threads), whose losses count as frame_state's. Besides the kinds asked
// for, only blind windows, which are always streamed, may be lost.
func TestRingBufferOverflow(t *testing.T) {
	needRoot(t)
	for _, tc := range []struct {
		name  string
		kinds []event.Kind
	}{
		{"full records", []event.Kind{event.FrameState}},
		{"short records", []event.Kind{event.FrameState, event.SendmsgEnter}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := options(t, plan.Auto)
			o.Filter, o.Kinds = session.Filter{PID: uint32(os.Getpid())}, tc.kinds
			o.RingBufBytes = uint32(os.Getpagesize())
			sess, err := session.Open(o)
			if err != nil {
				t.Fatal(err)
			}
			defer sess.Close()
			const frames = 256
			sum := sendRing(t, nil, "lo", txring.Options{Count: frames,
				Ring: txring.Geometry{Version: txring.V2, Frames: frames, FrameSize: 2048, BlockSize: 4096}})
			if sum.Frames != frames {
				t.Fatalf("sent %d frames", sum.Frames)
			}
			col := &session.Collector{}
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			if err := sess.Run(ctx, col, nil); err != nil {
				t.Fatal(err)
			}
			st := sess.Stats()
			got := 0 // SENDING and AVAILABLE: the entry's scan adds SEND_REQUEST events
			for _, e := range col.Events() {
				if e.Kind == event.FrameState && e.New != event.SendRequest {
					got++
				}
			}
			lost := st.LostByKind[event.FrameState]
			asked := lost + st.LostByKind[event.SendmsgEnter]
			t.Logf("received %d frame events, %d duplicates, %d lost (%d lost in all, by kind %v)", got, st.Duplicates,
				lost, st.Lost, st.LostByKind)
			if lost == 0 || st.Lost-st.LostByKind[event.Blind] != asked {
				t.Errorf("lost %d frame events of %d lost in all (%v): want frame events lost, and no kind not asked for but blind windows",
					lost, st.Lost, st.LostByKind)
			}
			if total := uint64(got) + st.Duplicates + lost; total != 2*frames {
				t.Errorf("received %d + duplicates %d + lost %d = %d, want exactly %d", got, st.Duplicates, lost, total, 2*frames)
			}
		})
	}
}
