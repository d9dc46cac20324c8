package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ringtrace/ringtrace/scenarios/lab"
	"github.com/ringtrace/ringtrace/tracer/inputerr"
	"github.com/ringtrace/ringtrace/tracer/nsexec"
)

func sendBenchCommand() *cli.Command {
	return &cli.Command{
		Name:  "send",
		Usage: "ringtrace send vs trafgen on one veth: pps ratio per frame size",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "ringtrace", Value: "bin/ringtrace", Usage: "ringtrace binary"},
			&cli.StringFlag{Name: "trafgen", Value: "trafgen", Usage: "trafgen binary (Debian package netsniff-ng)"},
			&cli.IntSliceFlag{Name: "sizes", Value: cli.NewIntSlice(64, 1500), Usage: "frame sizes"},
			&cli.IntFlag{Name: "reps", Value: 5, Usage: "interleaved repetitions per size"},
			&cli.DurationFlag{Name: "window", Value: 3 * time.Second, Usage: "measured window per run"},
			&cli.DurationFlag{Name: "warmup", Value: 500 * time.Millisecond, Usage: "time before the window opens"},
			&cli.BoolFlag{Name: "qdisc", Usage: "both through the qdisc (default: both bypass it, trafgen's default)"},
			&cli.IntFlag{Name: "cpu", Value: 0, Usage: "CPU both senders run on (trafgen --cpus 1 uses CPU 0)"},
			&cli.StringFlag{Name: "ringtrace-args", Usage: "extra arguments for ringtrace send"},
		},
		Action: runSendBench,
	}
}

// tool is one side of the comparison: how to start it for a frame size.
type tool struct {
	name string
	cmd  func(size int) *exec.Cmd
}

func runSendBench(c *cli.Context) error {
	if os.Geteuid() != 0 {
		return inputerr.New("the send benchmark needs root (network namespaces, packet sockets)")
	}
	rt, err := exec.LookPath(c.String("ringtrace"))
	if err != nil {
		return inputerr.New("ringtrace binary %q not found (run make build)", c.String("ringtrace"))
	}
	tg, err := exec.LookPath(c.String("trafgen"))
	if err != nil {
		return inputerr.New("trafgen not found: apt-get install netsniff-ng")
	}
	if _, err := lab.CleanStale(); err != nil {
		return err
	}
	l, err := lab.New(lab.Config{})
	if err != nil {
		return err
	}
	defer l.Close()
	bypass := !c.Bool("qdisc")
	cpu := c.Int("cpu")
	extra := strings.Fields(c.String("ringtrace-args"))
	ringtrace := func(linear bool) func(size int) *exec.Cmd {
		return func(size int) *exec.Cmd {
			args := []string{"send", "-i", l.SenderIf, "--size", strconv.Itoa(size), "--duration", "1h", "-q",
				"--cpu", strconv.Itoa(cpu), "--drain", "0"}
			if bypass {
				args = append(args, "--qdisc-bypass")
			}
			if linear {
				args = append(args, "--linear")
			}
			return exec.Command(rt, append(args, extra...)...)
		}
	}
	// The ringtrace senders, then trafgen, the reference.
	tools := []tool{
		{"ringtrace", ringtrace(false)},
		{"ringtrace --linear", ringtrace(true)},
		{"trafgen", func(size int) *exec.Cmd {
			pkt := fmt.Sprintf("{ fill(0xff, 6), 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, c16(0x88b5), fill(0x00, %d) }", size-14)
			args := []string{"--dev", l.SenderIf, "--cpus", "1", "-Q", "-C", pkt}
			if !bypass {
				args = append(args, "--qdisc-path")
			}
			return exec.Command(tg, args...)
		}},
	}
	ref := len(tools) - 1
	fmt.Printf("ringtrace send (default, and --linear) vs trafgen on veth %s, one thread on CPU %d, qdisc bypass %v, %d interleaved runs of %v per size\n",
		l.SenderIf, cpu, bypass, c.Int("reps"), c.Duration("window"))
	fmt.Printf("%-6s %-4s %-18s %12s %8s   %s\n", "size", "rep", "sender", "pps", "ratio", "CPU per frame user/sys ns")
	for _, size := range c.IntSlice("sizes") {
		ratios := make([][]float64, ref)
		for rep := 0; rep < c.Int("reps"); rep++ {
			// Interleaved, each rep starting one sender later.
			res := make([]result, len(tools))
			for k := range tools {
				i := (rep + k) % len(tools)
				res[i], err = measure(c.Context, l, tools[i].cmd(size), c.Duration("warmup"), c.Duration("window"))
				if err != nil {
					return fmt.Errorf("%s %d B: %w", tools[i].name, size, err)
				}
			}
			for i, r := range res {
				ratio := "-"
				if i != ref {
					ratios[i] = append(ratios[i], r.pps/res[ref].pps)
					ratio = fmt.Sprintf("%.3f", r.pps/res[ref].pps)
				}
				fmt.Printf("%-6d %-4d %-18s %12.0f %8s   %4.0f/%-5.0f\n", size, rep+1, tools[i].name, r.pps, ratio, r.userNs, r.sysNs)
			}
		}
		for i := range ratios {
			med := median(ratios[i])
			verdict := "met"
			if med < 1.1 {
				verdict = "NOT met"
			}
			fmt.Printf("%-6d median ratio %s/trafgen %.3f (target >= 1.10: %s)\n", size, tools[i].name, med, verdict)
		}
	}
	return nil
}

// result of one run over the measured window: packets per second, and the
// user and system CPU time per frame of the tool's whole process tree.
type result struct {
	pps, userNs, sysNs float64
}

// measure starts cmd in the lab's sender namespace, waits warmup, counts the
// veth's transmitted packets over window, then stops it with SIGINT.
func measure(ctx context.Context, l *lab.Lab, cmd *exec.Cmd, warmup, window time.Duration) (result, error) {
	cmd.Stdout, cmd.Stderr = nil, nil
	// Its own process group: trafgen forks its workers, and a worker that
	// outlives the measurement keeps loading the CPU under every later one.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// A child forked from a thread inside the namespace starts there.
	if err := nsexec.Do(l.SenderNS, cmd.Start); err != nil {
		return result{}, err
	}
	pgid := cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		syscall.Kill(-pgid, syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(3 * time.Second):
			syscall.Kill(-pgid, syscall.SIGKILL)
			<-exited
		}
		syscall.Kill(-pgid, syscall.SIGKILL) // workers that ignored SIGINT
	}
	sleep := func(d time.Duration) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-exited:
			return fmt.Errorf("exited early: %v", err)
		case <-time.After(d):
			return nil
		}
	}
	if err := sleep(warmup); err != nil {
		stop()
		return result{}, err
	}
	a, err := l.SenderStats()
	u0, s0 := treeCPU(cmd.Process.Pid)
	t0 := time.Now()
	if err == nil {
		err = sleep(window)
	}
	if err != nil {
		stop()
		return result{}, err
	}
	b, err := l.SenderStats()
	u1, s1 := treeCPU(cmd.Process.Pid)
	dt := time.Since(t0)
	stop()
	if err != nil {
		return result{}, err
	}
	n := float64(b.TxPackets - a.TxPackets)
	res := result{pps: n / dt.Seconds()}
	if n > 0 {
		res.userNs = (u1 - u0) * 1e9 / n
		res.sysNs = (s1 - s0) * 1e9 / n
	}
	return res, nil
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
