package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/inputerr"
	"github.com/ringtrace/ringtrace/tracer/live"
	"github.com/ringtrace/ringtrace/tracer/report"
	"github.com/ringtrace/ringtrace/tracer/session"
	"github.com/ringtrace/ringtrace/tracer/watch"
)

func topCommand() *cli.Command {
	return &cli.Command{
		Name:  "top",
		Usage: "live view of every TX-ring socket, refreshed every second (in-kernel counts: the summary level's cost)",
		UsageText: "ringtrace top [--pid PID] [--comm NAME] [--ifname IF] [-d 1s] [--metrics-addr HOST:PORT]\n" +
			"   ringtrace top -b -n 5   (batch: plain snapshots, also when stdout is not a terminal)",
		Description: "Keys: f frames/s, g Gbit/s, l p99 latency, w time asleep, e errors, s stuck, p pid, c comm (sort by it;\n" +
			"again: reverse), q quits.",
		Flags: append(append(kernelFlags(),
			&cli.UintFlag{Name: "pid", Usage: "only sockets used by this process (tgid)"},
			&cli.StringFlag{Name: "comm", Usage: "only sockets used by tasks with this name"},
			&cli.StringFlag{Name: "ifname", Usage: "only sockets bound to this interface"},
			&cli.DurationFlag{Name: "delay", Aliases: []string{"d"}, Value: time.Second, Usage: "refresh interval"},
			&cli.BoolFlag{Name: "batch", Aliases: []string{"b"}, Usage: "print plain snapshots instead of the full-screen view (the default when stdout is not a terminal)"},
			&cli.IntFlag{Name: "iterations", Aliases: []string{"n"}, Usage: "stop after this many refreshes (0: until q or Ctrl-C)"},
			&cli.StringFlag{Name: "ready-file", Usage: "create this file once every probe is attached"},
			&cli.StringFlag{Name: "cpus", Usage: "run ringtrace's own threads only on these CPUs, e.g. 1 or 2-3"},
			&cli.UintFlag{Name: "max-frames", Value: 65536, Usage: "ring frames tracked at once, over all sockets"},
			&cli.DurationFlag{Name: "sweep-interval", Value: 20 * time.Millisecond, Usage: "how often frames no hook saw complete are re-read"},
			stuckAfterFlag(),
			detailFlag(),
		), watchFlags()...),
		Action: runTop,
	}
}

func runTop(c *cli.Context) error {
	if c.Args().Present() {
		return inputerr.New("top takes no arguments (got %q)", c.Args().First())
	}
	if c.Duration("delay") < 10*time.Millisecond {
		return inputerr.New("--delay must be at least 10ms")
	}
	if c.Int("iterations") < 0 {
		return inputerr.New("--iterations must not be negative")
	}
	if err := checkWatchFlags(c, true); err != nil {
		return err
	}
	batch := c.Bool("batch") || !term.IsTerminal(int(os.Stdout.Fd()))
	verification, err := verifyAtStart(c, os.Stderr)
	if err != nil {
		return err
	}
	mx, err := listenMetrics(c)
	if err != nil {
		return err
	}
	defer mx.Close()
	t, err := openTrace(c)
	if err != nil {
		return err
	}
	limitHeap(c)
	defer t.Close()
	nm := live.Names(t.Facts(), false)
	after, _ := stuckAfter(c)
	// Warnings (broken promises) go to the screen's header, and in batch
	// mode to stderr as well, as they happen.
	warn := &lastLine{}
	logTo := io.Writer(warn)
	if batch {
		logTo = io.MultiWriter(os.Stderr, warn)
	}
	sinks := live.Sinks{Names: nm, StuckAfter: after, Report: report.NewBuilder(nm), Log: logTo}
	sinks.Report.SetLimits(report.SummaryLimits)
	mx.start(c, t, &sinks, after, verification)
	ctx, cancel := context.WithCancel(c.Context)
	defer cancel()
	if err := t.Start(ctx, sinks); err != nil {
		return err
	}
	v := &topView{x: mx, warn: warn, delay: c.Duration("delay"), n: c.Int("iterations"), sortBy: 'f',
		title: fmt.Sprintf("ringtrace top: %s, hook class %s, TX completion %s", t.Facts().Release, t.Plan().Class, t.Plan().Completion)}
	if batch {
		err = v.batch(ctx, t.Done(), os.Stdout)
	} else {
		err = v.interactive(ctx, t.Done())
	}
	_, stopErr := t.Stop()
	return cmp.Or(err, stopErr)
}

// topView is what top shows: the latest two snapshots, and the sort.
type topView struct {
	x        *watching
	warn     *lastLine
	title    string
	delay    time.Duration
	n        int // refreshes to show (0: no limit)
	prev     *watch.Snapshot
	cur      *watch.Snapshot
	err      error
	sortBy   rune
	reversed bool
}

// refresh takes a new snapshot.
func (v *topView) refresh() {
	s, err := v.x.snapshot()
	v.prev, v.cur, v.err = v.cur, &s, err
}

// batch prints a snapshot every delay, n of them (or until ctx ends or
// the trace does).
func (v *topView) batch(ctx context.Context, done <-chan struct{}, w io.Writer) error {
	out := bufio.NewWriter(w)
	tick := time.NewTicker(v.delay)
	defer tick.Stop()
	for i := 0; v.n == 0 || i < v.n; i++ {
		select {
		case <-ctx.Done():
			return nil
		case <-done:
			return nil
		case <-tick.C:
		}
		v.refresh()
		fmt.Fprintf(out, "%s\n%s\n", v.render(0), strings.Repeat("-", 40))
		if err := out.Flush(); err != nil {
			return err
		}
	}
	return nil
}

type tickMsg struct{}

// interactive runs the full-screen view until q, Ctrl-C, n refreshes or
// the trace ends.
func (v *topView) interactive(ctx context.Context, done <-chan struct{}) error {
	m := &topModel{v: v}
	p := tea.NewProgram(m, tea.WithAltScreen(), tea.WithContext(ctx))
	go func() {
		<-done
		p.Quit()
	}()
	_, err := p.Run()
	if errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil {
		return nil // Ctrl-C through the signal handler
	}
	return err
}

// topModel is the bubbletea model of the full-screen view.
type topModel struct {
	v      *topView
	width  int
	shown  int
	status string
}

func (m *topModel) tick() tea.Cmd {
	return tea.Tick(m.v.delay, func(time.Time) tea.Msg { return tickMsg{} })
}

func (m *topModel) Init() tea.Cmd {
	m.v.refresh()
	return m.tick()
}

func (m *topModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.KeyMsg:
		switch k := msg.String(); k {
		case "q", "ctrl+c", "esc":
			return m, tea.Quit
		default:
			if r := []rune(k); len(r) == 1 && sortKeys[r[0]] != "" {
				if m.v.sortBy == r[0] {
					m.v.reversed = !m.v.reversed
				} else {
					m.v.sortBy, m.v.reversed = r[0], false
				}
			}
		}
	case tea.WindowSizeMsg:
		m.width = msg.Width
	case tickMsg:
		m.v.refresh()
		m.shown++
		if m.v.n > 0 && m.shown >= m.v.n {
			return m, tea.Quit
		}
		return m, m.tick()
	}
	return m, nil
}

func (m *topModel) View() string {
	return m.v.render(m.width) + "\n" + keysLine()
}

// sortKeys name the columns a key sorts by.
var sortKeys = map[rune]string{'f': "frames/s", 'g': "Gbit/s", 'l': "p99", 'w': "asleep", 'e': "errors", 's': "stuck",
	'p': "pid", 'c': "comm"}

func keysLine() string {
	return "sort: f frames/s  g Gbit/s  l p99  w asleep  e errors  s stuck  p pid  c comm (again: reverse)   q quit"
}

// topRow is one socket's line.
type topRow struct {
	s          *watch.Socket
	r          watch.Rates
	sndbuf     time.Duration // asleep on sndbuf, this interval
	completion time.Duration // asleep on TX completion, this interval
	errs       uint64
}

// asleep is the row's time asleep on sndbuf and completion.
func (r *topRow) asleep() time.Duration { return r.sndbuf + r.completion }

// rows pairs each socket of the current snapshot with its rates since the
// previous one, sorted.
func (v *topView) rows() []topRow {
	if v.cur == nil {
		return nil
	}
	prev := map[session.SockKey]*watch.Socket{}
	dt := v.delay
	if v.prev != nil {
		for i := range v.prev.Sockets {
			prev[v.prev.Sockets[i].Key] = &v.prev.Sockets[i]
		}
		dt = v.cur.At.Sub(v.prev.At)
	}
	var rows []topRow
	for i := range v.cur.Sockets {
		s := &v.cur.Sockets[i]
		p := prev[s.Key]
		row := topRow{s: s, r: watch.RatesOf(p, s, dt), errs: s.DroppedSync + s.DroppedLate + s.Errnos["ENOBUFS"] + s.Errnos["EAGAIN"]}
		row.sndbuf, row.completion = s.Slept[event.WaitSndbuf], s.Slept[event.WaitCompletion]
		if p != nil {
			row.sndbuf -= p.Slept[event.WaitSndbuf]
			row.completion -= p.Slept[event.WaitCompletion]
		}
		rows = append(rows, row)
	}
	slices.SortStableFunc(rows, func(a, b topRow) int {
		var d int
		switch v.sortBy {
		case 'g':
			d = cmp.Compare(b.r.BitsPerSec, a.r.BitsPerSec)
		case 'l':
			d = cmp.Compare(b.r.P99, a.r.P99)
		case 'w':
			d = cmp.Compare(b.asleep(), a.asleep())
		case 'e':
			d = cmp.Compare(b.errs, a.errs)
		case 's':
			d = cmp.Compare(b.s.Stuck, a.s.Stuck)
		case 'p':
			d = cmp.Compare(a.s.PID, b.s.PID)
		case 'c':
			d = cmp.Compare(a.s.Comm, b.s.Comm)
		default:
			d = cmp.Compare(b.r.FramesPerSec, a.r.FramesPerSec)
		}
		if v.reversed {
			d = -d
		}
		return d
	})
	return rows
}

// render is one screen (or batch snapshot): a header, then a row per
// socket. width 0: no cut.
func (v *topView) render(width int) string {
	var b strings.Builder
	at := ""
	if v.cur != nil {
		at = v.cur.At.Format("15:04:05")
	}
	fmt.Fprintf(&b, "%s  %s  every %v, sorted by %s", v.title, at, v.delay, sortKeys[v.sortBy])
	if v.reversed {
		b.WriteString(" (reversed)")
	}
	b.WriteString("\n")
	if v.cur != nil {
		fmt.Fprintf(&b, "%d sockets, %d events lost", len(v.cur.Sockets), v.cur.Lost)
	}
	if v.err != nil {
		fmt.Fprintf(&b, "  (update failed: %v)", v.err)
	}
	if w := v.warn.String(); w != "" {
		fmt.Fprintf(&b, "\n%s", w)
	}
	b.WriteString("\n\n")
	lines := []string{fmt.Sprintf("%-25s %-22s %-10s %2s %6s %-17s %9s %7s %9s %9s %9s %-15s %-19s %s",
		"SOCK", "COMM/PID", "IF", "V", "RING", "REQ/SENDING/AVAIL", "FRAMES/s", "Gbit/s", "P50", "P99", "MAX",
		"ASLEEP snd/cmpl", "ENOBUFS/EAGAIN/DROP", "STUCK")}
	for _, r := range v.rows() {
		s := r.s
		state := fmt.Sprintf("%d/%d/%d", s.SendRequest, s.Sending, s.Available())
		ver := "-"
		if s.TPVersion > 0 {
			ver = fmt.Sprintf("v%d", s.TPVersion)
		}
		label := s.Label
		if !s.Gone.IsZero() {
			label += " closed"
		}
		stuck := fmt.Sprint(s.Stuck)
		if s.Stuck > 0 {
			stuck += fmt.Sprintf(" (oldest %s)", s.Oldest.Round(time.Millisecond))
			if s.Holder != "" {
				stuck += " " + s.Holder
			}
		}
		lines = append(lines, fmt.Sprintf("%-25s %-22s %-10s %2s %6d %-17s %9.0f %7.3f %9s %9s %9s %-15s %-19s %s",
			label, fmt.Sprintf("%s/%d", s.Comm, s.PID), dash(s.Ifname), ver, s.RingFrames, state, r.r.FramesPerSec,
			r.r.BitsPerSec/1e9, lat(r.r.P50), lat(r.r.P99), lat(r.r.Max),
			fmt.Sprintf("%.2f/%.2fs", r.sndbuf.Seconds(), r.completion.Seconds()),
			fmt.Sprintf("%d/%d/%d", s.Errnos["ENOBUFS"], s.Errnos["EAGAIN"], s.DroppedSync+s.DroppedLate), stuck))
	}
	if v.cur != nil && len(v.cur.Sockets) == 0 {
		lines = append(lines, "(no TX-ring socket has sent yet)")
	}
	for _, l := range lines {
		if width > 0 && len(l) > width {
			l = l[:width]
		}
		b.WriteString(l)
		b.WriteString("\n")
	}
	return b.String()
}

// lat shows a latency bucket's upper bound ("-": none completed).
func lat(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d < time.Microsecond:
		return fmt.Sprintf("<%dns", d.Nanoseconds())
	case d < time.Millisecond:
		return fmt.Sprintf("<%.3gµs", float64(d)/1e3)
	case d < time.Second:
		return fmt.Sprintf("<%.3gms", float64(d)/1e6)
	}
	return fmt.Sprintf("<%.3gs", d.Seconds())
}

func dash(s string) string { return cmp.Or(s, "-") }

// lastLine keeps the last complete line written to it (the trace's latest
// warning), for the screen.
type lastLine struct {
	mu   sync.Mutex
	part []byte
	last string
}

func (l *lastLine) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.part = append(l.part, p...)
	for {
		i := bytes.IndexByte(l.part, '\n')
		if i < 0 {
			return len(p), nil
		}
		if line := strings.TrimSpace(string(l.part[:i])); line != "" {
			l.last = line
		}
		l.part = l.part[i+1:]
	}
}

// String is the last line ("" for none, or a nil lastLine).
func (l *lastLine) String() string {
	if l == nil {
		return ""
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}
