package txring

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/inputerr"
	"github.com/ringtrace/ringtrace/tracer/nsexec"
)

// Version is the TPACKET header version of a ring.
type Version int

// Supported TX ring versions.
const (
	V1 Version = 1
	V2 Version = 2
	V3 Version = 3
)

func (v Version) String() string { return fmt.Sprintf("TPACKET_V%d", int(v)) }

// ParseVersion accepts "1", "2", "3", "v2", "V3", "tpacket_v2", ...
func ParseVersion(s string) (Version, error) {
	switch s {
	case "1", "v1", "V1", "tpacket_v1", "TPACKET_V1":
		return V1, nil
	case "2", "v2", "V2", "tpacket_v2", "TPACKET_V2":
		return V2, nil
	case "3", "v3", "V3", "tpacket_v3", "TPACKET_V3":
		return V3, nil
	}
	return 0, inputerr.New("unknown TPACKET version %q (want 1, 2 or 3)", s)
}

// Status is a frame's tp_status word. Only the low three bits carry the
// frame state; AVAILABLE may carry TP_STATUS_TS_* timestamp bits.
type Status uint32

// Frame states as the kernel and user space write them (uapi if_packet.h).
const (
	Available   Status = unix.TP_STATUS_AVAILABLE
	SendRequest Status = unix.TP_STATUS_SEND_REQUEST
	Sending     Status = unix.TP_STATUS_SENDING
	WrongFormat Status = unix.TP_STATUS_WRONG_FORMAT
)

// State masks off timestamp bits.
func (s Status) State() Status { return s & 7 }

// String names the state the way the tracer's events do.
func (s Status) String() string {
	switch st := s.State(); st {
	case Available, SendRequest, Sending, WrongFormat:
		return event.State(st).String()
	}
	return fmt.Sprintf("STATUS(%#x)", uint32(s))
}

// Header geometry of TX frames. For TX the kernel reads frame data at
// tp_hdrlen - sizeof(struct sockaddr_ll) unless PACKET_TX_HAS_OFF is set.
const (
	sockaddrLLSize = 20
	tpacketAlign   = 16

	v1HdrSize = 32 // sizeof(struct tpacket_hdr): tp_status is an unsigned long
	v2HdrSize = 32 // sizeof(struct tpacket2_hdr)
	v3HdrSize = 48 // sizeof(struct tpacket3_hdr)

	ethHdrLen = 14
)

func alignUp(n, a int) int { return (n + a - 1) &^ (a - 1) }

type layout struct {
	hdrlen    int // tp_hdrlen the kernel uses (TPACKETx_HDRLEN)
	dataOff   int // TX data offset inside a frame
	statusOff int
	lenOff    int
}

func layoutOf(v Version) layout {
	switch v {
	case V3:
		h := alignUp(v3HdrSize, tpacketAlign)
		return layout{hdrlen: h + sockaddrLLSize, dataOff: h, statusOff: 20, lenOff: 16}
	case V1:
		// tp_status's low word (little-endian), then tp_len at 8.
		h := alignUp(v1HdrSize, tpacketAlign)
		return layout{hdrlen: h + sockaddrLLSize, dataOff: h, statusOff: 0, lenOff: 8}
	default:
		h := alignUp(v2HdrSize, tpacketAlign)
		return layout{hdrlen: h + sockaddrLLSize, dataOff: h, statusOff: 0, lenOff: 4}
	}
}

// DataOffset is where frame data starts inside a TX frame of version v.
func DataOffset(v Version) int { return layoutOf(v).dataOff }

// Geometry is the shape of a TX ring.
type Geometry struct {
	Version   Version
	Frames    int // tp_frame_nr
	FrameSize int // tp_frame_size
	BlockSize int // tp_block_size
}

// FramesPerBlock is tp_block_size / tp_frame_size.
func (g Geometry) FramesPerBlock() int { return g.BlockSize / g.FrameSize }

// Blocks is tp_block_nr.
func (g Geometry) Blocks() int { return g.Frames / g.FramesPerBlock() }

// MaxData is the largest tp_len a frame can hold, before the MTU limit.
func (g Geometry) MaxData() int { return g.FrameSize - layoutOf(g.Version).dataOff }

// Validate checks the geometry the way packet_set_ring() will, so bad input
// gets a precise message instead of a bare EINVAL.
func (g Geometry) Validate() error {
	page := os.Getpagesize()
	l := layoutOf(g.Version)
	switch {
	case g.Version != V1 && g.Version != V2 && g.Version != V3:
		return inputerr.New("unsupported TPACKET version %d (want 1, 2 or 3)", int(g.Version))
	case g.Frames <= 0:
		return inputerr.New("--frames must be positive, got %d", g.Frames)
	case g.FrameSize <= 0 || g.FrameSize%tpacketAlign != 0:
		return inputerr.New("--frame-size %d must be a positive multiple of %d", g.FrameSize, tpacketAlign)
	case g.FrameSize < l.hdrlen:
		return inputerr.New("--frame-size %d is smaller than the %v header (%d bytes)", g.FrameSize, g.Version, l.hdrlen)
	case g.BlockSize <= 0 || g.BlockSize%page != 0:
		return inputerr.New("--block-size %d is not a multiple of the page size (%d)", g.BlockSize, page)
	case g.BlockSize < g.FrameSize:
		return inputerr.New("--block-size %d is smaller than --frame-size %d", g.BlockSize, g.FrameSize)
	case g.Frames%g.FramesPerBlock() != 0:
		return inputerr.New("%d frames do not fill whole blocks: a %d-byte block holds %d frames of %d bytes, so --frames must be a multiple of %d",
			g.Frames, g.BlockSize, g.FramesPerBlock(), g.FrameSize, g.FramesPerBlock())
	case int64(g.Blocks())*int64(g.BlockSize) > 1<<32:
		return inputerr.New("ring of %d blocks x %d bytes is larger than 4 GiB", g.Blocks(), g.BlockSize)
	}
	return nil
}

// SocketConfig is what Open needs to create a packet socket.
type SocketConfig struct {
	Ifname string
	// NetNS, when open, is the namespace the socket is created in.
	NetNS netns.NsHandle
	// Protocol is the ethertype the socket binds to (host order). 0 binds
	// to the interface without receiving anything, like trafgen does.
	Protocol uint16
	// QdiscBypass sets PACKET_QDISC_BYPASS.
	QdiscBypass bool
	// SndBuf, when > 0, sets SO_SNDBUF (SO_SNDBUFFORCE with ForceSndBuf).
	SndBuf      int
	ForceSndBuf bool
	// SndTimeo, when > 0, sets SO_SNDTIMEO.
	SndTimeo time.Duration
	// Linear sets PACKET_VNET_HDR, and ring frames then carry a
	// virtio_net_hdr whose hdr_len asks the kernel to copy the whole frame
	// into the skb's linear data instead of attaching the ring's page as a
	// fragment. The frame still stays SENDING until its skb is freed. On a
	// veth, which copies fragments out into a new page at each forward,
	// this saves a page allocation per frame; on a NIC that can DMA from
	// the ring pages it costs a copy.
	Linear bool
}

// Interface is what the sender learned about the egress interface.
type Interface struct {
	Name    string
	Index   int
	MTU     int
	HWAddr  net.HardwareAddr
	Running bool // IFF_RUNNING (carrier)
}

// Socket is an AF_PACKET SOCK_RAW socket bound to one interface.
type Socket struct {
	fd     int
	iface  Interface
	sndbuf int
	cfg    SocketConfig
}

// FD is the socket's file descriptor.
func (s *Socket) FD() int { return s.fd }

// Interface describes the interface the socket is bound to.
func (s *Socket) Interface() Interface { return s.iface }

// SndBuf is sk_sndbuf as granted by the kernel (SO_SNDBUF doubles the
// request and clamps it to net.core.wmem_max unless forced).
func (s *Socket) SndBuf() int { return s.sndbuf }

// Close closes the socket. Frames still in flight complete in the kernel.
func (s *Socket) Close() error {
	if s.fd < 0 {
		return nil
	}
	err := unix.Close(s.fd)
	s.fd = -1
	return err
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func lookupInterface(name string) (Interface, error) {
	if name == "" {
		return Interface{}, inputerr.New("no interface given (--ifname)")
	}
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return Interface{}, inputerr.New("interface %q: no such interface in this network namespace%s", name, elsewhere(name))
	}
	if ifi.Flags&net.FlagUp == 0 {
		return Interface{}, inputerr.New("interface %q is down (ip link set %s up)", name, name)
	}
	return Interface{Name: ifi.Name, Index: ifi.Index, MTU: ifi.MTU, HWAddr: ifi.HardwareAddr,
		Running: ifi.Flags&net.FlagRunning != 0}, nil
}

// elsewhere says which other network namespace has the interface, if any.
func elsewhere(name string) string {
	for _, w := range nsexec.Where(name) {
		switch {
		case w == "":
		case strings.HasPrefix(w, "pid "):
			return fmt.Sprintf("; it is in the network namespace of %s", w)
		default:
			return fmt.Sprintf("; it is in netns %s (add --netns %s)", w, w)
		}
	}
	return ""
}

// openSocket creates and configures the socket, in cfg.NetNS if given.
// ring, when non-nil, is set up before bind (PACKET_VERSION must precede
// PACKET_TX_RING).
func openSocket(cfg SocketConfig, setup func(fd int) error) (*Socket, error) {
	s := &Socket{fd: -1, cfg: cfg}
	err := nsexec.Do(cfg.NetNS, func() error {
		iface, err := lookupInterface(cfg.Ifname)
		if err != nil {
			return err
		}
		s.iface = iface
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(cfg.Protocol)))
		if err != nil {
			if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
				return inputerr.Wrap(inputerr.ErrNotPermitted, "opening a packet socket needs root (CAP_NET_RAW): %v", err)
			}
			return fmt.Errorf("socket(AF_PACKET): %w", err)
		}
		s.fd = fd
		return nil
	})
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Socket, error) {
		s.Close()
		return nil, err
	}
	if cfg.QdiscBypass {
		if err := unix.SetsockoptInt(s.fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1); err != nil {
			return fail(fmt.Errorf("setsockopt PACKET_QDISC_BYPASS: %w", err))
		}
	}
	if cfg.Linear {
		// Before the ring: the kernel refuses it once a ring exists.
		if err := unix.SetsockoptInt(s.fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
			return fail(fmt.Errorf("setsockopt PACKET_VNET_HDR: %w", err))
		}
	}
	if cfg.SndBuf > 0 {
		opt, name := unix.SO_SNDBUF, "SO_SNDBUF"
		if cfg.ForceSndBuf {
			opt, name = unix.SO_SNDBUFFORCE, "SO_SNDBUFFORCE"
		}
		if err := unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, opt, cfg.SndBuf); err != nil {
			return fail(fmt.Errorf("setsockopt %s %d: %w", name, cfg.SndBuf, err))
		}
	}
	if cfg.SndTimeo > 0 {
		tv := unix.NsecToTimeval(cfg.SndTimeo.Nanoseconds())
		if err := unix.SetsockoptTimeval(s.fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
			return fail(fmt.Errorf("setsockopt SO_SNDTIMEO: %w", err))
		}
	}
	got, err := unix.GetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_SNDBUF)
	if err != nil {
		return fail(fmt.Errorf("getsockopt SO_SNDBUF: %w", err))
	}
	s.sndbuf = got
	if setup != nil {
		if err := setup(s.fd); err != nil {
			return fail(err)
		}
	}
	sa := &unix.SockaddrLinklayer{Protocol: htons(cfg.Protocol), Ifindex: s.iface.Index}
	if err := unix.Bind(s.fd, sa); err != nil {
		return fail(fmt.Errorf("bind to %s: %w", cfg.Ifname, err))
	}
	return s, nil
}

// OpenSocket opens a packet socket without a ring, for one sendto() per frame.
func OpenSocket(cfg SocketConfig) (*Socket, error) { return openSocket(cfg, nil) }

// SendPacket sends one frame with sendto(fd, buf, len, flags, NULL, 0).
// It returns the byte count or the errno.
func (s *Socket) SendPacket(buf []byte, flags int) (int, error) {
	var p uintptr
	if len(buf) > 0 {
		p = uintptr(unsafe.Pointer(&buf[0]))
	}
	r, e := sendto(s.fd, p, len(buf), flags)
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

// Ring is a socket with a mapped PACKET_TX_RING.
type Ring struct {
	*Socket
	geo Geometry
	lay layout
	mem []byte
}

// Open creates a packet socket on cfg.Ifname with a TX ring of geometry geo.
func Open(cfg SocketConfig, geo Geometry) (*Ring, error) {
	if err := geo.Validate(); err != nil {
		return nil, err
	}
	r := &Ring{geo: geo, lay: layoutOf(geo.Version)}
	sock, err := openSocket(cfg, func(fd int) error {
		ver := map[Version]int{V1: unix.TPACKET_V1, V2: unix.TPACKET_V2, V3: unix.TPACKET_V3}[geo.Version]
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, ver); err != nil {
			return fmt.Errorf("setsockopt PACKET_VERSION %v: %w", geo.Version, err)
		}
		var err error
		if geo.Version == V3 {
			// TX rings take tpacket_req3 with the RX-only fields zero.
			err = unix.SetsockoptTpacketReq3(fd, unix.SOL_PACKET, unix.PACKET_TX_RING, &unix.TpacketReq3{
				Block_size: uint32(geo.BlockSize), Block_nr: uint32(geo.Blocks()),
				Frame_size: uint32(geo.FrameSize), Frame_nr: uint32(geo.Frames)})
		} else {
			err = unix.SetsockoptTpacketReq(fd, unix.SOL_PACKET, unix.PACKET_TX_RING, &unix.TpacketReq{
				Block_size: uint32(geo.BlockSize), Block_nr: uint32(geo.Blocks()),
				Frame_size: uint32(geo.FrameSize), Frame_nr: uint32(geo.Frames)})
		}
		if err != nil {
			if errors.Is(err, unix.ENOMEM) {
				return fmt.Errorf("setsockopt PACKET_TX_RING (%d blocks of %d bytes): kernel could not allocate the ring: %w",
					geo.Blocks(), geo.BlockSize, err)
			}
			return fmt.Errorf("setsockopt PACKET_TX_RING (%d frames x %d bytes in %d-byte blocks): %w",
				geo.Frames, geo.FrameSize, geo.BlockSize, err)
		}
		size := geo.Blocks() * geo.BlockSize
		mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
		if err != nil {
			return fmt.Errorf("mmap TX ring (%d bytes): %w", size, err)
		}
		r.mem = mem
		return nil
	})
	if err != nil {
		if r.mem != nil {
			unix.Munmap(r.mem)
		}
		return nil, err
	}
	r.Socket = sock
	return r, nil
}

// Attach maps the TX ring of geometry geo that the packet socket fd (one
// this process inherited or received, from a process that set the ring up)
// has, so that two processes send from one ring. The Ring owns fd: Close
// closes it.
func Attach(fd int, geo Geometry) (*Ring, error) {
	if err := geo.Validate(); err != nil {
		return nil, err
	}
	size := geo.Blocks() * geo.BlockSize
	mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap the TX ring of fd %d (%d bytes): %w", fd, size, err)
	}
	return &Ring{Socket: &Socket{fd: fd}, geo: geo, lay: layoutOf(geo.Version), mem: mem}, nil
}

// Close unmaps the ring and closes the socket.
func (r *Ring) Close() error {
	var err error
	if r.mem != nil {
		err = unix.Munmap(r.mem)
		r.mem = nil
	}
	if cerr := r.Socket.Close(); err == nil {
		err = cerr
	}
	return err
}

// Geometry of the ring.
func (r *Ring) Geometry() Geometry { return r.geo }

// Frames is the number of frames in the ring.
func (r *Ring) Frames() int { return r.geo.Frames }

// MaxLen is the largest tp_len the kernel accepts for untagged frames on
// this interface: the frame's data area, clamped to MTU + Ethernet header.
func (r *Ring) MaxLen() int {
	m := r.geo.MaxData()
	if r.cfg.Linear {
		m -= vnetHdrLen
	}
	if lim := r.iface.MTU + ethHdrLen; lim < m {
		m = lim
	}
	return m
}

func (r *Ring) frameOff(i int) int {
	fpb := r.geo.FramesPerBlock()
	return (i/fpb)*r.geo.BlockSize + (i%fpb)*r.geo.FrameSize
}

func (r *Ring) word(i, off int) *uint32 {
	return (*uint32)(unsafe.Pointer(&r.mem[r.frameOff(i)+off]))
}

// Status reads frame i's tp_status with an atomic load.
func (r *Ring) Status(i int) Status { return Status(atomic.LoadUint32(r.word(i, r.lay.statusOff))) }

// SetStatus publishes frame i's tp_status with an atomic store.
func (r *Ring) SetStatus(i int, s Status) { atomic.StoreUint32(r.word(i, r.lay.statusOff), uint32(s)) }

// SetLen writes frame i's tp_len.
func (r *Ring) SetLen(i, n int) { *r.word(i, r.lay.lenOff) = uint32(n) }

// Data is the writable data area of frame i.
func (r *Ring) Data(i int) []byte {
	off := r.frameOff(i) + r.lay.dataOff
	return r.mem[off : off+r.geo.MaxData() : off+r.geo.MaxData()]
}

// vnetHdrLen is sizeof(struct virtio_net_hdr), ahead of the frame with
// SocketConfig.Linear.
const vnetHdrLen = 10

// Fill copies pkt into frame i and sets tp_len, leaving the status alone.
// With SocketConfig.Linear a virtio_net_hdr goes first: no offloads, and
// hdr_len (little-endian, like the rest of the header on this host) the
// whole frame, so the kernel copies all of it into the skb.
func (r *Ring) Fill(i int, pkt []byte) {
	d, n := r.Data(i), len(pkt)
	if r.cfg.Linear {
		clear(d[:vnetHdrLen])
		binary.LittleEndian.PutUint16(d[2:4], uint16(n))
		d, n = d[vnetHdrLen:], n+vnetHdrLen
	}
	copy(d, pkt)
	if r.geo.Version == V3 {
		*r.word(i, 0) = 0 // tp_next_offset must be 0 for TX
	}
	r.SetLen(i, n)
}

// Counts tallies frame states over the whole ring.
type Counts struct {
	Available, SendRequest, Sending, WrongFormat, Other int
}

func (c Counts) String() string {
	return fmt.Sprintf("AVAILABLE=%d SEND_REQUEST=%d SENDING=%d WRONG_FORMAT=%d", c.Available, c.SendRequest, c.Sending, c.WrongFormat)
}

// Statuses returns every frame's current status.
func (r *Ring) Statuses() []Status {
	out := make([]Status, r.geo.Frames)
	for i := range out {
		out[i] = r.Status(i)
	}
	return out
}

// Count tallies the current frame states.
func (r *Ring) Count() Counts {
	var c Counts
	for i := 0; i < r.geo.Frames; i++ {
		switch r.Status(i).State() {
		case Available:
			c.Available++
		case SendRequest:
			c.SendRequest++
		case Sending:
			c.Sending++
		case WrongFormat:
			c.WrongFormat++
		default:
			c.Other++
		}
	}
	return c
}

// Send kicks the kernel with sendto(fd, NULL, 0, flags, NULL, 0): it
// transmits SEND_REQUEST frames from its private head onwards. A blocking
// call holds off the Go runtime's signals (see quietSignals), so it returns
// only when the kernel is done, as a C sender's does.
func (r *Ring) Send(flags int) (int, error) {
	n, e := sendto(r.fd, 0, 0, flags)
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}

// WaitWritable waits up to d for POLLOUT on the socket; for a TX ring that
// means the frame at the kernel's head is AVAILABLE or sndbuf has room.
func (r *Ring) WaitWritable(d time.Duration) {
	fds := []unix.PollFd{{Fd: int32(r.fd), Events: unix.POLLOUT}}
	unix.Poll(fds, int(d/time.Millisecond))
}

// WaitAvailable polls until no frame is SENDING or d elapses, and returns the
// final counts.
func (r *Ring) WaitAvailable(d time.Duration) Counts {
	return r.WaitAvailableOr(nil, d)
}

// WaitAvailableOr is WaitAvailable that also returns, with the counts of
// that moment, once stop is closed.
func (r *Ring) WaitAvailableOr(stop <-chan struct{}, d time.Duration) Counts {
	deadline := time.Now().Add(d)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		c := r.Count()
		if c.Sending == 0 || time.Now().After(deadline) {
			return c
		}
		select {
		case <-stop:
			return r.Count()
		case <-tick.C:
		}
	}
}
