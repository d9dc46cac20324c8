package event

// The formatter as it was before text and JSON output were made to append
// without fmt (commit aa7bca9), kept as the reference the output must stay
// byte-identical to; since, kernel addresses only appear with
// Names.KernelAddresses.

import (
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// refFormatter turns events into text lines or JSON objects. It numbers
// sockets in order of appearance (sk1, sk2, ...) and prints times relative
// to Base. Not safe for concurrent use.
type refFormatter struct {
	Base  uint64 // ns subtracted from timestamps in text output
	Names Names
	socks map[sockID]int
	cur   map[uint64]uint32 // socket inode last seen at each address
}

// newRefFormatter returns a formatter with times relative to base.
func newRefFormatter(base uint64, names Names) *refFormatter {
	return &refFormatter{Base: base, Names: names, socks: map[sockID]int{}, cur: map[uint64]uint32{}}
}

// SocketLabel is the short name of a socket ("sk1"). Events that carry no
// inode (rare) take the last socket seen at their address.
func (f *refFormatter) SocketLabel(sk uint64, ino uint32) string {
	if sk == 0 {
		return "-"
	}
	if ino == 0 {
		ino = f.cur[sk]
	} else {
		f.cur[sk] = ino
	}
	id := sockID{sk, ino}
	n, ok := f.socks[id]
	if !ok {
		n = len(f.socks) + 1
		f.socks[id] = n
	}
	return "sk" + strconv.Itoa(n)
}

func (f *refFormatter) rel(ts uint64) float64 {
	if ts < f.Base {
		return -float64(f.Base-ts) / 1e9
	}
	return float64(ts-f.Base) / 1e9
}

// refMsgFlags renders sendmsg flags.
func refMsgFlags(fl uint64) string {
	if fl == 0 {
		return "0 (blocking)"
	}
	var parts []string
	for _, x := range []struct {
		bit  uint64
		name string
	}{{unix.MSG_DONTWAIT, "MSG_DONTWAIT"}, {unix.MSG_CONFIRM, "MSG_CONFIRM"}, {unix.MSG_MORE, "MSG_MORE"}} {
		if fl&x.bit != 0 {
			parts = append(parts, x.name)
			fl &^= x.bit
		}
	}
	if fl != 0 {
		parts = append(parts, fmt.Sprintf("%#x", fl))
	}
	return strings.Join(parts, "|")
}

// refReturnString renders a sendmsg return: bytes or -errno.
func refReturnString(ret int64) string {
	if ret < 0 {
		return fmt.Sprintf("%d (-%s)", ret, unix.ErrnoName(unix.Errno(-ret)))
	}
	return strconv.FormatInt(ret, 10)
}

func refSoftirqName(vec uint8) string {
	switch vec {
	case 2:
		return "NET_TX"
	case 3:
		return "NET_RX"
	}
	return "vec" + strconv.Itoa(int(vec))
}

func (f *refFormatter) dropReason(code uint64) string {
	if f.Names.DropReason != nil {
		if n := f.Names.DropReason(uint32(code)); n != "" {
			return n
		}
	}
	return strconv.FormatUint(code, 10)
}

func (f *refFormatter) symbol(addr uint64) string {
	if addr == 0 {
		return ""
	}
	if f.Names.Symbol != nil {
		if s := f.Names.Symbol(addr); s != "" {
			return s
		}
	}
	if !f.Names.KernelAddresses {
		return "?"
	}
	return fmt.Sprintf("%#x", addr)
}

func refDur(ns uint64) string {
	switch {
	case ns >= 1e9:
		return fmt.Sprintf("%.3fs", float64(ns)/1e9)
	case ns >= 1e6:
		return fmt.Sprintf("%.3fms", float64(ns)/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.1fus", float64(ns)/1e3)
	}
	return fmt.Sprintf("%dns", ns)
}

// Text renders one event as a line (without newline):
//
//	TIME  CPU COMM/TID  SOCKET FRAME  WHAT  DETAILS
func (f *refFormatter) Text(e *Event) string {
	var b strings.Builder
	frame := "-"
	if e.HasFrame() {
		frame = "#" + strconv.FormatUint(uint64(e.Frame), 10)
	}
	fmt.Fprintf(&b, "%14.9f cpu%-2d %-22s %-4s %-6s ", f.rel(e.TS), e.CPU,
		fmt.Sprintf("%s/%d", e.Comm, e.TID), f.SocketLabel(e.Sk, e.SockIno), frame)
	sockState := func() {
		if e.SndBuf >= 0 {
			fmt.Fprintf(&b, " sndbuf=%d wmem=%d", e.SndBuf, e.Wmem)
		}
		if e.Pending >= 0 {
			fmt.Fprintf(&b, " pending=%d", e.Pending)
		}
	}
	switch e.Kind {
	case SendmsgEnter:
		bypass := ""
		if e.A[2] != 0 {
			bypass = " qdisc-bypass"
		}
		fmt.Fprintf(&b, "sendmsg enter    flags=%s%s head=%d SEND_REQUEST=%d (run of %d from head) SENDING=%d AVAILABLE=%d",
			refMsgFlags(e.A[0]), bypass, e.Scan.Head, e.Scan.SendRequest, e.Scan.RunSendRequest, e.Scan.Sending, e.Scan.Available)
		if e.Scan.WrongFormat > 0 {
			fmt.Fprintf(&b, " WRONG_FORMAT=%d", e.Scan.WrongFormat)
		}
		if e.Scan.Scanned < e.Scan.Frames {
			fmt.Fprintf(&b, " (read %d of %d frames)", e.Scan.Scanned, e.Scan.Frames)
		}
		sockState()
	case SendmsgReturn:
		fmt.Fprintf(&b, "sendmsg return   ret=%s after %s", refReturnString(e.Ret()), refDur(e.TS-e.A[2]))
		if e.N > 0 {
			fmt.Fprintf(&b, " taken=%d", e.N)
		}
		fmt.Fprintf(&b, " head=%d SEND_REQUEST=%d SENDING=%d AVAILABLE=%d", e.Scan.Head, e.Scan.SendRequest, e.Scan.Sending, e.Scan.Available)
		if e.Scan.WrongFormat > 0 {
			fmt.Fprintf(&b, " WRONG_FORMAT=%d", e.Scan.WrongFormat)
		}
		if e.Scan.Scanned < e.Scan.Frames {
			fmt.Fprintf(&b, " (read %d of %d frames)", e.Scan.Scanned, e.Scan.Frames)
		}
		if e.Aux>>1 != 0 {
			fmt.Fprintf(&b, " (%s pending)", refSignalName(e.Aux>>1))
		}
		sockState()
	case FrameState:
		fmt.Fprintf(&b, "%s -> %s", e.Old, e.New)
		if c := e.Cause.String(); c != "" {
			fmt.Fprintf(&b, " [%s]", c)
		}
		if e.Prec == Bounded {
			if e.TSLo > 0 && e.TSLo <= e.TS {
				fmt.Fprintf(&b, " (bounded: within the %s before)", refDur(e.TS-e.TSLo))
			} else {
				b.WriteString(" (bounded)")
			}
		}
		if e.Dev != "" {
			fmt.Fprintf(&b, " dev=%s", e.Dev)
		}
		if e.New == Available && e.A[1] != 0 {
			fmt.Fprintf(&b, " (kfree_skb %s at %s)", f.dropReason(e.A[0]), f.symbol(e.A[1]))
		}
		sockState()
	case QdiscEnqueue, QdiscDequeue:
		what := "qdisc enqueue"
		if e.Kind == QdiscDequeue {
			what = "qdisc dequeue"
		}
		fmt.Fprintf(&b, "%-16s qdisc %x:%x qlen=%d backlog=%dB", what, e.A[0]>>16, e.A[0]&0xffff, uint32(e.A[1]), e.A[1]>>32)
	case XmitStart:
		fmt.Fprintf(&b, "driver xmit      dev=%s", e.Dev)
	case XmitDone:
		fmt.Fprintf(&b, "driver returned  dev=%s rc=%s", e.Dev, refNetdevTx(e.Ret()))
	case XmitRC:
		fmt.Fprintf(&b, "xmit returned    rc=%s", refNetXmit(e.Ret()))
	case Drop:
		fmt.Fprintf(&b, "DROP             reason=%s at %s dev=%s", f.dropReason(e.A[0]), f.symbol(e.A[1]), e.Dev)
		if e.Aux == 1 {
			b.WriteString(" (asynchronous, NET_TX softirq: the sender is not told)")
		} else {
			b.WriteString(" (in the sender's xmit: frame rolled back, sendto gets -ENOBUFS)")
		}
		sockState()
	case Sleep:
		fmt.Fprintf(&b, "sender sleeps    waiting for %s", Wait(e.Aux))
		sockState()
	case Wake:
		if Wait(e.A[1]) == WaitCPU {
			fmt.Fprintf(&b, "sender runs      tid=%d after %s runnable without a CPU", e.A[0], refDur(e.Duration()))
		} else {
			fmt.Fprintf(&b, "sender woken     tid=%d after %s in %s wait, by %s", e.A[0], refDur(e.Duration()), Wait(e.A[1]), refWakerString(Wait(e.Aux)))
		}
		sockState()
	case Softirq:
		fmt.Fprintf(&b, "softirq %-8s %s", refSoftirqName(e.Aux), refDur(e.Duration()))
	case NapiPoll:
		fmt.Fprintf(&b, "napi poll        dev=%s work=%d budget=%d", e.Dev, e.A[0], e.A[1])
	case RX:
		fmt.Fprintf(&b, "received         dev=%s", e.Dev)
	case Blind:
		fmt.Fprintf(&b, "hidden CPU time  %s on this task: the kernel runs no BPF program for it, events on its time are missing", refDur(e.Duration()))
	case FramePicked:
		b.WriteString("frame picked     tpacket_snd takes this SEND_REQUEST frame")
		sockState()
	case SockGone:
		b.WriteString("socket closed: its timeline ends")
		if e.Pending > 0 {
			fmt.Fprintf(&b, ", %d frames abandoned SENDING (the kernel freed the ring)", e.Pending)
		}
	default:
		b.WriteString(e.Kind.String())
	}
	return b.String()
}

func refWakerString(w Wait) string {
	switch w {
	case WaitCompletion:
		return "a TX completion"
	case WaitSndbuf:
		return "freed sndbuf space"
	case WaitPgVecLock:
		return "pg_vec_lock release"
	}
	return "something else (signal, timeout)"
}

// refNetdevTx names an ndo_start_xmit return code.
func refNetdevTx(rc int64) string {
	switch rc {
	case 0:
		return "NETDEV_TX_OK"
	case 0x10:
		return "NETDEV_TX_BUSY"
	}
	return strconv.FormatInt(rc, 10)
}

// refNetXmit names a dev_queue_xmit return code.
func refNetXmit(rc int64) string {
	switch rc {
	case 0:
		return "NET_XMIT_SUCCESS"
	case 1:
		return "NET_XMIT_DROP"
	case 2:
		return "NET_XMIT_CN"
	}
	if rc < 0 {
		return refReturnString(rc)
	}
	return strconv.FormatInt(rc, 10)
}

// refJW appends a JSON object without reflection: events are written at
// ring-buffer rates.
type refJW struct {
	b     []byte
	first bool
}

func (w *refJW) key(k string) {
	if !w.first {
		w.b = append(w.b, ',')
	}
	w.first = false
	w.b = append(w.b, '"')
	w.b = append(w.b, k...)
	w.b = append(w.b, '"', ':')
}

func (w *refJW) str(k, v string) {
	w.key(k)
	w.b = strconv.AppendQuote(w.b, v)
}

func (w *refJW) u(k string, v uint64) {
	w.key(k)
	w.b = strconv.AppendUint(w.b, v, 10)
}

func (w *refJW) i(k string, v int64) {
	w.key(k)
	w.b = strconv.AppendInt(w.b, v, 10)
}

func (w *refJW) bool(k string, v bool) {
	w.key(k)
	w.b = strconv.AppendBool(w.b, v)
}

func (w *refJW) hex(k string, v uint64) {
	w.key(k)
	w.b = append(w.b, `"0x`...)
	w.b = strconv.AppendUint(w.b, v, 16)
	w.b = append(w.b, '"')
}

func (w *refJW) scan(s Scan) {
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
func (f *refFormatter) AppendJSON(dst []byte, e *Event) []byte {
	w := refJW{b: append(dst, '{'), first: true}
	w.str("event", e.Kind.String())
	w.u("ts_ns", e.TS)
	w.u("cpu", uint64(e.CPU))
	w.u("pid", uint64(e.PID))
	w.u("tid", uint64(e.TID))
	w.str("comm", e.Comm)
	if e.Sk != 0 {
		if f.Names.KernelAddresses {
			w.hex("socket", e.Sk)
		}
		w.str("sock", f.SocketLabel(e.Sk, e.SockIno))
		if ino := f.cur[e.Sk]; ino != 0 {
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
		if e.A[2] != 0 {
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
		w.bool("dontwait", e.Aux&1 == 1)
		if e.Aux>>1 != 0 {
			w.str("signal_pending", refSignalName(e.Aux>>1))
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
		w.str("vec", refSoftirqName(e.Aux))
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

func refSignalName(sig uint8) string {
	if n := unix.SignalName(unix.Signal(sig)); n != "" {
		return n
	}
	return fmt.Sprintf("signal %d", sig)
}
