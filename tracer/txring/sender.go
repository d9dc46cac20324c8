package txring

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringtrace/ringtrace/tracer/inputerr"
)

// Mode selects how frames reach the kernel.
type Mode string

// Send modes.
const (
	// ModeRing fills ring frames, marks them SEND_REQUEST and calls
	// sendto(fd, NULL, 0, flags) once per batch.
	ModeRing Mode = "ring"
	// ModePerPacket calls sendto() once per frame on a socket without a ring.
	ModePerPacket Mode = "per-packet"
)

// ParseMode accepts "ring" and "per-packet".
func ParseMode(s string) (Mode, error) {
	switch Mode(s) {
	case ModeRing, ModePerPacket:
		return Mode(s), nil
	}
	return "", inputerr.New("unknown --mode %q (want ring or per-packet)", s)
}

// Options configure a Sender.
type Options struct {
	Socket SocketConfig
	Ring   Geometry
	Frame  FrameSpec
	Mode   Mode

	// DontWait passes MSG_DONTWAIT to sendto().
	DontWait bool
	// Loop calls sendto() again after each batch until it returns 0 (the
	// kernel's packet_mmap example), reporting each return through OnCall.
	Loop bool
	// Batch is the most frames marked SEND_REQUEST per sendto(); 0 means
	// as many as the ring has AVAILABLE.
	Batch int
	// Count is the total number of frames to send over all threads; 0
	// means one ring's worth, or unlimited when Duration is set.
	Count int64
	// Duration stops sending after this long (0: no limit).
	Duration time.Duration
	// Threads is the number of sending threads, each with its own socket
	// and ring. CPUs, when set, pins thread i to CPUs[i%len(CPUs)].
	Threads int
	CPUs    []int
	// Drain waits up to this long at the end for in-flight frames to
	// return to AVAILABLE before the rings are closed. ctx's end during
	// the drain ends it early; if ctx's end is what stopped the sending,
	// closing DrainStop does (a second Ctrl-C).
	Drain     time.Duration
	DrainStop <-chan struct{}

	// Interval between OnStats calls (default 1s).
	Interval time.Duration
	OnStats  func(Progress)
	// OnCall, when set, is called after every sendto() (from the sending
	// thread: keep it cheap).
	OnCall func(Call)
	// OnReady, when set, is called once every thread's socket is open,
	// before the first frame is sent.
	OnReady func([]SocketInfo)
}

// SocketInfo describes one thread's socket once it is open.
type SocketInfo struct {
	Thread int
	FD     int
	SndBuf int
	Iface  Interface
	MaxLen int
}

// Call is one sendto() return.
type Call struct {
	Thread   int
	N        int // call number within the thread, from 1
	Ret      int // bytes, or -1
	Errno    unix.Errno
	Accepted int // frames that left SEND_REQUEST during the call
	Loop     bool
}

// Errno counters kept by name; anything else is counted under "other".
var countedErrnos = []unix.Errno{unix.ENOBUFS, unix.EAGAIN, unix.ETIMEDOUT, unix.EMSGSIZE, unix.EINTR}

func errnoIndex(e unix.Errno) int {
	for i, c := range countedErrnos {
		if c == e {
			return i
		}
	}
	return len(countedErrnos)
}

// ErrnoName is the symbolic name of a counted errno ("other" for the rest).
func ErrnoName(i int) string {
	if i < len(countedErrnos) {
		return unix.ErrnoName(countedErrnos[i])
	}
	return "other"
}

type counters struct {
	frames, bytes, calls atomic.Uint64
	errnos               [6]atomic.Uint64
	wrongFormat          atomic.Uint64
}

// Totals is a snapshot of what the kernel accepted.
type Totals struct {
	Frames      uint64
	Bytes       uint64
	Calls       uint64
	Errnos      map[string]uint64
	WrongFormat uint64
}

func (c *counters) add(t *Totals) {
	t.Frames += c.frames.Load()
	t.Bytes += c.bytes.Load()
	t.Calls += c.calls.Load()
	t.WrongFormat += c.wrongFormat.Load()
	for i := range c.errnos {
		t.Errnos[ErrnoName(i)] += c.errnos[i].Load()
	}
}

// Progress is one interval's statistics.
type Progress struct {
	Seq      int
	Interval time.Duration
	Delta    Totals
	Total    Totals
}

// Gbps of the interval's frames (frame bytes, no FCS or preamble).
func (p Progress) Gbps() float64 {
	return float64(p.Delta.Bytes) * 8 / p.Interval.Seconds() / 1e9
}

// PPS of the interval.
func (p Progress) PPS() float64 { return float64(p.Delta.Frames) / p.Interval.Seconds() }

// Summary is the result of a run; its JSON form is `ringtrace send --json`.
type Summary struct {
	Mode        Mode              `json:"mode"`
	Version     string            `json:"version,omitempty"`
	Ifname      string            `json:"ifname"`
	Threads     int               `json:"threads"`
	Size        int               `json:"size"`
	Frames      uint64            `json:"frames"`
	Bytes       uint64            `json:"bytes"`
	Calls       uint64            `json:"calls"`
	DurationNs  int64             `json:"duration_ns"`
	PPS         float64           `json:"pps"`
	Gbps        float64           `json:"gbps"`
	Errnos      map[string]uint64 `json:"errno"`
	WrongFormat uint64            `json:"wrong_format_frames"`
	SndBufAsked int               `json:"sndbuf_requested,omitempty"`
	SndBuf      []int             `json:"sndbuf_granted"`
	InFlight    int               `json:"frames_in_flight_at_exit"`
	Final       []Counts          `json:"-"`
}

func newTotals() Totals { return Totals{Errnos: map[string]uint64{}} }

// Run sends until Count frames were accepted, Duration elapsed, ctx is done,
// or a fatal error occurs. Per-call errors (ENOBUFS, EAGAIN, ETIMEDOUT,
// EMSGSIZE) are counted, not fatal.
func Run(ctx context.Context, o Options) (Summary, error) {
	if o.Threads <= 0 {
		o.Threads = 1
	}
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.Mode == "" {
		o.Mode = ModeRing
	}
	if o.Count < 0 {
		return Summary{}, inputerr.New("--count must not be negative, got %d", o.Count)
	}
	if o.Batch < 0 {
		return Summary{}, inputerr.New("--batch must not be negative, got %d", o.Batch)
	}
	if o.Frame.Size < ethHdrLen {
		return Summary{}, inputerr.New("--size %d is smaller than an Ethernet header (%d bytes)", o.Frame.Size, ethHdrLen)
	}
	if o.Socket.Linear && o.Mode != ModeRing {
		return Summary{}, inputerr.New("--linear only applies to --mode ring")
	}
	if o.Mode == ModeRing {
		if err := o.Ring.Validate(); err != nil {
			return Summary{}, err
		}
		hdr, max := o.Ring.Version.String()+" header", o.Ring.MaxData()
		if o.Socket.Linear {
			hdr, max = hdr+" and the virtio_net_hdr", max-vnetHdrLen
		}
		if o.Frame.Size > max {
			return Summary{}, inputerr.New("--size %d does not fit a %d-byte frame (at most %d bytes after the %s)",
				o.Frame.Size, o.Ring.FrameSize, max, hdr)
		}
	}
	if o.Count == 0 && o.Duration == 0 {
		if o.Mode == ModeRing {
			o.Count = int64(o.Ring.Frames) * int64(o.Threads)
		} else {
			o.Count = int64(o.Threads)
		}
	}

	workers := make([]*worker, o.Threads)
	for i := range workers {
		w := &worker{id: i, o: &o}
		if o.Count > 0 {
			w.quota = o.Count / int64(o.Threads)
			if int64(i) < o.Count%int64(o.Threads) {
				w.quota++
			}
		} else {
			w.quota = -1
		}
		workers[i] = w
	}
	defer func() {
		for _, w := range workers {
			w.close()
		}
	}()
	// Open every socket first, so bad input fails before anything is sent.
	infos := make([]SocketInfo, 0, len(workers))
	for _, w := range workers {
		if err := w.open(); err != nil {
			return Summary{}, err
		}
		infos = append(infos, w.info())
	}
	if o.Frame.Src == nil {
		o.Frame.Src = infos[0].Iface.HWAddr
	}
	if o.Frame.Size > infos[0].MaxLen {
		return Summary{}, inputerr.New("--size %d is larger than MTU %d + %d-byte Ethernet header of %s",
			o.Frame.Size, infos[0].Iface.MTU, ethHdrLen, o.Socket.Ifname)
	}
	if o.OnReady != nil {
		o.OnReady(infos)
	}

	// The drain ends early on a stop that comes while it runs: ctx's end
	// if sending stopped on its own, DrainStop if ctx's end stopped it.
	stopped := ctx.Done()
	if o.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Duration)
		defer cancel()
	}
	pkt := o.Frame.Build()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, len(workers))
	for i, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = w.run(ctx, pkt)
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	snapshot := func() Totals {
		t := newTotals()
		for _, w := range workers {
			w.c.add(&t)
		}
		return t
	}
	tick := time.NewTicker(o.Interval)
	defer tick.Stop()
	prev, prevAt, seq := newTotals(), start, 0
loop:
	for {
		select {
		case <-done:
			break loop
		case now := <-tick.C:
			cur := snapshot()
			seq++
			if o.OnStats != nil {
				o.OnStats(Progress{Seq: seq, Interval: now.Sub(prevAt), Delta: diff(cur, prev), Total: cur})
			}
			prev, prevAt = cur, now
		}
	}
	elapsed := time.Since(start)
	tot := snapshot()
	select {
	case <-stopped:
		stopped = o.DrainStop
	default:
	}
	sum := Summary{
		Mode: o.Mode, Ifname: o.Socket.Ifname, Threads: o.Threads, Size: o.Frame.Size,
		Frames: tot.Frames, Bytes: tot.Bytes, Calls: tot.Calls, DurationNs: elapsed.Nanoseconds(),
		Errnos: tot.Errnos, WrongFormat: tot.WrongFormat, SndBufAsked: o.Socket.SndBuf,
	}
	if o.Mode == ModeRing {
		sum.Version = o.Ring.Version.String()
	}
	if s := elapsed.Seconds(); s > 0 {
		sum.PPS = float64(tot.Frames) / s
		sum.Gbps = float64(tot.Bytes) * 8 / s / 1e9
	}
	for _, w := range workers {
		sum.SndBuf = append(sum.SndBuf, w.sock.SndBuf())
		if w.ring != nil {
			c := w.ring.WaitAvailableOr(stopped, o.Drain)
			sum.Final = append(sum.Final, c)
			sum.InFlight += c.Sending
		}
	}
	return sum, errors.Join(errs...)
}

func diff(a, b Totals) Totals {
	d := Totals{Frames: a.Frames - b.Frames, Bytes: a.Bytes - b.Bytes, Calls: a.Calls - b.Calls,
		WrongFormat: a.WrongFormat - b.WrongFormat, Errnos: map[string]uint64{}}
	for k, v := range a.Errnos {
		d.Errnos[k] = v - b.Errnos[k]
	}
	return d
}

type worker struct {
	id    int
	o     *Options
	quota int64 // frames still to submit; -1 = unlimited
	sock  *Socket
	ring  *Ring
	c     counters
}

func (w *worker) open() error {
	var err error
	if w.o.Mode == ModePerPacket {
		w.sock, err = OpenSocket(w.o.Socket)
		return err
	}
	w.ring, err = Open(w.o.Socket, w.o.Ring)
	if err == nil {
		w.sock = w.ring.Socket
	}
	return err
}

func (w *worker) info() SocketInfo {
	si := SocketInfo{Thread: w.id, FD: w.sock.FD(), SndBuf: w.sock.SndBuf(), Iface: w.sock.Interface()}
	si.MaxLen = si.Iface.MTU + ethHdrLen
	if w.ring != nil {
		si.MaxLen = w.ring.MaxLen()
	}
	return si
}

func (w *worker) close() {
	if w.ring != nil {
		w.ring.Close()
	} else if w.sock != nil {
		w.sock.Close()
	}
}

func (w *worker) run(ctx context.Context, pkt []byte) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if len(w.o.CPUs) > 0 {
		var set unix.CPUSet
		cpu := w.o.CPUs[w.id%len(w.o.CPUs)]
		set.Set(cpu)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			return fmt.Errorf("thread %d: pin to CPU %d: %w", w.id, cpu, err)
		}
	}
	if w.ring == nil {
		return w.runPerPacket(ctx, pkt)
	}
	return w.runRing(ctx, pkt)
}

func (w *worker) flags() int {
	if w.o.DontWait {
		return unix.MSG_DONTWAIT
	}
	return 0
}

// fatalErrno reports whether a sendto() errno ends the thread: anything but
// the transient, counted ones.
func fatalErrno(e unix.Errno) bool {
	switch e {
	case unix.ENOBUFS, unix.EAGAIN, unix.ETIMEDOUT, unix.EMSGSIZE, unix.EINTR:
		return false
	}
	return true
}

func (w *worker) runPerPacket(ctx context.Context, pkt []byte) error {
	flags := w.flags()
	size := uint64(len(pkt))
	for n := 1; w.quota != 0; n++ {
		if n&1023 == 0 && ctx.Err() != nil {
			return nil
		}
		ret, err := w.sock.SendPacket(pkt, flags)
		w.c.calls.Add(1)
		call := Call{Thread: w.id, N: n, Ret: ret}
		if err != nil {
			e := err.(unix.Errno)
			call.Errno = e
			w.c.errnos[errnoIndex(e)].Add(1)
			if fatalErrno(e) {
				return fmt.Errorf("thread %d: sendto: %w", w.id, err)
			}
			if e == unix.EAGAIN || e == unix.ENOBUFS {
				w.sock.waitWritable(time.Millisecond)
			}
		} else {
			call.Accepted = 1
			w.c.frames.Add(1)
			w.c.bytes.Add(size)
			if w.quota > 0 {
				w.quota--
			}
		}
		if w.o.OnCall != nil {
			w.o.OnCall(call)
		}
	}
	return nil
}

func (s *Socket) waitWritable(d time.Duration) {
	fds := []unix.PollFd{{Fd: int32(s.fd), Events: unix.POLLOUT}}
	unix.Poll(fds, int(d/time.Millisecond))
}

// ringState mirrors the kernel's private tx_ring.head: next is the oldest
// frame we marked SEND_REQUEST that the kernel has not taken yet, fill the
// next frame to write, pending the number of frames in [next, fill).
type ringState struct {
	n, next, fill, pending int
}

func (w *worker) runRing(ctx context.Context, pkt []byte) error {
	r := w.ring
	st := ringState{n: r.Frames()}
	for i := 0; i < st.n; i++ {
		r.Fill(i, pkt)
		r.SetStatus(i, Available)
	}
	flags := w.flags()
	size := uint64(len(pkt))
	calls := 0
	send := func(loop bool) (int, unix.Errno) {
		calls++
		ret, err := r.Send(flags)
		w.c.calls.Add(1)
		var e unix.Errno
		if err != nil {
			e = err.(unix.Errno)
			w.c.errnos[errnoIndex(e)].Add(1)
		}
		acc := w.advance(&st)
		w.c.frames.Add(uint64(acc))
		w.c.bytes.Add(uint64(acc) * size)
		if w.o.OnCall != nil {
			w.o.OnCall(Call{Thread: w.id, N: calls, Ret: ret, Errno: e, Accepted: acc, Loop: loop})
		}
		return ret, e
	}
	for {
		if ctx.Err() != nil || (w.quota == 0 && st.pending == 0) {
			return nil
		}
		// Mark as many AVAILABLE frames SEND_REQUEST as the batch allows.
		batch := 0
		for w.quota != 0 && st.pending < st.n && (w.o.Batch == 0 || batch < w.o.Batch) {
			if r.Status(st.fill).State() != Available {
				break
			}
			r.SetStatus(st.fill, SendRequest)
			st.fill = (st.fill + 1) % st.n
			st.pending++
			batch++
			if w.quota > 0 {
				w.quota--
			}
		}
		if st.pending == 0 {
			// Every frame is still SENDING: wait for one to complete.
			r.WaitWritable(10 * time.Millisecond)
			continue
		}
		ret, e := send(false)
		if r.Status(st.next).State() == WrongFormat {
			w.c.wrongFormat.Add(1)
			return fmt.Errorf("thread %d: frame %d left in WRONG_FORMAT by the kernel (sendto: %v): tp_len %d is more than this ring/interface accepts (%d); the kernel will not send past it",
				w.id, st.next, e, len(pkt), r.MaxLen())
		}
		if e != 0 && fatalErrno(e) {
			return fmt.Errorf("thread %d: sendto: %w", w.id, e)
		}
		if w.o.Loop && e == 0 {
			// "Loop until queue empty": call again until the kernel
			// has nothing left and returns 0.
			for ret > 0 && ctx.Err() == nil {
				ret, e = send(true)
				if e != 0 && fatalErrno(e) {
					return fmt.Errorf("thread %d: sendto: %w", w.id, e)
				}
			}
		}
		if e == unix.EAGAIN || e == unix.ETIMEDOUT {
			r.WaitWritable(time.Millisecond)
		}
	}
}

// advance moves next past frames the kernel took (now SENDING or already
// AVAILABLE again) and returns how many it passed.
func (w *worker) advance(st *ringState) int {
	acc := 0
	for st.pending > 0 {
		s := w.ring.Status(st.next).State()
		if s != Sending && s != Available {
			break
		}
		st.next = (st.next + 1) % st.n
		st.pending--
		acc++
	}
	return acc
}
