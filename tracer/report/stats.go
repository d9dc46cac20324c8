package report

import (
	"cmp"
	"fmt"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringtrace/ringtrace/tracer/event"
)

// Limits bound what a Builder keeps, for traces that run for hours: the
// totals, the per-socket statistics the diagnoses are made of and the
// examples they cite are always complete; only the lists behind the
// timelines are cut. The zero value keeps everything.
type Limits struct {
	Calls   int  // calls listed per socket (0: all)
	Samples int  // accounting samples per socket, downsampled keeping extremes (0: all)
	Drops   int  // drops listed per socket (0: all)
	Summary bool // no frame timelines or softirq spans: only open and WRONG_FORMAT rounds
	// Closed is how many sockets that close during the trace keep a row
	// of their own; the ones that close after them fold into one row,
	// labelled "closed" (0: every socket keeps its row).
	Closed int
	// StuckAfter, for Replay: the stuck-frame threshold (0: the one the
	// recording's trace used, else holders.DefaultStuckAfter).
	StuckAfter time.Duration
}

// SummaryLimits are what `trace --summary` keeps: memory stays flat however
// long the trace runs.
var SummaryLimits = Limits{Calls: 2000, Samples: 4096, Drops: 1000, Summary: true, Closed: 64}

// sleepStats sum up one wait reason's sleeps over a socket's calls.
type sleepStats struct {
	n, woken, idle, completions int // woken: by the reason itself; idle: nothing in flight at the start
	total, longest              uint64
	wmemMin, wmemMax, sndbuf    int32 // wmemMin -1: no sleep knew sk_wmem_alloc
}

// addWmem widens the sk_wmem_alloc range seen at the sleeps to lo..hi,
// against sk_sndbuf sndbuf.
func (x *sleepStats) addWmem(lo, hi, sndbuf int32) {
	if x.wmemMin < 0 || lo < x.wmemMin {
		x.wmemMin = lo
	}
	x.wmemMax = max(x.wmemMax, hi)
	x.sndbuf = sndbuf
}

// dropKey groups drops for the evidence line.
type dropKey struct {
	sync bool
	what string // reason at location on device
}

// sockStats are what the diagnoses read: every call folded in as it
// returns (or at the end, if it never did), so they do not depend on the
// call list being kept.
type sockStats struct {
	sleeps [event.WaitCPU + 1]sleepStats

	complCalls, complWakes, complFrames int
	complWait, complCallTime            uint64
	complWorst                          *Call
	complWorstWait                      uint64

	cpuCalls             int
	cpuWait, cpuCallTime uint64

	dontwait, dwSlept, dwLimited int
	dwSleptFor                   uint64
	dwExample                    *Call

	enobufs, timedOut int
	partial           int
	partialExample    *Call
	// interrupted: blocking calls that returned with frames left
	// SEND_REQUEST and a signal pending, by signal.
	interrupted        map[unix.Signal]int
	interruptedExample *Call
	best               *Call
	lastCall           *Call

	drops      map[dropKey]int
	rolledBack int
}

func (st *sockStats) init() {
	for i := range st.sleeps {
		st.sleeps[i].wmemMin, st.sleeps[i].wmemMax = -1, -1
	}
	st.drops = map[dropKey]int{}
}

// addInterrupted counts n blocking calls sig cut short (ex: one of them).
func (st *sockStats) addInterrupted(sig unix.Signal, n int, ex *Call) {
	if st.interrupted == nil {
		st.interrupted = map[unix.Signal]int{}
	}
	st.interrupted[sig] += n
	st.interruptedExample = cmp.Or(st.interruptedExample, ex)
}

// addCall folds a call that returned (or was still in the kernel at end).
func (st *sockStats) addCall(c *Call, end uint64) {
	for _, sl := range c.Sleeps {
		if int(sl.Reason) >= len(st.sleeps) {
			continue
		}
		x := &st.sleeps[sl.Reason]
		d := sl.Duration(end)
		x.n++
		x.total += d
		x.longest = max(x.longest, d)
		x.completions += sl.Completions
		if sl.Waker == sl.Reason {
			x.woken++
		}
		if sl.Pending == 0 {
			x.idle++
		}
		if sl.Wmem >= 0 {
			x.addWmem(sl.Wmem, sl.Wmem, sl.SndBuf)
		}
	}
	if w := c.Slept(event.WaitCompletion, end); w > 0 && !c.DontWait {
		st.complCalls++
		st.complWait += w
		st.complCallTime += c.Duration()
		for _, sl := range c.Sleeps {
			if sl.Reason == event.WaitCompletion {
				st.complFrames += sl.Completions
				st.complWakes++
			}
		}
		if st.complWorst == nil || w > st.complWorstWait {
			st.complWorst, st.complWorstWait = c, w
		}
	}
	if w := c.Slept(event.WaitCPU, end); w > 0 {
		st.cpuCalls++
		st.cpuWait += w
		st.cpuCallTime += c.Duration()
	}
	if c.DontWait {
		st.dontwait++
		if d := c.Slept(event.WaitSndbuf, end); d > 0 {
			st.dwSlept++
			st.dwSleptFor += d
		} else if c.Return != 0 && c.ReturnScan.RunSendRequest > 0 && c.Drops == 0 && c.ReturnScan.WrongFormat == 0 &&
			(c.Ret >= 0 || c.Ret == -int64(unix.EAGAIN)) {
			// Stopped early without a drop or a bad frame: in
			// MSG_DONTWAIT mode that is sock_alloc_send_skb failing on
			// a full sndbuf.
			st.dwLimited++
			if st.dwExample == nil {
				st.dwExample = c
			}
		}
		if c.Ret > 0 && c.ReturnScan.RunSendRequest > 0 {
			st.partial++
			if st.partialExample == nil {
				st.partialExample = c
			}
		}
	} else if c.Ret > 0 && c.Duration() > 0 && (st.best == nil || c.Ret > st.best.Ret) {
		st.best = c
	}
	if !c.DontWait && c.Return != 0 && c.Signal != 0 && c.Ret >= 0 && c.ReturnScan.RunSendRequest > 0 {
		st.addInterrupted(c.Signal, 1, c)
	}
	switch c.Ret {
	case -int64(unix.ENOBUFS):
		st.enobufs++
	case -int64(unix.ETIMEDOUT):
		st.timedOut++
	}
}

// merge folds o, another socket's statistics, into st.
func (st *sockStats) merge(o *sockStats) {
	for i := range st.sleeps {
		x, y := &st.sleeps[i], &o.sleeps[i]
		x.n += y.n
		x.woken += y.woken
		x.idle += y.idle
		x.completions += y.completions
		x.total += y.total
		x.longest = max(x.longest, y.longest)
		if y.wmemMin >= 0 {
			x.addWmem(y.wmemMin, y.wmemMax, y.sndbuf)
		}
	}
	st.complCalls += o.complCalls
	st.complWakes += o.complWakes
	st.complFrames += o.complFrames
	st.complWait += o.complWait
	st.complCallTime += o.complCallTime
	if o.complWorst != nil && (st.complWorst == nil || o.complWorstWait > st.complWorstWait) {
		st.complWorst, st.complWorstWait = o.complWorst, o.complWorstWait
	}
	st.cpuCalls += o.cpuCalls
	st.cpuWait += o.cpuWait
	st.cpuCallTime += o.cpuCallTime
	st.dontwait += o.dontwait
	st.dwSlept += o.dwSlept
	st.dwLimited += o.dwLimited
	st.dwSleptFor += o.dwSleptFor
	st.dwExample = cmp.Or(st.dwExample, o.dwExample)
	st.enobufs += o.enobufs
	st.timedOut += o.timedOut
	st.partial += o.partial
	st.partialExample = cmp.Or(st.partialExample, o.partialExample)
	for sig, n := range o.interrupted {
		st.addInterrupted(sig, n, o.interruptedExample)
	}
	if o.best != nil && (st.best == nil || o.best.Ret > st.best.Ret) {
		st.best = o.best
	}
	st.lastCall = cmp.Or(o.lastCall, st.lastCall)
	for k, n := range o.drops {
		st.drops[k] += n
	}
	st.rolledBack += o.rolledBack
}

func (st *sockStats) addDrop(d Drop) {
	k := d.Reason
	if d.Location != "" {
		k += " at " + d.Location
	}
	if d.Dev != "" {
		k += " on " + d.Dev
	}
	st.drops[dropKey{d.Synchronous, k}]++
}

// dropLine is the evidence line for the sync (or async) drops, and their
// count.
func (st *sockStats) dropLine(sync bool) (string, int) {
	var parts []string
	n := 0
	for k, c := range st.drops {
		if k.sync == sync {
			parts = append(parts, fmt.Sprintf("%d x %s", c, k.what))
			n += c
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, "; "), n
}
