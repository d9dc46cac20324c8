package report

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/plan"
	"github.com/ringtrace/ringtrace/tracer/promise"
)

// Diagnosis IDs.
const (
	DiagSndbufBlocked  = "sndbuf-blocked"
	DiagCompletionWait = "completion-wait"
	DiagQdiscDrop      = "qdisc-drop"
	DiagAsyncDrop      = "qdisc-drop-async"
	DiagDontwaitBug    = "dontwait-sndbuf-bug"
	DiagWrongFormat    = "wrong-format"
	DiagSoftirqBudget  = "softirq-budget"
	DiagInFlightAtEnd  = "in-flight-at-end"
	DiagTimedOut       = "sndtimeo-expired"
	DiagPartialSend    = "partial-send"
	DiagLost           = "lost-events"
	DiagMissedRuns     = "missed-hook-runs"
	DiagThroughput     = "call-throughput"
	DiagCPUWait        = "cpu-wait"
	DiagBrokenPromise  = "broken-promise"
	DiagReconstructed  = "reconstructed-events"
	DiagHiddenTasks    = "hidden-cpu-time"
	DiagInterrupted    = "interrupted-send"
)

func ms(ns uint64) string { return fmt.Sprintf("%.3f ms", float64(ns)/1e6) }

func diagnose(r *Report) []Diagnosis {
	var ds []Diagnosis
	if r.Lost > 0 {
		ds = append(ds, Diagnosis{ID: DiagLost, Severity: "problem", Title: fmt.Sprintf("%d events were lost (BPF ring buffer full): timelines have gaps", r.Lost),
			Evidence: []string{"raise --ringbuf-size or narrow --events"}})
	}
	if len(r.Missed) > 0 {
		var n uint64
		for _, v := range r.Missed {
			n += v
		}
		ds = append(ds, Diagnosis{ID: DiagMissedRuns, Severity: "warning",
			Title: fmt.Sprintf("the kernel skipped %d runs of ringtrace's hooks: events they would have sent are missing", n),
			Evidence: []string{"skipped: " + MissedString(r.Missed),
				"the kernel runs no kprobe program while another BPF program runs on that CPU (a softirq can interrupt one), and no tracing program inside itself",
				"completions they missed are still found by ring scans (at the call's return, or by the sweep), with bounded times"}})
	}
	ds = append(ds, hiddenTasks(r)...)
	ds = append(ds, promises(r)...)
	for _, s := range r.Sockets {
		ds = append(ds, sndbufBlocked(r, s)...)
		ds = append(ds, completionWait(r, s)...)
		ds = append(ds, cpuWait(r, s)...)
		ds = append(ds, drops(r, s)...)
		ds = append(ds, dontwaitVerdict(r, s)...)
		ds = append(ds, wrongFormat(s)...)
		ds = append(ds, timedOut(s)...)
		ds = append(ds, partialSends(s)...)
		ds = append(ds, interruptedSends(s)...)
		ds = append(ds, inFlight(r, s)...)
		ds = append(ds, throughput(s)...)
	}
	ds = append(ds, softirqBudget(r)...)
	return ds
}

func sndbufBlocked(r *Report, s *Socket) []Diagnosis {
	x := s.st.sleeps[event.WaitSndbuf]
	if x.n == 0 {
		return nil
	}
	ev := []string{
		fmt.Sprintf("%d waits in sock_alloc_send_pskb (sndbuf wait), %s in total, longest %s", x.n, ms(x.total), ms(x.longest)),
	}
	if x.wmemMin >= 0 {
		ev = append(ev, fmt.Sprintf("at the waits sk_wmem_alloc was %d..%d bytes against sk_sndbuf %d: ring frames in flight are charged to the socket", x.wmemMin, x.wmemMax, x.sndbuf))
	}
	ev = append(ev, fmt.Sprintf("%d of the waits ended when freed skbs gave sndbuf space back (sock_def_write_space wakes only below sndbuf/2)", x.woken),
		"raise SO_SNDBUF (SO_SNDBUFFORCE above net.core.wmem_max) above the bytes a burst keeps in flight")
	return []Diagnosis{{ID: DiagSndbufBlocked, Severity: "problem", Socket: s.Label,
		Title:    fmt.Sprintf("sender blocked on sndbuf for %s (sk_wmem_alloc >= sk_sndbuf)", ms(x.total)),
		Evidence: ev}}
}

func completionWait(r *Report, s *Socket) []Diagnosis {
	st := &s.st
	if st.complCalls == 0 {
		return nil
	}
	wait, callTime := st.complWait, st.complCallTime
	ev := []string{
		fmt.Sprintf("%d blocking sendto calls slept %s waiting for TX completion (%d sleeps, %d frames completed meanwhile)", st.complCalls, ms(wait), st.complWakes, st.complFrames),
	}
	if callTime > 0 {
		ev = append(ev, fmt.Sprintf("that is %.0f%% of the %s those calls spent in the kernel", 100*float64(wait)/float64(callTime), ms(callTime)))
	}
	if worst := st.complWorst; worst != nil && worst.Return > 0 {
		ev = append(ev, fmt.Sprintf("worst call: %d frames, returned %s after %s, %s of it asleep for completions",
			worst.FramesTaken, event.ReturnString(worst.Ret), ms(worst.Duration()), ms(worst.Slept(event.WaitCompletion, r.End))))
	}
	ev = append(ev, "a blocking TX-ring sendto returns only once every frame it queued is AVAILABLE: it holds pg_vec_lock meanwhile, the ring is not refilled and the NIC idles between calls",
		"use MSG_DONTWAIT and refill frames as they turn AVAILABLE (poll for POLLOUT), or several sockets")
	sev := "info"
	if callTime > 0 && wait*5 >= callTime {
		sev = "problem" // a fifth or more of the time in the kernel
	}
	return []Diagnosis{{ID: DiagCompletionWait, Severity: sev, Socket: s.Label,
		Title:    fmt.Sprintf("NIC starvation pattern: blocking sendto waited %s for TX completion", ms(wait)),
		Evidence: ev}}
}

// cpuWait: inside sendmsg the sender was runnable but had no CPU. The link
// drains what is queued and then idles; reported when it is a noticeable
// share (5 %, at least 1 ms) of the time those calls spent in the kernel.
func cpuWait(r *Report, s *Socket) []Diagnosis {
	st := &s.st
	x := st.sleeps[event.WaitCPU]
	total, callTime := st.cpuWait, st.cpuCallTime
	if total < 1e6 || callTime == 0 || total*20 < callTime {
		return nil
	}
	sev := "info"
	if total*5 >= callTime {
		sev = "problem"
	}
	return []Diagnosis{{ID: DiagCPUWait, Severity: sev, Socket: s.Label,
		Title: fmt.Sprintf("sender waited %s for a CPU inside sendto (%.0f%% of its time in the kernel)", ms(total), 100*float64(total)/float64(callTime)),
		Evidence: []string{
			fmt.Sprintf("%d run-queue waits in %d calls (preempted, or woken and not yet running), longest %s", x.n, st.cpuCalls, ms(x.longest)),
			fmt.Sprintf("%d of them began with no frame in flight: the link had nothing to send until the sender ran again", x.idle),
			"other tasks compete for the sender's CPU: pin the sender to a CPU of its own (taskset, ringtrace send --cpu) or raise its priority (chrt)",
		}}}
}

func drops(r *Report, s *Socket) []Diagnosis {
	st := &s.st
	var out []Diagnosis
	if line, n := st.dropLine(true); n > 0 {
		out = append(out, Diagnosis{ID: DiagQdiscDrop, Severity: "problem", Socket: s.Label,
			Title: fmt.Sprintf("qdisc dropped %d frames inside sendto: each rolled back to SEND_REQUEST, sendto returned -ENOBUFS", n),
			Evidence: []string{
				"drops: " + line,
				fmt.Sprintf("%d frames rolled back (SENDING -> AVAILABLE -> SEND_REQUEST), %d sendto calls returned -ENOBUFS", st.rolledBack, st.enobufs),
				"the qdisc's limit, not only sk_sndbuf, bounds a TX-ring burst: raise the qdisc limit (txqueuelen) or send smaller bursts",
			}})
	}
	if line, n := st.dropLine(false); n > 0 {
		out = append(out, Diagnosis{ID: DiagAsyncDrop, Severity: "warning", Socket: s.Label,
			Title:    fmt.Sprintf("%d frames dropped after sendto reported them sent", n),
			Evidence: []string{"drops: " + line, "dropped in the NET_TX softirq: the sender is not told"}})
	}
	return out
}

// dontwaitVerdict decides, from what the trace shows, whether this kernel
// has the pre-4.1 bug: tpacket_snd called sock_alloc_send_skb with noblock
// 0, so a MSG_DONTWAIT sendto still slept when sk_wmem_alloc >= sk_sndbuf.
func dontwaitVerdict(r *Report, s *Socket) []Diagnosis {
	st := &s.st
	dontwait, slept, limited, sleptFor, example := st.dontwait, st.dwSlept, st.dwLimited, st.dwSleptFor, st.dwExample
	if dontwait == 0 {
		return nil
	}
	d := Diagnosis{ID: DiagDontwaitBug, Severity: "verdict", Socket: s.Label}
	switch {
	case slept > 0:
		d.Title = "MSG_DONTWAIT sndbuf-blocking bug: AFFECTED"
		d.Evidence = []string{fmt.Sprintf("%d MSG_DONTWAIT sendto calls slept %s in the sndbuf wait (sock_alloc_send_pskb)", slept, ms(sleptFor)),
			"this is the pre-4.1 tpacket_snd behaviour: noblock passed as 0, so MSG_DONTWAIT still blocks on a full sndbuf"}
		d.Severity = "problem"
	case limited > 0:
		d.Title = "MSG_DONTWAIT sndbuf-blocking bug: not affected"
		d.Evidence = []string{fmt.Sprintf("%d MSG_DONTWAIT sendto calls stopped at the sndbuf limit and returned without sleeping", limited),
			fmt.Sprintf("e.g. a call returned %s after %s with %d frames left SEND_REQUEST, sk_wmem_alloc %d / sk_sndbuf %d at return",
				event.ReturnString(example.Ret), ms(example.Duration()), example.ReturnScan.RunSendRequest, example.WmemAtRet, example.SndBufAtRet),
			"since Linux 4.1 tpacket_snd passes !need_wait: MSG_DONTWAIT returns the bytes queued so far (or -EAGAIN)"}
	default:
		d.Title = "MSG_DONTWAIT sndbuf-blocking bug: not determined by this trace"
		d.Evidence = []string{fmt.Sprintf("%d MSG_DONTWAIT calls, none reached the sndbuf limit", dontwait),
			"run the sndbuf-blocking scenario (`ringtrace run sndbuf-blocking`) to decide"}
		d.Severity = "info"
	}
	return []Diagnosis{d}
}

func wrongFormat(s *Socket) []Diagnosis {
	var frames []string
	for _, rd := range s.Rounds {
		if rd.WrongFormat {
			frames = append(frames, fmt.Sprintf("#%d", rd.Frame))
		}
	}
	if len(frames) == 0 {
		return nil
	}
	stuck := uint32(0)
	if c := s.st.lastCall; c != nil {
		stuck = c.ReturnScan.SendRequest
	}
	return []Diagnosis{{ID: DiagWrongFormat, Severity: "problem", Socket: s.Label,
		Title: fmt.Sprintf("ring stuck behind a WRONG_FORMAT frame (%s)", strings.Join(frames, ", ")),
		Evidence: []string{
			"tpacket_snd refused the frame (tp_len over the frame or MTU + header: sendto -EMSGSIZE) and left it in TP_STATUS_WRONG_FORMAT",
			fmt.Sprintf("the kernel stops at that frame: %d SEND_REQUEST frames wait behind it until user space rewrites it", stuck),
		}}}
}

func timedOut(s *Socket) []Diagnosis {
	n := s.st.timedOut
	if n == 0 {
		return nil
	}
	return []Diagnosis{{ID: DiagTimedOut, Severity: "warning", Socket: s.Label,
		Title: fmt.Sprintf("%d blocking sendto calls timed out (SO_SNDTIMEO) waiting for TX completion", n),
		Evidence: []string{"-ETIMEDOUT discards the byte count of frames already queued: they stay SENDING and complete later",
			"count frames by their status, not by sendto's return value"}}}
}

func partialSends(s *Socket) []Diagnosis {
	n, ex := s.st.partial, s.st.partialExample
	if n == 0 {
		return nil
	}
	return []Diagnosis{{ID: DiagPartialSend, Severity: "info", Socket: s.Label,
		Title: fmt.Sprintf("%d MSG_DONTWAIT calls sent only part of the requested frames", n),
		Evidence: []string{fmt.Sprintf("e.g. %d frames taken, %d left SEND_REQUEST from head %d (returned %d bytes)",
			ex.FramesTaken, ex.ReturnScan.RunSendRequest, ex.ReturnScan.Head, ex.Ret),
			"call sendto again (or poll for POLLOUT) to send the rest"}}}
}

// interruptedSends names blocking calls a signal cut short: tpacket_snd
// returns the bytes queued so far when one interrupts its sndbuf wait.
func interruptedSends(s *Socket) []Diagnosis {
	if len(s.st.interrupted) == 0 {
		return nil
	}
	var n int
	var sigs []string
	urg := false
	for sig, k := range s.st.interrupted {
		n += k
		sigs = append(sigs, fmt.Sprintf("%s %d", event.SignalName(sig), k))
		urg = urg || sig == unix.SIGURG
	}
	sort.Strings(sigs)
	ex := s.st.interruptedExample
	ev := []string{
		fmt.Sprintf("e.g. a call returned %d bytes after %s with %d frames left SEND_REQUEST from head %d, %s pending",
			ex.Ret, ms(ex.Duration()), ex.ReturnScan.RunSendRequest, ex.ReturnScan.Head, event.SignalName(ex.Signal)),
		"a signal that arrives while tpacket_snd sleeps for sndbuf makes it return the bytes queued so far: the rest of the ring stays SEND_REQUEST until the next call",
	}
	if urg {
		ev = append(ev, "SIGURG is the Go runtime's preemption signal, sent to any thread at any time: block it on the sending thread around the call (pthread_sigmask; ringtrace send does), or run with GODEBUG=asyncpreemptoff=1")
	}
	ev = append(ev, "a sender must call sendto again on a short return (or block the signal around the call)")
	return []Diagnosis{{ID: DiagInterrupted, Severity: "problem", Socket: s.Label,
		Title:    fmt.Sprintf("%d blocking sendto calls returned early, interrupted by a signal (%s)", n, strings.Join(sigs, ", ")),
		Evidence: ev}}
}

func inFlight(r *Report, s *Socket) []Diagnosis {
	var frames []string
	var oldest uint64
	for _, rd := range s.Rounds {
		if rd.State != event.Sending || rd.Done {
			continue
		}
		frames = append(frames, fmt.Sprintf("#%d", rd.Frame))
		if rd.Sending > 0 && (oldest == 0 || rd.Sending < oldest) {
			oldest = rd.Sending
		}
	}
	if len(frames) == 0 {
		return nil
	}
	ev := []string{"frames: " + strings.Join(frames, ", ")}
	if oldest > 0 {
		ev = append(ev, fmt.Sprintf("the oldest was sent %s before the trace ended", ms(r.End-oldest)))
	}
	return []Diagnosis{{ID: DiagInFlightAtEnd, Severity: "warning", Socket: s.Label,
		Title: fmt.Sprintf("%d frames still SENDING when the trace ended", len(frames)), Evidence: ev}}
}

// throughput reports, for blocking calls that sent many frames, the rate the
// call achieved: a blocking call lasts about the wire time of its frames.
func throughput(s *Socket) []Diagnosis {
	best := s.st.best
	if best == nil || best.FramesTaken < 64 {
		return nil
	}
	mbit := float64(best.Ret) * 8 / float64(best.Duration()) * 1e3
	return []Diagnosis{{ID: DiagThroughput, Severity: "info", Socket: s.Label,
		Title:    fmt.Sprintf("largest blocking sendto: %d bytes in %s (%.0f Mbit/s of frame data)", best.Ret, ms(best.Duration()), mbit),
		Evidence: []string{fmt.Sprintf("%d frames; the call returns when the last one is AVAILABLE, so it lasts about their wire time", best.FramesTaken)}}}
}

func softirqBudget(r *Report) []Diagnosis {
	var out []Diagnosis
	for _, c := range r.CPUs {
		if c.Exhausted == 0 {
			continue
		}
		out = append(out, Diagnosis{ID: DiagSoftirqBudget, Severity: "warning",
			Title: fmt.Sprintf("cpu%d: %d of %d napi polls used their whole budget", c.ID, c.Exhausted, c.NapiPolls),
			Evidence: []string{fmt.Sprintf("budget %d per poll; %d packets of work in total; NET_RX softirq %s in %d runs", c.Budget, c.NapiWork, ms(c.NetRX), c.RXSpans),
				"an instance that uses its whole budget is polled again; net_rx_action stops after netdev_budget packets or netdev_budget_usecs (time_squeeze in /proc/net/softnet_stat)"}})
	}
	return out
}

// MissedString lists skipped hook runs as "kprobe tpacket_destruct_skb=2, …",
// in name order.
func MissedString(m map[string]uint64) string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	for i, k := range names {
		names[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(names, ", ")
}

// hiddenTasks says which tasks the kernel ran no BPF program for: their CPU
// time is a hole in every timeline. A warning when frame events fell in
// it, else a note.
func hiddenTasks(r *Report) []Diagnosis {
	if len(r.Hidden) == 0 {
		return nil
	}
	var windows int
	var ns, hidden uint64
	var tasks []string
	byPID := map[uint32]string{}
	for _, h := range r.Hidden {
		windows += h.Windows
		ns += h.NS
		byPID[h.PID] = h.Comm
		tasks = append(tasks, fmt.Sprintf("thread %d of pid %d %s: %s, %s", h.TID, h.PID, h.Comm, plural(h.Windows, "window"), ms(h.NS)))
	}
	for _, t := range r.Promises {
		hidden += t.Hidden
	}
	pids := make([]string, 0, len(byPID))
	for p, name := range byPID {
		pids = append(pids, strings.TrimSpace(strconv.FormatUint(uint64(p), 10)+" "+name))
	}
	sort.Strings(pids)
	ev := append(tasks,
		"the switch into such a task is seen, its switch out never is: a CPU whose next seen switch leaves another task ran it in between (its window, bounded)",
		"a softirq that runs on its time (a qdisc dequeue, a veth xmit, a TX completion) fires every tracepoint, but no BPF program runs: no recursion miss, no ring buffer loss is counted",
		"the tracepoints do fire there (ftrace records them, e.g. irq:softirq_entry): only BPF programs are kept out")
	d := Diagnosis{ID: DiagHiddenTasks, Severity: "info",
		Title: fmt.Sprintf("this kernel hides pid %s from BPF: %s, %s of CPU time no hook could see; no frame event of this trace fell in them", strings.Join(pids, ", "), plural(windows, "window"), ms(ns))}
	if hidden > 0 {
		d.Severity = "warning"
		d.Title = fmt.Sprintf("this kernel hides pid %s from BPF, and network work ran on its time: %s missed there and reconstructed (bounded)", strings.Join(pids, ", "), plural(int(hidden), "frame event"))
		ev = append(ev, "those events do not count against the attach plan's promises: no hook can see them on this kernel")
	}
	d.Evidence = ev
	return []Diagnosis{d}
}

// promises says which of the plan's exact promises the trace broke: more
// than promise.Threshold of their events reconstructed, the sign of a
// kernel that changed under the plan. Fewer reconstructions are noted.
func promises(r *Report) []Diagnosis {
	var ds []Diagnosis
	for _, t := range r.Promises {
		if t.Reconstructed == 0 || t.Hidden >= t.Reconstructed {
			continue // none, or all in CPU time the kernel hides (hidden-cpu-time says so)
		}
		ev := []string{t.String(),
			"reconstructed events are bounded in time: found by a ring status read (at the call's return, or by the sweep) instead of the promised hook"}
		if t.Event == plan.EvCalls {
			ev[1] = "a thread's send calls did not pair up, entry then return: a return never seen, or an entry reported twice"
		}
		if t.Broken() {
			ds = append(ds, Diagnosis{ID: DiagBrokenPromise, Severity: "warning",
				Title:    fmt.Sprintf("the attach plan promised %q exactly, but %.1f %% of those events were reconstructed: has the kernel changed? (ringtrace probe --verify)", t.Event, 100*t.Share()),
				Evidence: append(ev, "run `ringtrace probe --verify` on this kernel: it names the promise that no longer holds")})
			continue
		}
		ds = append(ds, Diagnosis{ID: DiagReconstructed, Severity: "info",
			Title:    fmt.Sprintf("%d %q events were reconstructed (%.2f %%, under the %.0f %% a broken promise takes)", t.Reconstructed, t.Event, 100*t.Share(), 100*promise.Threshold),
			Evidence: append(ev, "hook runs the kernel skipped (see missed-hook-runs) are the usual cause")})
	}
	return ds
}

// plural says "1 window" or "3 windows".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
