package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ringtrace/ringtrace/scenarios/lab"
	"github.com/ringtrace/ringtrace/tracer/inputerr"
	"github.com/ringtrace/ringtrace/tracer/nsexec"
	"github.com/ringtrace/ringtrace/tracer/report"
)

func soakCommand() *cli.Command {
	return &cli.Command{
		Name: "soak",
		Usage: "run `ringtrace trace` for a long time against a full-rate sender: " +
			"its memory must stay flat and no event may be lost (exit 1 otherwise)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "ringtrace", Value: "bin/ringtrace", Usage: "ringtrace binary"},
			&cli.DurationFlag{Name: "duration", Value: 10 * time.Minute, Usage: "how long"},
			&cli.DurationFlag{Name: "every", Value: 10 * time.Second, Usage: "sampling interval"},
			&cli.StringFlag{Name: "mode", Value: "summary", Usage: "summary (trace --summary), calls (trace --summary --detail calls) or stream (trace --json to /dev/null)"},
			&cli.IntFlag{Name: "size", Value: 64, Usage: "frame size"},
			&cli.IntFlag{Name: "cpu", Value: 0, Usage: "CPU the sender runs on"},
			&cli.Float64Flag{Name: "max-growth", Value: 0.10, Usage: "largest RSS growth allowed after the first minute (fraction)"},
			&cli.DurationFlag{Name: "sweep-interval", Usage: "the tracer's --sweep-interval (default: its own); " +
				"a short one makes the sweep race the completion hooks more often"},
			&cli.BoolFlag{Name: "churn", Usage: "instead of one full-rate sender, short-lived senders one after the other " +
				"(TPACKET_V1-V3, rings of 1 to 4096 frames): every frame they got back must be traced AVAILABLE"},
		},
		Action: runSoak,
	}
}

// soakSample is one reading of the tracer and the link.
type soakSample struct {
	at      time.Duration
	rss     uint64
	packets uint64
}

func runSoak(c *cli.Context) error {
	if os.Geteuid() != 0 {
		return inputerr.New("the soak needs root")
	}
	rt, err := exec.LookPath(c.String("ringtrace"))
	if err != nil {
		return inputerr.New("ringtrace binary %q not found (run make build)", c.String("ringtrace"))
	}
	mode := c.String("mode")
	if mode != "summary" && mode != "calls" && mode != "stream" {
		return inputerr.New("--mode %q: summary, calls or stream", mode)
	}
	summary := mode != "stream" // one report at the end, counted in the kernel
	d, every := c.Duration("duration"), c.Duration("every")
	if d <= 0 || every <= 0 || every > d {
		return inputerr.New("--duration and --every must be positive, --every at most --duration")
	}
	l, dir, done, err := benchLab("ringsoak")
	if err != nil {
		return err
	}
	defer done()

	// The senders run under a name of this soak's own, and the tracer
	// follows that name only: any other ringtrace sending on this host (a
	// bench, a probe --verify, another CI run) stays out of the counts.
	comm := fmt.Sprintf("rsoak%d", os.Getpid()%1000000)
	sendBin := filepath.Join(dir, comm)
	if err := os.Symlink(rt, sendBin); err != nil {
		return fmt.Errorf("sender name: %w", err)
	}
	ready := filepath.Join(dir, "ready")
	args := []string{"trace", "--ready-file", ready, "--comm", comm}
	if iv := c.Duration("sweep-interval"); iv > 0 {
		args = append(args, "--sweep-interval", iv.String())
	}
	var stdout, stderr bytes.Buffer
	var avail availCounter
	tracer := exec.Command(rt, args...)
	switch {
	case summary:
		tracer.Args = append(tracer.Args, "--summary", "--json")
		if mode == "calls" {
			tracer.Args = append(tracer.Args, "--detail", "calls")
		}
		tracer.Stdout = &stdout
	case c.Bool("churn"):
		tracer.Args = append(tracer.Args, "--json")
		tracer.Stdout = &avail // every completion counted
	default:
		tracer.Args = append(tracer.Args, "--json")
		tracer.Stdout = nil // /dev/null: the soak is about the tracer, not the disk
	}
	tracer.Stderr = &stderr
	if err := tracer.Start(); err != nil {
		return fmt.Errorf("start tracer: %w", err)
	}
	defer tracer.Process.Kill()
	if err := awaitReady(tracer.Process, ready, nil, 30*time.Second); err != nil {
		tracer.Process.Kill()
		tracer.Wait()
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	var churn *churner
	if c.Bool("churn") {
		churn = startChurn(sendBin, l)
		defer churn.stop()
		fmt.Printf("soak: %s tracer against short-lived senders on %s for %v, sampled every %v\n", mode, l.SenderIf, d, every)
	} else {
		sender := exec.Command(sendBin, "send", "-i", l.SenderIf, "--size", strconv.Itoa(c.Int("size")), "--duration", (d + time.Minute).String(),
			"-q", "--cpu", strconv.Itoa(c.Int("cpu")), "--drain", "0", "--qdisc-bypass")
		if err := nsexec.Do(l.SenderNS, sender.Start); err != nil {
			return fmt.Errorf("start sender: %w", err)
		}
		defer func() {
			sender.Process.Signal(syscall.SIGINT)
			sender.Wait()
		}()
		fmt.Printf("soak: %s tracer against a full-rate %d B sender on %s for %v, sampled every %v\n", mode, c.Int("size"), l.SenderIf, d, every)
	}
	fmt.Printf("%10s %12s %14s\n", "time", "tracer RSS", "sender pps")
	start := time.Now()
	var samples []soakSample
	prev, _ := l.SenderStats()
	prevAt := start
	for time.Since(start) < d {
		select {
		case <-c.Context.Done():
			return c.Context.Err()
		case <-time.After(every):
		}
		st, err := l.SenderStats()
		if err != nil {
			return err
		}
		now := time.Now()
		s := soakSample{at: now.Sub(start), rss: vmRSS(tracer.Process.Pid), packets: st.TxPackets}
		pps := float64(st.TxPackets-prev.TxPackets) / now.Sub(prevAt).Seconds()
		prev, prevAt = st, now
		samples = append(samples, s)
		fmt.Printf("%10v %10.1fMi %14.0f\n", s.at.Round(time.Second), float64(s.rss)/(1<<20), pps)
	}
	var senders churnTotals
	if churn != nil {
		senders = churn.stop()
		time.Sleep(500 * time.Millisecond) // the last completions reach the tracer
	}
	tracer.Process.Signal(syscall.SIGINT)
	if err := tracer.Wait(); err != nil {
		return fmt.Errorf("tracer: %v: %s", err, stderr.String())
	}

	lost, events := soakCounts(summary, stdout.Bytes(), stderr.String())
	var fails []string
	if churn != nil {
		traced := avail.n
		if summary {
			sum := readSummary(stdout.Bytes())
			traced = sum.completed
			fmt.Printf("summary: %d sockets in %d rows (the first %d closed keep theirs; later ones fold into one)\n",
				sum.sockets, sum.rows, report.SummaryLimits.Closed)
			if sum.sockets != senders.sockets || sum.rows > report.SummaryLimits.Closed+3 {
				fails = append(fails, fmt.Sprintf("the summary has %d sockets in %d rows, the senders opened %d", sum.sockets, sum.rows, senders.sockets))
			}
		}
		fmt.Printf("churn: %d sockets (%d sender errors), %d frames the senders got back, %d traced AVAILABLE\n",
			senders.sockets, senders.errors, senders.frames, traced)
		if traced != senders.frames || senders.errors > 0 {
			fails = append(fails, fmt.Sprintf("%d frames AVAILABLE traced, %d sent and returned", traced, senders.frames))
		}
		if avail.nBad > 0 {
			fmt.Printf("%d AVAILABLE transitions ended no round of their frame; the first:\n%s\n", avail.nBad, strings.Join(avail.bad, "\n"))
			fails = append(fails, fmt.Sprintf("%d AVAILABLE without a SENDING round", avail.nBad))
		}
	}
	base, end := rssGrowth(samples)
	growth := float64(end)/float64(max(base.rss, 1)) - 1
	fmt.Printf("\nRSS %.1f MiB (warm, at %v), %.1f MiB at the end: %+.1f%% (allowed %+.0f%%); %s events, %d lost\n",
		float64(base.rss)/(1<<20), base.at.Round(time.Second), float64(end)/(1<<20), 100*growth, 100*c.Float64("max-growth"), events, lost)
	if growth > c.Float64("max-growth") {
		fails = append(fails, fmt.Sprintf("RSS grew %.1f%%", 100*growth))
	}
	if lost > 0 {
		fails = append(fails, fmt.Sprintf("%d events lost", lost))
	}
	if len(fails) > 0 {
		fmt.Println("soak: FAIL:", strings.Join(fails, ", "))
		return cli.Exit("", 1)
	}
	fmt.Println("soak: PASS")
	return nil
}

// rssGrowth picks the two RSS values a soak compares. The warm value is
// the highest sample from 1 to 3 minutes in: the heap grows to its working
// size in the first minutes (a streaming churn took 2.5 min to settle, its
// RSS wandering ±5 % meanwhile), so one sample at 1 min can sit low. The
// end value is the median of the last five samples, so one spike does not
// decide. A leak keeps growing after 3 minutes; a warm-up does not. Runs
// shorter than that compare the first sample at 1 min or later (else the
// first) with the last.
func rssGrowth(samples []soakSample) (warm soakSample, end uint64) {
	warm = samples[0]
	found := false
	for _, s := range samples {
		if s.at >= time.Minute && s.at <= 3*time.Minute && (!found || s.rss > warm.rss) {
			warm, found = s, true
		}
	}
	last := samples[max(len(samples)-5, 0):]
	if !found || samples[len(samples)-1].at < 5*time.Minute {
		for _, s := range samples {
			if s.at >= time.Minute || len(samples) < 3 {
				warm = s
				break
			}
		}
		return warm, samples[len(samples)-1].rss
	}
	rss := make([]uint64, len(last))
	for i, s := range last {
		rss[i] = s.rss
	}
	slices.Sort(rss)
	return warm, rss[len(rss)/2]
}

// soakCounts reads the tracer's lost and event counts from its summary.
func soakCounts(summary bool, stdout []byte, stderr string) (lost uint64, events string) {
	if summary {
		var s struct {
			Session struct {
				Events uint64 `json:"events"`
				Lost   uint64 `json:"lost"`
			} `json:"session"`
		}
		if json.Unmarshal(stdout, &s) == nil {
			return s.Session.Lost, strconv.FormatUint(s.Session.Events, 10)
		}
	}
	// Streaming to /dev/null: the loss watcher's stderr lines say it.
	for _, l := range strings.Split(stderr, "\n") {
		if strings.Contains(l, "LOST") {
			f := strings.Fields(l)
			for i, w := range f {
				if w == "LOST" && i+1 < len(f) {
					n, _ := strconv.ParseUint(f[i+1], 10, 64)
					lost = max(lost, n)
				}
			}
		}
	}
	return lost, "?"
}

// vmRSS is a process's resident set size now.
func vmRSS(pid int) uint64 { return procStatusBytes(pid, "VmRSS:") }

// churner runs short-lived senders one after the other, each a new socket
// (the slab hands the freed addresses out again), across TPACKET versions
// and ring sizes, and adds up the frames they got back.
type churner struct {
	quit chan struct{}
	done chan churnTotals
}

type churnTotals struct {
	sockets, errors int
	frames          uint64
}

func startChurn(rt string, l *lab.Lab) *churner {
	ch := &churner{quit: make(chan struct{}), done: make(chan churnTotals, 1)}
	go func() {
		var t churnTotals
		rings := []int{2, 8, 64, 256, 4096}
		for i := 0; ; i++ {
			select {
			case <-ch.quit:
				ch.done <- t
				return
			default:
			}
			frames := rings[i%len(rings)]
			cmd := exec.Command(rt, "send", "-i", l.SenderIf, "--tpacket-version", strconv.Itoa(1+i%3),
				"--frames", strconv.Itoa(frames), "--count", strconv.Itoa(3*frames/2+1), "--size", "100", "--json")
			var out bytes.Buffer
			cmd.Stdout = &out
			t.sockets++
			if err := nsexec.Do(l.SenderNS, cmd.Run); err != nil {
				t.errors++
				continue
			}
			var sum struct {
				Frames uint64 `json:"frames"`
			}
			if err := json.Unmarshal(out.Bytes(), &sum); err != nil {
				t.errors++
				continue
			}
			t.frames += sum.Frames
		}
	}()
	return ch
}

// stop ends the churn after the sender running now, and returns the totals.
func (ch *churner) stop() churnTotals {
	select {
	case <-ch.quit:
	default:
		close(ch.quit)
	}
	t := <-ch.done
	ch.done <- t
	return t
}

// availCounter counts the AVAILABLE transitions in trace --json output,
// and checks every frame's rounds: an AVAILABLE must end a round the
// frame's SENDING began, on a socket not yet gone. The first few that do
// not are kept with the frame's last lines, to show how it happened.
type availCounter struct {
	n    uint64
	part []byte

	frames map[roundKey]*roundLog
	gone   map[uint64]bool // sockets (by inode) whose sock_gone was seen
	bad    []string
	nBad   int
}

type roundKey struct {
	ino   uint64
	frame uint32
}

// roundLog is a frame's last state and lines.
type roundLog struct {
	state string
	lines [6]string
	next  int
}

var availMark = []byte(`"state":"AVAILABLE"`)

func (a *availCounter) Write(p []byte) (int, error) {
	buf := append(a.part, p...)
	for {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			break
		}
		if bytes.Contains(buf[:i], availMark) {
			a.n++
		}
		a.check(buf[:i])
		buf = buf[i+1:]
	}
	a.part = append(a.part[:0], buf...)
	return len(p), nil
}

// check follows one line's frame or socket.
func (a *availCounter) check(line []byte) {
	frameState, sockGone := bytes.Contains(line, []byte(`"event":"frame_state"`)), bytes.Contains(line, []byte(`"event":"sock_gone"`))
	if !frameState && !sockGone {
		return
	}
	var e struct {
		Ino   uint64 `json:"sock_ino"`
		Frame uint32 `json:"frame"`
		State string `json:"state"`
	}
	if json.Unmarshal(line, &e) != nil {
		return
	}
	if a.frames == nil {
		a.frames, a.gone = map[roundKey]*roundLog{}, map[uint64]bool{}
	}
	if sockGone {
		a.gone[e.Ino] = true
		for k := range a.frames {
			if k.ino == e.Ino {
				delete(a.frames, k)
			}
		}
		return
	}
	k := roundKey{e.Ino, e.Frame}
	l := a.frames[k]
	if l == nil {
		l = &roundLog{}
		a.frames[k] = l
	}
	l.lines[l.next%len(l.lines)] = string(line)
	l.next++
	if e.State == "AVAILABLE" && (l.state != "SENDING" || a.gone[e.Ino]) {
		a.nBad++
		if len(a.bad) < 5 {
			why := fmt.Sprintf("AVAILABLE after %q", l.state)
			if a.gone[e.Ino] {
				why = "AVAILABLE after the socket's sock_gone"
			}
			var hist []string
			for i := 0; i < len(l.lines); i++ {
				if h := l.lines[(l.next+i)%len(l.lines)]; h != "" {
					hist = append(hist, "    "+h)
				}
			}
			a.bad = append(a.bad, fmt.Sprintf("inode %d frame %d: %s; its last lines:\n%s", e.Ino, e.Frame, why, strings.Join(hist, "\n")))
		}
	}
	l.state = e.State
}

// churnSummary is what trace --summary --json says of a churn.
type churnSummary struct {
	completed     uint64 // frames completed
	sockets, rows int    // sockets traced, and the rows they take
}

// readSummary reads trace --summary --json's report.
func readSummary(stdout []byte) churnSummary {
	var s struct {
		Report struct {
			Totals struct {
				Completed uint64 `json:"completed"`
			} `json:"totals"`
			Sockets []struct {
				Folded int `json:"folded_sockets"`
			} `json:"sockets"`
		} `json:"report"`
	}
	json.Unmarshal(stdout, &s)
	out := churnSummary{completed: s.Report.Totals.Completed, rows: len(s.Report.Sockets)}
	for _, r := range s.Report.Sockets {
		out.sockets += max(r.Folded, 1)
	}
	return out
}
