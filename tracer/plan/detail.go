package plan

import (
	"strings"

	"github.com/ringtrace/ringtrace/tracer/inputerr"
	"github.com/ringtrace/ringtrace/tracer/kernel"
)

// Detail is how much of the transmit path a trace follows.
type Detail string

// Details.
const (
	// DetailFrames follows every frame: per-skb hooks, exact where the
	// kernel allows (the default; a plan's Detail is then "").
	DetailFrames Detail = "frames"
	// DetailCalls follows the send calls and the sender's sleeps only
	// (Plan.CallsOnly).
	DetailCalls Detail = "calls"
)

// ParseDetail reads --detail.
func ParseDetail(s string) (Detail, error) {
	switch d := Detail(strings.ToLower(strings.TrimSpace(s))); d {
	case DetailFrames, DetailCalls:
		return d, nil
	}
	return "", inputerr.New("--detail %q: want frames or calls", s)
}

// FramesTraced reports whether the plan follows frames one by one.
func (p *Plan) FramesTraced() bool { return p == nil || p.Detail != DetailCalls }

// NotTracedNote is what reports of a --detail calls trace say about frames.
const NotTracedNote = "frame detail not traced (--detail calls): frames are counted from tx_ring.head at each send call's return, and completed by a frontier read over them in ring order at each call's return, at close() and by the sweep (bounded); no per-frame timeline, qdisc or driver event"

// callsProgram reports whether --detail calls keeps a program of the full
// plan: the send calls, the sender's sleeps and wake-ups, and the sweep.
func callsProgram(name string) bool {
	switch {
	case strings.HasPrefix(name, "sys_enter_"), strings.HasPrefix(name, "sys_exit_"),
		strings.HasSuffix(name, "_packet_sendmsg_loop"),
		name == "tp_sched_switch", name == "tp_sched_waking", name == "tp_thread_exit", name == "sweep_loop":
		return true
	}
	return false
}

// CallsOnly is the plan for --detail calls: the reference call-return
// session at almost no cost. Only the send calls (syscall tracepoints or
// packet_sendmsg) and the sender's sleeps and wakes are hooked; no per-skb
// program runs. A call's frames are counted from how far tx_ring.head
// moved, and a completion frontier is moved over them at returns, at
// close() and by the sweep (BPF side: bpf/ringtrace/frontier.bpf.h). It
// needs bpf_loop and BPF cmpxchg (Linux 5.17+) and a sweep.
func (p *Plan) CallsOnly(f *kernel.Facts) (*Plan, error) {
	c := *p
	if row, ok := p.Row(EvCalls); !ok || row.Precision == "unavailable" {
		return nil, inputerr.New("--detail calls: this kernel's send calls cannot be hooked (%s)", row.Why)
	}
	if !p.Config.UseLoop || !p.Config.Claims {
		return nil, inputerr.New("--detail calls needs bpf_loop and BPF cmpxchg (Linux 5.17+): use --detail frames")
	}
	c.Attach = nil
	swept := false
	for _, a := range p.Attach {
		if callsProgram(a.Program) {
			c.Attach = append(c.Attach, a)
			swept = swept || a.Kind == KindTestRun
		}
	}
	if !swept {
		return nil, inputerr.New("--detail calls needs the sweep (BPF_PROG_TEST_RUN of raw_tp programs): use --detail frames")
	}
	c.Notes = nil
	for _, n := range p.Notes {
		if !strings.HasPrefix(n, "the sweep ") { // its role in frame tracking: the frontier's here
			c.Notes = append(c.Notes, n)
		}
	}
	if f.SyscallTPs {
		c.Attach = append(c.Attach, Attachment{Program: "sys_enter_close_loop", Kind: KindTracepoint, Target: "syscalls/sys_enter_close"})
	} else {
		c.Notes = append(c.Notes, "no syscall tracepoints: frames that complete after a socket's last call are counted only if a sweep runs before it closes")
	}
	c.Detail = DetailCalls
	c.Config.CallsOnly = true
	c.Rows = nil
	for _, r := range p.Rows {
		if r.Event == EvCalls || strings.HasPrefix(r.Event, "sender ") {
			c.Rows = append(c.Rows, r)
		}
	}
	c.Rows = append(c.Rows,
		Row{Event: EvSending, Hook: "tx_ring.head at sendmsg return", Precision: "bounded",
			Why: "--detail calls: no per-skb hook; the frames a call took are SENDING by its return, bounded by its entry"},
		Row{Event: EvAvailable, Hook: "completion frontier: read at each sendmsg return, at close() and by the sweep", Precision: "bounded",
			Why: "--detail calls: frames are read oldest first up to the first still SENDING (O(frames completed)); a frame completed out of ring order is counted when the frontier passes it"},
		Row{Event: "frame -> WRONG_FORMAT", Hook: "status read at sendmsg return", Precision: "bounded",
			Why: "tpacket_snd writes WRONG_FORMAT at out_status (EMSGSIZE); no hook at the write"},
		Row{Event: "qdisc, driver and drop events", Hook: "-", Precision: "unavailable",
			Why: "--detail calls attaches no per-skb program (use --detail frames); a drop still shows as the call's -ENOBUFS"},
	)
	c.Notes = append(c.Notes, NotTracedNote)
	return &c, nil
}
