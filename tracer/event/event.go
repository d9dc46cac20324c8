package event

import (
	"bytes"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ringtrace/ringtrace/tracer/bpfobj/bpftypes"
)

// RawSize is the size of one ring-buffer record (struct rt_event).
const RawSize = int(unsafe.Sizeof(bpftypes.RingtraceRtEvent{}))

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
	N       uint32 // SendmsgReturn: frames the call took from SEND_REQUEST (0: unknown)
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

// Decode reads one ring-buffer record: a full one (RawSize) or a short
// one (ShortSize, whose names it leaves empty: see Decoder). It fails on
// input of another size and on fields no BPF program writes (unknown
// kinds), so corrupt data is caught.
func Decode(b []byte) (Event, error) {
	var e Event
	if err := decode(b, &e, nil); err != nil {
		return Event{}, err
	}
	return e, nil
}

// Decoder decodes records like Decode, into events the caller owns, and
// reuses the strings (comm, dev) it has already seen, so that decoding a
// stream does not allocate once its task and device names are known. The
// zero value is ready to use. Not safe for concurrent use.
//
// A stream's short records (FrameShort) leave out names its full records
// gave: a Decoder fills them in, so it must see the stream's records in the
// order they were written.
type Decoder struct {
	strs     map[string]string // interned comm and dev names
	lastComm string
	lastDev  string
	comms    map[uint32]string  // thread -> comm of its last full record
	devs     map[uint64]devName // socket -> its own device, from its last full record keeping it
	tid      uint32             // the last thread learnt, and its comm
	tidComm  string
	sk       uint64 // the last socket learnt, and its device
	skDev    devName
}

// maxInterned bounds a Decoder's string table; when it is full the table
// starts over (a trace of many short-lived tasks must not grow it forever).
const maxInterned = 4096

// Decode reads one ring-buffer record into e, with the checks of the
// package-level Decode, a short record with the names the stream's earlier
// full records gave. On error e is left unchanged.
func (d *Decoder) Decode(b []byte, e *Event) error { return decode(b, e, d) }

func decode(b []byte, e *Event, d *Decoder) error {
	if len(b) == ShortSize {
		return decodeShort(b, e, d)
	}
	if len(b) < RawSize {
		return fmt.Errorf("event record of %d bytes, want %d", len(b), RawSize)
	}
	var c bpftypes.RingtraceRtEvent
	r := view(b, &c)
	if !recorded(Kind(r.Kind)) {
		return fmt.Errorf("event record with unknown kind %d", r.Kind)
	}
	if Precision(r.Prec) > Bounded {
		return fmt.Errorf("event record with unknown precision %d", r.Prec)
	}
	var comm, dev string
	if d == nil {
		comm, dev = string(cbytes(r.Comm[:])), string(cbytes(r.Dev[:]))
	} else {
		comm, dev = d.intern(cbytes(r.Comm[:]), &d.lastComm), d.intern(cbytes(r.Dev[:]), &d.lastDev)
		d.learn(Kind(r.Kind), State(r.NewState), r.Tid, comm, r.Sk, r.Ifindex, dev)
	}
	*e = Event{
		Kind: Kind(r.Kind), TS: r.Ts, TSLo: r.TsLo, Sk: r.Sk, Skb: r.Skb, A: r.A,
		Scan: Scan{Head: r.Scan.Head, Frames: r.Scan.Nframes, RunSendRequest: r.Scan.RunSendRequest,
			SendRequest: r.Scan.SendRequest, Sending: r.Scan.Sending, Available: r.Scan.Available,
			WrongFormat: r.Scan.WrongFormat, Scanned: r.Scan.Scanned},
		PID: r.Pid, TID: r.Tid, Frame: r.Frame, CPU: r.Cpu, SndBuf: r.Sndbuf, Wmem: r.Wmem,
		Pending: r.Pending, Ifindex: r.Ifindex, SockIno: r.SockIno, N: r.N, Old: State(r.OldState), New: State(r.NewState),
		Prec: Precision(r.Prec), Cause: Cause(r.Cause), Aux: r.Aux, Hook: Hook(r.Hook),
		Comm: comm, Dev: dev,
	}
	return nil
}

// intern returns b as a string, the same string as the last time it was
// seen (in last, then in the table) when there was one.
func (d *Decoder) intern(b []byte, last *string) string {
	switch {
	case len(b) == 0:
		return ""
	case string(b) == *last:
		return *last
	}
	s, ok := d.strs[string(b)]
	if !ok {
		if d.strs == nil || len(d.strs) >= maxInterned {
			d.strs = make(map[string]string)
		}
		s = string(b)
		d.strs[s] = s
	}
	*last = s
	return s
}

// Encode writes e in the ring-buffer record layout (recordings, tests).
func Encode(e Event) []byte {
	var r bpftypes.RingtraceRtEvent
	r.Kind, r.Ts, r.TsLo, r.Sk, r.Skb, r.A = uint16(e.Kind), e.TS, e.TSLo, e.Sk, e.Skb, e.A
	r.Scan.Head, r.Scan.Nframes, r.Scan.RunSendRequest = e.Scan.Head, e.Scan.Frames, e.Scan.RunSendRequest
	r.Scan.SendRequest, r.Scan.Sending, r.Scan.Available = e.Scan.SendRequest, e.Scan.Sending, e.Scan.Available
	r.Scan.WrongFormat, r.Scan.Scanned = e.Scan.WrongFormat, e.Scan.Scanned
	r.Pid, r.Tid, r.Frame, r.Cpu = e.PID, e.TID, e.Frame, e.CPU
	r.Sndbuf, r.Wmem, r.Pending, r.Ifindex, r.SockIno, r.N = e.SndBuf, e.Wmem, e.Pending, e.Ifindex, e.SockIno, e.N
	r.OldState, r.NewState, r.Prec, r.Cause, r.Aux, r.Hook = uint8(e.Old), uint8(e.New), uint8(e.Prec), uint8(e.Cause), e.Aux, uint8(e.Hook)
	putCString(r.Comm[:], e.Comm)
	putCString(r.Dev[:], e.Dev)
	return bytesOf(&r)
}

// view is record b as a *T: b itself when it is aligned for T (ring-buffer
// samples are), else a copy in c. b holds at least a T.
func view[T any](b []byte, c *T) *T {
	if p := unsafe.Pointer(unsafe.SliceData(b)); uintptr(p)%unsafe.Alignof(*c) == 0 {
		return (*T)(p)
	}
	copy(unsafe.Slice((*byte)(unsafe.Pointer(c)), unsafe.Sizeof(*c)), b)
	return c
}

// bytesOf is a copy of v's bytes: the record layout of a bpftypes struct.
func bytesOf[T any](v *T) []byte {
	return append([]byte(nil), unsafe.Slice((*byte)(unsafe.Pointer(v)), unsafe.Sizeof(*v))...)
}

// cbytes is the NUL-terminated string in b, without copying.
func cbytes(b []int8) []byte {
	u := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(b))), len(b))
	if i := bytes.IndexByte(u, 0); i >= 0 {
		u = u[:i]
	}
	return u
}

func putCString(dst []int8, s string) {
	for i := 0; i < len(dst)-1 && i < len(s); i++ {
		dst[i] = int8(s[i])
	}
}

// Ret is a sendmsg return value or a driver/xmit return code.
func (e *Event) Ret() int64 { return int64(e.A[0]) }

// ReturnDontWait reports whether a sendmsg return was of a MSG_DONTWAIT
// call.
func (e *Event) ReturnDontWait() bool { return e.Kind == SendmsgReturn && e.Aux&1 == 1 }

// PendingSignal is, for a sendmsg return, the lowest signal pending for
// the thread (or its process) and not blocked as the call returned: 0 if
// none. A blocking tpacket_snd a signal interrupts returns the bytes
// queued so far.
func (e *Event) PendingSignal() unix.Signal {
	if e.Kind != SendmsgReturn {
		return 0
	}
	return unix.Signal(e.Aux >> 1)
}

// TPVersion is a SockGone's ring's TPACKET version: 1, 2 or 3 (0: none seen).
func (e *Event) TPVersion() int {
	if e.Kind != SockGone {
		return 0
	}
	return int(e.A[0])
}

// QdiscBypass reports whether a sendmsg entry's socket sends with
// PACKET_QDISC_BYPASS: its frames pass no qdisc and no net_dev tracepoint.
func (e *Event) QdiscBypass() bool { return e.Kind == SendmsgEnter && e.A[2] != 0 }

// HasFrame reports whether the event names a ring frame.
func (e *Event) HasFrame() bool { return e.Frame != NoFrame }

// Duration of a span event (softirq) or of a sleep that ended (wake).
func (e *Event) Duration() uint64 {
	if e.TSLo != 0 && e.TS > e.TSLo {
		return e.TS - e.TSLo
	}
	return 0
}
