package event

import "github.com/ringtrace/ringtrace/tracer/bpfobj/bpftypes"

// SendmsgCall is a whole non-blocking send call that found no frame to
// send at its entry (a poll of the ring), in one record: the BPF side holds
// such a call's entry event back, since it would cost as much as the rest
// of the entry, and sends both in one at the return (RT_SENDMSG_CALL).
// Decoders split it with Unfold: it is never delivered as such, and
// cannot be asked for.
const SendmsgCall = Kind(bpftypes.RingtraceRtKindRT_SENDMSG_CALL)

// XmitPair is a driver's xmit start and its return in one record, written
// at the return (RT_XMIT_PAIR): xmit_one fires net_dev_start_xmit and
// net_dev_xmit around ndo_start_xmit on one CPU, so the BPF side holds the
// start back and saves a ring-buffer record per frame. Decoders split it
// with Unfold: it is never delivered as such, and cannot be asked for.
const XmitPair = Kind(bpftypes.RingtraceRtKindRT_XMIT_PAIR)

// recorded reports whether k is a kind the BPF side writes: every
// delivered kind, and the two-event records.
func recorded(k Kind) bool { return k != 0 && (k <= maxKind || k.Folded()) }

// Folded reports whether records of kind k hold two events, which Unfold
// splits: SendmsgCall and XmitPair.
func (k Kind) Folded() bool { return k == SendmsgCall || k == XmitPair }

// Unfold splits a two-event record e (Folded) into its first event,
// written to first, and its second, which e becomes.
func (e *Event) Unfold(first *Event) {
	if e.Kind == XmitPair {
		e.unfoldXmit(first)
		return
	}
	e.unfoldCall(first)
}

// unfoldXmit splits an XmitPair into the xmit start and its return. The
// start's socket counts are its own (a veth's xmit orphans the skb and may
// complete frames before it returns); the rest is the return's: same
// thread, CPU, skb, frame and device.
func (e *Event) unfoldXmit(start *Event) {
	*start = *e
	start.Kind, start.TS, start.TSLo, start.A = XmitStart, e.TSLo, 0, [3]uint64{}
	start.Wmem, start.Pending, start.SndBuf = int32(uint32(e.A[1])), int32(uint32(e.A[1]>>32)), int32(uint32(e.A[2]))
	e.Kind, e.TSLo, e.A[1], e.A[2] = XmitDone, 0, 0, 0
}

// unfoldCall splits a SendmsgCall record e into the call's entry, written to
// enter, and its return, which e becomes. The entry's socket counts
// (sndbuf, wmem, pending) are the return's: an empty non-blocking call
// changes none of them.
func (e *Event) unfoldCall(enter *Event) {
	head := uint32(e.Skb >> 32)
	*enter = Event{
		Kind: SendmsgEnter, TS: e.TSLo, Sk: e.Sk, SockIno: e.SockIno,
		A:    [3]uint64{e.Skb & 0xffffffff, uint64(head), uint64(e.Prec)},
		Scan: Scan{Head: head, Frames: e.Scan.Frames},
		PID:  e.PID, TID: e.TID, Frame: head, CPU: e.CPU, SndBuf: e.SndBuf, Wmem: e.Wmem, Pending: e.Pending,
		Ifindex: e.Ifindex, Old: Unknown, New: Unknown, Hook: e.Hook, Comm: e.Comm, Dev: e.Dev,
	}
	if e.New == 1 { // its scan read the frame at head (not a light scan)
		enter.Scan.Scanned = 1
		switch e.Old {
		case Available:
			enter.Scan.Available = 1
		case Sending:
			enter.Scan.Sending = 1
		}
	}
	e.Kind, e.TSLo, e.Skb, e.Old, e.New, e.Prec, e.Ifindex, e.Dev = SendmsgReturn, 0, 0, Unknown, Unknown, Exact, 0, ""
}
