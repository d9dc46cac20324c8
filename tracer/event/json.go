package event

import (
	"strconv"

	"golang.org/x/sys/unix"
)

// jw appends a JSON object without reflection: events are written at
// ring-buffer rates.
type jw struct {
	b     []byte
	first bool
}

func (w *jw) key(k string) {
	if !w.first {
		w.b = append(w.b, ',')
	}
	w.first = false
	w.b = append(w.b, '"')
	w.b = append(w.b, k...)
	w.b = append(w.b, '"', ':')
}

func (w *jw) str(k, v string) {
	w.key(k)
	w.b = strconv.AppendQuote(w.b, v)
}

func (w *jw) u(k string, v uint64) {
	w.key(k)
	w.b = strconv.AppendUint(w.b, v, 10)
}

func (w *jw) i(k string, v int64) {
	w.key(k)
	w.b = strconv.AppendInt(w.b, v, 10)
}

func (w *jw) bool(k string, v bool) {
	w.key(k)
	w.b = strconv.AppendBool(w.b, v)
}

func (w *jw) hex(k string, v uint64) {
	w.key(k)
	w.b = append(w.b, `"0x`...)
	w.b = strconv.AppendUint(w.b, v, 16)
	w.b = append(w.b, '"')
}

func (w *jw) scan(s Scan) {
	w.key("ring")
	w.b = append(w.b, '{')
	w.first = true
	w.u("head", uint64(s.Head))
	w.u("frames", uint64(s.Frames))
	w.u("send_request", uint64(s.SendRequest))
	w.u("run_send_request", uint64(s.RunSendRequest))
	w.u("sending", uint64(s.Sending))
	w.u("available", uint64(s.Available))
	w.u("wrong_format", uint64(s.WrongFormat))
	w.u("scanned", uint64(s.Scanned))
	w.b = append(w.b, '}')
	w.first = false
}

// AppendJSON appends e as one JSON object (no newline). The frame_state
// shape is a contract:
//
//	{"event":"frame_state","frame":N,"state":"SENDING"|"AVAILABLE"|"SEND_REQUEST"|"WRONG_FORMAT",
//	 "old_state":...,"ts_ns":...,"pid":...,"socket":"0x...",...}
func (f *Formatter) AppendJSON(dst []byte, e *Event) []byte {
	w := jw{b: append(dst, '{'), first: true}
	w.str("event", e.Kind.String())
	w.u("ts_ns", e.TS)
	w.u("cpu", uint64(e.CPU))
	w.u("pid", uint64(e.PID))
	w.u("tid", uint64(e.TID))
	w.str("comm", e.Comm)
	if e.Sk != 0 {
		w.hex("socket", e.Sk)
		w.str("sock", f.SocketLabel(e.Sk, e.SockIno))
		if e.SockIno != 0 {
			w.u("sock_ino", uint64(e.SockIno))
		}
	}
	if e.HasFrame() {
		w.u("frame", uint64(e.Frame))
	}
	sockState := func() {
		if e.SndBuf >= 0 {
			w.i("sndbuf", int64(e.SndBuf))
			w.i("wmem", int64(e.Wmem))
		}
		if e.Pending >= 0 {
			w.i("pending", int64(e.Pending))
		}
	}
	if e.Dev != "" {
		w.str("dev", e.Dev)
	}
	switch e.Kind {
	case SendmsgEnter:
		w.u("flags", e.A[0])
		w.bool("dontwait", e.A[0]&unix.MSG_DONTWAIT != 0)
		w.scan(e.Scan)
		sockState()
	case SendmsgReturn:
		w.i("ret", e.Ret())
		if e.Ret() < 0 {
			w.str("errno", unix.ErrnoName(unix.Errno(-e.Ret())))
		}
		w.u("enter_ns", e.A[2])
		w.u("duration_ns", e.TS-e.A[2])
		w.bool("dontwait", e.Aux == 1)
		w.scan(e.Scan)
		sockState()
	case FrameState:
		w.str("state", e.New.String())
		w.str("old_state", e.Old.String())
		w.str("precision", e.Prec.String())
		if e.Prec == Bounded && e.TSLo != 0 {
			w.u("ts_lo_ns", e.TSLo)
		}
		w.str("cause", e.Cause.String())
		w.str("hook", e.Hook.String())
		if e.New == Available && e.A[1] != 0 {
			w.str("free_reason", f.dropReason(e.A[0]))
			w.str("free_location", f.symbol(e.A[1]))
		}
		sockState()
	case QdiscEnqueue, QdiscDequeue:
		w.str("qdisc", strconv.FormatUint(e.A[0]>>16, 16)+":"+strconv.FormatUint(e.A[0]&0xffff, 16))
		w.u("qlen", e.A[1]&0xffffffff)
		w.u("backlog", e.A[1]>>32)
		if e.Kind == QdiscDequeue {
			w.u("packets", e.A[2])
		}
	case XmitDone, XmitRC:
		w.i("rc", e.Ret())
	case Drop:
		w.bool("synchronous", e.Aux == 0)
		w.u("reason_code", e.A[0])
		w.str("reason", f.dropReason(e.A[0]))
		w.str("location", f.symbol(e.A[1]))
		sockState()
	case Sleep:
		w.str("reason", Wait(e.Aux).String())
		sockState()
	case Wake:
		w.u("woken_tid", e.A[0])
		w.str("sleep_reason", Wait(e.A[1]).String())
		w.str("waker", Wait(e.Aux).String())
		w.u("slept_ns", e.Duration())
		sockState()
	case Softirq:
		w.str("vec", softirqName(e.Aux))
		w.u("start_ns", e.TSLo)
		w.u("duration_ns", e.Duration())
	case NapiPoll:
		w.u("work", e.A[0])
		w.u("budget", e.A[1])
		w.hex("napi", e.A[2])
	}
	w.b = append(w.b, '}')
	return w.b
}
