package event

import (
	"strconv"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// Names resolves kernel numbers to names for output. Any func may be nil.
type Names struct {
	DropReason func(code uint32) string // enum skb_drop_reason
	Symbol     func(addr uint64) string // kernel text address
	// KernelAddresses shows raw kernel addresses: the socket and napi
	// pointers of JSON events, and a location no symbol names as its hex
	// value. Without it output holds none (a location no symbol names is
	// Unresolved): kernel addresses defeat KASLR, and outputs get shared.
	KernelAddresses bool
}

// Unresolved stands for a kernel location no symbol names, when output
// shows no kernel addresses.
const Unresolved = "?"

// Location is the name of kernel text address addr ("__dev_queue_xmit+0xd01"),
// or, when no symbol names it, its hex value with KernelAddresses and
// Unresolved without; "" for 0.
func (n Names) Location(addr uint64) string {
	if addr == 0 {
		return ""
	}
	if n.Symbol != nil {
		if s := n.Symbol(addr); s != "" {
			return s
		}
	}
	return string(n.appendUnnamed(nil, addr))
}

// appendUnnamed appends what stands for a location no symbol names.
func (n Names) appendUnnamed(dst []byte, addr uint64) []byte {
	if !n.KernelAddresses {
		return append(dst, Unresolved...)
	}
	return strconv.AppendUint(append(dst, "0x"...), addr, 16)
}

// Formatter turns events into text lines or JSON objects. It numbers
// sockets in order of appearance (sk1, sk2, ...) and prints times relative
// to Base; a socket's number is forgotten a while after it closes. It remembers what Names answered for each address, so Names
// must answer the same for an address every time. Not safe for concurrent
// use.
type Formatter struct {
	Base  uint64 // ns subtracted from timestamps in text output
	Names Names
	socks map[sockID]int
	gone  Recent[sockID, int] // sockets closed lately, for their late events
	nsock int                 // sockets numbered so far
	cur   map[uint64]uint32   // socket inode last seen at each address
	// The last socket numbered: consecutive events are mostly of one.
	lastSk  uint64
	lastIno uint32
	lastN   int               // 0: none yet
	syms    map[uint64]string // Names.Symbol answers
}

// sockID names one socket: its address and inode (addresses are reused).
type sockID struct {
	sk  uint64
	ino uint32
}

// maxSymbols bounds the symbol cache (the addresses events name are a
// few drop and free locations).
const maxSymbols = 4096

// NewFormatter returns a formatter with times relative to base.
func NewFormatter(base uint64, names Names) *Formatter {
	return &Formatter{Base: base, Names: names, socks: map[sockID]int{}, cur: map[uint64]uint32{}}
}

// SocketLabel is the short name of a socket ("sk1"). Events that carry no
// inode (rare) take the last socket seen at their address.
func (f *Formatter) SocketLabel(sk uint64, ino uint32) string {
	return string(f.appendSocketLabel(nil, sk, ino, false))
}

// appendSocketLabel appends the label of e's socket; that of a socket that
// closed (e is its SockGone) is kept for a while only.
func (f *Formatter) appendSocketLabel(dst []byte, sk uint64, ino uint32, closed bool) []byte {
	if sk == 0 {
		return append(dst, '-')
	}
	dst = strconv.AppendInt(append(dst, "sk"...), int64(f.socketNumber(sk, ino)), 10)
	if closed {
		f.closed(sk, f.lastIno)
	}
	return dst
}

func (f *Formatter) socketNumber(sk uint64, ino uint32) int {
	// Since the last call f.cur[f.lastSk] is f.lastIno (unset if 0): an
	// event of that socket, or without an inode at its address, is that
	// socket again, and changes nothing.
	if f.lastN != 0 && sk == f.lastSk && (ino == f.lastIno || ino == 0) {
		return f.lastN
	}
	if ino == 0 {
		ino = f.cur[sk]
	} else {
		f.cur[sk] = ino
	}
	id := sockID{sk, ino}
	n, ok := f.socks[id]
	if !ok {
		if n, ok = f.gone.Get(id); !ok {
			f.nsock++
			n = f.nsock
			f.socks[id] = n
		}
	}
	f.lastSk, f.lastIno, f.lastN = sk, ino, n
	return n
}

// closed moves a socket that closed (its SockGone event) to the sockets
// remembered for a while only.
func (f *Formatter) closed(sk uint64, ino uint32) {
	if ino == 0 {
		ino = f.cur[sk]
	}
	id := sockID{sk, ino}
	if n, ok := f.socks[id]; ok {
		delete(f.socks, id)
		f.gone.Put(id, n)
	}
	// f.cur keeps the address: there are as many as sockets open at once.
}

// MsgFlags renders sendmsg flags.
func MsgFlags(fl uint64) string { return string(appendMsgFlags(nil, fl)) }

func appendMsgFlags(dst []byte, fl uint64) []byte {
	if fl == 0 {
		return append(dst, "0 (blocking)"...)
	}
	start := len(dst)
	for _, x := range [...]struct {
		bit  uint64
		name string
	}{{unix.MSG_DONTWAIT, "MSG_DONTWAIT"}, {unix.MSG_CONFIRM, "MSG_CONFIRM"}, {unix.MSG_MORE, "MSG_MORE"}} {
		if fl&x.bit != 0 {
			if len(dst) > start {
				dst = append(dst, '|')
			}
			dst = append(dst, x.name...)
			fl &^= x.bit
		}
	}
	if fl != 0 {
		if len(dst) > start {
			dst = append(dst, '|')
		}
		dst = strconv.AppendUint(append(dst, "0x"...), fl, 16)
	}
	return dst
}

// ReturnString renders a sendmsg return: bytes or -errno.
func ReturnString(ret int64) string { return string(appendReturn(nil, ret)) }

func appendReturn(dst []byte, ret int64) []byte {
	dst = strconv.AppendInt(dst, ret, 10)
	if ret < 0 {
		dst = append(dst, " (-"...)
		dst = append(dst, unix.ErrnoName(unix.Errno(-ret))...)
		dst = append(dst, ')')
	}
	return dst
}

// SignalName is "SIGURG", or "signal 40" for one without a name.
func SignalName(sig unix.Signal) string {
	if n := unix.SignalName(sig); n != "" {
		return n
	}
	return "signal " + strconv.Itoa(int(sig))
}

func appendSoftirqName(dst []byte, vec uint8) []byte {
	switch vec {
	case 2:
		return append(dst, "NET_TX"...)
	case 3:
		return append(dst, "NET_RX"...)
	}
	return strconv.AppendUint(append(dst, "vec"...), uint64(vec), 10)
}

// dropReason is the name of an skb drop reason, "" when unknown.
func (f *Formatter) dropReason(code uint64) string {
	if f.Names.DropReason != nil {
		return f.Names.DropReason(uint32(code))
	}
	return ""
}

// appendDropReason appends the name of a drop reason, or its number.
func (f *Formatter) appendDropReason(dst []byte, code uint64) []byte {
	if n := f.dropReason(code); n != "" {
		return append(dst, n...)
	}
	return strconv.AppendUint(dst, code, 10)
}

// symbol is Names.Symbol(addr), remembered; "" when unknown.
func (f *Formatter) symbol(addr uint64) string {
	if addr == 0 || f.Names.Symbol == nil {
		return ""
	}
	s, ok := f.syms[addr]
	if !ok {
		s = f.Names.Symbol(addr)
		if f.syms == nil || len(f.syms) >= maxSymbols {
			f.syms = make(map[uint64]string)
		}
		f.syms[addr] = s
	}
	return s
}

// appendSymbol appends Names.Location(addr), remembering symbol names.
func (f *Formatter) appendSymbol(dst []byte, addr uint64) []byte {
	if s := f.symbol(addr); s != "" {
		return append(dst, s...)
	}
	if addr == 0 {
		return dst
	}
	return f.Names.appendUnnamed(dst, addr)
}

var pow10 = [...]uint64{1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9}

// appendFixed appends float64(x)/float64(div), div = 10^d with d <= 9, with
// prec <= d decimals exactly as strconv.AppendFloat(dst, v, 'f', prec, 64)
// (and so fmt's %.<prec>f) does, without its multi-precision arithmetic
// where integers give the same digits: below 2^51 the division's error is
// under a quarter of 1/div, while the decimal x/div is at least 1/div from
// a rounding boundary, or on one (a tie, left to strconv).
func appendFixed(dst []byte, x, div uint64, prec int) []byte {
	unit := div / pow10[prec] // x's units per last printed digit
	q, r := x/unit, x%unit
	if x >= 1<<51 || (unit > 1 && r == unit/2) {
		return strconv.AppendFloat(dst, float64(x)/float64(div), 'f', prec, 64)
	}
	if unit > 1 && r > unit/2 {
		q++
	}
	p := pow10[prec]
	dst = strconv.AppendUint(dst, q/p, 10)
	if prec == 0 {
		return dst
	}
	var d [9]byte
	frac := q % p
	for i := prec - 1; i >= 0; i-- {
		d[i] = byte('0' + frac%10)
		frac /= 10
	}
	return append(append(dst, '.'), d[:prec]...)
}

// appendDur appends a duration with a unit that suits it.
func appendDur(dst []byte, ns uint64) []byte {
	switch {
	case ns >= 1e9:
		return append(appendFixed(dst, ns, 1e9, 3), 's')
	case ns >= 1e6:
		return append(appendFixed(dst, ns, 1e6, 3), "ms"...)
	case ns >= 1e3:
		return append(appendFixed(dst, ns, 1e3, 1), "us"...)
	}
	return append(strconv.AppendUint(dst, ns, 10), "ns"...)
}

// appendRel appends ts as seconds since Base, right-aligned in width
// columns: fmt's %<width>.9f of the seconds as float64.
func (f *Formatter) appendRel(dst []byte, ts uint64, width int) []byte {
	var buf [32]byte
	num := buf[:0]
	if ts < f.Base {
		num = appendFixed(append(num, '-'), f.Base-ts, 1e9, 9)
	} else {
		num = appendFixed(num, ts-f.Base, 1e9, 9)
	}
	for i := len(num); i < width; i++ {
		dst = append(dst, ' ')
	}
	return append(dst, num...)
}

// pad appends spaces to dst until what follows start is width characters
// wide (runes, as fmt's %-<width>s counts).
func pad(dst []byte, start, width int) []byte {
	n := len(dst) - start
	for _, c := range dst[start:] {
		if c >= utf8.RuneSelf {
			n = utf8.RuneCount(dst[start:])
			break
		}
	}
	for ; n < width; n++ {
		dst = append(dst, ' ')
	}
	return dst
}

// Text renders one event as a line (without newline):
//
//	TIME  CPU COMM/TID  SOCKET FRAME  WHAT  DETAILS
func (f *Formatter) Text(e *Event) string {
	var buf [256]byte
	return string(f.AppendText(buf[:0], e))
}

// AppendText appends the line Text renders to dst.
func (f *Formatter) AppendText(dst []byte, e *Event) []byte {
	b := f.appendRel(dst, e.TS, 14)
	b = append(b, " cpu"...)
	start := len(b)
	b = pad(strconv.AppendUint(b, uint64(e.CPU), 10), start, 2)
	b = append(b, ' ')
	start = len(b)
	b = append(b, e.Comm...)
	b = strconv.AppendUint(append(b, '/'), uint64(e.TID), 10)
	b = append(pad(b, start, 22), ' ')
	start = len(b)
	b = append(pad(f.appendSocketLabel(b, e.Sk, e.SockIno, e.Kind == SockGone), start, 4), ' ')
	start = len(b)
	if e.HasFrame() {
		b = strconv.AppendUint(append(b, '#'), uint64(e.Frame), 10)
	} else {
		b = append(b, '-')
	}
	b = append(pad(b, start, 6), ' ')
	sockState := func() {
		if e.SndBuf >= 0 {
			b = strconv.AppendInt(append(b, " sndbuf="...), int64(e.SndBuf), 10)
			b = strconv.AppendInt(append(b, " wmem="...), int64(e.Wmem), 10)
		}
		if e.Pending >= 0 {
			b = strconv.AppendInt(append(b, " pending="...), int64(e.Pending), 10)
		}
	}
	num := func(label string, v uint64) {
		b = strconv.AppendUint(append(b, label...), v, 10)
	}
	wrongFormat := func() { // and how much of the ring the counts cover
		if e.Scan.WrongFormat > 0 {
			num(" WRONG_FORMAT=", uint64(e.Scan.WrongFormat))
		}
		if e.Scan.Scanned < e.Scan.Frames {
			num(" (read ", uint64(e.Scan.Scanned))
			num(" of ", uint64(e.Scan.Frames))
			b = append(b, " frames)"...)
		}
	}
	switch e.Kind {
	case SendmsgEnter:
		b = appendMsgFlags(append(b, "sendmsg enter    flags="...), e.A[0])
		if e.QdiscBypass() {
			b = append(b, " qdisc-bypass"...)
		}
		num(" head=", uint64(e.Scan.Head))
		num(" SEND_REQUEST=", uint64(e.Scan.SendRequest))
		num(" (run of ", uint64(e.Scan.RunSendRequest))
		num(" from head) SENDING=", uint64(e.Scan.Sending))
		num(" AVAILABLE=", uint64(e.Scan.Available))
		wrongFormat()
		sockState()
	case SendmsgReturn:
		b = appendReturn(append(b, "sendmsg return   ret="...), e.Ret())
		b = appendDur(append(b, " after "...), e.TS-e.A[2])
		if e.N > 0 {
			num(" taken=", uint64(e.N))
		}
		num(" head=", uint64(e.Scan.Head))
		num(" SEND_REQUEST=", uint64(e.Scan.SendRequest))
		num(" SENDING=", uint64(e.Scan.Sending))
		num(" AVAILABLE=", uint64(e.Scan.Available))
		wrongFormat()
		if sig := e.PendingSignal(); sig != 0 {
			b = append(append(append(b, " ("...), SignalName(sig)...), " pending)"...)
		}
		sockState()
	case FrameState:
		b = appendState(b, e.Old)
		b = appendState(append(b, " -> "...), e.New)
		if c := e.Cause.String(); c != "" {
			b = append(append(append(b, " ["...), c...), ']')
		}
		if e.Prec == Bounded {
			if e.TSLo > 0 && e.TSLo <= e.TS {
				b = appendDur(append(b, " (bounded: within the "...), e.TS-e.TSLo)
				b = append(b, " before)"...)
			} else {
				b = append(b, " (bounded)"...)
			}
		}
		if e.Dev != "" {
			b = append(append(b, " dev="...), e.Dev...)
		}
		if e.New == Available && e.A[1] != 0 {
			b = f.appendDropReason(append(b, " (kfree_skb "...), e.A[0])
			b = append(f.appendSymbol(append(b, " at "...), e.A[1]), ')')
		}
		sockState()
	case QdiscEnqueue, QdiscDequeue:
		if e.Kind == QdiscDequeue {
			b = append(b, "qdisc dequeue   "...)
		} else {
			b = append(b, "qdisc enqueue   "...)
		}
		b = strconv.AppendUint(append(b, " qdisc "...), e.A[0]>>16, 16)
		b = strconv.AppendUint(append(b, ':'), e.A[0]&0xffff, 16)
		num(" qlen=", uint64(uint32(e.A[1])))
		num(" backlog=", e.A[1]>>32)
		b = append(b, 'B')
	case XmitStart:
		b = append(append(b, "driver xmit      dev="...), e.Dev...)
	case XmitDone:
		b = append(append(b, "driver returned  dev="...), e.Dev...)
		b = appendNetdevTx(append(b, " rc="...), e.Ret())
	case XmitRC:
		b = appendNetXmit(append(b, "xmit returned    rc="...), e.Ret())
	case Drop:
		b = f.appendDropReason(append(b, "DROP             reason="...), e.A[0])
		b = f.appendSymbol(append(b, " at "...), e.A[1])
		b = append(append(b, " dev="...), e.Dev...)
		if e.Aux == 1 {
			b = append(b, " (asynchronous, NET_TX softirq: the sender is not told)"...)
		} else {
			b = append(b, " (in the sender's xmit: frame rolled back, sendto gets -ENOBUFS)"...)
		}
		sockState()
	case Sleep:
		b = append(append(b, "sender sleeps    waiting for "...), Wait(e.Aux).String()...)
		sockState()
	case Wake:
		if Wait(e.A[1]) == WaitCPU {
			num("sender runs      tid=", e.A[0])
			b = appendDur(append(b, " after "...), e.Duration())
			b = append(b, " runnable without a CPU"...)
		} else {
			num("sender woken     tid=", e.A[0])
			b = appendDur(append(b, " after "...), e.Duration())
			b = append(append(b, " in "...), Wait(e.A[1]).String()...)
			b = append(append(b, " wait, by "...), wakerString(Wait(e.Aux))...)
		}
		sockState()
	case Softirq:
		b = append(b, "softirq "...)
		start := len(b)
		b = append(pad(appendSoftirqName(b, e.Aux), start, 8), ' ')
		b = appendDur(b, e.Duration())
	case NapiPoll:
		b = append(append(b, "napi poll        dev="...), e.Dev...)
		num(" work=", e.A[0])
		num(" budget=", e.A[1])
	case RX:
		b = append(append(b, "received         dev="...), e.Dev...)
	case FramePicked:
		b = append(b, "frame picked     tpacket_snd takes this SEND_REQUEST frame"...)
		sockState()
	case Blind:
		b = append(b, "hidden CPU time  "...)
		b = appendDur(b, e.Duration())
		b = append(b, " on this task: the kernel runs no BPF program for it, events on its time are missing"...)
	case SockGone:
		b = append(b, "socket closed: its timeline ends"...)
		if e.Pending > 0 {
			b = strconv.AppendInt(append(b, ", "...), int64(e.Pending), 10)
			b = append(b, " frames abandoned SENDING (the kernel freed the ring)"...)
		}
	default:
		b = append(b, e.Kind.String()...)
	}
	return b
}

func appendState(dst []byte, s State) []byte {
	switch s {
	case Available, SendRequest, Sending, WrongFormat, Unknown:
		return append(dst, s.String()...)
	}
	return append(strconv.AppendUint(append(dst, "STATUS("...), uint64(s), 10), ')')
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

// appendNetdevTx names an ndo_start_xmit return code.
func appendNetdevTx(dst []byte, rc int64) []byte {
	switch rc {
	case 0:
		return append(dst, "NETDEV_TX_OK"...)
	case 0x10:
		return append(dst, "NETDEV_TX_BUSY"...)
	}
	return strconv.AppendInt(dst, rc, 10)
}

// appendNetXmit names a dev_queue_xmit return code.
func appendNetXmit(dst []byte, rc int64) []byte {
	switch rc {
	case 0:
		return append(dst, "NET_XMIT_SUCCESS"...)
	case 1:
		return append(dst, "NET_XMIT_DROP"...)
	case 2:
		return append(dst, "NET_XMIT_CN"...)
	}
	return appendReturn(dst, rc)
}
