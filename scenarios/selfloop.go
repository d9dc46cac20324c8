package scenarios

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringtrace/ringtrace/tracer/report"
	"github.com/ringtrace/ringtrace/tracer/txring"
)

// selfLoopTimeout guards the blocking send: on a kernel where the sender's
// own receive queue holds its frames (7.2) sendto would wait forever.
const selfLoopTimeout = 1500 * time.Millisecond

func selfLoopScenario() *Scenario {
	return &Scenario{
		Name:  "self-loop",
		Title: "a TX ring on lo bound to ETH_P_ALL: do the frames come back, or does the sender's own receive queue hold them?",
		Seed: "7.2 (uarg completion): the sending socket is the last receiver of its own looped-back frames and its " +
			"receive queue keeps them with the ring pages attached, so they stay SENDING and a blocking sendto waits " +
			"forever; 6.12.x and older complete them at once. Blocking (guarded by SO_SNDTIMEO), then MSG_DONTWAIT",
		Defaults:   Params{Frames: 32, Size: 100},
		NoNIC:      true,
		StuckAfter: 500 * time.Millisecond,
		Run:        runSelfLoop,
	}
}

func runSelfLoop(ctx context.Context, env *Env) ([]Expectation, error) {
	p := env.Params
	geo := txring.Geometry{Version: txring.V2, Frames: p.Frames + p.Frames%2, FrameSize: 2048, BlockSize: 4096}
	r, err := txring.Open(txring.SocketConfig{Ifname: "lo", NetNS: env.Lab.SenderNS, Protocol: unix.ETH_P_ALL, SndTimeo: selfLoopTimeout}, geo)
	if err != nil {
		return nil, fmt.Errorf("open TX ring on lo: %w", err)
	}
	defer r.Close()
	pkt := frame(p.Size).Build()
	for i := 0; i < r.Frames(); i++ {
		r.Fill(i, pkt)
	}
	n := r.Frames()
	var exps []Expectation

	var c call
	var after txring.Counts
	rep, err := env.Trace(ctx, "blocking", func(ctx context.Context) error {
		request(r, 0, n)
		c = send(r, 0)
		after = r.Count()
		fmt.Fprintf(env.Log, "blocking sendto(%d frames), SO_SNDTIMEO %v = %v after %v; ring %v\n", n, selfLoopTimeout, c, c.took.Round(time.Millisecond), after)
		return nil
	})
	if err != nil {
		return nil, err
	}
	exps = append(exps, selfLoopVerdict("blocking sendto", rep, r, c, after, n*len(pkt),
		c.errno == unix.ETIMEDOUT || c.errno == unix.EINTR))
	exps = append(exps, drained(env, r, "the blocking run"))

	var dc call
	rep, err = env.Trace(ctx, "dontwait", func(ctx context.Context) error {
		request(r, 0, n)
		dc = send(r, unix.MSG_DONTWAIT)
		// Give the frames the time to complete, or to be reported stuck.
		deadline := time.Now().Add(env.s.StuckAfter + 300*time.Millisecond)
		for r.Count().Sending > 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		after = r.Count()
		fmt.Fprintf(env.Log, "MSG_DONTWAIT sendto(%d frames) = %v after %v; ring %v\n", n, dc, dc.took.Round(time.Microsecond), after)
		return nil
	})
	if err != nil {
		return nil, err
	}
	exps = append(exps, selfLoopVerdict("MSG_DONTWAIT sendto", rep, r, dc, after, n*len(pkt), dc.errno == 0 && dc.ret == n*len(pkt)))
	exps = append(exps, drained(env, r, "the MSG_DONTWAIT run"))
	return exps, nil
}

// What the self-loop verdicts say happened (the end of their What; their
// Outcome says it as a value).
const (
	SelfLoopCompleted  = "returned with every frame AVAILABLE, and ringtrace calls nothing stuck"
	SelfLoopDeadlocked = "frames stayed SENDING and ringtrace names the sender's own receive queue as their holder (self-deadlock)"
)

// selfLoopVerdict checks that ringtrace's explanation matches what
// happened: the call returned and every frame reached AVAILABLE (and nothing
// is called stuck), or frames stayed SENDING (the call timed out, or
// returned at once: stuckCall) and ringtrace named the sender's own receive
// queue as the holder of every one of them, and a self-deadlock.
func selfLoopVerdict(what string, rep *report.Report, r *txring.Ring, c call, after txring.Counts, want int, stuckCall bool) Expectation {
	var sending []uint32
	for i, st := range r.Statuses() {
		if st.State() == txring.Sending {
			sending = append(sending, uint32(i))
		}
	}
	self, other := 0, 0
	s := mainSocket(rep)
	for _, st := range rep.Stuck {
		if s == nil || st.Socket != s.Label || st.Released != 0 {
			continue
		}
		if st.Holder.Place == "receive-queue" && st.Holder.Self {
			self++
		} else {
			other++
		}
	}
	deadlock := false
	for _, d := range rep.Diagnoses {
		if d.ID == report.DiagSelfDeadlock {
			deadlock = true
		}
	}
	normal := c.errno == 0 && c.ret == want && after.Available == r.Frames()
	switch {
	case normal:
		e := pass(what+": "+SelfLoopCompleted,
			len(rep.Stuck) == 0 && !deadlock,
			fmt.Sprintf("returned %v, %v; %d stuck frames reported", c, after, len(rep.Stuck)), "no stuck frame, no self-deadlock")
		e.Outcome = OutcomeCompleted
		return e
	case stuckCall && len(sending) > 0:
		e := pass(what+": "+SelfLoopDeadlocked,
			self == len(sending) && other == 0 && deadlock,
			fmt.Sprintf("returned %v; %d frames SENDING, %d named held by the sender's own receive queue, %d elsewhere, self-deadlock diagnosed %v",
				c, len(sending), self, other, deadlock),
			fmt.Sprintf("%d held by its own receive queue, self-deadlock", len(sending)))
		e.Outcome = OutcomeSelfDeadlock
		return e
	}
	return pass(what+": either returned with every frame AVAILABLE, or left them SENDING in its own receive queue", false,
		fmt.Sprintf("returned %v, ring %v", c, after), fmt.Sprintf("%d bytes and every frame AVAILABLE, or a timeout with frames SENDING", want))
}

// drained reads the socket's receive queue empty and checks that every
// frame is AVAILABLE again.
func drained(env *Env, r *txring.Ring, what string) Expectation {
	buf := make([]byte, 4096)
	read := 0
	for {
		_, _, err := unix.Recvfrom(r.FD(), buf, unix.MSG_DONTWAIT)
		if errors.Is(err, unix.EAGAIN) || (err != nil && read > 100000) {
			break
		}
		if err != nil {
			break
		}
		read++
	}
	c := r.WaitAvailable(time.Second)
	fmt.Fprintf(env.Log, "drained %d packets from the socket after %s: %v\n", read, what, c)
	return pass("after "+what+", draining the socket returns every frame to AVAILABLE", c.Available == r.Frames(),
		fmt.Sprintf("read %d packets; %v", read, c), fmt.Sprintf("AVAILABLE=%d", r.Frames()))
}
