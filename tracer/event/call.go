package event

import "github.com/ringtrace/ringtrace/tracer/bpfobj/bpftypes"

// SendmsgCall is a whole non-blocking send call that found no frame to
// send at its entry (a poll of the ring), in one record: the BPF side holds
// such a call's entry event back, since it would cost as much as the rest
// of the entry, and sends both in one at the return (RT_SENDMSG_CALL).
// Decoders split it with Unfold: it is never delivered as such, and
// cannot be asked for.
const SendmsgCall = Kind(bpftypes.RingtraceRtKindRT_SENDMSG_CALL)

// recorded reports whether k is a kind the BPF side writes: every
// delivered kind, and SendmsgCall.
func recorded(k Kind) bool { return k != 0 && (k <= maxKind || k == SendmsgCall) }

// Unfold splits a SendmsgCall record e into the call's entry, written to
// enter, and its return, which e becomes. The entry's socket counts
// (sndbuf, wmem, pending) are the return's: an empty non-blocking call
// changes none of them.
func (e *Event) Unfold(enter *Event) {
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
