package event

import (
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Names resolves kernel numbers to names for output. Any field may be nil.
type Names struct {
	DropReason func(code uint32) string // enum skb_drop_reason
	Symbol     func(addr uint64) string // kernel text address
}

// Formatter turns events into text lines or JSON objects. It numbers
// sockets in order of appearance (sk1, sk2, ...) and prints times relative
// to Base. Not safe for concurrent use.
type Formatter struct {
	Base  uint64 // ns subtracted from timestamps in text output
	Names Names
	socks map[sockID]int
	cur   map[uint64]uint32 // socket inode last seen at each address
}

// sockID names one socket: its address and inode (addresses are reused).
type sockID struct {
	sk  uint64
	ino uint32
}

// NewFormatter returns a formatter with times relative to base.
func NewFormatter(base uint64, names Names) *Formatter {
	return &Formatter{Base: base, Names: names, socks: map[sockID]int{}, cur: map[uint64]uint32{}}
}

// SocketLabel is the short name of a socket ("sk1"). Events that carry no
// inode (rare) take the last socket seen at their address.
func (f *Formatter) SocketLabel(sk uint64, ino uint32) string {
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

func (f *Formatter) rel(ts uint64) float64 {
	if ts < f.Base {
		return -float64(f.Base-ts) / 1e9
	}
	return float64(ts-f.Base) / 1e9
}

// MsgFlags renders sendmsg flags.
func MsgFlags(fl uint64) string {
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

// ReturnString renders a sendmsg return: bytes or -errno.
func ReturnString(ret int64) string {
	if ret < 0 {
		return fmt.Sprintf("%d (-%s)", ret, unix.ErrnoName(unix.Errno(-ret)))
	}
	return strconv.FormatInt(ret, 10)
}

func softirqName(vec uint8) string {
	switch vec {
	case 2:
		return "NET_TX"
	case 3:
		return "NET_RX"
	}
	return "vec" + strconv.Itoa(int(vec))
}

func (f *Formatter) dropReason(code uint64) string {
	if f.Names.DropReason != nil {
		if n := f.Names.DropReason(uint32(code)); n != "" {
			return n
		}
	}
	return strconv.FormatUint(code, 10)
}

func (f *Formatter) symbol(addr uint64) string {
	if addr == 0 {
		return ""
	}
	if f.Names.Symbol != nil {
		if s := f.Names.Symbol(addr); s != "" {
			return s
		}
	}
	return fmt.Sprintf("%#x", addr)
}

func dur(ns uint64) string {
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
func (f *Formatter) Text(e *Event) string {
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
		fmt.Fprintf(&b, "sendmsg enter    flags=%s head=%d SEND_REQUEST=%d (run of %d from head) SENDING=%d AVAILABLE=%d",
			MsgFlags(e.A[0]), e.Scan.Head, e.Scan.SendRequest, e.Scan.RunSendRequest, e.Scan.Sending, e.Scan.Available)
		if e.Scan.WrongFormat > 0 {
			fmt.Fprintf(&b, " WRONG_FORMAT=%d", e.Scan.WrongFormat)
		}
		sockState()
	case SendmsgReturn:
		fmt.Fprintf(&b, "sendmsg return   ret=%s after %s head=%d SEND_REQUEST=%d SENDING=%d AVAILABLE=%d",
			ReturnString(e.Ret()), dur(e.TS-e.A[2]), e.Scan.Head, e.Scan.SendRequest, e.Scan.Sending, e.Scan.Available)
		if e.Scan.WrongFormat > 0 {
			fmt.Fprintf(&b, " WRONG_FORMAT=%d", e.Scan.WrongFormat)
		}
		sockState()
	case FrameState:
		fmt.Fprintf(&b, "%s -> %s", e.Old, e.New)
		if c := e.Cause.String(); c != "" {
			fmt.Fprintf(&b, " [%s]", c)
		}
		if e.Prec == Bounded {
			if e.TSLo > 0 && e.TSLo <= e.TS {
				fmt.Fprintf(&b, " (bounded: within the %s before)", dur(e.TS-e.TSLo))
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
		fmt.Fprintf(&b, "driver returned  dev=%s rc=%s", e.Dev, netdevTx(e.Ret()))
	case XmitRC:
		fmt.Fprintf(&b, "xmit returned    rc=%s", netXmit(e.Ret()))
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
			fmt.Fprintf(&b, "sender runs      tid=%d after %s runnable without a CPU", e.A[0], dur(e.Duration()))
		} else {
			fmt.Fprintf(&b, "sender woken     tid=%d after %s in %s wait, by %s", e.A[0], dur(e.Duration()), Wait(e.A[1]), wakerString(Wait(e.Aux)))
		}
		sockState()
	case Softirq:
		fmt.Fprintf(&b, "softirq %-8s %s", softirqName(e.Aux), dur(e.Duration()))
	case NapiPoll:
		fmt.Fprintf(&b, "napi poll        dev=%s work=%d budget=%d", e.Dev, e.A[0], e.A[1])
	case RX:
		fmt.Fprintf(&b, "received         dev=%s", e.Dev)
	case FramePicked:
		b.WriteString("frame picked     tpacket_snd takes this SEND_REQUEST frame")
		sockState()
	case SockGone:
		b.WriteString("socket's ring went away (closed or re-created): frame no longer tracked")
	default:
		b.WriteString(e.Kind.String())
	}
	return b.String()
}

func wakerString(w Wait) string {
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

// netdevTx names an ndo_start_xmit return code.
func netdevTx(rc int64) string {
	switch rc {
	case 0:
		return "NETDEV_TX_OK"
	case 0x10:
		return "NETDEV_TX_BUSY"
	}
	return strconv.FormatInt(rc, 10)
}

// netXmit names a dev_queue_xmit return code.
func netXmit(rc int64) string {
	switch rc {
	case 0:
		return "NET_XMIT_SUCCESS"
	case 1:
		return "NET_XMIT_DROP"
	case 2:
		return "NET_XMIT_CN"
	}
	if rc < 0 {
		return ReturnString(rc)
	}
	return strconv.FormatInt(rc, 10)
}
