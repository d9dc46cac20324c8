// Package lab builds and tears down the self-contained network lab that
// scenarios and root integration tests run in: two network namespaces joined
// by a veth pair, made with netlink (no ip/tc processes). Namespaces are
// named "ringtrace-<pid>-<seq>-{tx,rx}" so a lab left behind by a killed run
// is recognised (its pid is gone) and removed by CleanStale.
package lab

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/ringtrace/ringtrace/tracer/nsexec"
)

// Prefix starts the name of every namespace a lab creates.
const Prefix = "ringtrace-"

// netnsDir is where `ip netns` keeps named namespaces.
const netnsDir = "/run/netns"

var seq atomic.Int64

// Config selects the lab's shape.
type Config struct {
	// MTU of both veth ends (0: 1500).
	MTU int
	// SenderIf and PeerIf name the veth ends (default "rt-tx", "rt-rx").
	SenderIf, PeerIf string
}

// Lab is a live lab. Close removes everything it created.
type Lab struct {
	Name     string // "ringtrace-<pid>-<seq>"
	SenderNS netns.NsHandle
	PeerNS   netns.NsHandle
	SenderIf string
	PeerIf   string

	senderNSName, peerNSName string
	closed                   bool
}

// SenderNSName is the named namespace of the sending side (for `ip netns exec`).
func (l *Lab) SenderNSName() string { return l.senderNSName }

// PeerNSName is the named namespace of the receiving side.
func (l *Lab) PeerNSName() string { return l.peerNSName }

// New creates the namespaces and the veth pair and brings everything up.
// On error nothing is left behind.
func New(cfg Config) (l *Lab, err error) {
	if cfg.MTU == 0 {
		cfg.MTU = 1500
	}
	if cfg.SenderIf == "" {
		cfg.SenderIf = "rt-tx"
	}
	if cfg.PeerIf == "" {
		cfg.PeerIf = "rt-rx"
	}
	name := fmt.Sprintf("%s%d-%d", Prefix, os.Getpid(), seq.Add(1))
	l = &Lab{Name: name, SenderIf: cfg.SenderIf, PeerIf: cfg.PeerIf,
		SenderNS: netns.None(), PeerNS: netns.None(),
		senderNSName: name + "-tx", peerNSName: name + "-rx"}
	defer func() {
		if err != nil {
			l.Close()
			l = nil
		}
	}()
	if l.SenderNS, err = newNamedNS(l.senderNSName); err != nil {
		return nil, err
	}
	if l.PeerNS, err = newNamedNS(l.peerNSName); err != nil {
		return nil, err
	}
	// No IPv6 autoconfiguration: router solicitations and MLD reports
	// would add frames to the counters tests and scenarios compare.
	for _, ns := range []netns.NsHandle{l.SenderNS, l.PeerNS} {
		if err := nsexec.Do(ns, disableIPv6); err != nil {
			return nil, err
		}
	}
	h, err := netlink.NewHandleAt(l.SenderNS, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink in %s: %w", l.senderNSName, err)
	}
	defer h.Close()
	veth := &netlink.Veth{
		LinkAttrs: netlink.LinkAttrs{Name: cfg.SenderIf, MTU: cfg.MTU},
		PeerName:  cfg.PeerIf, PeerNamespace: netlink.NsFd(l.PeerNS), PeerMTU: uint32(cfg.MTU),
	}
	if err := h.LinkAdd(veth); err != nil {
		return nil, fmt.Errorf("create veth %s/%s: %w", cfg.SenderIf, cfg.PeerIf, err)
	}
	if err := linksUp(h, "lo", cfg.SenderIf); err != nil {
		return nil, err
	}
	hp, err := netlink.NewHandleAt(l.PeerNS, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink in %s: %w", l.peerNSName, err)
	}
	defer hp.Close()
	if err := linksUp(hp, "lo", cfg.PeerIf); err != nil {
		return nil, err
	}
	return l, nil
}

func linksUp(h *netlink.Handle, names ...string) error {
	for _, n := range names {
		link, err := h.LinkByName(n)
		if err != nil {
			return fmt.Errorf("find %s: %w", n, err)
		}
		if err := h.LinkSetUp(link); err != nil {
			return fmt.Errorf("set %s up: %w", n, err)
		}
	}
	return nil
}

func disableIPv6() error {
	for _, f := range []string{"all", "default"} {
		p := "/proc/sys/net/ipv6/conf/" + f + "/disable_ipv6"
		if err := os.WriteFile(p, []byte("1"), 0o644); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("disable IPv6: %w", err)
		}
	}
	return nil
}

// newNamedNS creates a named namespace without leaving the calling thread in it.
func newNamedNS(name string) (netns.NsHandle, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return netns.None(), fmt.Errorf("get current netns: %w", err)
	}
	defer orig.Close()
	ns, err := netns.NewNamed(name)
	if serr := netns.Set(orig); serr != nil {
		// The thread is stuck in the new namespace: never reuse it.
		runtime.LockOSThread()
		if err == nil {
			ns.Close()
			netns.DeleteNamed(name)
		}
		return netns.None(), fmt.Errorf("return to original netns: %w", serr)
	}
	if err != nil {
		return netns.None(), fmt.Errorf("create netns %s: %w", name, err)
	}
	return ns, nil
}

// Handle returns a netlink handle in the sender's namespace (caller closes).
func (l *Lab) Handle() (*netlink.Handle, error) {
	return netlink.NewHandleAt(l.SenderNS, unix.NETLINK_ROUTE)
}

// PeerHandle returns a netlink handle in the peer's namespace (caller closes).
func (l *Lab) PeerHandle() (*netlink.Handle, error) {
	return netlink.NewHandleAt(l.PeerNS, unix.NETLINK_ROUTE)
}

// Stats are an interface's counters.
type Stats struct {
	TxPackets, TxBytes, TxDropped, RxPackets, RxBytes, RxDropped uint64
}

func statsOf(h *netlink.Handle, ifname string) (Stats, error) {
	link, err := h.LinkByName(ifname)
	if err != nil {
		return Stats{}, fmt.Errorf("find %s: %w", ifname, err)
	}
	s := link.Attrs().Statistics
	if s == nil {
		return Stats{}, fmt.Errorf("%s: no statistics", ifname)
	}
	return Stats{TxPackets: s.TxPackets, TxBytes: s.TxBytes, TxDropped: s.TxDropped,
		RxPackets: s.RxPackets, RxBytes: s.RxBytes, RxDropped: s.RxDropped}, nil
}

// SenderStats reads the sender veth's counters.
func (l *Lab) SenderStats() (Stats, error) {
	h, err := l.Handle()
	if err != nil {
		return Stats{}, err
	}
	defer h.Close()
	return statsOf(h, l.SenderIf)
}

// PeerStats reads the peer veth's counters.
func (l *Lab) PeerStats() (Stats, error) {
	h, err := l.PeerHandle()
	if err != nil {
		return Stats{}, err
	}
	defer h.Close()
	return statsOf(h, l.PeerIf)
}

// SenderMAC is the sender veth's address.
func (l *Lab) SenderMAC() (net.HardwareAddr, error) {
	h, link, err := l.senderLink()
	if err != nil {
		return nil, err
	}
	h.Close()
	return link.Attrs().HardwareAddr, nil
}

// Close deletes both namespaces, which destroys the veth pair and any qdisc
// on it. It is safe to call more than once.
func (l *Lab) Close() error {
	if l == nil || l.closed {
		return nil
	}
	l.closed = true
	var errs []error
	for _, h := range []netns.NsHandle{l.SenderNS, l.PeerNS} {
		if h.IsOpen() {
			h.Close()
		}
	}
	for _, n := range []string{l.senderNSName, l.peerNSName} {
		if err := deleteNamed(n); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func deleteNamed(name string) error {
	err := netns.DeleteNamed(name)
	if err == nil || errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.EINVAL) {
		// EINVAL: not a mount point any more (half-created); remove the file.
		if rerr := os.Remove(filepath.Join(netnsDir, name)); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			return fmt.Errorf("remove netns %s: %w", name, rerr)
		}
		return nil
	}
	return fmt.Errorf("delete netns %s: %w", name, err)
}

var labName = regexp.MustCompile(`^` + regexp.QuoteMeta(Prefix) + `(\d+)-\d+-(tx|rx)$`)

// CleanStale removes namespaces left by labs whose process no longer exists
// (killed with SIGKILL, or a crashed test binary). It returns their names.
func CleanStale() ([]string, error) {
	ents, err := os.ReadDir(netnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, e := range ents {
		m := labName.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		pid, _ := strconv.Atoi(m[1])
		if pid == os.Getpid() || processAlive(pid) {
			continue
		}
		if err := deleteNamed(e.Name()); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, e.Name())
	}
	return removed, errors.Join(errs...)
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
