package scenarios

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringtrace/ringtrace/tracer/nsexec"
	"github.com/ringtrace/ringtrace/tracer/txring"
)

func rxScenario() *Scenario {
	return &Scenario{
		Name:  "rx",
		Title: "the receive side: NET_RX softirq time and napi work/budget per CPU",
		Seed: "reference session 5, RX side: receive cost lives in the NET_RX softirq; net_rx_action polls NAPI " +
			"instances with a budget; /proc/net/softnet_stat counts budget exhaustion (time_squeeze)",
		// The receive side is the subject: no emulated NIC on the way.
		Defaults: Params{Frames: 2000, Size: 1000},
		NoNIC:    true,
		Run:      runRX,
	}
}

// receiver counts our frames on the peer veth with a plain packet socket.
type receiver struct {
	fd   int
	got  atomic.Int64
	stop atomic.Bool
	done chan struct{}
}

func startReceiver(env *Env) (*receiver, error) {
	rc := &receiver{fd: -1, done: make(chan struct{})}
	err := nsexec.Do(env.Lab.PeerNS, func() error {
		ifi, err := ifindex(env.Lab.PeerIf)
		if err != nil {
			return err
		}
		proto := htons(txring.EtherTypeLocalExp1)
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(proto))
		if err != nil {
			return fmt.Errorf("receiver socket: %w", err)
		}
		rc.fd = fd
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 32<<20)
		tv := unix.NsecToTimeval((50 * time.Millisecond).Nanoseconds())
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifi})
	})
	if err != nil {
		if rc.fd >= 0 {
			unix.Close(rc.fd)
		}
		return nil, err
	}
	go func() {
		defer close(rc.done)
		buf := make([]byte, 65536)
		for !rc.stop.Load() {
			if n, _, err := unix.Recvfrom(rc.fd, buf, 0); err == nil && n > 0 {
				rc.got.Add(1)
			}
		}
	}()
	return rc, nil
}

func (rc *receiver) close() {
	rc.stop.Store(true)
	<-rc.done
	unix.Close(rc.fd)
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// ifindex looks the interface up in the calling thread's namespace (sysfs
// would show the namespace it was mounted in).
func ifindex(name string) (int, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return 0, fmt.Errorf("interface %s: %w", name, err)
	}
	return ifi.Index, nil
}

// squeezes sums time_squeeze (third column, hex) of /proc/net/softnet_stat.
func squeezes() uint64 {
	b, err := os.ReadFile("/proc/net/softnet_stat")
	if err != nil {
		return 0
	}
	var n uint64
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 {
			v, _ := strconv.ParseUint(f[2], 16, 64)
			n += v
		}
	}
	return n
}

func runRX(ctx context.Context, env *Env) ([]Expectation, error) {
	p := env.Params
	rc, err := startReceiver(env)
	if err != nil {
		return nil, err
	}
	defer rc.close()
	r, err := env.openRing(256)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	peerBefore, err := env.Lab.PeerStats()
	if err != nil {
		return nil, err
	}
	sq0 := squeezes()
	rep, err := env.Trace(ctx, "", func(ctx context.Context) error {
		sent := 0
		for sent < p.Frames && ctx.Err() == nil {
			n := min(r.Frames(), p.Frames-sent)
			request(r, 0, n)
			// A drop rolls a frame back (-ENOBUFS): send until every
			// frame of the batch left SEND_REQUEST.
			for tries := 0; r.Count().SendRequest > 0; tries++ {
				if c := send(r, 0); c.errno != 0 && c.errno != unix.ENOBUFS || tries > 1000 {
					return fmt.Errorf("sendto: %v after %d tries", c.errno, tries)
				}
			}
			r.WaitAvailable(time.Second)
			sent += n
		}
		for i := 0; i < 100 && rc.got.Load() < int64(p.Frames); i++ {
			time.Sleep(10 * time.Millisecond)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	peerAfter, err := env.Lab.PeerStats()
	if err != nil {
		return nil, err
	}
	got := rc.got.Load()
	arrived := peerAfter.RxPackets - peerBefore.RxPackets
	var rxTime uint64
	var spans, polls int
	var work uint64
	var budget uint64
	var lines []string
	for _, c := range rep.CPUs {
		rxTime += c.NetRX
		spans += c.RXSpans
		polls += c.NapiPolls
		work += c.NapiWork
		if c.Budget > budget {
			budget = c.Budget
		}
		lines = append(lines, fmt.Sprintf("cpu%d: NET_RX %s in %d runs, %d napi polls, %d packets of work, budget %d used up %d times",
			c.ID, fmtDur(float64(c.NetRX)), c.RXSpans, c.NapiPolls, c.NapiWork, c.Budget, c.Exhausted))
	}
	fmt.Fprintf(env.Log, "%s\ntime_squeeze (softnet_stat) grew by %d\n", strings.Join(lines, "\n"), squeezes()-sq0)
	return []Expectation{
		pass("every frame arrived at the peer veth", arrived == uint64(p.Frames), fmt.Sprint(arrived), fmt.Sprint(p.Frames)),
		pass("the receiver in the peer namespace read every frame", got == int64(p.Frames), fmt.Sprint(got), fmt.Sprint(p.Frames)),
		pass("NET_RX softirq time was measured per CPU", rxTime > 0 && spans > 0,
			fmt.Sprintf("%s in %d runs", fmtDur(float64(rxTime)), spans), "> 0"),
		pass("napi polls did the receive work within their budget", polls > 0 && work >= uint64(p.Frames) && budget > 0,
			fmt.Sprintf("%d polls, %d packets of work, budget %d", polls, work, budget), fmt.Sprintf(">= %d packets", p.Frames)),
		// The receiver orphans each skb and frees it when it reads it,
		// often after the sender wrote the frame again: each use must
		// still be followed once, to SENDING and to AVAILABLE.
		pass("the trace followed every frame use once, sent and completed",
			rep.Totals.FramesSent == p.Frames && rep.Totals.Completed == p.Frames,
			fmt.Sprintf("%d sent, %d completed", rep.Totals.FramesSent, rep.Totals.Completed), fmt.Sprint(p.Frames)),
	}, nil
}
