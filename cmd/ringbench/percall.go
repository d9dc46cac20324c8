package main

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/ringtrace/ringtrace/tracer/inputerr"
	"github.com/ringtrace/ringtrace/tracer/txring"
)

// percallCommand measures what tracing adds to one sendto: the cost a
// traced program sees per call, whatever the throughput. An empty call (no
// frame in SEND_REQUEST) costs ~1 µs untraced at any ring size; a tracer
// whose per-call work grows with the ring makes a sender that polls the
// ring with empty calls a thousand times slower.
func percallCommand() *cli.Command {
	return &cli.Command{
		Name:  "percall",
		Usage: "cost of one sendto, traced / untraced, by ring size: empty calls, 1-frame calls, and empty calls from a 10 µs interval timer",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "ringtrace", Value: "bin/ringtrace", Usage: "ringtrace binary"},
			&cli.IntSliceFlag{Name: "rings", Value: cli.NewIntSlice(64, 2048, 65536), Usage: "ring sizes (frames)"},
			&cli.StringSliceFlag{Name: "modes", Value: cli.NewStringSlice("calls", "stream", "summary", "null"), Usage: "tracers to compare with the untraced run"},
			&cli.IntFlag{Name: "calls", Value: 2000, Usage: "calls per measurement"},
			&cli.IntFlag{Name: "reps", Value: 3, Usage: "interleaved repetitions"},
			&cli.IntFlag{Name: "timer-ring", Value: 16384, Usage: "ring size of the interval-timer sender (0: skip it)"},
			&cli.DurationFlag{Name: "timer-period", Value: 10 * time.Microsecond, Usage: "the interval timer's period"},
			&cli.IntFlag{Name: "timer-calls", Value: 5000, Usage: "calls the interval-timer sender makes"},
			&cli.IntFlag{Name: "cpu", Value: 0, Usage: "CPU the sender runs on (tracers run on the others)"},
			&cli.BoolFlag{Name: "bpf-stats", Value: true, Usage: "then, in runs of their own with kernel.bpf_stats_enabled, where each mode's BPF time goes per empty call"},
		},
		Action: runPercall,
	}
}

// callKind is what one measured sendto does.
type callKind string

const (
	emptyCall callKind = "empty"   // MSG_DONTWAIT, no frame to send
	oneFrame  callKind = "1-frame" // one frame, blocking until it is AVAILABLE
	timerCall callKind = "timer"   // empty calls, one per interval-timer tick
)

// percallKey names one cell of the result table.
type percallKey struct {
	mode   string
	frames int
	kind   callKind
}

func runPercall(c *cli.Context) error {
	rt, err := rootAndRingtrace(c, "per-call")
	if err != nil {
		return err
	}
	calls, reps := c.Int("calls"), c.Int("reps")
	if calls < 1 || reps < 1 || c.Int("timer-calls") < 1 || c.Duration("timer-period") <= 0 {
		return inputerr.New("--calls, --reps, --timer-calls and --timer-period must be positive")
	}
	rings := c.IntSlice("rings")
	for _, n := range rings {
		if n < 1 || n&(n-1) != 0 {
			return inputerr.New("--rings: %d is not a power of two", n)
		}
	}
	l, dir, done, err := benchLab("ringbench-percall")
	if err != nil {
		return err
	}
	defer done()
	cpu := c.Int("cpu")
	others := otherCPUs(cpu)
	// The sender is this process's locked thread, pinned to --cpu.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("pin the sender to CPU %d: %w", cpu, err)
	}
	sizes := slices.Clone(rings)
	if t := c.Int("timer-ring"); t > 0 && !slices.Contains(sizes, t) {
		sizes = append(sizes, t)
	}
	sender := map[int]*percallRing{}
	for _, n := range sizes {
		r, err := openPercallRing(l.SenderNS, l.SenderIf, n)
		if err != nil {
			return err
		}
		defer r.Close()
		sender[n] = r
	}
	fmt.Printf("sender on CPU %d (veth %s), tracers on CPUs %v; %d calls per cell, %d interleaved reps; ns per call\n",
		cpu, l.SenderIf, others, calls, reps)
	res := map[percallKey][]float64{}
	measureAll := func(mode string) error {
		for _, n := range rings {
			for _, k := range []callKind{emptyCall, oneFrame} {
				ns, err := sender[n].measure(k, calls, 0)
				if err != nil {
					return fmt.Errorf("%s, %d frames, %s calls: %w", mode, n, k, err)
				}
				res[percallKey{mode, n, k}] = append(res[percallKey{mode, n, k}], ns)
			}
		}
		if t := c.Int("timer-ring"); t > 0 {
			ns, err := sender[t].measure(timerCall, c.Int("timer-calls"), c.Duration("timer-period"))
			if err != nil {
				return fmt.Errorf("%s, timer sender: %w", mode, err)
			}
			res[percallKey{mode, t, timerCall}] = append(res[percallKey{mode, t, timerCall}], ns)
		}
		return nil
	}
	modes := c.StringSlice("modes")
	for rep := 0; rep < reps; rep++ {
		if err := measureAll("untraced"); err != nil {
			return err
		}
		for _, m := range rotate(modes, rep) {
			tr, err := startTracer(m, rt, "", dir, others)
			if err != nil {
				return err
			}
			err = measureAll(m)
			if serr := tr.stop(); err == nil {
				err = serr
			}
			if err != nil {
				return err
			}
		}
	}
	printPercall(res, append([]string{"untraced"}, modes...), rings, c.Int("timer-ring"), c.Duration("timer-period"), c.Int("timer-calls"))
	if !c.Bool("bpf-stats") {
		return nil
	}
	return percallBreakdown(modes, rings, calls, sender, rt, dir, others)
}

// percallBreakdown runs each mode once more with the kernel's per-program
// accounting on (it costs two clock reads per program run, so the table
// above is measured without it) and prints where its BPF time goes per
// empty call, by ring size: what per-call work costs, program by program.
func percallBreakdown(modes []string, rings []int, calls int, sender map[int]*percallRing, rt, dir string, cpus []int) error {
	restore, err := enableBPFStats()
	if err != nil {
		return err
	}
	defer restore()
	fmt.Println("\nBPF time per empty call (kernel.bpf_stats_enabled, one run per mode and ring size)")
	for _, m := range modes {
		newest := highestProgID()
		tr, err := startTracer(m, rt, "", dir, cpus)
		if err != nil {
			return err
		}
		for _, n := range rings {
			before, err := progStats(newest)
			t0 := time.Now()
			_, merr := sender[n].measure(emptyCall, calls, 0)
			d := time.Since(t0)
			after, aerr := progStats(newest)
			if err := errors.Join(err, merr, aerr); err != nil {
				tr.stop()
				return fmt.Errorf("%s with bpf_stats, %d frames: %w", m, n, err)
			}
			writeBreakdown(fmt.Sprintf("%s/%d", m, n), before, after, uint64(calls), "call", d)
		}
		if err := tr.stop(); err != nil {
			return fmt.Errorf("%s with bpf_stats: %w", m, err)
		}
	}
	return nil
}

// printPercall prints the medians and the ratios to untraced.
func printPercall(res map[percallKey][]float64, modes []string, rings []int, timerRing int, period time.Duration, timerCalls int) {
	fmt.Printf("\n%-8s %-8s", "frames", "call")
	for _, m := range modes {
		fmt.Printf(" %18s", m)
	}
	fmt.Println()
	row := func(n int, k callKind, unit func(float64) string) {
		fmt.Printf("%-8d %-8s", n, k)
		base := median(res[percallKey{"untraced", n, k}])
		for _, m := range modes {
			v := median(res[percallKey{m, n, k}])
			cell := unit(v)
			if m != "untraced" && base > 0 {
				cell += fmt.Sprintf(" (%.1fx)", v/base)
			}
			fmt.Printf(" %18s", cell)
		}
		fmt.Println()
	}
	perCall := func(ns float64) string { return fmt.Sprintf("%.1f µs", ns/1e3) }
	for _, n := range rings {
		row(n, emptyCall, perCall)
		row(n, oneFrame, perCall)
	}
	if timerRing > 0 {
		fmt.Printf("timer: %d empty calls, one per %v tick, on a %d-frame ring: the whole run's time\n", timerCalls, period, timerRing)
		row(timerRing, timerCall, func(ns float64) string { return fmt.Sprintf("%.1f ms", ns/1e6) })
	}
	fmt.Println("targets: an empty call at most 3x untraced at every ring size; the timer sender within 2x")
}

// percallRing is the sender's ring: every frame filled once, AVAILABLE.
type percallRing struct {
	*txring.Ring
	next int
}

func openPercallRing(ns netns.NsHandle, ifname string, frames int) (*percallRing, error) {
	geo := txring.Geometry{Version: txring.V2, Frames: frames, FrameSize: 256, BlockSize: 1 << 16}
	if frames*geo.FrameSize < geo.BlockSize {
		geo.BlockSize = frames * geo.FrameSize
		if geo.BlockSize < unix.Getpagesize() {
			geo.BlockSize, geo.FrameSize = unix.Getpagesize(), unix.Getpagesize()/frames
		}
	}
	r, err := txring.Open(txring.SocketConfig{Ifname: ifname, NetNS: ns}, geo)
	if err != nil {
		return nil, fmt.Errorf("%d-frame ring: %w", frames, err)
	}
	pkt := txring.FrameSpec{Dst: txring.BroadcastMAC, Src: r.Interface().HWAddr, EtherType: txring.EtherTypeLocalExp1, Size: 64}.Build()
	for i := 0; i < frames; i++ {
		r.Fill(i, pkt)
		r.SetStatus(i, txring.Available)
	}
	return &percallRing{Ring: r}, nil
}

// measure makes calls sendto calls of kind k and returns the mean ns per
// call; for timerCall, one per tick of a period interval timer, and the
// whole run's ns.
func (r *percallRing) measure(k callKind, calls int, period time.Duration) (float64, error) {
	tfd := -1
	if k == timerCall {
		fd, err := intervalTimer(period)
		if err != nil {
			return 0, err
		}
		defer unix.Close(fd)
		tfd = fd
	}
	var expirations [8]byte
	start := time.Now()
	for i := 0; i < calls; i++ {
		switch k {
		case emptyCall:
			if _, err := r.Send(unix.MSG_DONTWAIT); err != nil && !errors.Is(err, unix.EAGAIN) {
				return 0, fmt.Errorf("sendto: %w", err)
			}
		case timerCall:
			if _, err := unix.Read(tfd, expirations[:]); err != nil {
				return 0, fmt.Errorf("read the interval timer: %w", err)
			}
			if _, err := r.Send(unix.MSG_DONTWAIT); err != nil && !errors.Is(err, unix.EAGAIN) {
				return 0, fmt.Errorf("sendto: %w", err)
			}
		case oneFrame:
			r.SetStatus(r.next, txring.SendRequest)
			if _, err := r.Send(0); err != nil {
				return 0, fmt.Errorf("sendto: %w", err)
			}
			if s := r.Status(r.next).State(); s != txring.Available {
				return 0, fmt.Errorf("frame %d is %v after a blocking sendto", r.next, s)
			}
			r.next = (r.next + 1) % r.Frames()
		}
	}
	el := float64(time.Since(start).Nanoseconds())
	if k == timerCall {
		return el, nil
	}
	return el / float64(calls), nil
}

// intervalTimer is a timerfd that expires every period: a read blocks
// until the next expiry (Go's tickers are far coarser than 10 µs).
func intervalTimer(period time.Duration) (int, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("timerfd_create: %w", err)
	}
	ts := unix.NsecToTimespec(period.Nanoseconds())
	if err := unix.TimerfdSettime(fd, 0, &unix.ItimerSpec{Interval: ts, Value: ts}, nil); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("timerfd_settime: %w", err)
	}
	return fd, nil
}
