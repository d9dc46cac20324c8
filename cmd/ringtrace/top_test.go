package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/ringtrace/ringtrace/tracer/live"
	"github.com/ringtrace/ringtrace/tracer/watch"
)

// namedSender is the test binary under a name of its own, so a trace
// following --comm sees only this test's senders.
func namedSender(t *testing.T, bin string) (path, comm string) {
	t.Helper()
	comm = fmt.Sprintf("rtt%d", os.Getpid()%100000)
	path = filepath.Join(t.TempDir(), comm)
	if err := os.Symlink(bin, path); err != nil {
		t.Fatal(err)
	}
	return path, comm
}

// topRowFields finds the row of the socket used by pid in top's output
// and returns its columns: label, comm/pid, if, version, ring,
// req/sending/avail, frames/s, Gbit/s, ...
func topRowFields(text string, comm string, pid int) []string {
	var last []string
	for _, l := range strings.Split(text, "\n") {
		f := strings.Fields(l)
		for i, x := range f {
			if x == fmt.Sprintf("%s/%d", comm, pid) && i > 0 {
				last = f[i-1:]
				if f[i-1] == "closed" && i > 1 { // "socket:[N] closed"
					last = append([]string{f[i-2]}, f[i:]...)
				}
			}
		}
	}
	return last
}

// startTop starts `ringtrace top` in batch mode following comm, with args,
// and returns once it is attached; out collects its snapshots.
func startTop(t *testing.T, bin, comm string, args ...string) (top *exec.Cmd, out, errb *syncBuffer) {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready")
	top = exec.Command(bin, append([]string{"top", "-b", "--comm", comm, "--ready-file", ready}, args...)...)
	out, errb = &syncBuffer{}, &syncBuffer{}
	top.Stdout, top.Stderr = out, errb
	if err := top.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { top.Process.Kill() })
	waitReady(t, ready, errb)
	return top, out, errb
}

// watchStuck runs top with a 500 ms stuck threshold while send runs, until
// a snapshot's row of the sender has a stuck count and passes ok, the
// sender exits, or a deadline passes (neither side's start-up time is
// bounded in a TCG guest); then it stops top and returns its output. The
// caller ends and waits for send.
func watchStuck(t *testing.T, bin, comm string, send *exec.Cmd, ok func(stuck string) bool) string {
	t.Helper()
	top, out, errb := startTop(t, bin, comm, "-n", "0", "-d", "500ms", "--stuck-after", "500ms")
	if err := send.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { send.Process.Kill() })
	pid := send.Process.Pid
	deadline := time.Now().Add(readyTimeout(t) + 20*time.Second)
watch:
	for time.Now().Before(deadline) && !exited(pid) {
		time.Sleep(100 * time.Millisecond)
		for _, f := range snapshotRows(out.String(), comm, pid) {
			if len(f) >= 14 && f[13] != "0" && ok(strings.Join(f[13:], " ")) {
				break watch
			}
		}
	}
	top.Process.Signal(os.Interrupt)
	if err := top.Wait(); err != nil {
		t.Fatalf("top: %v: %s", err, errb.String())
	}
	return out.String()
}

// exited reports whether child pid has exited (it is a zombie until
// waited for, which is the caller's to do).
func exited(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] == 'Z'
}

// waitSocket waits readyTimeout for process pid to hold a socket.
func waitSocket(t *testing.T, pid int) {
	t.Helper()
	wait := readyTimeout(t)
	for start := time.Now(); time.Since(start) < wait; time.Sleep(20 * time.Millisecond) {
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, fd := range fds {
			if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && strings.HasPrefix(l, "socket:[") {
				return
			}
		}
	}
	t.Fatalf("process %d opened no socket in %v", pid, wait)
}

// snapshotRows is the row of comm/pid in each of top's batch snapshots
// that has one.
func snapshotRows(out, comm string, pid int) [][]string {
	var rows [][]string
	for _, snap := range strings.Split(out, "ringtrace top:") {
		if f := topRowFields(snap, comm, pid); f != nil {
			rows = append(rows, f)
		}
	}
	return rows
}

func TestTopBatch(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	bin := buildBinary(t)
	sender, comm := namedSender(t, bin)
	// The sender runs before top attaches and until top is done, so every
	// snapshot covers a whole interval of sending however slowly either
	// starts (seconds each in a TCG guest).
	send := exec.Command(sender, "send", "-i", "lo", "-q", "-V", "3", "--frames", "128", "--duration", "5m")
	if err := send.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { send.Process.Kill() })
	pid := send.Process.Pid
	waitSocket(t, pid)
	top, out, errb := startTop(t, bin, comm, "-n", "4", "-d", "500ms")
	if err := top.Wait(); err != nil {
		t.Fatalf("top: %v: %s", err, errb.String())
	}
	send.Process.Signal(os.Interrupt)
	if err := send.Wait(); err != nil {
		t.Fatalf("send: %v", err)
	}
	if n := strings.Count(out.String(), "ringtrace top:"); n != 4 {
		t.Errorf("%d snapshots, want 4:\n%s", n, out.String())
	}
	// The busiest snapshot: the sender's row, with plausible numbers.
	// Gbit/s counts the bytes calls returned: a snapshot whose interval
	// one long call spans (seconds in a loaded TCG guest) has frames but
	// no bytes, so the bit rate is looked for in every snapshot.
	best, bestGbps := 0.0, 0.0
	var row []string
	for _, f := range snapshotRows(out.String(), comm, pid) {
		if len(f) < 8 {
			continue
		}
		if fps, err := strconv.ParseFloat(f[6], 64); err == nil && fps > best {
			best, row = fps, f
		}
		gbps, err := strconv.ParseFloat(f[7], 64)
		if err != nil || gbps < 0 || gbps > 1000 {
			t.Errorf("Gbit/s %q: %v", f[7], f)
		}
		bestGbps = max(bestGbps, gbps)
	}
	if row == nil {
		t.Fatalf("no row for %s/%d that sent anything:\n%s", comm, pid, out.String())
	}
	if row[2] != "lo" || row[3] != "v3" || row[4] != "128" {
		t.Errorf("identity columns %v, want lo v3 128", row[:5])
	}
	if best < 1000 {
		t.Errorf("%v frames/s on lo, want thousands: %v", best, row)
	}
	if bestGbps <= 0 {
		t.Errorf("no snapshot shows the bytes sent (Gbit/s 0 in all):\n%s", out.String())
	}
}

// ansi matches terminal escape sequences.
var ansi = regexp.MustCompile(`\x1b(\[[0-9;?]*[ -/]*[@-~]|\][^\x07]*\x07|[()][0-9A-Za-z]|[=>])`)

// TestTopTerminal runs the full-screen view in a pseudo-terminal: the
// sender's row appears with a frame rate, a sort key is taken, and q
// quits with the terminal given back.
func TestTopTerminal(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	bin := buildBinary(t)
	sender, comm := namedSender(t, bin)
	ready := filepath.Join(t.TempDir(), "ready")
	top := exec.Command(bin, "top", "-d", "300ms", "--comm", comm, "--ready-file", ready)
	top.Env = append(os.Environ(), "TERM=xterm-256color")
	var errb bytes.Buffer
	tty, err := pty.StartWithSize(top, &pty.Winsize{Rows: 40, Cols: 220})
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	t.Cleanup(func() { top.Process.Kill() })
	var mu sync.Mutex
	var screen strings.Builder
	drained := make(chan struct{}) // the pty read to its end (top exited)
	go func() {
		defer close(drained)
		r := bufio.NewReader(tty)
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			mu.Lock()
			screen.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	text := func() string {
		mu.Lock()
		defer mu.Unlock()
		return ansi.ReplaceAllString(screen.String(), "\n")
	}
	waitReady(t, ready, &errb)
	// The sender runs until the test is done: however long it takes to
	// start (seconds in a TCG guest), the screen shows it sending.
	send := exec.Command(sender, "send", "-i", "lo", "-q", "--frames", "64", "--duration", "5m")
	if err := send.Start(); err != nil {
		t.Fatal(err)
	}
	defer send.Wait()
	defer send.Process.Kill()
	pid := send.Process.Pid
	deadline := time.Now().Add(readyTimeout(t) + 10*time.Second)
	var row []string
	for time.Now().Before(deadline) {
		if f := topRowFields(text(), comm, pid); len(f) >= 8 {
			if fps, err := strconv.ParseFloat(f[6], 64); err == nil && fps > 0 {
				row = f
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if row == nil {
		t.Fatalf("no row for %s/%d with a frame rate on the screen:\n%s", comm, pid, text())
	}
	if row[2] != "lo" || row[4] != "64" {
		t.Errorf("row %v: want lo and a 64-frame ring", row)
	}
	tty.Write([]byte("g")) // sort by Gbit/s
	for time.Now().Before(deadline) && !strings.Contains(text(), "sorted by Gbit/s") {
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(text(), "sorted by Gbit/s") {
		t.Errorf("the g key did not sort by Gbit/s")
	}
	// Quitting detaches every program: seconds in a busy TCG guest, so
	// the waits below are the ready timeout (90 s there), not a constant.
	quit := time.Now()
	tty.Write([]byte("q"))
	done := make(chan error, 1)
	go func() { done <- top.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("top after q: %v", err)
		}
		t.Logf("top quit %v after q", time.Since(quit).Round(time.Millisecond))
	case <-time.After(readyTimeout(t)):
		t.Fatalf("top did not quit in %v after q", readyTimeout(t))
	}
	// What top wrote last (leaving the alternate screen) may still be in
	// the pty when it exits: a slow guest's reader gets to it later.
	ended := true
	select {
	case <-drained:
	case <-time.After(readyTimeout(t)):
		ended = false
	}
	mu.Lock()
	raw := screen.String()
	mu.Unlock()
	if !strings.Contains(raw, "\x1b[?1049h") || !strings.Contains(raw, "\x1b[?1049l") {
		t.Errorf("the alternate screen was not entered and left (pty read to its end: %v; last bytes %q)",
			ended, raw[max(0, len(raw)-120):])
	}
}

// metricsAddr waits for the "Prometheus metrics at" line on stderr.
func metricsAddr(t *testing.T, errb *syncBuffer) string {
	t.Helper()
	re := regexp.MustCompile(`metrics at http://(\S+)/metrics`)
	for start := time.Now(); time.Since(start) < readyTimeout(t); time.Sleep(20 * time.Millisecond) {
		if m := re.FindStringSubmatch(errb.String()); m != nil {
			return m[1]
		}
	}
	t.Fatalf("no metrics address on stderr: %s", errb.String())
	return ""
}

// syncBuffer is a bytes.Buffer written by a process and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func scrapeMetrics(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("scrape: %s: %s", resp.Status, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("the exposition does not parse: %v\n%s", err, body)
	}
	return fams
}

// seriesLabels lists a family's series by their labels and values.
func seriesLabels(f *dto.MetricFamily) string {
	if f == nil {
		return "no series"
	}
	var out []string
	for _, m := range f.Metric {
		var l []string
		for _, p := range m.Label {
			l = append(l, p.GetName()+"="+p.GetValue())
		}
		out = append(out, fmt.Sprintf("{%s} %v", strings.Join(l, ","), m.GetCounter().GetValue()))
	}
	return strings.Join(out, " ")
}

// value is the sample of family name whose labels include want.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		for k, v := range want {
			found := false
			for _, l := range m.Label {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		if h := m.GetHistogram(); h != nil {
			return float64(h.GetSampleCount()), true
		}
		return m.GetCounter().GetValue() + m.GetGauge().GetValue(), true
	}
	return 0, false
}

// metricsGrace is the metrics tests' --metrics-grace.
const metricsGrace = 3 * time.Second

// metricsTrace starts `trace --summary --metrics-addr` of the senders
// named comm and returns it once ready, with its stdout and stderr and
// its address.
func metricsTrace(t *testing.T, bin, comm string) (*exec.Cmd, *syncBuffer, *syncBuffer, string) {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready")
	tr := exec.Command(bin, "trace", "--summary", "--comm", comm, "--ready-file", ready,
		"--metrics-addr", "127.0.0.1:0", "--metrics-grace", metricsGrace.String())
	outb, errb := &syncBuffer{}, &syncBuffer{}
	tr.Stdout, tr.Stderr = outb, errb
	if err := tr.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Process.Kill() })
	waitReady(t, ready, errb)
	return tr, outb, errb, metricsAddr(t, errb)
}

// summaryEventsLine is a --summary's "--- N events (kind=n ...)" line.
var summaryEventsLine = regexp.MustCompile(`--- (\d+) events \(([^)]*)\)`)

// senderSeries are the counters a sender's series must end at: its own
// counts (`send --json`).
func senderSeries(t *testing.T, out []byte) map[string]uint64 {
	t.Helper()
	var own struct {
		Frames, Bytes, Calls uint64
	}
	if err := json.Unmarshal(out, &own); err != nil {
		t.Fatalf("send --json: %v: %s", err, out)
	}
	return map[string]uint64{
		"ringtrace_frames_sent_total":          own.Frames,
		"ringtrace_frames_completed_total":     own.Frames,
		"ringtrace_completion_latency_seconds": own.Frames,
		"ringtrace_send_calls_total":           own.Calls,
		"ringtrace_sent_bytes_total":           own.Bytes,
	}
}

// seriesDiffer lists the series of counts that are absent from fams or
// differ, as the labels want select them.
func seriesDiffer(fams map[string]*dto.MetricFamily, counts map[string]uint64, want map[string]string) []string {
	var bad []string
	for name, n := range counts {
		if v, ok := value(fams, name, want); !ok || uint64(v) != n {
			bad = append(bad, fmt.Sprintf("%s%v = %v (present %v), want the sender's %d", name, want, v, ok, n))
		}
	}
	return bad
}

// stopTrace ends a trace with SIGINT, as a user would.
func stopTrace(t *testing.T, tr *exec.Cmd, errb *syncBuffer) {
	t.Helper()
	tr.Process.Signal(syscall.SIGINT)
	if err := tr.Wait(); err != nil {
		t.Errorf("trace: %v: %s", err, errb.String())
	}
}

// TestMetricsScrape scrapes `trace --summary --metrics-addr` while and
// after a sender runs for 2 s: its series move while it sends, then the
// counters equal the sender's own counts, and the closed socket's series
// leave after the grace period.
func TestMetricsScrape(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	bin := buildBinary(t)
	sender, comm := namedSender(t, bin)
	tr, _, errb, addr := metricsTrace(t, bin, comm)
	send := exec.Command(sender, "send", "-i", "lo", "-q", "--json", "--duration", "2s", "--batch", "100")
	var sout bytes.Buffer
	send.Stdout = &sout
	if err := send.Start(); err != nil {
		t.Fatal(err)
	}
	pid := send.Process.Pid
	want := map[string]string{"comm": comm, "pid": strconv.Itoa(pid), "ifname": "lo"}
	// While it sends: its series are there and moving (the sender may
	// take seconds to start in a TCG guest).
	var sent, completed float64
	var ok bool
	for start := time.Now(); time.Since(start) < readyTimeout(t)+2*time.Second; time.Sleep(200 * time.Millisecond) {
		during := scrapeMetrics(t, addr)
		sent, ok = value(during, "ringtrace_frames_sent_total", want)
		completed, _ = value(during, "ringtrace_frames_completed_total", want)
		if ok && sent > 0 {
			break
		}
	}
	if !ok || sent == 0 || completed > sent {
		t.Errorf("while sending: sent %v (present %v), completed %v", sent, ok, completed)
	}
	if err := send.Wait(); err != nil {
		t.Fatalf("send: %v", err)
	}
	counts := senderSeries(t, sout.Bytes())
	// The frame counts are the kernel's, read at the scrape; the call
	// counts come from events, which the trace releases in order after a
	// short reorder window: scrape until both are in. A failure says what
	// the series last held while they were there, and which series are
	// there at the end.
	var bad, held []string
	var end map[string]*dto.MetricFamily
	exited := time.Now()
	for start := time.Now(); time.Since(start) < readyTimeout(t); time.Sleep(100 * time.Millisecond) {
		end = scrapeMetrics(t, addr)
		if bad = seriesDiffer(end, counts, want); len(bad) == 0 {
			break
		}
		if _, ok := value(end, "ringtrace_frames_sent_total", want); ok {
			held = bad
		}
	}
	t.Logf("the sender's final counts read %v after it exited", time.Since(exited).Round(time.Millisecond))
	if len(bad) > 0 {
		t.Errorf("the sender's series did not reach its counts: %s; while present: %s; at the end: %s; trace stderr: %q",
			strings.Join(bad, "; "), strings.Join(held, "; "), seriesLabels(end["ringtrace_frames_sent_total"]), errb.String())
	}
	fams := scrapeMetrics(t, addr)
	if v, ok := value(fams, "ringtrace_plan_info", map[string]string{"verification": "not-run"}); !ok || v != 1 {
		t.Errorf("no ringtrace_plan_info")
	}
	// The sender has closed its socket: a grace period later its series
	// are gone (twice that if its SockGone event were lost).
	gone := false
	for start := time.Now(); time.Since(start) < 2*metricsGrace+5*time.Second; time.Sleep(250 * time.Millisecond) {
		if _, ok := value(scrapeMetrics(t, addr), "ringtrace_frames_sent_total", want); !ok {
			gone = true
			break
		}
	}
	if !gone {
		t.Errorf("the closed socket's series were still exported %v after it closed (grace %v)", 2*metricsGrace+5*time.Second, metricsGrace)
	}
	stopTrace(t, tr, errb)
}

// TestMetricsLateScrape: a sender's whole life passes with no scrape, and
// the next scrape comes after the grace period. That scrape still gets the
// closed socket's final counts, once: a Prometheus scrape interval longer
// than the grace, or a stalled machine, must not lose a short-lived
// sender. (With a 3 s grace, a loaded 7.2 guest twice found the sender's
// series gone at TestMetricsScrape's first scrape after it exited.)
func TestMetricsLateScrape(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	bin := buildBinary(t)
	sender, comm := namedSender(t, bin)
	tr, outb, errb, addr := metricsTrace(t, bin, comm)
	send := exec.Command(sender, "send", "-i", "lo", "-q", "--json", "--duration", "1s", "--batch", "100")
	out, err := send.Output()
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	counts := senderSeries(t, out)
	want := map[string]string{"comm": comm, "pid": strconv.Itoa(send.Process.Pid), "ifname": "lo"}
	time.Sleep(metricsGrace + time.Second)
	fams := scrapeMetrics(t, addr)
	if bad := seriesDiffer(fams, counts, want); len(bad) > 0 {
		t.Errorf("the first scrape, past the grace period: %s; there: %s", strings.Join(bad, "; "),
			seriesLabels(fams["ringtrace_frames_sent_total"]))
	}
	if _, ok := value(scrapeMetrics(t, addr), "ringtrace_frames_sent_total", want); ok {
		t.Errorf("the next scrape still has the closed socket's series, shown once already past the grace period")
	}
	stopTrace(t, tr, errb)
	// An aggregating --summary streams events per call, not per frame
	// (100 frames a call here): a per-frame kind fills the ring buffer of
	// a starved reader and loses the calls the counters are made of.
	m := summaryEventsLine.FindStringSubmatch(outb.String())
	if m == nil {
		t.Fatalf("no events line in the summary:\n%s", outb.String())
	}
	if n, _ := strconv.ParseUint(m[1], 10, 64); n > counts["ringtrace_frames_sent_total"]/10 {
		t.Errorf("%d events for %d frames in %d calls (%s): want a few per call, none per frame", n,
			counts["ringtrace_frames_sent_total"], counts["ringtrace_send_calls_total"], m[2])
	}
}

func TestTopBadInput(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	bin := buildBinary(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"top", "--delay", "1ms"}, "--delay"},
		{[]string{"top", "-n", "-1"}, "--iterations"},
		{[]string{"top", "extra"}, "no arguments"},
		{[]string{"top", "--metrics-addr", "256.1.1.1:x"}, "--metrics-addr"},
		{[]string{"top", "--metrics-grace", "0s"}, "--metrics-grace"},
		{[]string{"trace", "--metrics-addr", "127.0.0.1:0"}, "--summary"},
		{[]string{"top", "--detail", "calls", "--verify"}, "--verify"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			r := runBin(t, bin, nil, c.args...)
			checkOneLineError(t, r, c.want)
		})
	}
}

// TestSystemdUnit runs the service's command line (contrib/systemd), on a
// free port: it verifies the plan at start, serves metrics, says so in
// ringtrace_plan_info, and stops cleanly on SIGTERM.
func TestSystemdUnit(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	unit, err := os.ReadFile("../../contrib/systemd/ringtrace.service")
	if errors.Is(err, fs.ErrNotExist) && os.Getenv("RINGTRACE_BIN") != "" {
		t.Skip("the unit file is not next to this prebuilt test binary (a guest of make vmtest): tested on the host")
	}
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	for _, l := range strings.Split(string(unit), "\n") {
		if rest, ok := strings.CutPrefix(l, "ExecStart="); ok {
			args = strings.Fields(rest)[1:]
		}
	}
	if len(args) == 0 {
		t.Fatal("no ExecStart in the unit")
	}
	for i, a := range args {
		if a == "--metrics-addr" && i+1 < len(args) {
			args[i+1] = "127.0.0.1:0"
		}
	}
	bin := buildBinary(t)
	cmd := exec.Command(bin, args...)
	errb := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = io.Discard, errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	addr := metricsAddr(t, errb) // after the verification and the attach
	fams := scrapeMetrics(t, addr)
	if v, ok := value(fams, "ringtrace_plan_info", map[string]string{"verification": "verified"}); !ok || v != 1 {
		t.Errorf("ringtrace_plan_info does not say verified: %v", fams["ringtrace_plan_info"])
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("%v on SIGTERM: %v: %s", args, err, errb.String())
	}
}

// TestTopStuck: frames a slow qdisc holds stay SENDING; top counts them
// stuck once they pass --stuck-after, with the oldest's age.
func TestTopStuck(t *testing.T) {
	l := slowLab(t)
	bin := buildBinary(t)
	sender, comm := namedSender(t, bin)
	send := exec.Command(sender, "send", "--netns", l.SenderNSName(), "-i", l.SenderIf, "-q", "--frames", "32", "--count", "32",
		"--size", "1000", "--dontwait", "--drain", "60s") // killed once top has shown a stuck frame
	out := watchStuck(t, bin, comm, send, func(string) bool { return true })
	pid := send.Process.Pid
	send.Process.Kill()
	send.Wait()
	most := 0
	var row []string
	for _, f := range snapshotRows(out, comm, pid) {
		if len(f) >= 14 {
			if n, err := strconv.Atoi(f[13]); err == nil && n > most {
				most, row = n, f
			}
		}
	}
	if most == 0 {
		t.Fatalf("no snapshot shows a stuck frame of %s/%d:\n%s", comm, pid, out)
	}
	if s := strings.Join(row[13:], " "); !strings.Contains(s, "oldest") {
		t.Errorf("stuck column %q names no oldest age", s)
	}
	if in := strings.Split(row[5], "/"); len(in) != 3 || in[1] == "0" {
		t.Errorf("REQ/SENDING/AVAIL %q: frames stuck but none SENDING", row[5])
	}
}

// TestTopStuckHolder: a sender bound to every protocol on lo receives its
// own frames. Where the kernel keeps them in the sender's own receive queue
// with the ring pages attached (7.2's uarg form: the self-loop scenario),
// they stay SENDING and top names that queue as their holder; where it
// completes them at once (6.12 and older, this host's build) the sender
// ends with none in flight and there is nothing to name.
func TestTopStuckHolder(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	bin := buildBinary(t)
	sender, comm := namedSender(t, bin)
	// The sender drains until top has named the holder; then a SIGINT
	// ends its drain and it reports what was still in flight.
	send := exec.Command(sender, "send", "-i", "lo", "-q", "--json", "--bind-protocol", "all", "--frames", "8", "--count", "8",
		"--size", "100", "--dontwait", "--drain", "5m")
	var sout bytes.Buffer
	send.Stdout = &sout
	const holder = "its own rx queue: packet socket inode"
	out := watchStuck(t, bin, comm, send, func(stuck string) bool { return strings.Contains(stuck, holder) })
	pid := send.Process.Pid
	send.Process.Signal(os.Interrupt)
	if err := send.Wait(); err != nil {
		t.Fatalf("send: %v", err)
	}
	var own struct {
		InFlight int `json:"frames_in_flight_at_exit"`
	}
	if err := json.Unmarshal(sout.Bytes(), &own); err != nil {
		t.Fatalf("send --json: %v: %s", err, sout.String())
	}
	if own.InFlight == 0 {
		t.Skip("this kernel completes a sender's looped-back frames at once: none was held")
	}
	var stuck string
	for _, f := range snapshotRows(out, comm, pid) {
		if len(f) >= 14 && f[13] != "0" {
			stuck = strings.Join(f[13:], " ")
		}
	}
	if stuck == "" {
		t.Fatalf("the sender ended with %d frames in flight, but no snapshot shows one of %s/%d stuck:\n%s", own.InFlight, comm, pid, out)
	}
	if !strings.Contains(stuck, holder) {
		t.Errorf("stuck column %q does not name the sender's own receive queue", stuck)
	}
}

// TestTopShowsWarnings: the trace's latest warning (a broken promise,
// written in pieces) is in top's header, in the screen and in batch
// snapshots alike.
func TestTopShowsWarnings(t *testing.T) {
	warn := &lastLine{}
	v := &topView{warn: warn, delay: time.Second, sortBy: 'f', title: "ringtrace top: test",
		cur: &watch.Snapshot{At: time.Unix(0, 0)}}
	if strings.Contains(v.render(0), "WARNING") {
		t.Fatalf("a warning before any was written:\n%s", v.render(0))
	}
	live.WarnPromise(warn)("frame -> SENDING: 0 of 10 by its exact hook")
	warn.Write([]byte("ringtrace: WARNING: broken promise: frame -> AVAIL"))
	if got := v.render(0); !strings.Contains(got, "broken promise: frame -> SENDING") {
		t.Errorf("the first warning is not in the header:\n%s", got)
	}
	warn.Write([]byte("ABLE: 3 of 9\n"))
	got := v.render(0)
	if !strings.Contains(got, "broken promise: frame -> AVAILABLE: 3 of 9") || strings.Contains(got, "SENDING: 0 of 10") {
		t.Errorf("the header does not show the latest warning alone:\n%s", got)
	}
}
