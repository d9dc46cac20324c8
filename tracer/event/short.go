package event

import (
	"fmt"
	"unsafe"

	"github.com/ringtrace/ringtrace/tracer/bpfobj/bpftypes"
)

// FrameShort is a frame_state event in a short record (struct
// rt_frame_short, 80 bytes where a full record takes 168): the per-frame
// events of a stream, written without the names the decoder already has
// from earlier full records of the same stream — the thread's comm (from
// the entry record of the send call the thread is in) and the socket's
// device. A Decoder fills them in and delivers the event as FrameState;
// the package-level Decode, which keeps no state, leaves them empty. It is
// never delivered as such, and cannot be asked for.
const FrameShort = Kind(bpftypes.RingtraceRtKindRT_FRAME_SHORT)

// ShortSize is the size of a short record (struct rt_frame_short).
const ShortSize = int(unsafe.Sizeof(bpftypes.RingtraceRtFrameShort{}))

// shortOnDev: the event is on the socket's own device, as the socket's
// last full record that kept it named it (keepsSocketDev).
const shortOnDev = uint8(bpftypes.RingtraceRtShortFlagRT_FS_DEV)

// Bounds of a Decoder's name tables: when one is full it starts over, and a
// short record whose thread or socket it has forgotten gets empty names.
const (
	maxThreads = 1 << 16
	maxSockets = 1 << 16
)

// devName is a socket's own device as its last full record keeping it gave it.
type devName struct {
	ifindex uint32
	name    string
}

// keepsSocketDev reports whether a full record of kind k (a frame_state:
// to state to) names its socket's own device into the socket's cache in the
// kernel (ev_dev_x with keep), the cache a short record's RT_FS_DEV refers
// to: calls, sends and the driver's returns. A completion or a drop names
// the device its skb reached, which the kernel does not keep; blind
// windows, napi polls, xmit starts and receives name no socket's device.
func keepsSocketDev(k Kind, to State) bool {
	switch k {
	case SendmsgEnter, SendmsgReturn, SendmsgCall, XmitDone, XmitPair:
		return true
	case FrameState:
		return to != Available
	}
	return false
}

// learn notes the names a full record gives for the short records after
// it: the thread's comm, and the socket's device.
func (d *Decoder) learn(k Kind, to State, tid uint32, comm string, sk uint64, ifindex uint32, dev string) {
	// A blind window names a thread with its process's comm.
	if tid != 0 && k != Blind && (tid != d.tid || comm != d.tidComm) {
		if d.comms == nil || len(d.comms) >= maxThreads {
			d.comms = make(map[uint32]string)
		}
		d.comms[tid] = comm
		d.tid, d.tidComm = tid, comm
	}
	if sk != 0 && dev != "" && keepsSocketDev(k, to) && (sk != d.sk || dev != d.skDev.name || ifindex != d.skDev.ifindex) {
		if d.devs == nil || len(d.devs) >= maxSockets {
			d.devs = make(map[uint64]devName)
		}
		d.sk, d.skDev = sk, devName{ifindex, dev}
		d.devs[sk] = d.skDev
	}
}

// decodeShort reads a short record into e, as the FrameState it stands for.
func decodeShort(b []byte, e *Event, d *Decoder) error {
	var c bpftypes.RingtraceRtFrameShort
	r := view(b, &c)
	if Kind(r.Kind) != FrameShort {
		return fmt.Errorf("short event record with kind %d", r.Kind)
	}
	if Precision(r.Prec) > Bounded {
		return fmt.Errorf("event record with unknown precision %d", r.Prec)
	}
	var comm string
	var dev devName
	if d != nil {
		if r.Tid == d.tid {
			comm = d.tidComm
		} else {
			comm = d.comms[r.Tid]
		}
		if r.Flags&shortOnDev != 0 {
			if r.Sk == d.sk {
				dev = d.skDev
			} else {
				dev = d.devs[r.Sk]
			}
		}
	}
	*e = Event{
		Kind: FrameState, TS: r.Ts, TSLo: r.TsLo, Sk: r.Sk, Skb: r.Skb, A: [3]uint64{2: r.SendingLo},
		PID: r.Pid, TID: r.Tid, Frame: r.Frame, CPU: r.Cpu, SndBuf: r.Sndbuf, Wmem: r.Wmem,
		Pending: r.Pending, Ifindex: dev.ifindex, SockIno: r.SockIno, Old: State(r.OldState), New: State(r.NewState),
		Prec: Precision(r.Prec), Cause: Cause(r.Cause), Hook: Hook(r.Hook), Comm: comm, Dev: dev.name,
	}
	return nil
}

// EncodeShort writes frame_state event e as a short record (tests): the
// thread's comm and the device's name are left out, and the device is
// flagged as the socket's when e names one.
func EncodeShort(e Event) ([]byte, error) {
	if e.Kind != FrameState || e.A[0] != 0 || e.A[1] != 0 || e.Scan != (Scan{}) || e.N != 0 || e.Aux != 0 {
		return nil, fmt.Errorf("%s event does not fit a short record", e.Kind)
	}
	r := bpftypes.RingtraceRtFrameShort{
		Ts: e.TS, TsLo: e.TSLo, Sk: e.Sk, Skb: e.Skb, SendingLo: e.A[2], Pid: e.PID, Tid: e.TID, Frame: e.Frame,
		Cpu: e.CPU, Sndbuf: e.SndBuf, Wmem: e.Wmem, Pending: e.Pending, SockIno: e.SockIno, Kind: uint16(FrameShort),
		OldState: uint8(e.Old), NewState: uint8(e.New), Prec: uint8(e.Prec), Cause: uint8(e.Cause), Hook: uint8(e.Hook),
	}
	if e.Dev != "" {
		r.Flags = shortOnDev
	}
	return bytesOf(&r), nil
}
