package event

import (
	"strconv"

	"golang.org/x/sys/unix"
)

// jw appends a JSON object without reflection: events are written at
// ring-buffer rates. Objects are opened with their first key written out;
// the methods add the members after it.
type jw struct {
	b []byte
}

func (w *jw) key(k string) {
	w.b = append(w.b, ',', '"')
	w.b = append(w.b, k...)
	w.b = append(w.b, '"', ':')
}

func (w *jw) str(k, v string) {
	w.key(k)
	w.b = appendQuoted(w.b, v)
}

// appendQuoted is strconv.AppendQuote, with a fast path for the usual
// printable ASCII.
func appendQuoted(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c > '~' || c == '"' || c == '\\' {
			return strconv.AppendQuote(dst, s)
		}
	}
	return append(append(append(dst, '"'), s...), '"')
}

// open starts a string value the caller appends (only characters that
// need no quoting); close ends it.
func (w *jw) open(k string) {
	w.key(k)
	w.b = append(w.b, '"')
}

func (w *jw) close() { w.b = append(w.b, '"') }

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
	w.b = strconv.AppendUint(append(w.b, `,"ring":{"head":`...), uint64(s.Head), 10)
	w.u("frames", uint64(s.Frames))
	w.u("send_request", uint64(s.SendRequest))
	w.u("run_send_request", uint64(s.RunSendRequest))
	w.u("sending", uint64(s.Sending))
	w.u("available", uint64(s.Available))
	w.u("wrong_format", uint64(s.WrongFormat))
	w.u("scanned", uint64(s.Scanned))
	w.b = append(w.b, '}')
}

// AppendJSON appends e as one JSON object (no newline). The frame_state
// shape is a contract:
//
//	{"event":"frame_state","frame":N,"state":"SENDING"|"AVAILABLE"|"SEND_REQUEST"|"WRONG_FORMAT",
//	 "old_state":...,"ts_ns":...,"pid":...,"sock":"sk1","sock_ino":N,...}
//
// A socket is its label and inode; its kernel address ("socket":"0x...")
// and a napi poll's ("napi") only with Names.KernelAddresses.
func (f *Formatter) AppendJSON(dst []byte, e *Event) []byte {
	w := jw{b: appendQuoted(append(dst, `{"event":`...), e.Kind.String())}
	w.u("ts_ns", e.TS)
	w.u("cpu", uint64(e.CPU))
	w.u("pid", uint64(e.PID))
	w.u("tid", uint64(e.TID))
	w.str("comm", e.Comm)
	if e.Sk != 0 {
		if f.Names.KernelAddresses {
			w.hex("socket", e.Sk)
		}
		w.open("sock")
		w.b = f.appendSocketLabel(w.b, e.Sk, e.SockIno, e.Kind == SockGone)
		w.close()
		// The socket's inode, also for the events that carry none (those
		// the normaliser implies, a few BPF ones): the labelled socket's.
		if ino := f.lastIno; ino != 0 {
			w.u("sock_ino", uint64(ino))
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
		if e.QdiscBypass() {
			w.bool("qdisc_bypass", true)
		}
		w.scan(e.Scan)
		sockState()
	case SendmsgReturn:
		w.i("ret", e.Ret())
		if e.Ret() < 0 {
			w.str("errno", unix.ErrnoName(unix.Errno(-e.Ret())))
		}
		w.u("enter_ns", e.A[2])
		w.u("duration_ns", e.TS-e.A[2])
		w.bool("dontwait", e.ReturnDontWait())
		if sig := e.PendingSignal(); sig != 0 {
			w.str("signal_pending", SignalName(sig))
		}
		if e.N > 0 {
			w.u("frames_taken", uint64(e.N))
		}
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
			f.jsonDropReason(&w, "free_reason", e.A[0])
			f.jsonSymbol(&w, "free_location", e.A[1])
		}
		sockState()
	case QdiscEnqueue, QdiscDequeue:
		w.open("qdisc")
		w.b = strconv.AppendUint(w.b, e.A[0]>>16, 16)
		w.b = strconv.AppendUint(append(w.b, ':'), e.A[0]&0xffff, 16)
		w.close()
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
		f.jsonDropReason(&w, "reason", e.A[0])
		f.jsonSymbol(&w, "location", e.A[1])
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
		w.open("vec")
		w.b = appendSoftirqName(w.b, e.Aux)
		w.close()
		w.u("start_ns", e.TSLo)
		w.u("duration_ns", e.Duration())
	case Blind:
		w.u("start_ns", e.TSLo)
		w.u("duration_ns", e.Duration())
	case SockGone:
		if e.Pending > 0 {
			w.i("abandoned", int64(e.Pending))
		}
	case NapiPoll:
		w.u("work", e.A[0])
		w.u("budget", e.A[1])
		if f.Names.KernelAddresses {
			w.hex("napi", e.A[2])
		}
	}
	w.b = append(w.b, '}')
	return w.b
}

func (f *Formatter) jsonDropReason(w *jw, k string, code uint64) {
	if n := f.dropReason(code); n != "" {
		w.str(k, n)
		return
	}
	w.open(k)
	w.b = strconv.AppendUint(w.b, code, 10)
	w.close()
}

func (f *Formatter) jsonSymbol(w *jw, k string, addr uint64) {
	if s := f.symbol(addr); s != "" {
		w.str(k, s)
		return
	}
	w.open(k)
	w.b = f.appendSymbol(w.b, addr)
	w.close()
}
