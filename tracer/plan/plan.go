// Package plan owns the attach plan: from the kernel's facts (what hooks it
// allows, which functions are still symbols, which tracepoints exist) it
// chooses, per logical event, the hook that observes it, says how precise
// that observation is and why, and lists the BPF programs and attachments
// the session must load. It is pure: every decision is testable with
// synthetic facts for kernels this machine cannot run.
package plan

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/ringtrace/ringtrace/tracer/bpfobj/bpftypes"
	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/inputerr"
	"github.com/ringtrace/ringtrace/tracer/kernel"
)

// Class is a hook family.
type Class string

// Hook classes, from most to least direct.
const (
	Fentry     Class = "fentry"     // class A: fentry/fexit on kernel functions
	Kprobe     Class = "kprobe"     // class B: kprobes/kretprobes
	Tracepoint Class = "tracepoint" // class C: tracepoints + ring status reads
	Auto       Class = "auto"
)

// ParseClass accepts auto, fentry, kprobe, tracepoint (and A/B/C).
func ParseClass(s string) (Class, error) {
	switch strings.ToLower(s) {
	case "", "auto":
		return Auto, nil
	case "fentry", "a":
		return Fentry, nil
	case "kprobe", "b":
		return Kprobe, nil
	case "tracepoint", "c":
		return Tracepoint, nil
	}
	return "", inputerr.New("unknown --hooks %q (want auto, fentry, kprobe or tracepoint)", s)
}

// Letter is the class's name in the project's notes (A, B, C).
func (c Class) Letter() string {
	switch c {
	case Fentry:
		return "A"
	case Kprobe:
		return "B"
	case Tracepoint:
		return "C"
	}
	return "?"
}

// AttachKind is how a program is attached.
type AttachKind string

// Attach kinds.
const (
	KindTPBTF      AttachKind = "tp_btf"
	KindTracepoint AttachKind = "tracepoint" // perf tracepoint via tracefs
	KindFentry     AttachKind = "fentry"
	KindFexit      AttachKind = "fexit"
	KindKprobe     AttachKind = "kprobe"
	KindKretprobe  AttachKind = "kretprobe"
	KindRawTP      AttachKind = "raw_tp"   // raw tracepoint: untyped u64 arguments
	KindTestRun    AttachKind = "test_run" // loaded, run from user space
)

// Attachment is one program to load and where to attach it.
type Attachment struct {
	Program string     `json:"program"`
	Kind    AttachKind `json:"kind"`
	Target  string     `json:"target"` // function, tp_btf name, or group/name
	// For, when set, lists the only events this attachment produces: a
	// trace that asks for none of them does not attach it (frame tracking
	// does not depend on it).
	For []string `json:"for,omitempty"`
}

// ForEvents returns the plan with the optional attachments no requested
// event needs removed. wanted reports whether an event kind is requested.
func (p *Plan) ForEvents(wanted func(kind string) bool) *Plan {
	q := *p
	q.Attach = nil
	for _, a := range p.Attach {
		keep := len(a.For) == 0
		for _, k := range a.For {
			if wanted(k) {
				keep = true
			}
		}
		if keep {
			q.Attach = append(q.Attach, a)
		}
	}
	return &q
}

// Row is one logical event of the plan table.
type Row struct {
	Event     string `json:"event"`
	Hook      string `json:"hook"`
	Precision string `json:"precision"` // exact, bounded, unavailable
	Why       string `json:"why"`
}

// Logical events whose promises can be checked against what a trace saw
// (probe --verify, and trace's promise watch): the Event of their rows.
const (
	EvCalls           = "sendmsg enter/return"
	EvPicked          = "frame picked (SEND_REQUEST seen)"
	EvStatusWrite     = "every frame status write"
	EvSending         = "frame -> SENDING"
	EvSendingBypass   = EvSending + " (qdisc bypass)"
	EvXmit            = "driver xmit (+rc)"
	EvDrop            = "qdisc/driver drop (reason, location)"
	EvAvailable       = "frame -> AVAILABLE"
	EvAvailableDriver = EvAvailable + " (lo, tun: orphaned in the driver)"
	// EvAvailableOrphaned's row names the orphaning path of the kernel's
	// completion form; it begins with this.
	EvAvailableOrphaned = EvAvailable + " (orphaned elsewhere"
	EvAvailableSweep    = EvAvailable + " (no event at all)"
	EvRollback          = "frame rolled back to SEND_REQUEST"
	// EvHidden: CPU time the kernel runs no BPF program in (event.Blind).
	EvHidden = "CPU time hidden from BPF"
)

// Row returns the plan's row for a logical event (or the first whose event
// begins with EvAvailableOrphaned, for that one).
func (p *Plan) Row(ev string) (Row, bool) {
	for _, r := range p.Rows {
		if r.Event == ev || (ev == EvAvailableOrphaned && strings.HasPrefix(r.Event, ev)) {
			return r, true
		}
	}
	return Row{}, false
}

// FirstRow returns the row of the first of the events the plan has one for.
func (p *Plan) FirstRow(evs ...string) (Row, bool) {
	for _, ev := range evs {
		if r, ok := p.Row(ev); ok {
			return r, true
		}
	}
	return Row{}, false
}

// Promise names the logical events a frame transition is held to, best
// first: a frame's SENDING (through a qdisc, or bypassing it), its
// completion (bounded ones by how they were found), its roll-back. The
// plan's first row among them is the promise. nil: not a frame transition
// the plan promises anything about. The slices are shared: read only (the
// promise watch asks for every frame event, and must not allocate).
func Promise(e *event.Event, bypass bool) []string {
	if e.Kind != event.FrameState {
		return nil
	}
	switch {
	case e.New == event.Sending && bypass:
		return promiseSendingBypass
	case e.New == event.Sending:
		return promiseSending
	case e.New == event.SendRequest && e.Cause == event.CauseRollback:
		return promiseRollback
	case e.New != event.Available:
		return nil
	case e.Prec == event.Exact:
		return promiseAvailable
	case e.Cause == event.CauseDriverOrphan:
		return promiseAvailableDriver
	case e.Cause == event.CauseOrphaned || e.Cause == event.CauseScan || e.Cause == event.CauseRetaken || e.Hook == event.HookSweep:
		return promiseAvailableFound
	}
	return promiseAvailable
}

var (
	promiseSendingBypass   = []string{EvSendingBypass, EvStatusWrite}
	promiseSending         = []string{EvSending, EvStatusWrite}
	promiseRollback        = []string{EvRollback, EvStatusWrite}
	promiseAvailable       = []string{EvAvailable}
	promiseAvailableDriver = []string{EvAvailableDriver, EvAvailable}
	promiseAvailableFound  = []string{EvAvailableOrphaned, EvAvailableSweep, EvAvailable}
)

// StackRange classifies a kernel stack frame: a sleeping sender whose stack
// holds an address in [Start, End) waits for Reason.
type StackRange struct {
	Symbol string     `json:"symbol"`
	Start  uint64     `json:"start,omitempty"`
	End    uint64     `json:"end,omitempty"`
	Reason event.Wait `json:"reason"`
}

// Config is what the BPF side needs to know at load time (rt_config).
type Config struct {
	DestructAddr     uint64       `json:"destruct_addr,omitempty"`
	UargCompleteAddr uint64       `json:"uarg_complete_addr,omitempty"`
	UargCompleteLen  uint32       `json:"uarg_complete_len,omitempty"`
	UargViaKfree     bool         `json:"uarg_via_kfree,omitempty"`
	CompleteHooked   bool         `json:"complete_hooked,omitempty"`  // tpacket_ubuf_complete itself is hooked (kfree only backs it up)
	DirectXmitAddr   uint64       `json:"direct_xmit_addr,omitempty"` // packet_direct_xmit: po->xmit of a bypass socket before 6.4
	UseLoop          bool         `json:"bpf_loop"`
	Claims           bool         `json:"claims,omitempty"` // BPF cmpxchg: a transition two CPUs report at once is counted once
	MaxScan          uint32       `json:"max_scan"`
	KfreeHasReason   bool         `json:"kfree_has_reason"`
	AvailViaTP       bool         `json:"avail_via_tp"`
	SendingViaTP     bool         `json:"sending_via_tp"`
	CallsViaSyscalls bool         `json:"calls_via_syscalls"`
	UargForm         bool         `json:"uarg_form"`
	SweepBatch       int          `json:"sweep_batch"`          // frames per sweep program run
	CallsOnly        bool         `json:"calls_only,omitempty"` // --detail calls: no per-frame hooks (CallsOnly)
	CallsKept        bool         `json:"calls_kept,omitempty"` // a thread's call entry outlives its calls, deleted at its exit (keepCalls)
	StackRanges      []StackRange `json:"stack_ranges"`
}

// Plan is the attach plan for one kernel.
type Plan struct {
	Class      Class        `json:"class"`
	ClassWhy   string       `json:"class_why"`
	Completion string       `json:"completion"`       // "destructor" or "uarg"
	Detail     Detail       `json:"detail,omitempty"` // "" (frames) or calls: see CallsOnly
	Rows       []Row        `json:"rows"`
	Attach     []Attachment `json:"attach"`
	Config     Config       `json:"config"`
	Notes      []string     `json:"notes"`
}

// WithoutAddresses is a copy of p whose load-time config holds no kernel
// address, for files meant to be shared: the stack ranges keep their
// symbols and reasons.
func (p *Plan) WithoutAddresses() *Plan {
	if p == nil {
		return nil
	}
	c := *p
	cfg := &c.Config
	cfg.DestructAddr, cfg.UargCompleteAddr, cfg.DirectXmitAddr = 0, 0, 0
	cfg.StackRanges = nil
	for _, r := range p.Config.StackRanges {
		cfg.StackRanges = append(cfg.StackRanges, StackRange{Symbol: r.Symbol, Reason: r.Reason})
	}
	return &c
}

// BoundedScan is how many frames a ring scan covers on kernels without
// bpf_loop (RT_BOUNDED_SCAN in bpf/ringtrace.h).
const BoundedScan = uint32(bpftypes.RingtraceRtLimitRT_BOUNDED_SCAN)

// Frames one sweep run re-reads, with bpf_loop and without.
const (
	SweepBatch        = int(bpftypes.RingtraceRtLimitRT_SWEEP_BATCH)
	SweepBatchBounded = int(bpftypes.RingtraceRtLimitRT_SWEEP_BOUNDED)
)

// DefaultMaxScan bounds bpf_loop ring scans; the normaliser trusts no longer
// run (event.MaxScanRun).
const DefaultMaxScan = event.MaxScanRun

// Build chooses hooks for the requested class (Auto: the most direct the
// kernel allows). A forced class the kernel cannot do is an input error.
func Build(f *kernel.Facts, want Class) (*Plan, error) {
	p := &Plan{Completion: f.CompletionForm()}
	switch want {
	case Auto:
		switch {
		case f.Features.Fentry.OK:
			p.Class, p.ClassWhy = Fentry, "fentry/fexit programs attach on this kernel"
		case f.Features.Kprobe.OK:
			p.Class, p.ClassWhy = Kprobe, "fentry unavailable ("+f.Features.Fentry.Why+"); kprobes work"
		default:
			p.Class = Tracepoint
			p.ClassWhy = "fentry unavailable (" + f.Features.Fentry.Why + "); " + f.Features.Kprobe.Why
		}
	case Fentry:
		if !f.Features.Fentry.OK {
			return nil, inputerr.New("--hooks=fentry: %s", f.Features.Fentry.Why)
		}
		p.Class, p.ClassWhy = Fentry, "forced by --hooks=fentry"
	case Kprobe:
		if !f.Features.Kprobe.OK {
			return nil, inputerr.New("--hooks=kprobe: %s", f.Features.Kprobe.Why)
		}
		p.Class, p.ClassWhy = Kprobe, "forced by --hooks=kprobe"
	case Tracepoint:
		p.Class, p.ClassWhy = Tracepoint, "forced by --hooks=tracepoint"
	default:
		return nil, inputerr.New("unknown hook class %q", want)
	}
	if !f.Features.TPBTF.OK {
		return nil, inputerr.New("this kernel cannot attach tp_btf programs (%s): ringtrace needs Linux 5.5+ with BTF", f.Features.TPBTF.Why)
	}
	b := builder{f: f, p: p}
	b.config()
	b.calls()
	b.picked()
	b.sending()
	b.qdiscAndDriver()
	b.available()
	if p.Config.UargViaKfree {
		// The uarg's kfree reports every completion: net_dev_xmit no
		// longer reads a frame's status, it only makes xmit_done events.
		b.onlyFor("tp_net_dev_xmit", "xmit_done")
	}
	b.rollback()
	b.sched()
	b.softirq()
	b.sweep()
	return p, nil
}

type builder struct {
	f *kernel.Facts
	p *Plan
	// allExact: every completion path has an exact hook.
	allExact bool
}

func (b *builder) row(event, hook, prec, why string) {
	b.p.Rows = append(b.p.Rows, Row{Event: event, Hook: hook, Precision: prec, Why: why})
}

func (b *builder) attach(prog string, kind AttachKind, target string) {
	b.p.Attach = append(b.p.Attach, Attachment{Program: prog, Kind: kind, Target: target})
}

// attachFor adds an attachment that only produces the given events.
func (b *builder) attachFor(prog string, kind AttachKind, target string, events ...string) {
	b.p.Attach = append(b.p.Attach, Attachment{Program: prog, Kind: kind, Target: target, For: events})
}

// onlyFor makes an attachment optional: only a trace asking for one of
// events attaches it.
func (b *builder) onlyFor(prog string, events ...string) {
	for i := range b.p.Attach {
		if b.p.Attach[i].Program == prog {
			b.p.Attach[i].For = events
		}
	}
}

// variant picks the bpf_loop or bounded-loop version of a scanning program.
func (b *builder) variant(prog string) string {
	if b.p.Config.UseLoop {
		return prog + "_loop"
	}
	return prog + "_bounded"
}

// fn reports whether a kernel function can be hooked by name: a symbol in
// kallsyms under that very name and, for fentry, a BTF FUNC. A compiler
// clone (5.10 has only __packet_set_status.part.0) is not the function: its
// entry is not the function's entry, nor are its arguments, and a probe on
// the plain name finds nothing.
func (b *builder) fn(name string) bool {
	if s, ok := b.f.Symbols[name]; !ok || (s.Name != "" && s.Name != name) {
		return false
	}
	return b.p.Class != Fentry || b.f.Funcs[name]
}

// hookKinds gives the attach kinds and program-name prefixes of the class's
// function entry and return hooks.
func (b *builder) hookKinds() (entry, ret AttachKind, label, retLabel string) {
	if b.p.Class == Fentry {
		return KindFentry, KindFexit, "fentry", "fexit"
	}
	return KindKprobe, KindKretprobe, "kprobe", "kretprobe"
}

func (b *builder) config() {
	f, c := b.f, &b.p.Config
	c.UseLoop = f.Features.BPFLoop.OK
	c.Claims = f.Features.Atomics.OK
	c.MaxScan = DefaultMaxScan
	if !c.UseLoop {
		c.MaxScan = BoundedScan
		b.p.Notes = append(b.p.Notes, fmt.Sprintf("no bpf_loop (Linux 5.17+): ring scans cover the first %d frames after head", BoundedScan))
	}
	c.KfreeHasReason = f.KfreeSkbArgs >= 3
	c.DestructAddr = f.Symbols["tpacket_destruct_skb"].Addr
	c.UargForm = b.p.Completion == "uarg"
	c.DirectXmitAddr = f.Symbols["packet_direct_xmit"].Addr
	if c.UargForm {
		// Recognised by structure (uarg->ubuf.ops->complete), so only a
		// text symbol is needed: &tpacket_ubuf_ops is a data symbol,
		// listed only with CONFIG_KALLSYMS_ALL.
		s := f.Symbols["tpacket_ubuf_complete"]
		c.UargCompleteAddr, c.UargCompleteLen = s.Addr, uint32(s.Size())
		if c.UargCompleteAddr == 0 {
			b.p.Notes = append(b.p.Notes, "tpacket_ubuf_complete not in kallsyms: ring skbs of the uarg form cannot be recognised")
		}
	}
	c.CallsViaSyscalls = b.p.Class == Tracepoint
	c.SendingViaTP = b.p.Class == Tracepoint
	c.AvailViaTP = b.p.Class == Tracepoint
	ranges := []struct {
		sym    string
		reason event.Wait
	}{
		{"sock_alloc_send_pskb", event.WaitSndbuf}, {"sock_wait_for_wmem", event.WaitSndbuf},
		{"__wait_for_common", event.WaitCompletion}, {"wait_for_common", event.WaitCompletion},
		{"wait_for_completion_interruptible_timeout", event.WaitCompletion},
		{"__mutex_lock", event.WaitPgVecLock}, {"__mutex_lock_slowpath", event.WaitPgVecLock},
		{"mutex_lock", event.WaitPgVecLock}, {"mutex_lock_interruptible", event.WaitPgVecLock},
		// Wakers: a frame's completion wakes the completion wait, freed
		// sndbuf space the sndbuf wait.
		{"tpacket_destruct_skb", event.WaitCompletion}, {"tpacket_ubuf_complete", event.WaitCompletion},
		{"sock_def_write_space", event.WaitSndbuf}, {"sock_wfree", event.WaitSndbuf},
	}
	for _, r := range ranges {
		s, ok := f.Symbols[r.sym]
		if !ok || s.Addr == 0 || s.Size() == 0 {
			continue
		}
		c.StackRanges = append(c.StackRanges, StackRange{Symbol: s.Name, Start: s.Addr, End: s.End, Reason: r.reason})
	}
}

// keepCalls lets a thread's call entry outlive its calls where the kernel
// allows: a call then writes the entry in place instead of inserting and
// deleting a hash entry (a third of an empty call's tracing cost). The
// entry is deleted when its thread exits (tp_btf sched_process_exit); the
// sweep (sweep_loop, so bpf_loop: 5.17+) marks an abandoned one idle with
// cmpxchg, so it needs BPF atomics too.
func (b *builder) keepCalls() {
	c := &b.p.Config
	if !c.UseLoop || !c.Claims || !b.tp("sched_process_exit") {
		return
	}
	c.CallsKept = true
	b.attach("tp_thread_exit", KindTPBTF, "sched_process_exit")
}

func (b *builder) calls() {
	const ev = EvCalls
	if b.p.Class != Tracepoint {
		in, out, label, retLabel := b.hookKinds()
		b.attach(b.variant(label+"_packet_sendmsg"), in, "packet_sendmsg")
		b.attach(b.variant(retLabel+"_packet_sendmsg"), out, "packet_sendmsg")
		b.keepCalls()
		b.row(ev, label+" packet_sendmsg", "exact", "packet_sendmsg is always a symbol (proto_ops); every path in (sendto, sendmsg, write, io_uring) passes it")
		return
	}
	if !b.f.SyscallTPs {
		why := "no syscalls:sys_enter_sendto/sendmsg/sendmmsg in tracefs"
		if b.f.Config["CONFIG_FTRACE_SYSCALLS"] == "n" {
			why = "no syscall tracepoints (CONFIG_FTRACE_SYSCALLS is not set)"
		}
		b.row(ev, "-", "unavailable", why)
		return
	}
	for _, sc := range []string{"sendto", "sendmsg", "sendmmsg"} { // one entry and one exit program, attached thrice
		b.attach(b.variant("sys_enter_send"), KindTracepoint, "syscalls/sys_enter_"+sc)
		b.attach(b.variant("sys_exit_send"), KindTracepoint, "syscalls/sys_exit_"+sc)
	}
	b.keepCalls()
	why := "packet_sendmsg cannot be hooked (" + b.whyNoFunctionHooks() + "); fd resolved to a TX-ring socket at entry (write()/io_uring sends are not seen)"
	if b.f.SyscallProgsPreemptible() {
		why += "; this kernel runs them preemptible (trace_call_bpf_faultable): while a sender switched out inside one waits, " +
			"the same program skips other threads' calls on its CPU (counted as missed runs)"
	}
	b.row(ev, "tracepoints syscalls:sys_{enter,exit}_send{to,msg,mmsg}", "exact", why)
}

func (b *builder) whyNoFunctionHooks() string {
	if b.p.ClassWhy == "forced by --hooks=tracepoint" {
		return "forced tracepoint class"
	}
	return "no fentry, no kprobes"
}

func (b *builder) picked() {
	const ev = EvPicked
	if b.p.Class != Tracepoint && b.fn("sock_alloc_send_pskb") {
		in, _, label, _ := b.hookKinds()
		b.attach(label+"_sock_alloc_send_pskb", in, "sock_alloc_send_pskb")
		b.row(ev, label+" sock_alloc_send_pskb + status read at tx_ring.head", "exact", "tpacket_snd allocates the skb for the frame at head while it is still SEND_REQUEST")
		return
	}
	b.row(ev, "ring scan at sendmsg entry", "bounded", "user space writes SEND_REQUEST (no kernel event); the run of SEND_REQUEST frames from tx_ring.head is counted when the call starts")
}

func (b *builder) sending() {
	const ev = EvSending
	if b.p.Class != Tracepoint {
		in, out, label, retLabel := b.hookKinds()
		if b.fn("__packet_set_status") {
			b.attach(label+"_set_status", in, "__packet_set_status")
			b.row(EvStatusWrite, label+" __packet_set_status", "exact", "__packet_set_status is not inlined on this kernel")
		}
		switch {
		case b.fn("__dev_queue_xmit"):
			b.attach(label+"_qxmit", in, "__dev_queue_xmit")
			b.attach(retLabel+"_qxmit", out, "__dev_queue_xmit")
			b.row(ev, label+" __dev_queue_xmit (ring skb: skb->destructor or uarg)", "exact", "tpacket_snd sets SENDING then calls dev_queue_xmit with tx_ring.head still at the frame")
		case b.fn("dev_queue_xmit"):
			b.attach(label+"_qxmit_legacy", in, "dev_queue_xmit")
			b.attach(retLabel+"_qxmit_legacy", out, "dev_queue_xmit")
			b.row(ev, label+" dev_queue_xmit", "exact", "tpacket_snd sets SENDING then calls dev_queue_xmit")
		default:
			b.row(ev, "-", "unavailable", "neither __dev_queue_xmit nor dev_queue_xmit can be hooked")
		}
		switch {
		case b.fn("__dev_direct_xmit"):
			b.attach(label+"_direct_xmit", in, "__dev_direct_xmit")
			b.attach(retLabel+"_direct_xmit", out, "__dev_direct_xmit")
			b.row(EvSendingBypass, label+" __dev_direct_xmit", "exact", "PACKET_QDISC_BYPASS sends through dev_direct_xmit")
		case b.fn("packet_direct_xmit"):
			b.attach(label+"_direct_xmit_legacy", in, "packet_direct_xmit")
			b.attach(retLabel+"_direct_xmit_legacy", out, "packet_direct_xmit")
			b.row(EvSendingBypass, label+" packet_direct_xmit", "exact", "PACKET_QDISC_BYPASS sends through po->xmit = packet_direct_xmit (3.14-6.3)")
		default:
			b.row(EvSendingBypass, "ring scan at sendmsg return", "bounded", "no bypass xmit function can be hooked")
		}
		return
	}
	if b.tp("net_dev_queue") {
		b.attach(b.variantTP("tp_net_dev_queue"), KindTPBTF, "net_dev_queue")
		b.row(ev, "tp_btf net_dev_queue (ring skb: "+b.ringSkbTest()+")", "exact",
			"tpacket_snd and __packet_set_status are inlined/unhookable; net_dev_queue is the first tracepoint after the status write, with tx_ring.head still at the frame")
	}
	b.row(EvSendingBypass, "ring scan at sendmsg return, or the frame's first later event", "bounded",
		"dev_direct_xmit fires no net_dev_*/qdisc tracepoint")
}

func (b *builder) ringSkbTest() string {
	if b.p.Config.UargForm {
		return "uarg ops->complete == tpacket_ubuf_complete"
	}
	return "skb->destructor == tpacket_destruct_skb"
}

func (b *builder) variantTP(prog string) string {
	if b.p.Config.UseLoop {
		return prog
	}
	return prog + "_bounded"
}

func (b *builder) tp(name string) bool { return b.f.TPBTF[name] }

func (b *builder) qdiscAndDriver() {
	if b.tp("qdisc_enqueue") {
		b.attachFor("tp_qdisc_enqueue", KindTPBTF, "qdisc_enqueue", "qdisc_enqueue")
		b.row("qdisc enqueue", "tp_btf qdisc_enqueue", "exact", "successful enqueues (the empty-queue fast path bypasses the qdisc and fires none)")
	} else {
		b.row("qdisc enqueue", "-", "unavailable", "no qdisc_enqueue tracepoint before Linux 5.14")
	}
	if b.tp("qdisc_dequeue") {
		b.attachFor("tp_qdisc_dequeue", KindTPBTF, "qdisc_dequeue", "qdisc_dequeue")
		b.row("qdisc dequeue", "tp_btf qdisc_dequeue", "exact", "")
	}
	if b.tp("net_dev_start_xmit") {
		b.attachFor("tp_net_dev_start_xmit", KindTPBTF, "net_dev_start_xmit", "xmit_start")
	}
	if b.tp("net_dev_xmit") {
		b.attach("tp_net_dev_xmit", KindTPBTF, "net_dev_xmit")
		b.row(EvXmit, "tp_btf net_dev_start_xmit / net_dev_xmit", "exact", "driver entry and its NETDEV_TX_* return code")
	}
	if b.p.Class != Tracepoint {
		_, _, _, retLabel := b.hookKinds()
		b.row("dev_queue_xmit return", retLabel+" __dev_queue_xmit / __dev_direct_xmit", "exact", "NET_XMIT_* return code tpacket_snd acts on")
	}
	if b.tp("kfree_skb") {
		b.attach("tp_kfree_skb", KindTPBTF, "kfree_skb")
		why := "ring skb freed on the bound device while the sender hands it over: rolled back, sendto returns -ENOBUFS; freed there otherwise: dropped unseen by the sender; freed on another device (a veth peer): completed"
		if !b.p.Config.KfreeHasReason {
			why += "; no drop reason before Linux 5.17"
		}
		b.row(EvDrop, "tp_btf kfree_skb", "exact", why)
	}
	if b.tp("consume_skb") {
		b.attach("tp_consume_skb", KindTPBTF, "consume_skb")
	}
	if b.tp("netif_receive_skb") {
		b.attachFor("tp_netif_receive_skb", KindTPBTF, "netif_receive_skb", "rx")
		b.row("frame received (veth peer, lo)", "tp_btf netif_receive_skb", "exact", "")
	}
}

func (b *builder) available() {
	const ev = EvAvailable
	c := &b.p.Config
	if b.p.Class != Tracepoint {
		in, _, label, _ := b.hookKinds()
		// A kprobe is skipped when its CPU already runs a kprobe or
		// perf-tracepoint BPF program: a softirq that completes a frame
		// inside one of ringtrace's own kprobe programs goes unseen (0.6-2.5 %
		// of completions in 1-CPU TCG guests). Where a tp_btf hook sees the
		// completion too (it only skips a run nested in itself), class B
		// lets it: fentry (class A) has the same per-program guard.
		backed := b.p.Class == Kprobe
		switch {
		case c.UargForm && b.fn("tpacket_ubuf_complete"):
			b.attach(label+"_tpacket_ubuf_complete", in, "tpacket_ubuf_complete")
			c.CompleteHooked = true
			b.allExact = true
			if backed && b.kfreeUarg() {
				b.row(ev, label+" tpacket_ubuf_complete (uarg refcnt == 1), backed by raw_tp kfree of the uarg", "exact",
					"uarg completion form; success=0 means the ring pages were copied out. A run the kernel skips (nested in another kprobe program) is caught at the uarg's kfree, right after the status write")
				return
			}
			b.row(ev, label+" tpacket_ubuf_complete (uarg refcnt == 1)", "exact", "uarg completion form; success=0 means the ring pages were copied out")
			return
		case !c.UargForm && b.fn("tpacket_destruct_skb"):
			b.attach(label+"_tpacket_destruct_skb", in, "tpacket_destruct_skb")
			b.allExact = true
			if backed {
				c.AvailViaTP = true
				b.row(ev, "tp_btf kfree_skb/consume_skb of a ring skb, else "+label+" tpacket_destruct_skb", "exact",
					"the destructor runs right after the free tracepoint; it alone shows the frames orphaned without a free (lo, tun, IP receive). A run it skips (nested in another kprobe program) is read at the driver's return or by the sweep")
				return
			}
			b.row(ev, label+" tpacket_destruct_skb", "exact", "destructor completion form: every completion path runs it")
			return
		}
		// Fall back to the tracepoint rules below.
		c.AvailViaTP = true
	}
	if c.UargForm && b.kfreeUarg() {
		b.allExact = true
		b.row(ev, "raw_tp kfree of the uarg, called from tpacket_ubuf_complete", "exact",
			"tpacket_ubuf_complete cannot be hooked; it frees its struct tpacket_uarg right after writing AVAILABLE, on every completion path (skb freed, ring pages copied out by a veth, a tap or a local delivery)")
		return
	}
	b.row(ev, "tp_btf kfree_skb/consume_skb of a ring skb", "exact", "the completion runs right after the free tracepoint")
	b.row(EvAvailableDriver, "status read at tp_btf net_dev_xmit", "bounded", "skb_orphan() has no tracepoint; bounded by net_dev_start_xmit")
	b.row(ev+" (orphaned elsewhere, "+map[bool]string{true: "uarg page copies", false: "IP receive"}[c.UargForm]+")", "status read at the skb's later free, at the call's return, or by the sweep", "bounded", "no tracepoint at the orphan; bounded by the last time the frame was seen SENDING")
}

// kfreeUarg hooks kfree() of a struct tpacket_uarg by tpacket_ubuf_complete,
// where the kernel allows it: every uarg completion, whatever path it takes,
// frees the uarg there right after the status write.
func (b *builder) kfreeUarg() bool {
	c := &b.p.Config
	if !c.UargForm || c.UargCompleteAddr == 0 || c.UargCompleteLen == 0 || !b.tp("kfree") {
		return false
	}
	c.UargViaKfree = true
	b.attach("tp_kfree_uarg", KindRawTP, "kfree")
	return true
}

func (b *builder) rollback() {
	if b.p.Class != Tracepoint && b.fn("__packet_set_status") {
		return // covered by the status-write row
	}
	b.row(EvRollback, "drop event + status read at sendmsg return", "bounded", "tpacket_snd writes SEND_REQUEST back at out_status after a synchronous drop; no hook at the write")
	b.row("frame -> WRONG_FORMAT", "status read at sendmsg return", "bounded", "tpacket_snd writes WRONG_FORMAT at out_status (EMSGSIZE); no hook at the write")
}

func (b *builder) sched() {
	if b.tp("sched_switch") && b.tp("sched_waking") {
		b.attach("tp_sched_switch", KindTPBTF, "sched_switch")
		b.attach("tp_sched_waking", KindTPBTF, "sched_waking")
		var syms []string
		seen := map[string]bool{}
		for _, r := range b.p.Config.StackRanges {
			if !seen[r.Symbol] {
				syms = append(syms, r.Symbol)
				seen[r.Symbol] = true
			}
		}
		sort.Strings(syms)
		why := "why is read from the kernel stack of the sleeper (and of the waker): " + strings.Join(syms, ", ")
		if len(syms) == 0 {
			why = "no kallsyms addresses: sleep reason unknown"
		}
		b.row("sender sleeps / wakes (why)", "tp_btf sched_switch / sched_waking + bpf_get_stack", "exact", why)
		b.row("sender waits for a CPU", "tp_btf sched_switch (preempted or woken -> switched in)", "exact",
			"runnable inside sendmsg without a CPU: the link idles meanwhile")
		b.row(EvHidden, "tp_btf sched_switch (a task switched in whose switch out is never seen)", "bounded",
			"a kernel may run no BPF program while certain tasks are current, nor in a softirq on their time (seen on the 6.18 build this project runs on: its PID 1's threads): each such window is reported, and events missed in it are not held against this plan")
	}
}

func (b *builder) softirq() {
	if b.tp("softirq_entry") && b.tp("softirq_exit") {
		b.attachFor("tp_softirq_entry", KindTPBTF, "softirq_entry", "softirq")
		b.attachFor("tp_softirq_exit", KindTPBTF, "softirq_exit", "softirq")
		b.row("NET_RX / NET_TX softirq spans", "tp_btf softirq_entry / softirq_exit", "exact", "")
	}
	if b.tp("napi_poll") {
		b.attachFor("tp_napi_poll", KindTPBTF, "napi_poll", "napi_poll")
		b.row("napi poll (work/budget)", "tp_btf napi_poll", "exact", "")
	}
}

func (b *builder) sweep() {
	if !b.f.Features.TestRun.OK {
		b.p.Notes = append(b.p.Notes, "no BPF_PROG_TEST_RUN for raw_tp: frames completed without any event stay SENDING until a later event reads them")
		return
	}
	b.attach(b.variant("sweep"), KindTestRun, "")
	b.p.Config.SweepBatch = SweepBatch
	if !b.p.Config.UseLoop {
		b.p.Config.SweepBatch = SweepBatchBounded
	}
	switch {
	case b.allExact:
		// Every completion has an exact hook: what the sweep finds is a
		// broken promise, not a path of its own.
		b.p.Notes = append(b.p.Notes, "the sweep re-reads SENDING frames every interval as a safety net: a completion it finds is one the exact hook missed (trace warns)")
	case b.p.Config.AvailViaTP:
		b.row(EvAvailableSweep, "sweep: status re-read of SENDING frames every interval", "bounded", "catches completions no hook shows; bounded by the previous read")
	}
}

// LateCompletions reports whether completions are reported after the
// status write and after a blocking sender's wake-up (the uarg's kfree): a
// sendmsg return may then read a frame AVAILABLE before its event, and must
// not take it for one no hook reported.
func (p *Plan) LateCompletions() bool {
	return p != nil && p.Config.UargViaKfree && !p.Config.CompleteHooked
}

// Programs lists the programs the plan loads.
func (p *Plan) Programs() []string {
	var out []string
	for _, a := range p.Attach {
		out = append(out, a.Program)
	}
	return out
}

// WriteTable prints the plan for `ringtrace probe`.
func (p *Plan) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "LOGICAL EVENT\tHOOK\tPRECISION\tWHY")
	for _, r := range p.Rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Event, r.Hook, r.Precision, r.Why)
	}
	return tw.Flush()
}
