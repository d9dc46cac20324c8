// Package verify proves an attach plan's promises on the running kernel
// (`ringtrace probe --verify`). In a throwaway lab it sends a handful of
// frames from private TX rings (a veth and lo; blocking and MSG_DONTWAIT;
// the qdisc path and PACKET_QDISC_BYPASS; a qdisc that drops; frames a
// receive queue keeps), traces them with the plan this kernel gets, and
// compares each logical event's promise (exact or bounded) with what the
// trace saw. A kernel that changed under the tracer shows up here as a
// broken promise instead of as quietly guessed timelines.
package verify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/cilium/ebpf/btf"
	"golang.org/x/sys/unix"

	"github.com/ringtrace/ringtrace/scenarios/lab"
	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/kernel"
	"github.com/ringtrace/ringtrace/tracer/plan"
	"github.com/ringtrace/ringtrace/tracer/session"
	"github.com/ringtrace/ringtrace/tracer/txring"
)

// Options configure Run.
type Options struct {
	Facts *kernel.Facts
	BTF   *btf.Spec
	Plan  *plan.Plan
	// Log gets one line per case (nil: discarded).
	Log io.Writer
}

// sndTimeo bounds every blocking sendto: a kernel whose frames never
// complete must not hang the verification.
const sndTimeo = time.Second

// settle is how long completions that follow a sendto's return (a
// MSG_DONTWAIT call, a receive queue drained) get to land.
const settle = 500 * time.Millisecond

// spec is one case.
type spec struct {
	name     string
	lo       bool
	version  txring.Version
	frames   int
	bypass   bool
	dontwait bool
	drop     bool   // every frame dropped at the qdisc (run last: it changes the lab's qdisc)
	protocol uint16 // ETH_P_ALL: the socket receives its own looped-back frames
}

var cases = []spec{
	{name: "veth-blocking", version: txring.V2, frames: 8},
	{name: "veth-dontwait", version: txring.V3, frames: 8, dontwait: true},
	{name: "veth-bypass", version: txring.V2, frames: 8, bypass: true},
	{name: "lo-blocking", lo: true, version: txring.V2, frames: 4},
	{name: "lo-dontwait", lo: true, version: txring.V3, frames: 4, dontwait: true},
	// The sender is the last receiver of its own frames: kernels that keep
	// the ring pages attached in its receive queue (7.2) hold them until
	// it reads the queue.
	{name: "receive-queue", lo: true, version: txring.V2, frames: 2, dontwait: true, protocol: unix.ETH_P_ALL},
	{name: "qdisc-drop", version: txring.V2, frames: 1, dontwait: true, drop: true},
}

// Run verifies o.Plan on this kernel. Errors are failures to set up or to
// trace; broken promises are in the Result.
func Run(ctx context.Context, o Options) (*Result, error) {
	start := time.Now()
	if o.Log == nil {
		o.Log = io.Discard
	}
	l, err := lab.New(lab.Config{SenderIf: "rtv-tx", PeerIf: "rtv-rx"})
	if err != nil {
		return nil, fmt.Errorf("verify: lab: %w", err)
	}
	defer l.Close()
	pid := uint32(os.Getpid())
	sess, err := session.Open(session.Options{Facts: o.Facts, BTF: o.BTF, Plan: o.Plan, Filter: session.Filter{PID: pid}})
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	defer sess.Close()
	col := &session.Collector{}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- sess.Run(runCtx, col, nil) }()

	var sends []Send
	for _, c := range cases {
		if ctx.Err() != nil {
			break
		}
		s := c.run(l)
		fmt.Fprintf(o.Log, "verify: %-14s rets %v, %d of %d frames AVAILABLE again%s%s\n", s.Case, s.Rets, len(s.Completed), s.NFrames,
			map[bool]string{true: fmt.Sprintf(", %d held by a receive queue until drained", s.Held)}[s.Held > 0],
			map[bool]string{true: ": " + s.Error}[s.Error != ""])
		sends = append(sends, s)
	}
	cancel()
	if err := <-done; err != nil {
		return nil, fmt.Errorf("verify: trace: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	res := Judge(o.Plan, sends, col.Events(), pid)
	if st := sess.Stats(); st.Lost > 0 {
		res.OK = false
		res.Broken = append(res.Broken, fmt.Sprintf("the trace lost %d events", st.Lost))
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// run sends the case's frames and waits for them to complete.
func (c spec) run(l *lab.Lab) (s Send) {
	s = Send{Case: c.name, Lo: c.lo, Bypass: c.bypass, Drop: c.drop, NFrames: c.frames, Completed: map[uint32]bool{}}
	fail := func(err error) Send { s.Error = err.Error(); return s }
	ifname := l.SenderIf
	if c.lo {
		ifname = "lo"
	}
	if c.drop {
		if err := l.DropAll(); err != nil {
			return fail(err)
		}
	}
	r, err := txring.Open(txring.SocketConfig{Ifname: ifname, NetNS: l.SenderNS, Protocol: c.protocol, QdiscBypass: c.bypass, SndTimeo: sndTimeo},
		txring.Geometry{Version: c.version, Frames: c.frames + c.frames%2, FrameSize: 2048, BlockSize: 4096})
	if err != nil {
		return fail(err)
	}
	defer r.Close()
	var st unix.Stat_t
	if err := unix.Fstat(r.FD(), &st); err == nil {
		s.Ino = uint32(st.Ino)
	}
	pkt := txring.FrameSpec{Dst: txring.BroadcastMAC, EtherType: txring.EtherTypeLocalExp1, Size: 100}.Build()
	for i := 0; i < c.frames; i++ {
		r.Fill(i, pkt)
		r.SetStatus(i, txring.SendRequest)
		s.Frames = append(s.Frames, uint32(i))
	}
	flags := 0
	if c.dontwait {
		flags = unix.MSG_DONTWAIT
	}
	s.Start = event.MonotonicNow()
	// As the reference "status" session: send, and with MSG_DONTWAIT call
	// again until the kernel has nothing left to take.
	for i := 0; i < 4; i++ {
		n, err := r.Send(flags)
		var errno unix.Errno
		switch {
		case err == nil:
			s.Rets = append(s.Rets, int64(n))
		case errors.As(err, &errno):
			s.Rets = append(s.Rets, -int64(errno))
		default:
			return fail(err)
		}
		if !c.dontwait || n <= 0 || c.drop {
			break
		}
	}
	if c.drop {
		if len(s.Rets) != 1 || s.Rets[0] != -int64(unix.ENOBUFS) {
			return fail(fmt.Errorf("sendto into a dropping qdisc returned %v, want -ENOBUFS", s.Rets))
		}
	}
	counts := r.WaitAvailable(settle / 5)
	if counts.Sending > 0 && c.protocol != 0 {
		s.Held = counts.Sending
		drain(r)
	}
	r.WaitAvailable(settle)
	// Let the last completions' events reach the tracer before the case
	// window closes.
	time.Sleep(2 * time.Millisecond)
	s.End = event.MonotonicNow()
	for i, st := range r.Statuses() {
		if i < c.frames && st.State() == txring.Available {
			s.Completed[uint32(i)] = true
		}
	}
	return s
}

// drain reads the socket's receive queue empty: each skb read releases the
// ring frame it holds.
func drain(r *txring.Ring) {
	buf := make([]byte, 4096)
	for i := 0; i < 1024; i++ {
		if _, _, err := unix.Recvfrom(r.FD(), buf, unix.MSG_DONTWAIT); err != nil {
			return
		}
	}
}
