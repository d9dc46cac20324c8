package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/ringtrace/ringtrace/scenarios/lab"
	"github.com/ringtrace/ringtrace/tracer/inputerr"
)

func overheadCommand() *cli.Command {
	return &cli.Command{
		Name:  "overhead",
		Usage: "sender throughput traced / untraced: ringtrace trace (streaming, --summary) and bpftrace, interleaved",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "ringtrace", Value: "bin/ringtrace", Usage: "ringtrace binary"},
			&cli.StringFlag{Name: "trafgen", Value: "trafgen", Usage: "trafgen binary"},
			&cli.StringFlag{Name: "bpftrace", Value: "bpftrace", Usage: "bpftrace binary (reference tracer)"},
			&cli.IntSliceFlag{Name: "sizes", Value: cli.NewIntSlice(64, 1500), Usage: "frame sizes"},
			&cli.StringSliceFlag{Name: "senders", Value: cli.NewStringSlice("ringtrace", "trafgen"), Usage: "senders to load the link with"},
			&cli.StringSliceFlag{Name: "paths", Value: cli.NewStringSlice("bypass", "qdisc"), Usage: "the senders' transmit paths: " +
				"bypass (PACKET_QDISC_BYPASS: the driver straight from sendto) and qdisc (through __dev_queue_xmit, the veth's noqueue)"},
			&cli.StringSliceFlag{Name: "modes", Value: cli.NewStringSlice("null", "calls", "stream", "record", "summary", "metrics", "bpftrace"), Usage: "tracers to compare with the untraced run"},
			&cli.IntFlag{Name: "reps", Value: 3, Usage: "interleaved repetitions"},
			&cli.DurationFlag{Name: "window", Value: 3 * time.Second, Usage: "measured window per run"},
			&cli.DurationFlag{Name: "warmup", Value: 500 * time.Millisecond, Usage: "time before the window opens"},
			&cli.IntFlag{Name: "cpu", Value: 0, Usage: "CPU the sender runs on (tracers run on the others)"},
			&cli.BoolFlag{Name: "bpf-stats", Value: true, Usage: "then, in runs of their own with kernel.bpf_stats_enabled, where each ringtrace mode's BPF time goes per frame"},
		},
		Action: runOverhead,
	}
}

// bpftraceScript counts, per tracepoint, what ringtrace's class C plan
// attaches for a bypass sender: the equivalent work done by hand.
const bpftraceScript = `
tracepoint:syscalls:sys_enter_sendto, tracepoint:syscalls:sys_exit_sendto,
tracepoint:net:net_dev_queue, tracepoint:net:net_dev_xmit,
tracepoint:skb:kfree_skb, tracepoint:skb:consume_skb,
tracepoint:irq:softirq_entry, tracepoint:irq:softirq_exit,
tracepoint:sched:sched_switch, tracepoint:sched:sched_waking { @[probe] = count(); }
`

// tracerRun is one tracer process under measurement.
type tracerRun struct {
	mode   string
	cmd    *exec.Cmd
	stdout *os.File // a file, not a pipe: no reader of ours competes for a CPU
	out    bytes.Buffer
	ready  time.Duration
	rss    uint64 // peak RSS (VmHWM) in bytes, read before it stops
	events uint64
	lost   uint64
	start  time.Time
	// scraping: mode metrics scrapes the endpoint every second until stop
	scraping chan struct{}
	scrapes  chan int // how many scrapes succeeded
}

func startTracer(mode, rt, bt, dir string, cpus []int) (*tracerRun, error) {
	tr := &tracerRun{mode: mode, start: time.Now()}
	ready := filepath.Join(dir, "ready")
	os.Remove(ready)
	switch mode {
	case "stream": // every event decoded, one JSON object per line
		tr.cmd = exec.Command(rt, "trace", "--json", "--ready-file", ready)
	case "record": // every event into a recording, the report kept live
		tr.cmd = exec.Command(rt, "trace", "--summary", "--json", "--record", filepath.Join(dir, "bench.rtrec"), "--ready-file", ready)
	case "summary": // in-kernel aggregation
		tr.cmd = exec.Command(rt, "trace", "--summary", "--json", "--ready-file", ready)
	case "metrics": // summary, served to Prometheus, scraped every second
		tr.cmd = exec.Command(rt, "trace", "--summary", "--json", "--metrics-addr", metricsAddr, "--ready-file", ready)
	case "calls": // send calls and sleeps only, frames counted
		tr.cmd = exec.Command(rt, "trace", "--summary", "--json", "--detail", "calls", "--ready-file", ready)
	case "null": // empty programs on the same hooks: the floor
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		tr.cmd = exec.Command(self, "null-tracer", "--ready-file", ready)
	case "bpftrace":
		tr.cmd = exec.Command(bt, "-e", bpftraceScript)
	default:
		return nil, inputerr.New("unknown mode %q (calls, stream, record, summary, metrics, null, bpftrace)", mode)
	}
	f, err := os.Create(filepath.Join(dir, "tracer.out"))
	if err != nil {
		return nil, err
	}
	tr.stdout = f
	tr.cmd.Stdout = f
	tr.cmd.Stderr = &tr.out
	if err := startPinned(tr.cmd, cpus); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s tracer: %w", mode, err)
	}
	var attached func() bool
	if mode == "bpftrace" { // no ready file: it says "Attaching N probes..."
		attached = func() bool { return strings.Contains(tr.head(), "Attaching") }
	}
	if err := awaitReady(tr.cmd.Process, ready, attached, 30*time.Second); err != nil {
		tr.cmd.Process.Kill()
		tr.cmd.Wait()
		tr.stdout.Close()
		os.Remove(tr.stdout.Name())
		return nil, fmt.Errorf("%s: %w: %s", mode, err, strings.TrimSpace(tr.out.String()))
	}
	if mode == "bpftrace" {
		time.Sleep(time.Second) // bpftrace prints before it attaches
	}
	tr.ready = time.Since(tr.start)
	if mode == "metrics" {
		tr.scraping, tr.scrapes = make(chan struct{}), make(chan int, 1)
		go scrapeEverySecond(tr.scraping, tr.scrapes)
	}
	return tr, nil
}

// metricsAddr is where mode metrics serves.
const metricsAddr = "127.0.0.1:19717"

// scrapeEverySecond scrapes metricsAddr once a second (Prometheus scrapes
// every 15 s to 1 min by default) until stop closes, then says how many
// scrapes succeeded.
func scrapeEverySecond(stop <-chan struct{}, n chan<- int) {
	ok := 0
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			n <- ok
			return
		case <-tick.C:
		}
		if resp, err := http.Get("http://" + metricsAddr + "/metrics"); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				ok++
			}
		}
	}
}

// stop ends the tracer and reads its counters (ringtrace's JSON summary).
func (tr *tracerRun) stop() error {
	tr.rss = vmHWM(tr.cmd.Process.Pid)
	if tr.scraping != nil {
		close(tr.scraping)
		if n := <-tr.scrapes; n == 0 {
			return fmt.Errorf("metrics: no scrape of %s succeeded", metricsAddr)
		}
	}
	tr.cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- tr.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		tr.cmd.Process.Kill()
		<-done
		if tr.mode == "bpftrace" { // the reference, not ours: it sometimes hangs printing its maps
			fmt.Printf("(bpftrace did not stop 30 s after SIGINT: killed)\n")
			return nil
		}
		return fmt.Errorf("%s tracer did not stop 30 s after SIGINT: %s", tr.mode, strings.TrimSpace(tr.out.String()))
	}
	// Only the last lines matter (the summary); the file can be large.
	defer os.Remove(tr.stdout.Name())
	defer tr.stdout.Close()
	tail, err := fileTail(tr.stdout, 1<<20)
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(bytes.NewReader(tail))
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, `{"event":"summary"`): // trace --json
			var s struct {
				Events uint64 `json:"events"`
				Lost   uint64 `json:"lost"`
			}
			json.Unmarshal([]byte(l), &s)
			tr.events, tr.lost = s.Events, s.Lost
		case strings.HasPrefix(l, `{"report"`): // trace --summary --json
			var s struct {
				Session struct {
					Events uint64 `json:"events"`
					Lost   uint64 `json:"lost"`
				} `json:"session"`
			}
			json.Unmarshal([]byte(l), &s)
			tr.events, tr.lost = s.Session.Events, s.Session.Lost
		}
	}
	return nil
}

// head is the start of what the tracer printed so far (stdout file).
func (tr *tracerRun) head() string {
	b := make([]byte, 4096)
	n, _ := tr.stdout.ReadAt(b, 0)
	return string(b[:n])
}

// fileTail reads at most n bytes from the end of f.
func fileTail(f *os.File, n int64) ([]byte, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	off := max(st.Size()-n, 0)
	b := make([]byte, st.Size()-off)
	_, err = f.ReadAt(b, off)
	if err != nil && err != io.EOF {
		return nil, err
	}
	return b, nil
}

// vmHWM is a process's peak resident set size.
func vmHWM(pid int) uint64 { return procStatusBytes(pid, "VmHWM:") }

type overheadRow struct {
	sender, path, mode string
	size               int
	pps, ratio         float64
	tr                 *tracerRun
}

func runOverhead(c *cli.Context) error {
	rt, err := rootAndRingtrace(c, "overhead")
	if err != nil {
		return err
	}
	tg, _ := exec.LookPath(c.String("trafgen"))
	bt, _ := exec.LookPath(c.String("bpftrace"))
	senders := c.StringSlice("senders")
	modes := c.StringSlice("modes")
	paths := c.StringSlice("paths")
	for _, p := range paths {
		if p != "bypass" && p != "qdisc" {
			return inputerr.New("--paths %q: bypass or qdisc", p)
		}
	}
	if len(paths) == 0 {
		return inputerr.New("--paths: at least one of bypass and qdisc")
	}
	if tg == "" {
		senders = without(senders, "trafgen")
		fmt.Println("trafgen not installed (apt-get install netsniff-ng): ringtrace send only")
	}
	if bt == "" {
		modes = without(modes, "bpftrace")
		fmt.Println("bpftrace not installed (apt-get install bpftrace): no reference tracer")
	}
	l, dir, done, err := benchLab("ringbench")
	if err != nil {
		return err
	}
	defer done()
	cpu := c.Int("cpu")
	others := otherCPUs(cpu)
	fmt.Printf("sender on CPU %d on veth %s, paths %v (bypass: PACKET_QDISC_BYPASS, trafgen's default); tracers on CPUs %v; %d interleaved reps of %v\n",
		cpu, l.SenderIf, paths, others, c.Int("reps"), c.Duration("window"))
	fmt.Printf("%-9s %-6s %-5s %-9s %12s %7s %12s %6s %7s %9s\n", "sender", "path", "size", "mode", "pps", "ratio", "events/s", "lost", "ready", "peak RSS")
	var rows []overheadRow
	for _, size := range c.IntSlice("sizes") {
		for rep := 0; rep < c.Int("reps"); rep++ {
			for _, path := range paths {
				for _, snd := range senders {
					mk := senderCmd(snd, path, rt, tg, l.SenderIf, size, cpu)
					base, err := measure(c.Context, l, mk(), c.Duration("warmup"), c.Duration("window"))
					if err != nil {
						return fmt.Errorf("%s (%s) untraced: %w", snd, path, err)
					}
					rows = append(rows, overheadRow{snd, path, "untraced", size, base.pps, 1, nil})
					fmt.Printf("%-9s %-6s %-5d %-9s %12.0f %7.3f\n", snd, path, size, "untraced", base.pps, 1.0)
					for _, m := range rotate(modes, rep) {
						tr, err := startTracer(m, rt, bt, dir, others)
						if err != nil {
							return err
						}
						res, err := measure(c.Context, l, mk(), c.Duration("warmup"), c.Duration("window"))
						serr := tr.stop()
						if err != nil {
							return fmt.Errorf("%s (%s) under %s: %w", snd, path, m, err)
						}
						if serr != nil {
							return serr
						}
						row := overheadRow{snd, path, m, size, res.pps, res.pps / base.pps, tr}
						rows = append(rows, row)
						evs := "-"
						if tr.events > 0 {
							evs = fmt.Sprintf("%.0f", float64(tr.events)/time.Since(tr.start).Seconds())
						}
						fmt.Printf("%-9s %-6s %-5d %-9s %12.0f %7.3f %12s %6d %7s %8.1fM\n", snd, path, size, m, res.pps, row.ratio, evs, tr.lost,
							tr.ready.Round(time.Millisecond), float64(tr.rss)/(1<<20))
					}
				}
			}
		}
	}
	fmt.Println("\nmedian ratios traced/untraced (targets: calls >= 0.97; summary >= 0.88 and within 0.07 of null, ahead of bpftrace;\n  stream (JSON to a file) >= 0.75 with 0 lost; ready <= 0.5 s; RSS <= 64 MiB)")
	for _, size := range c.IntSlice("sizes") {
		for _, path := range paths {
			for _, snd := range senders {
				for _, m := range modes {
					var rs []float64
					var lost uint64
					for _, r := range rows {
						if r.size == size && r.path == path && r.sender == snd && r.mode == m {
							rs = append(rs, r.ratio)
							lost += r.tr.lost
						}
					}
					fmt.Printf("  %-9s %-6s %-5d %-9s %.3f  (lost %d)\n", snd, path, size, m, median(rs), lost)
				}
			}
		}
	}
	if !c.Bool("bpf-stats") {
		return nil
	}
	for _, path := range paths {
		fmt.Printf("\n%s path:", path)
		mk := senderCmd(senders[0], path, rt, tg, l.SenderIf, c.IntSlice("sizes")[0], cpu)
		if err := breakdown(c, l, dir, mk, modes, rt, others); err != nil {
			return err
		}
	}
	return nil
}

// breakdown runs each ringtrace mode once more with the kernel's
// per-program accounting on and prints where its BPF time goes per frame
// sent (the ratios above were measured without it: it costs two clock
// reads per program run).
func breakdown(c *cli.Context, l *lab.Lab, dir string, mk func() *exec.Cmd, modes []string, rt string, cpus []int) error {
	restore, err := enableBPFStats()
	if err != nil {
		return err
	}
	defer restore()
	fmt.Println("\nBPF time per frame sent (kernel.bpf_stats_enabled, one run per mode, first sender and size)")
	for _, m := range modes {
		if m == "bpftrace" {
			continue
		}
		newest := highestProgID()
		tr, err := startTracer(m, rt, "", dir, cpus)
		if err != nil {
			return err
		}
		before, err := progStats(newest)
		st0, err0 := l.SenderStats()
		t0 := time.Now()
		_, merr := measure(c.Context, l, mk(), c.Duration("warmup"), c.Duration("window"))
		st1, err1 := l.SenderStats()
		after, aerr := progStats(newest)
		d := time.Since(t0)
		if err := errors.Join(err, err0, merr, err1, aerr, tr.stop()); err != nil {
			return fmt.Errorf("%s with bpf_stats: %w", m, err)
		}
		writeBreakdown(m, before, after, st1.TxPackets-st0.TxPackets, "frame", d)
	}
	return nil
}

// senderCmd makes the command of one sender run: name is ringtrace or
// trafgen, path bypass or qdisc.
func senderCmd(name, path, rt, tg, ifname string, size, cpu int) func() *exec.Cmd {
	return func() *exec.Cmd {
		if name == "trafgen" {
			pkt := fmt.Sprintf("{ fill(0xff, 6), 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, c16(0x88b5), fill(0x00, %d) }", size-14)
			cmd := exec.Command(tg, "--dev", ifname, "--cpus", "1", "-Q", "-C", pkt)
			if path == "qdisc" {
				cmd.Args = append(cmd.Args, "--qdisc-path")
			}
			return cmd
		}
		cmd := exec.Command(rt, "send", "-i", ifname, "--size", strconv.Itoa(size), "--duration", "1h", "-q",
			"--cpu", strconv.Itoa(cpu), "--drain", "0")
		if path == "bypass" {
			cmd.Args = append(cmd.Args, "--qdisc-bypass")
		}
		return cmd
	}
}

func rotate(s []string, k int) []string {
	if len(s) == 0 {
		return s
	}
	k %= len(s)
	return append(append([]string(nil), s[k:]...), s[:k]...)
}

func without(s []string, x string) []string {
	var out []string
	for _, v := range s {
		if v != x {
			out = append(out, v)
		}
	}
	return out
}

func numCPU() int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return 1
	}
	return set.Count()
}
