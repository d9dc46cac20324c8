package event

import (
	"fmt"

	"github.com/ringtrace/ringtrace/tracer/bpfobj/bpftypes"
)

// Kind is a logical event kind (enum rt_kind).
type Kind uint16

// Kinds, from bpf/ringtrace.h.
const (
	SendmsgEnter  = Kind(bpftypes.RingtraceRtKindRT_SENDMSG_ENTER)
	SendmsgReturn = Kind(bpftypes.RingtraceRtKindRT_SENDMSG_RETURN)
	FrameState    = Kind(bpftypes.RingtraceRtKindRT_FRAME_STATE)
	QdiscEnqueue  = Kind(bpftypes.RingtraceRtKindRT_QDISC_ENQUEUE)
	QdiscDequeue  = Kind(bpftypes.RingtraceRtKindRT_QDISC_DEQUEUE)
	XmitStart     = Kind(bpftypes.RingtraceRtKindRT_XMIT_START)
	XmitDone      = Kind(bpftypes.RingtraceRtKindRT_XMIT_DONE)
	Drop          = Kind(bpftypes.RingtraceRtKindRT_DROP)
	Sleep         = Kind(bpftypes.RingtraceRtKindRT_SLEEP)
	Wake          = Kind(bpftypes.RingtraceRtKindRT_WAKE)
	Softirq       = Kind(bpftypes.RingtraceRtKindRT_SOFTIRQ)
	NapiPoll      = Kind(bpftypes.RingtraceRtKindRT_NAPI_POLL)
	RX            = Kind(bpftypes.RingtraceRtKindRT_RX)
	XmitRC        = Kind(bpftypes.RingtraceRtKindRT_XMIT_RC)
	SockGone      = Kind(bpftypes.RingtraceRtKindRT_SOCK_GONE)
	FramePicked   = Kind(bpftypes.RingtraceRtKindRT_FRAME_PICKED)
	Blind         = Kind(bpftypes.RingtraceRtKindRT_BLIND)
	maxKind       = Blind
)

// kindNames is indexed by kind (an array: String runs once per event).
var kindNames = [...]string{
	SendmsgEnter: "sendmsg_enter", SendmsgReturn: "sendmsg_return", FrameState: "frame_state",
	QdiscEnqueue: "qdisc_enqueue", QdiscDequeue: "qdisc_dequeue", XmitStart: "xmit_start",
	XmitDone: "xmit_done", Drop: "drop", Sleep: "sleep", Wake: "wake", Softirq: "softirq",
	NapiPoll: "napi_poll", RX: "rx", XmitRC: "xmit_rc", SockGone: "sock_gone", FramePicked: "frame_picked",
	Blind: "blind",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	switch k {
	case SendmsgCall:
		return "sendmsg_call"
	case FrameShort:
		return "frame_short"
	case XmitPair:
		return "xmit_pair"
	}
	return fmt.Sprintf("kind%d", uint16(k))
}

// Kinds lists every kind.
func Kinds() []Kind {
	var ks []Kind
	for k := Kind(1); k <= maxKind; k++ {
		ks = append(ks, k)
	}
	return ks
}

// PerCPU reports whether a kind describes a CPU rather than a socket
// (softirq spans, napi polls): socket filters do not apply to it.
func (k Kind) PerCPU() bool { return k == Softirq || k == NapiPoll || k == Blind }

// Always reports whether a kind is streamed whatever kinds were asked for:
// a blind window says events may be missing, like a lost-event count.
func (k Kind) Always() bool { return k == Blind }

// DefaultKinds is every kind except the opt-in ones: the per-CPU kinds and
// RX, whose hook runs for every received skb on the machine and, for a
// sender on veth or lo, once more per frame.
func DefaultKinds() []Kind {
	var ks []Kind
	for _, k := range Kinds() {
		if (!k.PerCPU() || k.Always()) && k != RX {
			ks = append(ks, k)
		}
	}
	return ks
}

// ParseKind is the inverse of String.
func ParseKind(s string) (Kind, bool) {
	for k, n := range kindNames {
		if n != "" && n == s {
			return Kind(k), true
		}
	}
	return 0, false
}

// State is a frame state: the low three bits of tp_status.
type State uint8

// Frame states.
const (
	Available   = State(bpftypes.RingtraceRtStateRT_ST_AVAILABLE)
	SendRequest = State(bpftypes.RingtraceRtStateRT_ST_SEND_REQUEST)
	Sending     = State(bpftypes.RingtraceRtStateRT_ST_SENDING)
	WrongFormat = State(bpftypes.RingtraceRtStateRT_ST_WRONG_FORMAT)
	Unknown     = State(bpftypes.RingtraceRtStateRT_ST_UNKNOWN)
)

func (s State) String() string {
	switch s {
	case Available:
		return "AVAILABLE"
	case SendRequest:
		return "SEND_REQUEST"
	case Sending:
		return "SENDING"
	case WrongFormat:
		return "WRONG_FORMAT"
	case Unknown:
		return "UNKNOWN"
	}
	return fmt.Sprintf("STATUS(%d)", uint8(s))
}

// ParseState is the inverse of String.
func ParseState(s string) (State, bool) {
	for _, st := range []State{Available, SendRequest, Sending, WrongFormat, Unknown} {
		if st.String() == s {
			return st, true
		}
	}
	return 0, false
}

// Precision says whether an event's time is exact or an interval.
type Precision uint8

// Precisions.
const (
	Exact   = Precision(bpftypes.RingtraceRtPrecRT_EXACT)
	Bounded = Precision(bpftypes.RingtraceRtPrecRT_BOUNDED)
)

func (p Precision) String() string {
	if p == Bounded {
		return "bounded"
	}
	return "exact"
}

// Cause is what made a frame change state.
type Cause uint8

// causeNames is indexed by cause; RT_C_NONE's name is "".
var causeNames = [...]string{
	Cause(bpftypes.RingtraceRtCauseRT_C_NONE):          "",
	Cause(bpftypes.RingtraceRtCauseRT_C_XMIT):          "xmit",
	Cause(bpftypes.RingtraceRtCauseRT_C_DESTRUCT):      "destructor",
	Cause(bpftypes.RingtraceRtCauseRT_C_FREE):          "skb-freed",
	Cause(bpftypes.RingtraceRtCauseRT_C_DROP):          "dropped",
	Cause(bpftypes.RingtraceRtCauseRT_C_DRIVER_ORPHAN): "orphaned-in-driver",
	Cause(bpftypes.RingtraceRtCauseRT_C_ORPHANED):      "orphaned",
	Cause(bpftypes.RingtraceRtCauseRT_C_SCAN):          "status-read",
	Cause(bpftypes.RingtraceRtCauseRT_C_ROLLBACK):      "rolled-back",
	Cause(bpftypes.RingtraceRtCauseRT_C_BAD_FRAME):     "bad-frame",
	Cause(bpftypes.RingtraceRtCauseRT_C_TAKEN):         "taken-unseen",
	Cause(bpftypes.RingtraceRtCauseRT_C_PICKED):        "picked",
	Cause(bpftypes.RingtraceRtCauseRT_C_SET_STATUS):    "set-status",
	Cause(bpftypes.RingtraceRtCauseRT_C_COPIED):        "pages-copied",
	Cause(bpftypes.RingtraceRtCauseRT_C_USER):          "user-space",
	Cause(bpftypes.RingtraceRtCauseRT_C_RETAKEN):       "retaken",
}

// Cause values used by Go code.
const (
	CauseXmit     = Cause(bpftypes.RingtraceRtCauseRT_C_XMIT)
	CauseDrop     = Cause(bpftypes.RingtraceRtCauseRT_C_DROP)
	CauseRollback = Cause(bpftypes.RingtraceRtCauseRT_C_ROLLBACK)
	CauseCopied   = Cause(bpftypes.RingtraceRtCauseRT_C_COPIED)
	CausePicked   = Cause(bpftypes.RingtraceRtCauseRT_C_PICKED)
	CauseScan     = Cause(bpftypes.RingtraceRtCauseRT_C_SCAN)
	CauseUser     = Cause(bpftypes.RingtraceRtCauseRT_C_USER)
	CauseTaken    = Cause(bpftypes.RingtraceRtCauseRT_C_TAKEN)
	// CauseRetaken: the completion of a frame's earlier use, found when
	// tpacket_snd took the frame again.
	CauseRetaken = Cause(bpftypes.RingtraceRtCauseRT_C_RETAKEN)
	// CauseDriverOrphan: completed inside the driver (lo, tun), read at
	// the driver's return; CauseOrphaned: orphaned elsewhere, read later.
	CauseDriverOrphan = Cause(bpftypes.RingtraceRtCauseRT_C_DRIVER_ORPHAN)
	CauseOrphaned     = Cause(bpftypes.RingtraceRtCauseRT_C_ORPHANED)
)

func (c Cause) String() string {
	if int(c) < len(causeNames) && (causeNames[c] != "" || c == Cause(bpftypes.RingtraceRtCauseRT_C_NONE)) {
		return causeNames[c]
	}
	return fmt.Sprintf("cause%d", uint8(c))
}

// Hook is the hook family that produced an event.
type Hook uint8

// HookSweep: found by the periodic sweep of SENDING frames.
const HookSweep = Hook(bpftypes.RingtraceRtHookRT_H_SWEEP)

func (h Hook) String() string {
	switch h {
	case Hook(bpftypes.RingtraceRtHookRT_H_TRACEPOINT):
		return "tracepoint"
	case Hook(bpftypes.RingtraceRtHookRT_H_FENTRY):
		return "fentry"
	case Hook(bpftypes.RingtraceRtHookRT_H_KPROBE):
		return "kprobe"
	case Hook(bpftypes.RingtraceRtHookRT_H_SWEEP):
		return "sweep"
	}
	return fmt.Sprintf("hook%d", uint8(h))
}

// Wait is why a sender slept (or what woke it).
type Wait uint8

// Wait reasons.
const (
	WaitOther      = Wait(bpftypes.RingtraceRtWaitRT_W_OTHER)
	WaitSndbuf     = Wait(bpftypes.RingtraceRtWaitRT_W_SNDBUF)
	WaitCompletion = Wait(bpftypes.RingtraceRtWaitRT_W_COMPLETION)
	WaitPgVecLock  = Wait(bpftypes.RingtraceRtWaitRT_W_PG_VEC_LOCK)
	// WaitCPU: runnable inside sendmsg but without a CPU (preempted, or
	// woken and not yet running). Only Wake events carry it, as a span.
	WaitCPU = Wait(bpftypes.RingtraceRtWaitRT_W_PREEMPT)
)

func (w Wait) String() string {
	switch w {
	case WaitSndbuf:
		return "sndbuf"
	case WaitCompletion:
		return "tx-completion"
	case WaitPgVecLock:
		return "pg_vec_lock"
	case WaitCPU:
		return "cpu"
	}
	return "other"
}

// MarshalText names the reason in JSON.
func (w Wait) MarshalText() ([]byte, error) { return []byte(w.String()), nil }

// UnmarshalText reads a name written by MarshalText.
func (w *Wait) UnmarshalText(b []byte) error {
	for _, x := range []Wait{WaitOther, WaitSndbuf, WaitCompletion, WaitPgVecLock, WaitCPU} {
		if x.String() == string(b) {
			*w = x
			return nil
		}
	}
	return fmt.Errorf("unknown wait reason %q", b)
}
