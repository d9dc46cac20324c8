package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/ringtrace/ringtrace/tracer/inputerr"
	"github.com/ringtrace/ringtrace/tracer/txring"
)

func sendCommand() *cli.Command {
	return &cli.Command{
		Name:      "send",
		Usage:     "generate TX_RING (or one-sendto-per-frame) load on an interface",
		UsageText: "ringtrace send --ifname IF [options]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "ifname", Aliases: []string{"i"}, Usage: "egress interface (required)"},
			&cli.StringFlag{Name: "netns", Usage: "open the socket in this named network namespace (/run/netns/NAME)"},
			&cli.StringFlag{Name: "mode", Value: "ring", Usage: "ring: fill frames, one sendto(fd, NULL, 0) per batch; per-packet: one sendto() per frame, no ring"},
			&cli.StringFlag{Name: "tpacket-version", Aliases: []string{"V"}, Value: "2", Usage: "TPACKET version of the TX ring: 1, 2 or 3"},
			&cli.IntFlag{Name: "frames", Value: 256, Usage: "frames in the ring (tp_frame_nr)"},
			&cli.IntFlag{Name: "frame-size", Value: 2048, Usage: "bytes per ring frame (tp_frame_size)"},
			&cli.IntFlag{Name: "block-size", Value: 4096, Usage: "bytes per ring block (tp_block_size), a multiple of the page size"},
			&cli.IntFlag{Name: "size", Value: 1500, Usage: "frame length on the wire (tp_len): Ethernet header + payload"},
			&cli.StringFlag{Name: "dst-mac", Value: "ff:ff:ff:ff:ff:ff", Usage: "destination MAC"},
			&cli.StringFlag{Name: "src-mac", Usage: "source MAC (default: the interface's)"},
			&cli.StringFlag{Name: "ethertype", Value: "0x88b5", Usage: "EtherType (default: IEEE local experimental 1)"},
			&cli.StringFlag{Name: "bind-protocol", Value: "0", Usage: "protocol the socket binds to: 0 (receive nothing), all (ETH_P_ALL) or an EtherType"},
			&cli.BoolFlag{Name: "dontwait", Usage: "pass MSG_DONTWAIT to sendto()"},
			&cli.BoolFlag{Name: "loop", Usage: "after each batch call sendto() again until it returns 0, printing every return"},
			&cli.IntFlag{Name: "batch", Usage: "at most this many frames per sendto() (default: all AVAILABLE frames)"},
			&cli.Int64Flag{Name: "count", Usage: "total frames to send over all threads, re-using the ring (default: one ring's worth, or unlimited with --duration)"},
			&cli.DurationFlag{Name: "duration", Usage: "stop after this long"},
			&cli.IntFlag{Name: "sndbuf", Usage: "SO_SNDBUF in bytes (the kernel doubles it)"},
			&cli.BoolFlag{Name: "force-sndbuf", Usage: "use SO_SNDBUFFORCE for --sndbuf (ignores net.core.wmem_max)"},
			&cli.BoolFlag{Name: "qdisc-bypass", Usage: "set PACKET_QDISC_BYPASS (hand frames straight to the driver)"},
			&cli.BoolFlag{Name: "linear", Usage: "PACKET_VNET_HDR with hdr_len = the frame: the kernel copies each frame into the skb instead of attaching the ring page (faster on veth, which copies pages out anyway)"},
			&cli.DurationFlag{Name: "sndtimeo", Usage: "SO_SNDTIMEO for blocking sends"},
			&cli.IntFlag{Name: "threads", Value: 1, Usage: "sending threads, each with its own socket and ring"},
			&cli.StringFlag{Name: "cpu", Usage: "pin threads to these CPUs, e.g. 1 or 0,2 or 0-3 (thread i gets the i-th)"},
			&cli.DurationFlag{Name: "interval", Value: 1e9, Usage: "statistics interval"},
			&cli.DurationFlag{Name: "drain", Value: 1e9, Usage: "at the end, wait this long for in-flight frames to return to AVAILABLE (Ctrl-C while waiting ends the wait)"},
			&cli.BoolFlag{Name: "json", Usage: "print the final summary as one JSON object on stdout (progress goes to stderr)"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no per-interval statistics"},
		},
		Action: runSend,
	}
}

func sendOptions(c *cli.Context) (txring.Options, func(), error) {
	var o txring.Options
	cleanup := func() {}
	if c.String("ifname") == "" {
		return o, cleanup, inputerr.New("send needs --ifname IF")
	}
	ver, err := txring.ParseVersion(c.String("tpacket-version"))
	if err != nil {
		return o, cleanup, err
	}
	mode, err := txring.ParseMode(c.String("mode"))
	if err != nil {
		return o, cleanup, err
	}
	dst, err := parseMAC("dst-mac", c.String("dst-mac"))
	if err != nil {
		return o, cleanup, err
	}
	var src net.HardwareAddr
	if s := c.String("src-mac"); s != "" {
		if src, err = parseMAC("src-mac", s); err != nil {
			return o, cleanup, err
		}
	}
	et, err := parseU16("ethertype", c.String("ethertype"))
	if err != nil {
		return o, cleanup, err
	}
	proto, err := parseProtocol(c.String("bind-protocol"))
	if err != nil {
		return o, cleanup, err
	}
	cpus, err := parseCPUList("cpu", c.String("cpu"))
	if err != nil {
		return o, cleanup, err
	}
	for _, n := range []string{"frames", "frame-size", "block-size", "size", "threads", "sndbuf", "batch"} {
		if c.Int(n) < 0 {
			return o, cleanup, inputerr.New("--%s must not be negative, got %d", n, c.Int(n))
		}
	}
	if c.Int("threads") == 0 {
		return o, cleanup, inputerr.New("--threads must be at least 1")
	}
	if c.Bool("force-sndbuf") && c.Int("sndbuf") == 0 {
		return o, cleanup, inputerr.New("--force-sndbuf needs --sndbuf")
	}
	if c.Bool("loop") && mode != txring.ModeRing {
		return o, cleanup, inputerr.New("--loop only applies to --mode ring")
	}
	if c.Bool("linear") && mode != txring.ModeRing {
		return o, cleanup, inputerr.New("--linear only applies to --mode ring")
	}
	for _, n := range []string{"duration", "sndtimeo", "interval", "drain"} {
		if c.Duration(n) < 0 {
			return o, cleanup, inputerr.New("--%s must not be negative", n)
		}
	}
	var ns netns.NsHandle = -1
	if name := c.String("netns"); name != "" {
		h, err := netns.GetFromName(name)
		if err != nil {
			return o, cleanup, inputerr.New("network namespace %q: %v", name, err)
		}
		ns = h
		cleanup = func() { h.Close() }
	}
	o = txring.Options{
		Socket: txring.SocketConfig{
			Ifname: c.String("ifname"), NetNS: ns, Protocol: proto,
			QdiscBypass: c.Bool("qdisc-bypass"), SndBuf: c.Int("sndbuf"), ForceSndBuf: c.Bool("force-sndbuf"),
			SndTimeo: c.Duration("sndtimeo"), Linear: c.Bool("linear"),
		},
		Ring:  txring.Geometry{Version: ver, Frames: c.Int("frames"), FrameSize: c.Int("frame-size"), BlockSize: c.Int("block-size")},
		Frame: txring.FrameSpec{Dst: dst, Src: src, EtherType: et, Size: c.Int("size")},
		Mode:  mode, DontWait: c.Bool("dontwait"), Loop: c.Bool("loop"), Batch: c.Int("batch"),
		Count: c.Int64("count"), Duration: c.Duration("duration"),
		Threads: c.Int("threads"), CPUs: cpus, Interval: c.Duration("interval"), Drain: c.Duration("drain"),
	}
	return o, cleanup, nil
}

func runSend(c *cli.Context) error {
	o, cleanup, err := sendOptions(c)
	defer cleanup()
	if err != nil {
		return err
	}
	out := io.Writer(os.Stdout)
	if c.Bool("json") {
		out = os.Stderr
	}
	o.OnReady = func(infos []txring.SocketInfo) {
		in := infos[0].Iface
		what := "one sendto() per frame, no ring"
		if o.Mode == txring.ModeRing {
			g := o.Ring
			what = fmt.Sprintf("%v TX ring, %d frames x %d B in %d blocks of %d B", g.Version, g.Frames, g.FrameSize, g.Blocks(), g.BlockSize)
		}
		fmt.Fprintf(out, "Using interface %s (%d), mtu %d: %s, %d threads, tp_len %d, %s\n",
			in.Name, in.Index, in.MTU, what, len(infos), o.Frame.Size, flagsString(o))
		if !in.Running {
			fmt.Fprintf(out, "warning: %s has no carrier (IFF_RUNNING off): the driver will drop frames\n", in.Name)
		}
		asked := "default"
		if o.Socket.SndBuf > 0 {
			opt := "SO_SNDBUF"
			if o.Socket.ForceSndBuf {
				opt = "SO_SNDBUFFORCE"
			}
			asked = fmt.Sprintf("%s %d", opt, o.Socket.SndBuf)
		}
		fmt.Fprintf(out, "sndbuf: asked %s, granted %d\n", asked, infos[0].SndBuf)
	}
	if !c.Bool("quiet") {
		o.OnStats = func(p txring.Progress) {
			fmt.Fprintf(out, "%d. Tx Gbps %.2f pps %.0f frames %d bytes %d calls %d%s\n",
				p.Seq, p.Gbps(), p.PPS(), p.Delta.Frames, p.Delta.Bytes, p.Delta.Calls, errnoString(p.Delta.Errnos))
		}
	}
	if o.Loop {
		o.OnCall = func(call txring.Call) {
			switch {
			case call.Errno != 0:
				fmt.Fprintf(out, "thread %d sendto #%d: -1 %s (%v), %d frames taken\n", call.Thread, call.N, unix.ErrnoName(call.Errno), call.Errno, call.Accepted)
			case call.Ret == 0:
				fmt.Fprintf(out, "thread %d sendto #%d: 0 (queue empty)\n", call.Thread, call.N)
			default:
				fmt.Fprintf(out, "thread %d sendto #%d: %d bytes, %d frames\n", call.Thread, call.N, call.Ret, call.Accepted)
			}
		}
	}
	drainStop, unwatch := secondSignal()
	defer unwatch()
	o.DrainStop = drainStop
	sum, runErr := txring.Run(c.Context, o)
	if inputerr.Is(runErr) || (runErr != nil && sum.Calls == 0) {
		return runErr
	}
	if c.Bool("json") {
		b, err := json.Marshal(sum)
		if err != nil {
			return err
		}
		fmt.Fprintln(os.Stdout, string(b))
	} else {
		fmt.Fprintf(out, "total: %d frames %d bytes in %d calls, %.3fs, pps %.0f, Gbps %.3f%s\n",
			sum.Frames, sum.Bytes, sum.Calls, float64(sum.DurationNs)/1e9, sum.PPS, sum.Gbps, errnoString(sum.Errnos))
		for i, f := range sum.Final {
			fmt.Fprintf(out, "thread %d ring at exit: %v\n", i, f)
		}
	}
	if sum.InFlight > 0 {
		fmt.Fprintf(os.Stderr, "warning: %d frames still SENDING after --drain %v\n", sum.InFlight, o.Drain)
	}
	if sum.WrongFormat > 0 {
		fmt.Fprintf(os.Stderr, "warning: %d frames left in TP_STATUS_WRONG_FORMAT (EMSGSIZE)\n", sum.WrongFormat)
	}
	return runErr
}

func flagsString(o txring.Options) string {
	var parts []string
	if o.DontWait {
		parts = append(parts, "MSG_DONTWAIT")
	} else {
		parts = append(parts, "blocking")
	}
	if o.Socket.QdiscBypass {
		parts = append(parts, "PACKET_QDISC_BYPASS")
	}
	if o.Socket.Linear {
		parts = append(parts, "PACKET_VNET_HDR (linear skbs)")
	}
	if o.Loop {
		parts = append(parts, "loop until queue empty")
	}
	return strings.Join(parts, ", ")
}

func errnoString(m map[string]uint64) string {
	var b strings.Builder
	for _, k := range []string{"ENOBUFS", "EAGAIN", "ETIMEDOUT", "EMSGSIZE"} {
		fmt.Fprintf(&b, " %s %d", k, m[k])
	}
	if n := m["EINTR"] + m["other"]; n > 0 {
		fmt.Fprintf(&b, " other %d", n)
	}
	return b.String()
}

func parseMAC(flag, s string) (net.HardwareAddr, error) {
	m, err := net.ParseMAC(s)
	if err != nil || len(m) != 6 {
		return nil, inputerr.New("--%s %q is not a 6-byte MAC address", flag, s)
	}
	return m, nil
}

func parseU16(flag, s string) (uint16, error) {
	v, err := strconv.ParseUint(s, 0, 16)
	if err != nil {
		return 0, inputerr.New("--%s %q is not a 16-bit number", flag, s)
	}
	return uint16(v), nil
}

func parseProtocol(s string) (uint16, error) {
	if strings.EqualFold(s, "all") {
		return unix.ETH_P_ALL, nil
	}
	return parseU16("bind-protocol", s)
}

// parseCPUList parses flag's "1", "0,2", "0-3,6".
func parseCPUList(flag, s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var cpus []int
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err1 := strconv.Atoi(strings.TrimSpace(lo))
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.Atoi(strings.TrimSpace(hi))
		}
		if err1 != nil || err2 != nil || a < 0 || b < a || b >= 1024 {
			return nil, inputerr.New("--%s %q is not a CPU list like 1 or 0,2 or 0-3", flag, s)
		}
		if b >= runtime.NumCPU() {
			return nil, inputerr.New("--%s %q: CPU %d does not exist (this machine has %d)", flag, s, b, runtime.NumCPU())
		}
		for i := a; i <= b; i++ {
			cpus = append(cpus, i)
		}
	}
	return cpus, nil
}

// secondSignal returns a channel closed by the second SIGINT or SIGTERM:
// the first one ends the context (sending stops), the second ends --drain.
func secondSignal() (<-chan struct{}, func()) {
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	second, quit := make(chan struct{}), make(chan struct{})
	go func() {
		for n := 0; ; {
			select {
			case <-sig:
				if n++; n == 2 {
					close(second)
					return
				}
			case <-quit:
				return
			}
		}
	}()
	return second, func() { signal.Stop(sig); close(quit) }
}
