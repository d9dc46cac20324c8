package event

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
)

// refNames answers like a kernel's tables, with the awkward cases too: no
// name, names that need quoting, invalid UTF-8. Each address always gets
// the same answer.
var refNames = Names{
	DropReason: func(c uint32) string {
		switch c % 5 {
		case 0:
			return ""
		case 1:
			return "QDISC_DROP"
		case 2:
			return "odd \"reason\"\x01"
		}
		return "NOT_SPECIFIED"
	},
	Symbol: func(a uint64) string {
		switch a % 4 {
		case 0:
			return ""
		case 1:
			return "__dev_queue_xmit+0xd01"
		case 2:
			return "sym\xffbad\\"
		}
		return "kfree_skb"
	},
}

// Durations and times where rounding is delicate: exact ties at every
// precision (some exactly representable as float64, some not), carries,
// and the 2^51 limit of the integer path.
var edgeDurations = []uint64{
	0, 1, 999, 1000, 1049, 1050, 1051, 1150, 1250, 9950, 99950, 999949, 999950, 999999,
	1e6, 1000499, 1000500, 1000501, 1062500, 1187500, 1999500, 9999500, 999999499, 999999500, 999999999,
	1e9, 1000499999, 1000500000, 1000500001, 1062500000, 2500000, 12345678901, 999999999500000,
	1<<51 - 1, 1 << 51, 1<<51 + 1, 1<<51 + 500000, 1<<52 + 500, 1 << 53, 1<<53 + 1, 1<<63 + 12345, ^uint64(0),
}

var edgeStrings = []string{"", "sender", "ringtrace", "a/b c", "ümlaut", "bad\xff\xfe", "q\"b\\", "tab\tnl\n",
	"fifteen-chars-x", "\x7f", "ok~", "日本語"}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

// randomEvent builds events of every kind, known or not, with fields
// from the edge cases above or at random.
func randomEvent(r *rand.Rand, base uint64) Event {
	u64 := func() uint64 {
		switch r.IntN(6) {
		case 0:
			return 0
		case 1:
			return r.Uint64N(100)
		case 2:
			return pick(r, edgeDurations)
		case 3:
			return uint64(-int64(r.IntN(140))) // -errno
		case 4:
			return r.Uint64N(1 << 40)
		}
		return r.Uint64()
	}
	i32 := func() int32 {
		switch r.IntN(4) {
		case 0:
			return -1
		case 1:
			return int32(r.IntN(300000))
		case 2:
			return -int32(r.IntN(1000))
		}
		return int32(r.Uint32())
	}
	var ts uint64
	switch r.IntN(4) {
	case 0:
		ts = base + pick(r, edgeDurations)
	case 1:
		ts = base - min(base, pick(r, edgeDurations))
	case 2:
		ts = r.Uint64()
	default:
		ts = base + r.Uint64N(100e9)
	}
	e := Event{
		Kind: Kind(r.IntN(int(maxKind) + 3)), TS: ts, Sk: pick(r, []uint64{0, 0xffff888102bcb000, 0xffff888102bcc000, 7}),
		SockIno: pick(r, []uint32{0, 0, 4242, 4243}), N: pick(r, []uint32{0, 0, 256}), Skb: u64(), A: [3]uint64{u64(), u64(), u64()},
		Scan: Scan{Head: r.Uint32N(300), Frames: r.Uint32N(300), RunSendRequest: r.Uint32N(300), SendRequest: r.Uint32N(300),
			Sending: r.Uint32N(300), Available: r.Uint32N(300), WrongFormat: pick(r, []uint32{0, 0, 1, 77}), Scanned: r.Uint32()},
		PID: r.Uint32(), TID: pick(r, []uint32{0, 1, 22273, ^uint32(0)}), Frame: pick(r, []uint32{NoFrame, 0, 5, 65535}),
		CPU: pick(r, []uint32{0, 1, 9, 10, 127, 4096}), SndBuf: i32(), Wmem: i32(), Pending: i32(), Ifindex: r.Uint32N(10),
		Old: State(r.IntN(9)), New: State(r.IntN(9)), Prec: Precision(r.IntN(3)), Cause: Cause(r.IntN(20)),
		Aux: uint8(r.IntN(6)), Hook: Hook(r.IntN(7)), Comm: pick(r, edgeStrings), Dev: pick(r, edgeStrings),
	}
	switch r.IntN(3) {
	case 0:
		e.TSLo = 0
	case 1:
		e.TSLo = e.TS - min(e.TS, pick(r, edgeDurations))
	default:
		e.TSLo = r.Uint64()
	}
	if r.IntN(2) == 0 {
		e.A[2] = e.TS - min(e.TS, pick(r, edgeDurations)) // sendmsg return: duration since entry
	}
	if r.IntN(3) == 0 {
		e.A[1] = pick(r, []uint64{0, 1, 2, 3, 4, 5, 6}) // wait reasons
	}
	return e
}

// TestFormatMatchesReference: text lines and JSON objects are byte for byte
// what the fmt-based formatter produced, for random and edge-case events,
// with the socket numbering evolving alike.
func TestFormatMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	n := 50000
	if testing.Short() {
		n = 20000
	}
	withAddrs := refNames
	withAddrs.KernelAddresses = true
	for i, base := range []uint64{0, 1793448252691, 1 << 62} {
		names := refNames
		if i == 1 {
			names = withAddrs
		}
		f, ref := NewFormatter(base, names), newRefFormatter(base, names)
		var got []byte
		for i := 0; i < n; i++ {
			e := randomEvent(r, base)
			if got, want := f.Text(&e), ref.Text(&e); got != want {
				t.Fatalf("text of %+v:\n got %q\nwant %q", e, got, want)
			}
			got = f.AppendJSON(got[:0], &e)
			if want := ref.AppendJSON(nil, &e); !bytes.Equal(got, want) {
				t.Fatalf("JSON of %+v:\n got %s\nwant %s", e, got, want)
			}
		}
	}
}

// TestFormatterWithoutNames: no Names at all, as in a replay of a
// recording without kernel facts, showing kernel addresses or not.
func TestFormatterWithoutNames(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 5))
	f, ref := NewFormatter(100, Names{}), newRefFormatter(100, Names{})
	fa, refa := NewFormatter(100, Names{KernelAddresses: true}), newRefFormatter(100, Names{KernelAddresses: true})
	for i := 0; i < 20000; i++ {
		if i%2 == 1 {
			f, ref, fa, refa = fa, refa, f, ref
		}
		e := randomEvent(r, 100)
		if got, want := f.Text(&e), ref.Text(&e); got != want {
			t.Fatalf("text of %+v:\n got %q\nwant %q", e, got, want)
		}
		if got, want := f.AppendJSON(nil, &e), ref.AppendJSON(nil, &e); !bytes.Equal(got, want) {
			t.Fatalf("JSON of %+v:\n got %s\nwant %s", e, got, want)
		}
	}
}

func TestHelpersMatchReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	flags := []uint64{0, 0x40, 0x800, 0x8000, 0x40 | 0x8000, 0x40 | 0x800 | 0x8000, 1, 0x41, 0xfff, ^uint64(0)}
	for i := 0; i < 1000; i++ {
		flags = append(flags, r.Uint64N(1<<17))
	}
	for _, fl := range flags {
		if got, want := MsgFlags(fl), refMsgFlags(fl); got != want {
			t.Errorf("MsgFlags(%#x) = %q, want %q", fl, got, want)
		}
	}
	for _, ret := range []int64{0, 1, 3000, -1, -11, -105, -4095, -5000, -1 << 63, 1<<63 - 1} {
		if got, want := ReturnString(ret), refReturnString(ret); got != want {
			t.Errorf("ReturnString(%d) = %q, want %q", ret, got, want)
		}
	}
	f, ref := NewFormatter(0, Names{}), newRefFormatter(0, Names{})
	for i := 0; i < 1000; i++ {
		sk, ino := pick(r, []uint64{0, 1, 2, 3}), pick(r, []uint32{0, 0, 1, 2})
		if got, want := f.SocketLabel(sk, ino), ref.SocketLabel(sk, ino); got != want {
			t.Fatalf("SocketLabel(%d, %d) #%d = %q, want %q", sk, ino, i, got, want)
		}
	}
}

// TestAppendFixed: the integer path prints what strconv (and so fmt)
// prints for the float64 quotient.
func TestAppendFixed(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	check := func(x, div uint64, prec int) {
		t.Helper()
		got := string(appendFixed(nil, x, div, prec))
		want := strconv.FormatFloat(float64(x)/float64(div), 'f', prec, 64)
		if got != want {
			t.Fatalf("appendFixed(%d, %d, %d) = %s, want %s", x, div, prec, got, want)
		}
	}
	cases := []struct {
		div  uint64
		prec int
	}{{1e9, 9}, {1e9, 3}, {1e6, 3}, {1e3, 1}, {1e3, 0}, {1, 0}}
	for _, c := range cases {
		for _, x := range edgeDurations {
			check(x, c.div, c.prec)
		}
		unit := c.div / pow10[c.prec]
		for i := 0; i < 50000; i++ {
			var x uint64
			switch i % 4 {
			case 0:
				x = r.Uint64N(1 << 51)
			case 1:
				x = r.Uint64N(1<<51/unit)*unit + unit/2 // ties
			case 2:
				x = 1<<51 - r.Uint64N(1<<20) // the end of the integer path
			default:
				x = r.Uint64N(1e12)
			}
			check(x, c.div, c.prec)
		}
	}
	// fmt is what the text format used.
	if got, want := string(appendFixed(nil, 1062500, 1e6, 3)), fmt.Sprintf("%.3f", 1062500/1e6); got != want {
		t.Errorf("tie: %s, want %s", got, want)
	}
}

// TestNames: kind and cause names for known and unknown values.
func TestNames(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range Kinds() {
		n := k.String()
		if n == "" || seen[n] || n == fmt.Sprintf("kind%d", k) {
			t.Errorf("kind %d: name %q", k, n)
		}
		seen[n] = true
		if got, ok := ParseKind(n); !ok || got != k {
			t.Errorf("ParseKind(%q) = %v, %v", n, got, ok)
		}
	}
	for _, k := range []Kind{0, XmitPair + 1, 1000, 65535} {
		if got, want := k.String(), fmt.Sprintf("kind%d", k); got != want {
			t.Errorf("Kind(%d) = %q, want %q", k, got, want)
		}
	}
	if k, ok := ParseKind(""); ok {
		t.Errorf("ParseKind(\"\") = %v", k)
	}
	if got := Cause(0).String(); got != "" {
		t.Errorf("no cause: %q", got)
	}
	for c := len(causeNames); c < 256; c++ {
		if got, want := Cause(c).String(), fmt.Sprintf("cause%d", c); got != want {
			t.Errorf("Cause(%d) = %q, want %q", c, got, want)
		}
	}
	if CauseUser.String() != "user-space" || CauseRollback.String() != "rolled-back" {
		t.Errorf("causes: %q %q", CauseUser, CauseRollback)
	}
}
