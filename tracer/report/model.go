// Package report owns what a trace means: it rebuilds, from the ordered
// logical events of a live session or a recording, every ring frame's
// state timeline, every sendmsg call with its sleeps, each socket's
// sk_sndbuf / sk_wmem_alloc / pending series and each CPU's NET_RX/NET_TX
// softirq time, and names what went wrong with the numbers that prove it.
// It is pure Go: no kernel, no root; renderers (text, Perfetto, HTML) read
// its Report.
package report

import (
	"golang.org/x/sys/unix"

	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/holders"
	"github.com/ringtrace/ringtrace/tracer/promise"
)

// Transition is one frame state change.
type Transition struct {
	TS    uint64          `json:"ts_ns"`
	TSLo  uint64          `json:"ts_lo_ns,omitempty"` // bounded: earliest time
	From  event.State     `json:"-"`
	To    event.State     `json:"-"`
	Prec  event.Precision `json:"-"`
	Cause event.Cause     `json:"-"`
	CPU   uint32          `json:"cpu"`
}

// Exact reports whether the transition's time is exact.
func (t Transition) Exact() bool { return t.Prec == event.Exact }

// Round is one use of a frame: from SEND_REQUEST until it is AVAILABLE
// again (or stuck in WRONG_FORMAT, or still in flight when the trace ends).
// A synchronous drop rolls it back to SEND_REQUEST within the same round.
type Round struct {
	Frame       uint32       `json:"frame"`
	Transitions []Transition `json:"-"`
	Requested   uint64       `json:"requested_ns"`     // SEND_REQUEST (upper bound when written by user space)
	Sending     uint64       `json:"sending_ns"`       // last SENDING
	Available   uint64       `json:"available_ns"`     // final AVAILABLE; 0 if not completed
	ExactDone   bool         `json:"completion_exact"` // completion time is exact
	Drops       int          `json:"drops"`            // synchronous drops (each rolled back)
	WrongFormat bool         `json:"wrong_format"`     // ended in WRONG_FORMAT
	State       event.State  `json:"-"`                // state at the end of the round (or of the trace)
	Call        int          `json:"call"`             // index in Socket.Calls of the call that sent it, -1 if none
	Done        bool         `json:"done"`             // reached AVAILABLE for good
	// Hidden: its completion was found by a status read and may have
	// happened in CPU time the kernel hides from BPF (a blind window
	// overlaps its bounds): when it completed, the trace cannot say.
	Hidden     bool   `json:"completion_hidden,omitempty"`
	Dev        string `json:"dev,omitempty"` // device it was sent on
	FreeReason string `json:"free_reason,omitempty"`

	sendingExact bool              // the SENDING time is exact: the in-flight time counts
	where        holders.Where     // where the events last put its skb while SENDING
	gone         uint64            // its ring went away (socket closed) while it was SENDING
	holder       *holders.Location // who held it, when it was stuck in its last SENDING
}

// InFlight is SENDING -> AVAILABLE (0 if not completed).
func (r *Round) InFlight() uint64 {
	if !r.Done || r.Sending == 0 || r.Available < r.Sending {
		return 0
	}
	return r.Available - r.Sending
}

// Waiting is SEND_REQUEST -> SENDING: how long the frame waited for the
// kernel to pick it up (0 if never sent or the request time is unknown).
func (r *Round) Waiting() uint64 {
	if r.Sending == 0 || r.Requested == 0 || r.Sending < r.Requested {
		return 0
	}
	return r.Sending - r.Requested
}

// Sleep is one period a sender spent off-CPU inside a sendmsg call.
type Sleep struct {
	TID     uint32     `json:"tid"`
	Start   uint64     `json:"start_ns"`
	End     uint64     `json:"end_ns"` // 0: still asleep at the end of the trace
	Reason  event.Wait `json:"-"`
	Waker   event.Wait `json:"-"`
	SndBuf  int32      `json:"sndbuf"`
	Wmem    int32      `json:"wmem"`
	Pending int32      `json:"pending"`
	// Completions of this socket's frames while it slept.
	Completions int `json:"completions"`
}

// Duration of the sleep (up to end when still asleep).
func (s *Sleep) Duration(end uint64) uint64 {
	e := s.End
	if e == 0 {
		e = end
	}
	if e < s.Start {
		return 0
	}
	return e - s.Start
}

// Call is one sendmsg on a TX-ring socket.
type Call struct {
	TID, PID   uint32     `json:"-"`
	Comm       string     `json:"comm"`
	Enter      uint64     `json:"enter_ns"`
	Return     uint64     `json:"return_ns"` // 0: still in the kernel at the end of the trace
	Flags      uint64     `json:"flags"`
	DontWait   bool       `json:"dontwait"`
	Ret        int64      `json:"ret"`
	EntryScan  event.Scan `json:"entry_ring"`
	ReturnScan event.Scan `json:"return_ring"`
	// Signal is the lowest signal pending (not blocked) for the thread as
	// the call returned, 0 if none: one that interrupted a blocking call's
	// wait made it return early.
	Signal      unix.Signal `json:"signal_pending,omitempty"`
	FramesTaken int         `json:"frames_taken"`
	Sleeps      []*Sleep    `json:"sleeps,omitempty"`
	Drops       int         `json:"drops"`
	LoopCall    bool        `json:"loop_call"` // a further call of a "loop until queue empty"
	SndBufAtRet int32       `json:"sndbuf_at_return"`
	WmemAtRet   int32       `json:"wmem_at_return"`
	// PendingAtRet is the frames in flight at the return (SENDING: events
	// counted, or with --detail calls taken and not past the frontier).
	PendingAtRet int32 `json:"pending_at_return"`

	prev *Call // the socket's call entered before this one, until it returns
}

// Duration of the call (0 if it did not return).
func (c *Call) Duration() uint64 {
	if c.Return == 0 || c.Return < c.Enter {
		return 0
	}
	return c.Return - c.Enter
}

// Slept is the time the call spent asleep for reason w.
func (c *Call) Slept(w event.Wait, end uint64) uint64 {
	var d uint64
	for _, s := range c.Sleeps {
		if s.Reason == w {
			d += s.Duration(end)
		}
	}
	return d
}

// Sample is one point of a socket's accounting series.
type Sample struct {
	TS      uint64 `json:"ts_ns"`
	SndBuf  int32  `json:"sndbuf"`
	Wmem    int32  `json:"wmem"`
	Pending int32  `json:"pending"`
}

// Drop is a qdisc drop of one of the socket's frames.
type Drop struct {
	TS          uint64 `json:"ts_ns"`
	Frame       uint32 `json:"frame"`
	Reason      string `json:"reason"`
	Location    string `json:"location"`
	Synchronous bool   `json:"synchronous"` // in the sender's xmit: rolled back, -ENOBUFS
	Dev         string `json:"dev"`
}

// Socket is one TX-ring socket of the trace.
type Socket struct {
	Sk     uint64 `json:"-"`
	Ino    uint32 `json:"inode"`
	Label  string `json:"label"`
	PID    uint32 `json:"pid"`
	Comm   string `json:"comm"`
	Frames uint32 `json:"ring_frames"` // ring size, from scans (the largest, in the closed row)
	// Folded is, in the closed row (Limits.Closed), how many closed
	// sockets it sums up; 0 in a socket's own row.
	Folded int      `json:"folded_sockets,omitempty"`
	Devs   []string `json:"devices"`
	Rounds []*Round `json:"-"`
	Calls  []*Call  `json:"-"`
	Series []Sample `json:"-"`
	Drops  []Drop   `json:"-"`

	// Counts and extremes over the whole trace: the lists above may be
	// cut (Limits), these are not.
	NCalls     int   `json:"calls"`
	FrameUses  int   `json:"frame_uses"` // rounds: SEND_REQUEST .. AVAILABLE
	NDrops     int   `json:"drops"`
	SndBuf     int32 `json:"sndbuf"` // last sk_sndbuf seen
	MaxWmem    int32 `json:"max_wmem"`
	MaxPending int32 `json:"max_pending"`
	// InFlight is the SENDING -> AVAILABLE time of completed frames whose
	// SENDING time is exact (not of frames sent through a bypass nobody
	// hooks).
	InFlight Histogram `json:"in_flight"`

	open        map[uint32]*Round // current round per frame
	last        map[uint32]*Round // latest round per frame
	calls       map[uint32]*Call  // in progress, per thread
	lastEntered *Call
	devSeen     map[string]bool
	st          sockStats
}

// NSockets is how many sockets the trace saw: a row each, but the closed
// row counts those it sums up.
func (r *Report) NSockets() int {
	n := 0
	for _, s := range r.Sockets {
		n += max(s.Folded, 1)
	}
	return n
}

// Truncated reports whether Limits cut the socket's call or drop lists.
func (s *Socket) Truncated() bool { return len(s.Calls) < s.NCalls || len(s.Drops) < s.NDrops }

// callIn is the call thread tid is in on s, if any (s may be nil).
func (s *Socket) callIn(tid uint32) *Call {
	if s == nil {
		return nil
	}
	return s.calls[tid]
}

// CPU is one CPU's network softirq activity.
type CPU struct {
	ID        uint32   `json:"cpu"`
	NetRX     uint64   `json:"net_rx_ns"`
	NetTX     uint64   `json:"net_tx_ns"`
	RXSpans   int      `json:"net_rx_spans"`
	TXSpans   int      `json:"net_tx_spans"`
	Spans     []Span   `json:"-"`
	Hidden    []Hidden `json:"-"` // windows of CPU time the kernel hid from BPF
	NapiPolls int      `json:"napi_polls"`
	NapiWork  uint64   `json:"napi_work"`
	Exhausted int      `json:"napi_budget_exhausted"` // polls that used the whole budget
	Budget    uint64   `json:"napi_budget"`
	Devs      []string `json:"napi_devices"`
}

// Hidden is a window of CPU time the kernel ran no BPF program in, and
// the task that was current (event.Blind).
type Hidden struct {
	Start, End uint64
	PID, TID   uint32
	Comm       string
}

// Span is a softirq run.
type Span struct {
	Start, End uint64
	Vec        uint8 // 2 NET_TX, 3 NET_RX
}

// Diagnosis names something that went wrong (or a verdict), with the
// numbers that prove it.
type Diagnosis struct {
	ID       string   `json:"id"`
	Severity string   `json:"severity"` // problem, warning, info, verdict
	Socket   string   `json:"socket,omitempty"`
	Title    string   `json:"title"`
	Evidence []string `json:"evidence"`
}

// Report is a reconstructed trace.
type Report struct {
	Start, End uint64            `json:"-"`
	Kernel     string            `json:"kernel,omitempty"`
	Class      string            `json:"hook_class,omitempty"`
	Completion string            `json:"completion,omitempty"`
	Detail     string            `json:"detail,omitempty"` // "calls": frames were counted, not traced (see NotTraced)
	Sockets    []*Socket         `json:"sockets"`
	CPUs       []*CPU            `json:"cpus"`
	Diagnoses  []Diagnosis       `json:"diagnoses"`
	Events     map[string]uint64 `json:"events"`
	Lost       uint64            `json:"lost"`
	Missed     map[string]uint64 `json:"missed_runs,omitempty"` // per attachment, runs the kernel skipped
	// Hidden are the tasks the kernel ran no BPF program for while they
	// were current (event.Blind windows): nothing on their CPU time, a
	// softirq included, could be seen.
	Hidden     []HiddenTask `json:"hidden_tasks,omitempty"`
	Duplicates uint64       `json:"duplicates"`
	// Promises are the plan's exact promises and how many of their events
	// had to be reconstructed (tracer/promise).
	Promises []promise.Tally `json:"promises,omitempty"`
	Totals   Totals          `json:"totals"`
	// Stuck are the frames SENDING for StuckAfter (ns) or more, or at the
	// end, with who held them.
	Stuck      []Stuck             `json:"stuck"`
	StuckAfter uint64              `json:"stuck_after_ns"`
	socks      map[sockKey]*Socket `json:"-"`
}

// HiddenTask is a task the kernel hides from BPF, and how much CPU time
// of the trace it took.
type HiddenTask struct {
	PID     uint32 `json:"pid"`
	TID     uint32 `json:"tid"`
	Comm    string `json:"comm"` // its process's (thread group leader's)
	Windows int    `json:"windows"`
	NS      uint64 `json:"ns"` // bounded: from its switch-in to the CPU's next switch seen
}

// Totals summarise the trace.
type Totals struct {
	Calls            int `json:"calls"`
	FramesSent       int `json:"frames_sent"` // rounds that reached SENDING
	Completed        int `json:"completed"`
	CompletedExact   int `json:"completed_exact"`
	CompletedBounded int `json:"completed_bounded"`
	InFlightAtEnd    int `json:"in_flight_at_end"`
	SyncDrops        int `json:"sync_drops"`
	AsyncDrops       int `json:"async_drops"`
	RolledBack       int `json:"rolled_back"`
	WrongFormat      int `json:"wrong_format"`
	ENOBUFS          int `json:"enobufs"`
	EAGAIN           int `json:"eagain"`
	ETIMEDOUT        int `json:"etimedout"`
	OtherErrors      int `json:"other_errors"`
}

type sockKey struct {
	sk  uint64
	ino uint32
}
