package lab

import (
	"encoding/binary"
	"fmt"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/ringtrace/ringtrace/tracer/nsexec"
)

// NIC shapes the sender's veth like a physical link: a tbf at Rate with,
// when FifoLimit is set, a pfifo child that holds at most FifoLimit packets
// (the seed's `tc qdisc add dev eth0 root pfifo limit 50` on a 1G NIC).
type NIC struct {
	Rate       uint64 // bits per second
	Burst      uint32 // tbf bucket in bytes (default: 1 ms at Rate; at least one full frame)
	FifoLimit  uint32 // pfifo child limit in packets; 0 keeps tbf's own byte queue
	LimitBytes uint32 // tbf byte limit when FifoLimit is 0 (default: 2 x Burst)
}

// tbfHandle is the tbf's handle (1:), its class 1:1 the parent of the fifo.
var (
	tbfHandle  = netlink.MakeHandle(1, 0)
	fifoHandle = netlink.MakeHandle(10, 0)
)

// Shape puts the NIC's qdiscs on the sender veth, replacing what was there.
func (l *Lab) Shape(n NIC) error {
	if n.Rate == 0 {
		return fmt.Errorf("shape: rate must be positive")
	}
	h, link, err := l.senderLink()
	if err != nil {
		return err
	}
	defer h.Close()
	mtu := uint32(link.Attrs().MTU) + 14
	if n.Burst == 0 {
		n.Burst = uint32(n.Rate / 8 / 1000)
		if n.Burst < 2*mtu {
			n.Burst = 2 * mtu
		}
	}
	if n.Burst < mtu {
		return fmt.Errorf("shape: burst %d is smaller than one %d-byte frame: tbf would drop every full-size frame", n.Burst, mtu)
	}
	if n.LimitBytes == 0 {
		n.LimitBytes = 2 * n.Burst
	}
	rateBytes := n.Rate / 8
	tbf := &netlink.Tbf{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: link.Attrs().Index, Handle: tbfHandle, Parent: netlink.HANDLE_ROOT},
		Rate:       rateBytes,
		Limit:      n.LimitBytes,
		Buffer:     netlink.Xmittime(rateBytes, n.Burst),
	}
	if err := h.QdiscReplace(tbf); err != nil {
		return fmt.Errorf("tbf rate %d bit/s on %s: %w", n.Rate, l.SenderIf, err)
	}
	if n.FifoLimit == 0 {
		return nil
	}
	// netlink has no pfifo type with options: send RTM_NEWQDISC with a
	// struct tc_fifo_qopt ourselves, from inside the sender's namespace.
	return nsexec.Do(l.SenderNS, func() error {
		return addPfifo(link.Attrs().Index, netlink.MakeHandle(1, 1), fifoHandle, n.FifoLimit)
	})
}

// senderLink is a netlink handle in the sender's namespace and its veth;
// the caller closes the handle.
func (l *Lab) senderLink() (*netlink.Handle, netlink.Link, error) {
	h, err := l.Handle()
	if err != nil {
		return nil, nil, err
	}
	link, err := h.LinkByName(l.SenderIf)
	if err != nil {
		h.Close()
		return nil, nil, fmt.Errorf("find %s: %w", l.SenderIf, err)
	}
	return h, link, nil
}

// DropAll replaces the sender veth's root qdisc with a pfifo of limit 0.
// A fifo that may hold nothing has no empty-queue fast path (the kernel
// allows TCQ_F_CAN_BYPASS only with a limit of one or more), so every frame
// is dropped at enqueue, inside the sender's dev_queue_xmit: a synchronous
// drop, -ENOBUFS for a TX ring.
func (l *Lab) DropAll() error {
	h, link, err := l.senderLink()
	if err != nil {
		return err
	}
	defer h.Close()
	return nsexec.Do(l.SenderNS, func() error {
		return addPfifo(link.Attrs().Index, netlink.HANDLE_ROOT, fifoHandle, 0)
	})
}

func addPfifo(ifindex int, parent, handle uint32, limit uint32) error {
	req := nl.NewNetlinkRequest(unix.RTM_NEWQDISC, unix.NLM_F_CREATE|unix.NLM_F_REPLACE|unix.NLM_F_ACK)
	req.AddData(&nl.TcMsg{Family: nl.FAMILY_ALL, Ifindex: int32(ifindex), Handle: handle, Parent: parent})
	req.AddData(nl.NewRtAttr(nl.TCA_KIND, nl.ZeroTerminated("pfifo")))
	opt := make([]byte, 4)
	binary.NativeEndian.PutUint32(opt, limit)
	req.AddData(nl.NewRtAttr(nl.TCA_OPTIONS, opt))
	if _, err := req.Execute(unix.NETLINK_ROUTE, 0); err != nil {
		return fmt.Errorf("pfifo limit %d: %w", limit, err)
	}
	return nil
}

// QdiscStats are a qdisc's counters, as `tc -s qdisc` prints them.
type QdiscStats struct {
	Kind              string
	Handle, Parent    uint32
	Packets, Bytes    uint64
	Drops, Overlimits uint32
	Requeues, Qlen    uint32
	Backlog           uint32
}

// Qdiscs lists the sender veth's qdiscs with their statistics.
func (l *Lab) Qdiscs() ([]QdiscStats, error) {
	h, link, err := l.senderLink()
	if err != nil {
		return nil, err
	}
	defer h.Close()
	qs, err := h.QdiscList(link)
	if err != nil {
		return nil, fmt.Errorf("list qdiscs of %s: %w", l.SenderIf, err)
	}
	var out []QdiscStats
	for _, q := range qs {
		a := q.Attrs()
		s := QdiscStats{Kind: q.Type(), Handle: a.Handle, Parent: a.Parent}
		if a.Statistics != nil {
			st := a.Statistics
			if st.Basic != nil {
				s.Packets, s.Bytes = uint64(st.Basic.Packets), st.Basic.Bytes
			}
			if st.Queue != nil {
				s.Drops, s.Overlimits, s.Requeues = st.Queue.Drops, st.Queue.Overlimits, st.Queue.Requeues
				s.Qlen, s.Backlog = st.Queue.Qlen, st.Queue.Backlog
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// Drops is the drop counter of the sender veth's root qdisc (which counts
// its children's drops too).
func (l *Lab) Drops() (uint64, error) {
	qs, err := l.Qdiscs()
	if err != nil {
		return 0, err
	}
	for _, q := range qs {
		if q.Parent == netlink.HANDLE_ROOT {
			return uint64(q.Drops), nil
		}
	}
	return 0, nil
}
