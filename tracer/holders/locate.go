package holders

import (
	"fmt"
	"sort"
	"strings"

	"github.com/ringtrace/ringtrace/tracer/event"
)

// Where is the last place the event stream put a frame's skb.
type Where struct {
	Place   string `json:"place,omitempty"` // "qdisc", "dequeued", "device", "device-returned", "received"
	Dev     string `json:"dev,omitempty"`
	Qdisc   uint64 `json:"qdisc_handle,omitempty"`
	Qlen    uint32 `json:"qlen,omitempty"`
	Backlog uint32 `json:"backlog_bytes,omitempty"`
	TS      uint64 `json:"ts_ns,omitempty"`
}

// Update moves w on an event about the frame (the caller matched its
// socket and frame index). It reports whether the event was one.
func (w *Where) Update(e *event.Event) bool {
	switch e.Kind {
	case event.QdiscEnqueue:
		*w = Where{Place: "qdisc", Dev: e.Dev, Qdisc: e.A[0], Qlen: uint32(e.A[1]), Backlog: uint32(e.A[1] >> 32), TS: e.TS}
	case event.QdiscDequeue:
		*w = Where{Place: "dequeued", Dev: e.Dev, Qdisc: e.A[0], TS: e.TS}
	case event.XmitStart:
		*w = Where{Place: "device", Dev: e.Dev, TS: e.TS}
	case event.XmitDone:
		if w.Place != "device" {
			return false
		}
		w.Place, w.TS = "device-returned", e.TS
	case event.RX:
		*w = Where{Place: "received", Dev: e.Dev, TS: e.TS}
	default:
		return false
	}
	return true
}

// Handle formats a qdisc handle as tc does ("8001:0").
func Handle(h uint64) string { return fmt.Sprintf("%x:%x", uint32(h)>>16, uint32(h)&0xffff) }

// Release is how the events saw a frame leave SENDING.
type Release struct {
	TS uint64 // when (the event's time)
	Lo uint64 // bounded: the earliest it can have happened; 0 when TS is exact
	To string // the state it went to ("AVAILABLE", ...), "" when its socket closed
}

// earliest is the first moment the release can have happened.
func (r *Release) earliest() uint64 {
	if r.Lo != 0 && r.Lo < r.TS {
		return r.Lo
	}
	return r.TS
}

// by reports whether the frame may have been released by ts.
func (r *Release) by(ts uint64) bool { return r != nil && ts != 0 && r.earliest() <= ts }

// Location is the answer to "who holds this frame?".
type Location struct {
	// Place: "receive-queue" (a socket's sk_receive_queue holds the skb:
	// seen in kernel state), "qdisc" (enqueued, not dequeued), "device"
	// (handed to the driver, not completed), "released" (the walk found
	// it nowhere because it was released as the walk ran), or "unknown".
	Place       string   `json:"place"`
	Summary     string   `json:"summary"`
	HolderInode uint32   `json:"holder_inode,omitempty"`
	Owners      []Owner  `json:"holder_owners,omitempty"`
	Self        bool     `json:"self,omitempty"` // the sender's own receive queue
	Form        Form     `json:"form,omitempty"`
	Evidence    []string `json:"evidence"`
}

// Locate says where frame f is: in a receive queue when snap (taken while
// the frame was SENDING; nil if none) saw its skb there; released, when
// the walk found it nowhere and the events saw it leave SENDING (r, nil if
// they did not) before the walk ended; else the last place the events put
// it. start is the trace's first timestamp, for relative times in the
// evidence, which names the skb's and the frame's kernel addresses only
// with kernelAddresses.
func Locate(f Frame, snap *Snapshot, w Where, r *Release, start uint64, kernelAddresses bool) Location {
	rel := func(ts uint64) string { return relTime(ts, start) }
	var ev []string
	if snap != nil {
		if h := snap.Find(f); h != nil {
			q := snap.Queue(h.Holder)
			l := Location{Place: "receive-queue", Summary: snap.Describe(h), HolderInode: h.HolderIno,
				Self: h.Holder == f.Sk && (f.Ino == 0 || h.HolderIno == f.Ino), Form: h.Form}
			if q != nil {
				l.Owners = q.Owners
			}
			how := "skb->destructor == tpacket_destruct_skb, destructor_arg == frame | 1"
			if h.Form == FormUarg {
				how = "destructor_arg -> struct tpacket_uarg {po, ph}"
			}
			addr := func(a uint64) string {
				if !kernelAddresses {
					return ""
				}
				return fmt.Sprintf(" %#x", a)
			}
			l.Evidence = append(l.Evidence,
				fmt.Sprintf("kernel state at %s (%s walk of every task's sockets): skb%s in sk_receive_queue of socket inode %d", rel(snap.TS), snap.Why, addr(h.Skb), h.HolderIno),
				fmt.Sprintf("recognised as a ring skb by the %s form (%s): its frame address%s is frame #%d of socket inode %d's TX ring", h.Form, how, addr(h.Ph), f.Frame, h.SenderIno))
			if w.Place != "" {
				ev := "before that the events saw it " + w.String() + " at " + rel(w.TS)
				l.Evidence = append(l.Evidence, ev)
			}
			return l
		}
		caveats := snap.Unseen(f)
		if snap.Err == "" && len(caveats) == 0 && r.by(snap.Done) {
			return released(f, snap, w, r, rel)
		}
		switch {
		case snap.Err != "":
			ev = append(ev, fmt.Sprintf("the walk of the kernel's sockets at %s failed: %s", rel(snap.TS), snap.Err))
		case len(caveats) > 0:
			ev = append(ev, fmt.Sprintf("kernel state at %s (%s walk): no receive queue is seen holding its skb, but:", rel(snap.TS), snap.Why))
			ev = append(ev, caveats...)
		default:
			ev = append(ev, fmt.Sprintf("kernel state at %s (%s walk): no socket receive queue holds its skb", rel(snap.TS), snap.Why))
		}
	} else {
		ev = append(ev, "no walk of the kernel's sockets was taken while it was SENDING")
	}
	switch w.Place {
	case "qdisc":
		return Location{Place: "qdisc", Summary: fmt.Sprintf("in qdisc %s on %s (qlen %d, backlog %d B at its enqueue)", Handle(w.Qdisc), w.Dev, w.Qlen, w.Backlog),
			Evidence: append(ev, fmt.Sprintf("qdisc_enqueue on %s qdisc %s at %s, no qdisc_dequeue since", w.Dev, Handle(w.Qdisc), rel(w.TS)))}
	case "device", "device-returned":
		s := fmt.Sprintf("handed to device %s (net_dev_start_xmit at %s), not completed", w.Dev, rel(w.TS))
		if w.Place == "device-returned" {
			s += "; the driver returned: the skb is in the device or beyond it"
		}
		return Location{Place: "device", Summary: fmt.Sprintf("handed to device %s, not completed", w.Dev), Evidence: append(ev, s)}
	}
	if w.Place != "" {
		ev = append(ev, "last seen "+w.String()+" at "+rel(w.TS))
	}
	return Location{Place: "unknown", Summary: "unknown: no qdisc, driver or receive queue is known to hold it", Evidence: ev}
}

// relTime is ts in seconds since start ("1.234567 s").
func relTime(ts, start uint64) string {
	if ts < start {
		return "?"
	}
	return fmt.Sprintf("%.6f s", float64(ts-start)/1e9)
}

// released is the Location of frame f, which the events saw released (r)
// by the end of walk snap, where snap found it nowhere.
func released(f Frame, snap *Snapshot, w Where, r *Release, rel func(uint64) string) Location {
	l := Location{Place: "released", Summary: "completed while the kernel's sockets were being walked"}
	if r.TS < snap.TS {
		l.Summary = "completed before the kernel's sockets were walked" // the completion reached the watcher late
	}
	what := "released (" + r.To + ")"
	if r.To == "" {
		what = "released by its socket's close"
	}
	when := "at " + rel(r.TS)
	if r.earliest() != r.TS {
		when = fmt.Sprintf("between %s and %s (bounded)", rel(r.earliest()), rel(r.TS))
	}
	l.Evidence = append(l.Evidence,
		fmt.Sprintf("kernel state from %s to %s (%s walk of every task's sockets): no socket receive queue holds its skb", rel(snap.TS), rel(snap.Done), snap.Why),
		fmt.Sprintf("the events saw frame #%d %s %s, by the end of that walk: the walk could not find an skb that was already freed", f.Frame, what, when))
	if w.Place != "" {
		l.Evidence = append(l.Evidence, "before that the events saw it "+w.String()+" at "+rel(w.TS))
	}
	return l
}

// String says where w is, for evidence lines.
func (w Where) String() string {
	switch w.Place {
	case "qdisc":
		return fmt.Sprintf("enqueued in qdisc %s on %s", Handle(w.Qdisc), w.Dev)
	case "dequeued":
		return fmt.Sprintf("dequeued from qdisc %s on %s", Handle(w.Qdisc), w.Dev)
	case "device":
		return "in net_dev_start_xmit of " + w.Dev
	case "device-returned":
		return "transmitted by " + w.Dev + " (net_dev_xmit returned)"
	case "received":
		return "received on " + w.Dev
	}
	return "nowhere"
}

// SelfDeadlock words the diagnosis when a sender's own receive queue holds
// n of its ring frames; blocked says what its sender was doing
// ("thread 42 is blocked in sendto on fd 3", or that the call returned).
func SelfDeadlock(n int, blocked []string) (title string, evidence []string) {
	title = fmt.Sprintf("self-deadlock: the sender's own receive queue holds %d of its ring frames", n)
	evidence = append(evidence, blocked...)
	evidence = append(evidence,
		"the socket is bound to ETH_P_ALL (or the frames' ethertype) on a device that loops frames back to it (lo): "+
			"it is the last receiver of its own frames, and its receive queue keeps the skbs with the ring pages attached, so they never complete until it reads them")
	for _, r := range Remedies {
		evidence = append(evidence, "remedy: "+r)
	}
	return title, evidence
}

// FrameList is "#0-#3, #7" for frame indexes.
func FrameList(idx []uint32) string {
	if len(idx) == 0 {
		return ""
	}
	s := append([]uint32(nil), idx...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	var parts []string
	for i := 0; i < len(s); {
		j := i
		for j+1 < len(s) && s[j+1] == s[j]+1 {
			j++
		}
		if j > i {
			parts = append(parts, fmt.Sprintf("#%d-#%d", s[i], s[j]))
		} else {
			parts = append(parts, fmt.Sprintf("#%d", s[i]))
		}
		i = j + 1
	}
	return strings.Join(parts, ", ")
}
