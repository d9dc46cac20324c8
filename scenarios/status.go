package scenarios

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringtrace/ringtrace/tracer/report"
	"github.com/ringtrace/ringtrace/tracer/txring"
)

func statusScenario() *Scenario {
	return &Scenario{
		Name:  "status",
		Title: "the frame state machine: 2 frames, MSG_DONTWAIT, loop until the queue is empty",
		Seed: "reference session 1: each frame goes SEND_REQUEST(1) -> SENDING(2) -> AVAILABLE(0); " +
			"the first sendto returns the bytes of both frames, the next returns 0; the destructor runs " +
			"asynchronously per frame, pending 2 -> 1 -> 0; the kernel resumes at its private head",
		// A 1 Mbit/s link whose bucket two earlier frames have just emptied:
		// both ring frames wait on the wire, as behind a busy NIC.
		Defaults: Params{Rate: 1e6, FifoLimit: 50, Frames: 2, Size: 1500},
		Run:      runStatus,
	}
}

func runStatus(ctx context.Context, env *Env) ([]Expectation, error) {
	p := env.Params
	n := p.Frames
	r, err := env.openRing(2 * n) // a bigger ring shows the head moving
	if err != nil {
		return nil, err
	}
	defer r.Close()
	// The filler socket stays open until the end: closing a packet socket
	// waits for an RCU grace period (~10 ms), long enough for the link to
	// earn back a frame's worth of tokens.
	filler, err := txring.OpenSocket(txring.SocketConfig{Ifname: env.Lab.SenderIf, NetNS: env.Lab.SenderNS})
	if err != nil {
		return nil, err
	}
	defer filler.Close()
	var calls []call
	rep, err := env.Trace(ctx, "", func(ctx context.Context) error {
		if err := fillLink(filler, frame(p.Size).Build(), 2); err != nil {
			return err
		}
		request(r, 0, n)
		c := send(r, unix.MSG_DONTWAIT)
		calls = append(calls, c)
		fmt.Fprintf(env.Log, "sendto #1 = %v\n", c)
		// Loop until the queue is empty: call again until it returns 0.
		for c.ret > 0 && len(calls) < 100 {
			c = send(r, unix.MSG_DONTWAIT)
			calls = append(calls, c)
			fmt.Fprintf(env.Log, "sendto #%d = %v\n", len(calls), c)
		}
		r.WaitAvailable(5 * time.Second)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return statusExpectations(rep, calls, n, p), nil
}

// fillLink sends k full frames from a plain packet socket so the emulated
// NIC's token bucket is empty when the scenario's frames arrive.
func fillLink(s *txring.Socket, pkt []byte, k int) error {
	for i := 0; i < k; i++ {
		if _, err := s.SendPacket(pkt, 0); err != nil {
			return fmt.Errorf("fill the link: %w", err)
		}
	}
	return nil
}

func statusExpectations(rep *report.Report, calls []call, n int, p Params) []Expectation {
	var exps []Expectation
	s := mainSocket(rep)
	if s == nil {
		return []Expectation{pass("the tracer saw the sender's socket", false, "no socket", "one")}
	}
	// Each frame: SEND_REQUEST -> SENDING -> AVAILABLE.
	for i := 0; i < n; i++ {
		got := lifecycle(s, uint32(i))
		exps = append(exps, pass(fmt.Sprintf("frame %d goes SEND_REQUEST -> SENDING -> AVAILABLE", i),
			got == "SEND_REQUEST>SENDING>AVAILABLE", got, "SEND_REQUEST>SENDING>AVAILABLE"))
	}
	want := n * p.Size
	first := "none"
	if len(calls) > 0 {
		first = calls[0].String()
	}
	exps = append(exps, pass("the first sendto returns the bytes of all frames", len(calls) > 0 && calls[0].ret == want,
		first, fmt.Sprint(want)))
	last := "none"
	if len(calls) > 1 {
		last = calls[len(calls)-1].String()
	}
	exps = append(exps, pass("the next sendto returns 0 (loop until queue empty)", len(calls) > 1 && calls[len(calls)-1].ret == 0 && calls[len(calls)-1].errno == 0,
		last, "0"))
	traced := returnsOf(s)
	exps = append(exps, pass("the tracer saw the same returns", fmt.Sprint(traced) == fmt.Sprint(userReturns(calls)),
		fmt.Sprint(traced), fmt.Sprint(userReturns(calls))))
	// pending 2 -> 1 -> 0 as the destructor runs per frame.
	pend := append([]int32{peakPending(s)}, pendingAtCompletions(s)...)
	wantPend := fmt.Sprint(append([]int32{int32(n)}, countdown(n)...))
	exps = append(exps, pass("pending rises to every frame, then counts down as each completes", fmt.Sprint(pend) == wantPend,
		fmt.Sprint(pend), wantPend))
	// Completions are asynchronous: after the call returned.
	if len(s.Calls) > 0 && s.Calls[0].Return != 0 {
		ret := s.Calls[0].Return
		after := 0
		for _, rd := range s.Rounds {
			if rd.Done && rd.Available > ret {
				after++
			}
		}
		exps = append(exps, pass("frames complete after sendto returned (asynchronous destructor)", after == n,
			fmt.Sprintf("%d of %d", after, n), fmt.Sprint(n)))
		exps = append(exps, pass("the kernel resumes at its private head", s.Calls[0].ReturnScan.Head == uint32(n),
			fmt.Sprintf("head %d -> %d", s.Calls[0].EntryScan.Head, s.Calls[0].ReturnScan.Head), fmt.Sprintf("head 0 -> %d", n)))
	}
	// Physics: one frame's wire time between the completions.
	if ts := completionTimes(s); len(ts) >= 2 {
		gap := ts[len(ts)-1] - ts[len(ts)-2]
		wire := float64(p.Size*8) / float64(p.Rate) * 1e9
		exps = append(exps, within("completions are one frame's wire time apart", float64(gap), wire, 0.25))
	}
	return exps
}

// lifecycle is frame f's sequence of states over the trace.
func lifecycle(s *report.Socket, f uint32) string {
	out := ""
	for _, rd := range s.Rounds {
		if rd.Frame != f {
			continue
		}
		for _, t := range rd.Transitions {
			if out != "" {
				out += ">"
			}
			out += t.To.String()
		}
	}
	return out
}

func returnsOf(s *report.Socket) []int64 {
	var r []int64
	for _, c := range s.Calls {
		r = append(r, c.Ret)
	}
	return r
}

func userReturns(calls []call) []int64 {
	var r []int64
	for _, c := range calls {
		if c.errno != 0 {
			r = append(r, -int64(c.errno))
		} else {
			r = append(r, int64(c.ret))
		}
	}
	return r
}

func countdown(n int) []int32 {
	var c []int32
	for i := n - 1; i >= 0; i-- {
		c = append(c, int32(i))
	}
	return c
}

// pendingAtCompletions is the socket's pending count right after each
// frame's final AVAILABLE.
func pendingAtCompletions(s *report.Socket) []int32 {
	var ts []uint64
	for _, rd := range s.Rounds {
		if rd.Done {
			ts = append(ts, rd.Available)
		}
	}
	var out []int32
	for _, t := range sortedU64(ts) {
		for _, p := range s.Series {
			if p.TS == t {
				out = append(out, p.Pending)
				break
			}
		}
	}
	return out
}

// peakPending is the highest pending count before the first completion.
func peakPending(s *report.Socket) int32 {
	first := uint64(0)
	if ts := completionTimes(s); len(ts) > 0 {
		first = ts[0]
	}
	var peak int32
	for _, p := range s.Series {
		if (first == 0 || p.TS < first) && p.Pending > peak {
			peak = p.Pending
		}
	}
	return peak
}

func completionTimes(s *report.Socket) []uint64 {
	var ts []uint64
	for _, rd := range s.Rounds {
		if rd.Done {
			ts = append(ts, rd.Available)
		}
	}
	return sortedU64(ts)
}

// mainSocket is the socket that sent the most frames.
func mainSocket(rep *report.Report) *report.Socket {
	var best *report.Socket
	for _, s := range rep.Sockets {
		if best == nil || len(s.Rounds) > len(best.Rounds) {
			best = s
		}
	}
	return best
}
