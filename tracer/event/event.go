package event

import (
	"bytes"
	"fmt"
	"unsafe"

	"github.com/ringtrace/ringtrace/tracer/bpfobj"
)

// RawSize is the size of one ring-buffer record (struct rt_event).
const RawSize = int(unsafe.Sizeof(bpfobj.RingtraceRtEvent{}))

// NoFrame marks events without a frame index.
const NoFrame = ^uint32(0)

// Scan is a ring status scan taken at sendmsg enter/return.
type Scan struct {
	Head           uint32 `json:"head"`
	Frames         uint32 `json:"frames"`
	RunSendRequest uint32 `json:"run_send_request"`
	SendRequest    uint32 `json:"send_request"`
	Sending        uint32 `json:"sending"`
	Available      uint32 `json:"available"`
	WrongFormat    uint32 `json:"wrong_format"`
	Scanned        uint32 `json:"scanned"`
}

// Event is one decoded logical event.
type Event struct {
	Kind    Kind
	TS      uint64 // ns, CLOCK_MONOTONIC (bpf_ktime_get_ns)
	TSLo    uint64 // Bounded: earliest time it can have happened
	Sk      uint64 // struct sock * of the packet socket
	SockIno uint32 // its inode: sockets at a reused address differ
	Skb     uint64
	A       [3]uint64
	Scan    Scan
	PID     uint32
	TID     uint32
	Frame   uint32
	CPU     uint32
	SndBuf  int32
	Wmem    int32
	Pending int32
	Ifindex uint32
	Old     State
	New     State
	Prec    Precision
	Cause   Cause
	Aux     uint8
	Hook    Hook
	Comm    string
	Dev     string
}

// Decode reads one ring-buffer record. It fails on short input and on
// fields no BPF program writes (unknown kinds), so corrupt data is caught.
func Decode(b []byte) (Event, error) {
	if len(b) < RawSize {
		return Event{}, fmt.Errorf("event record of %d bytes, want %d", len(b), RawSize)
	}
	var r bpfobj.RingtraceRtEvent
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&r)), RawSize), b)
	e := Event{
		Kind: Kind(r.Kind), TS: r.Ts, TSLo: r.TsLo, Sk: r.Sk, Skb: r.Skb, A: r.A,
		Scan: Scan{Head: r.Scan.Head, Frames: r.Scan.Nframes, RunSendRequest: r.Scan.RunSendRequest,
			SendRequest: r.Scan.SendRequest, Sending: r.Scan.Sending, Available: r.Scan.Available,
			WrongFormat: r.Scan.WrongFormat, Scanned: r.Scan.Scanned},
		PID: r.Pid, TID: r.Tid, Frame: r.Frame, CPU: r.Cpu, SndBuf: r.Sndbuf, Wmem: r.Wmem,
		Pending: r.Pending, Ifindex: r.Ifindex, SockIno: r.SockIno, Old: State(r.OldState), New: State(r.NewState),
		Prec: Precision(r.Prec), Cause: Cause(r.Cause), Aux: r.Aux, Hook: Hook(r.Hook),
		Comm: cstring(r.Comm[:]), Dev: cstring(r.Dev[:]),
	}
	if e.Kind == 0 || e.Kind > maxKind {
		return Event{}, fmt.Errorf("event record with unknown kind %d", r.Kind)
	}
	if e.Prec > Bounded {
		return Event{}, fmt.Errorf("event record with unknown precision %d", r.Prec)
	}
	return e, nil
}

// Encode writes e in the ring-buffer record layout (recordings, tests).
func Encode(e Event) []byte {
	var r bpfobj.RingtraceRtEvent
	r.Kind, r.Ts, r.TsLo, r.Sk, r.Skb, r.A = uint16(e.Kind), e.TS, e.TSLo, e.Sk, e.Skb, e.A
	r.Scan.Head, r.Scan.Nframes, r.Scan.RunSendRequest = e.Scan.Head, e.Scan.Frames, e.Scan.RunSendRequest
	r.Scan.SendRequest, r.Scan.Sending, r.Scan.Available = e.Scan.SendRequest, e.Scan.Sending, e.Scan.Available
	r.Scan.WrongFormat, r.Scan.Scanned = e.Scan.WrongFormat, e.Scan.Scanned
	r.Pid, r.Tid, r.Frame, r.Cpu = e.PID, e.TID, e.Frame, e.CPU
	r.Sndbuf, r.Wmem, r.Pending, r.Ifindex, r.SockIno = e.SndBuf, e.Wmem, e.Pending, e.Ifindex, e.SockIno
	r.OldState, r.NewState, r.Prec, r.Cause, r.Aux, r.Hook = uint8(e.Old), uint8(e.New), uint8(e.Prec), uint8(e.Cause), e.Aux, uint8(e.Hook)
	putCString(r.Comm[:], e.Comm)
	putCString(r.Dev[:], e.Dev)
	out := make([]byte, RawSize)
	copy(out, unsafe.Slice((*byte)(unsafe.Pointer(&r)), RawSize))
	return out
}

func cstring(b []int8) string {
	u := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(b))), len(b))
	if i := bytes.IndexByte(u, 0); i >= 0 {
		u = u[:i]
	}
	return string(u)
}

func putCString(dst []int8, s string) {
	for i := 0; i < len(dst)-1 && i < len(s); i++ {
		dst[i] = int8(s[i])
	}
}

// Ret is a sendmsg return value or a driver/xmit return code.
func (e *Event) Ret() int64 { return int64(e.A[0]) }

// HasFrame reports whether the event names a ring frame.
func (e *Event) HasFrame() bool { return e.Frame != NoFrame }

// Duration of a span event (softirq) or of a sleep that ended (wake).
func (e *Event) Duration() uint64 {
	if e.TSLo != 0 && e.TS > e.TSLo {
		return e.TS - e.TSLo
	}
	return 0
}
