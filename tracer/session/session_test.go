package session_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ringtrace/ringtrace/scenarios/lab"
	"github.com/ringtrace/ringtrace/tracer/bpfobj/bpftypes"
	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/kernel/kerneltest"
	"github.com/ringtrace/ringtrace/tracer/kernel/probe"
	"github.com/ringtrace/ringtrace/tracer/nsexec"
	"github.com/ringtrace/ringtrace/tracer/plan"
	"github.com/ringtrace/ringtrace/tracer/session"
	"github.com/ringtrace/ringtrace/tracer/txring"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (BPF, network namespaces): run `sudo make test`")
	}
}

type tracer struct {
	sess   *session.Session
	cancel context.CancelFunc
	done   chan error
	col    collector
	plan   *plan.Plan
}

// options probes this kernel and fills a session's facts, BTF and the
// attach plan of class.
func options(tb testing.TB, class plan.Class) session.Options {
	tb.Helper()
	facts, spec, err := probe.Kernel(probe.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	p, err := plan.Build(facts, class)
	if err != nil {
		tb.Fatal(err)
	}
	return session.Options{Facts: facts, BTF: spec, Plan: p}
}

func startTracer(t *testing.T, class plan.Class, f session.Filter) *tracer {
	t.Helper()
	needRoot(t)
	o := options(t, class)
	o.Filter = f
	return startTracerWith(t, o)
}

// startTracerWith starts a session with o and collects its events.
func startTracerWith(t *testing.T, o session.Options) *tracer {
	t.Helper()
	return startTracerSink(t, o, &session.Collector{})
}

// collector is a sink that keeps what it is given.
type collector interface {
	session.Sink
	Events() []event.Event
}

// startTracerSink starts a session with o that feeds col.
func startTracerSink(t *testing.T, o session.Options, col collector) *tracer {
	t.Helper()
	return startTracerRaw(t, o, col, nil)
}

// startTracerRaw starts a session with o that feeds col, and raw with each
// record as the ring buffer gives it (nil: none).
func startTracerRaw(t *testing.T, o session.Options, col collector, raw func([]byte) error) *tracer {
	t.Helper()
	needRoot(t)
	sess, err := session.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tr := &tracer{sess: sess, cancel: cancel, done: make(chan error, 1), col: col, plan: o.Plan}
	go func() { tr.done <- sess.Run(ctx, tr.col, raw) }()
	t.Cleanup(func() { tr.stop(t) })
	return tr
}

// stop ends the trace (once) and returns every event, in order.
func (tr *tracer) stop(t *testing.T) []event.Event {
	t.Helper()
	if tr.cancel != nil {
		time.Sleep(100 * time.Millisecond) // let asynchronous completions land
		tr.cancel()
		if err := <-tr.done; err != nil {
			t.Errorf("session: %v", err)
		}
		st := tr.sess.Stats()
		if st.Lost != 0 || st.Decode != 0 || len(st.Overflow) != 0 {
			t.Errorf("lost %d events, %d decode errors, tracking maps full %v", st.Lost, st.Decode, st.Overflow)
		}
		tr.sess.Close()
		tr.cancel = nil
	}
	return tr.col.Events()
}

type frameID struct {
	sk    uint64
	frame uint32
}

// frameStates groups frame_state events by frame.
func frameStates(evs []event.Event) map[frameID][]event.Event {
	m := map[frameID][]event.Event{}
	for _, e := range evs {
		if e.Kind == event.FrameState {
			k := frameID{e.Sk, e.Frame}
			m[k] = append(m[k], e)
		}
	}
	return m
}

func statesOf(evs []event.Event) string {
	var s []string
	for _, e := range evs {
		s = append(s, e.New.String())
	}
	return strings.Join(s, ">")
}

func checkOrdered(t *testing.T, evs []event.Event) {
	t.Helper()
	for i := 1; i < len(evs); i++ {
		if evs[i].TS < evs[i-1].TS {
			t.Fatalf("event %d (%v at %d) before event %d (%v at %d)", i, evs[i].Kind, evs[i].TS, i-1, evs[i-1].Kind, evs[i-1].TS)
		}
	}
}

// checkLifecycles asserts frames 0..n-1 of the socket each went
// SEND_REQUEST -> SENDING -> AVAILABLE `rounds` times, and returns the
// events of that socket.
func checkLifecycles(t *testing.T, evs []event.Event, pid uint32, n, rounds int) []event.Event {
	t.Helper()
	checkOrdered(t, evs)
	var mine []event.Event
	var sk uint64
	for _, e := range evs {
		if e.Kind == event.SendmsgEnter && e.PID == pid {
			sk = e.Sk
			break
		}
	}
	if sk == 0 {
		t.Fatalf("no sendmsg from pid %d among %d events", pid, len(evs))
	}
	for _, e := range evs {
		if e.Sk == sk {
			mine = append(mine, e)
		}
	}
	want := strings.TrimSuffix(strings.Repeat("SEND_REQUEST>SENDING>AVAILABLE>", rounds), ">")
	fs := frameStates(mine)
	for i := 0; i < n; i++ {
		got := statesOf(fs[frameID{sk, uint32(i)}])
		if got != want {
			t.Errorf("frame %d: %s, want %s", i, got, want)
		}
	}
	if len(fs) != n {
		t.Errorf("%d frames have events, want %d", len(fs), n)
	}
	return mine
}

func sendRing(t *testing.T, l *lab.Lab, ifname string, o txring.Options) txring.Summary {
	t.Helper()
	if l != nil {
		o.Socket.NetNS = l.SenderNS
	}
	o.Socket.Ifname = ifname
	if o.Ring.Frames == 0 {
		o.Ring = txring.Geometry{Version: txring.V2, Frames: 8, FrameSize: 2048, BlockSize: 4096}
	}
	if o.Frame.Size == 0 {
		o.Frame = txring.FrameSpec{Dst: txring.BroadcastMAC, EtherType: txring.EtherTypeLocalExp1, Size: 300}
	} else if o.Frame.Dst == nil {
		o.Frame.Dst, o.Frame.EtherType = txring.BroadcastMAC, txring.EtherTypeLocalExp1
	}
	if o.Drain == 0 {
		o.Drain = 2 * time.Second
	}
	sum, err := txring.Run(context.Background(), o)
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	return sum
}

// labRing opens a V2 TX ring of n frames of frameSize bytes on the lab's
// sender; closed at the test's end.
func labRing(t *testing.T, l *lab.Lab, n, frameSize int) *txring.Ring {
	t.Helper()
	r, err := txring.Open(txring.SocketConfig{Ifname: l.SenderIf, NetNS: l.SenderNS},
		txring.Geometry{Version: txring.V2, Frames: n, FrameSize: frameSize, BlockSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// requestedRing opens a V2 TX ring of n frames on the lab's sender, every
// frame filled with size bytes and SEND_REQUEST; closed at the test's end.
func requestedRing(t *testing.T, l *lab.Lab, n, size int) *txring.Ring {
	t.Helper()
	r := labRing(t, l, n, 2048)
	pkt := txring.FrameSpec{Dst: txring.BroadcastMAC, EtherType: txring.EtherTypeLocalExp1, Size: size}.Build()
	for i := 0; i < n; i++ {
		r.Fill(i, pkt)
		r.SetStatus(i, txring.SendRequest)
	}
	return r
}

func newLab(t *testing.T) *lab.Lab {
	t.Helper()
	needRoot(t)
	l, err := lab.New(lab.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func returns(evs []event.Event) []int64 {
	var r []int64
	for _, e := range evs {
		if e.Kind == event.SendmsgReturn {
			r = append(r, e.Ret())
		}
	}
	return r
}

func TestLoopback(t *testing.T) {
	tr := startTracer(t, plan.Auto, session.Filter{PID: uint32(os.Getpid())})
	sendRing(t, nil, "lo", txring.Options{Count: 8})
	evs := checkLifecycles(t, tr.stop(t), uint32(os.Getpid()), 8, 1)
	if r := returns(evs); len(r) != 1 || r[0] != 8*300 {
		t.Errorf("sendmsg returns %v, want one of %d", r, 8*300)
	}
}

func TestVethV2AndV3(t *testing.T) {
	l := newLab(t)
	for _, v := range []txring.Version{txring.V2, txring.V3} {
		t.Run(v.String(), func(t *testing.T) {
			tr := startTracer(t, plan.Auto, session.Filter{PID: uint32(os.Getpid())})
			sendRing(t, l, l.SenderIf, txring.Options{Count: 64, Ring: txring.Geometry{Version: v, Frames: 32, FrameSize: 2048, BlockSize: 8192}})
			evs := checkLifecycles(t, tr.stop(t), uint32(os.Getpid()), 32, 2)
			// On veth the frame completes when the peer frees the skb:
			// an exact completion, with the frame index learnt at xmit.
			for _, e := range evs {
				if e.Kind == event.FrameState && e.New == event.Available && e.Prec != event.Exact {
					t.Errorf("frame %d completed %v (%v), want exact on veth", e.Frame, e.Prec, e.Cause)
				}
			}
		})
	}
}

// TestQdiscDropRollback: a tbf whose queue holds one frame drops the next;
// the kernel frees the ring skb inside the sender's dev_queue_xmit, the
// destructor marks the frame AVAILABLE, tpacket_snd writes SEND_REQUEST
// back and returns -ENOBUFS.
func TestQdiscDropRollback(t *testing.T) {
	l := newLab(t)
	if err := l.Shape(lab.NIC{Rate: 200e3, Burst: 1600, LimitBytes: 1600}); err != nil {
		t.Fatal(err)
	}
	tr := startTracer(t, plan.Auto, session.Filter{PID: uint32(os.Getpid())})
	r := requestedRing(t, l, 4, 1000)
	n, err := r.Send(unix.MSG_DONTWAIT)
	if err != unix.ENOBUFS {
		t.Fatalf("sendto = %d, %v; want ENOBUFS", n, err)
	}
	r.WaitAvailable(2 * time.Second)
	drops, err := l.Drops()
	if err != nil {
		t.Fatal(err)
	}
	evs := tr.stop(t)
	checkOrdered(t, evs)
	var dropEv []event.Event
	var rollbacks []uint32
	for _, e := range evs {
		switch {
		case e.Kind == event.Drop:
			dropEv = append(dropEv, e)
		case e.Kind == event.FrameState && e.New == event.SendRequest && e.Cause == event.CauseRollback:
			rollbacks = append(rollbacks, e.Frame)
		}
	}
	if uint64(len(dropEv)) != drops || drops == 0 {
		t.Fatalf("%d drop events, qdiscs counted %d drops", len(dropEv), drops)
	}
	d := dropEv[0]
	if len(rollbacks) != 1 || rollbacks[0] != d.Frame {
		t.Errorf("drop of frame %d, roll-backs %v", d.Frame, rollbacks)
	}
	if d.A[0] != 0 && !strings.Contains(dropReason(d), "QDISC") {
		t.Errorf("drop reason %s, want a QDISC_* reason", dropReason(d))
	}
	if got := returns(evs); len(got) != 1 || got[0] != -int64(unix.ENOBUFS) {
		t.Errorf("sendmsg returns %v, want -ENOBUFS", got)
	}
	// The dropped frame is back in SEND_REQUEST, where the ring shows it.
	if st := r.Status(int(d.Frame)); st != txring.SendRequest {
		t.Errorf("ring has dropped frame %d in %v", d.Frame, st)
	}
	fs := frameStates(evs)
	if got := statesOf(fs[frameID{d.Sk, d.Frame}]); got != "SEND_REQUEST>SENDING>AVAILABLE>SEND_REQUEST" {
		t.Errorf("dropped frame %d went %s", d.Frame, got)
	}
}

func dropReason(e event.Event) string {
	facts, _, err := probe.Kernel(probe.Options{})
	if err != nil {
		return fmt.Sprint(e.A[0])
	}
	return facts.DropReasons[uint32(e.A[0])]
}

func TestQdiscBypass(t *testing.T) {
	l := newLab(t)
	tr := startTracer(t, plan.Auto, session.Filter{PID: uint32(os.Getpid())})
	sendRing(t, l, l.SenderIf, txring.Options{Count: 16, Socket: txring.SocketConfig{QdiscBypass: true}})
	evs := checkLifecycles(t, tr.stop(t), uint32(os.Getpid()), 8, 2)
	for _, e := range evs {
		switch e.Kind {
		case event.QdiscEnqueue, event.QdiscDequeue, event.XmitStart:
			t.Errorf("qdisc bypass produced %v", e.Kind)
		}
	}
}

// ringtraceBinary returns $RINGTRACE_BIN when it is set (a prebuilt binary,
// e.g. in a VM without Go), else builds ringtrace for this test.
func ringtraceBinary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("RINGTRACE_BIN"); bin != "" {
		return bin
	}
	bin := filepath.Join(t.TempDir(), "ringtrace")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/ringtrace").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// TestForeignProcess traces a TX ring owned by another process the same
// way: here the ringtrace binary's own sender started as a separate
// process, and trafgen when it is installed.
func TestForeignProcess(t *testing.T) {
	l := newLab(t)
	bin := ringtraceBinary(t)
	senders := []struct {
		name   string
		cmd    *exec.Cmd
		frames int
	}{
		{"ringtrace-send", exec.Command(bin, "send", "-i", l.SenderIf, "--frames", "16", "--count", "48", "--size", "200", "-q"), 16},
	}
	if tg, err := exec.LookPath("trafgen"); err == nil {
		senders = append(senders, struct {
			name   string
			cmd    *exec.Cmd
			frames int
		}{"trafgen", exec.Command(tg, "--dev", l.SenderIf, "--cpus", "1", "-n", "40", "-q", "-Q", "-C",
			"{ fill(0xff, 6), 0x02, 0, 0, 0, 0, 1, c16(0x88b5), fill(0, 100) }"), 0})
	} else {
		t.Log("trafgen not installed (netsniff-ng): only the ringtrace sender is a foreign process here")
	}
	for _, s := range senders {
		t.Run(s.name, func(t *testing.T) {
			tr := startTracer(t, plan.Auto, session.Filter{})
			if err := nsexec.Do(l.SenderNS, s.cmd.Start); err != nil {
				t.Fatal(err)
			}
			if err := s.cmd.Wait(); err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			evs := tr.stop(t)
			pid := uint32(s.cmd.Process.Pid)
			if s.frames > 0 {
				checkLifecycles(t, evs, pid, s.frames, 3)
				return
			}
			// trafgen forks its worker: find it by comm, then check
			// that every frame it sent completed.
			var sk uint64
			for _, e := range evs {
				if e.Kind == event.SendmsgEnter && e.Comm == "trafgen" {
					sk = e.Sk
				}
			}
			if sk == 0 {
				t.Fatal("no sendmsg from trafgen")
			}
			sending, avail, exact := 0, 0, 0
			for _, e := range evs {
				if e.Sk == sk && e.Kind == event.FrameState {
					switch e.New {
					case event.Sending:
						sending++
						if e.Prec == event.Exact {
							exact++
						}
					case event.Available:
						avail++
					}
				}
			}
			if sending < 40 || avail != sending {
				t.Errorf("trafgen: %d SENDING, %d AVAILABLE; want >= 40 and equal", sending, avail)
			}
			// Through the qdisc path every plan promises SENDING exactly
			// (this host's once saw none: ring skbs were not recognised).
			if exact*100 < sending*99 {
				t.Errorf("trafgen: %d of %d SENDING events exact, want >= 99 %%", exact, sending)
			}
		})
	}
}

// TestWrongFormat: a frame longer than the MTU allows makes tpacket_snd
// write WRONG_FORMAT and return -EMSGSIZE.
func TestWrongFormat(t *testing.T) {
	l := newLab(t)
	tr := startTracer(t, plan.Auto, session.Filter{PID: uint32(os.Getpid())})
	r := labRing(t, l, 2, 4096)
	r.Fill(0, txring.FrameSpec{Dst: txring.BroadcastMAC, EtherType: txring.EtherTypeLocalExp1, Size: 1600}.Build())
	r.SetStatus(0, txring.SendRequest)
	if _, err := r.Send(0); err != unix.EMSGSIZE {
		t.Fatalf("sendto: %v, want EMSGSIZE", err)
	}
	evs := tr.stop(t)
	var sk uint64
	for _, e := range evs {
		if e.Kind == event.SendmsgEnter {
			sk = e.Sk
		}
	}
	if got := statesOf(frameStates(evs)[frameID{sk, 0}]); got != "SEND_REQUEST>WRONG_FORMAT" {
		t.Errorf("frame 0 went %s, want SEND_REQUEST>WRONG_FORMAT", got)
	}
}

// TestBlockingSleepsOnCompletion: a blocking send into a slow link sleeps
// in tpacket_snd's TX-completion wait and is woken by completions.
func TestBlockingSleepsOnCompletion(t *testing.T) {
	l := newLab(t)
	// 1 Mbit/s: the frames behind the tbf bucket take about 100 ms, far
	// longer than queueing 16 frames takes even in a loaded TCG guest, so
	// the call must wait for completions (at 10 Mbit/s a slow guest could
	// queue the last frame after the others had all gone).
	nic := lab.NIC{Rate: 1e6, FifoLimit: 50}
	if err := l.Shape(nic); err != nil {
		t.Fatal(err)
	}
	tr := startTracer(t, plan.Auto, session.Filter{PID: uint32(os.Getpid())})
	sum := sendRing(t, l, l.SenderIf, txring.Options{Count: 16, Frame: txring.FrameSpec{Size: 1000},
		Ring: txring.Geometry{Version: txring.V2, Frames: 16, FrameSize: 2048, BlockSize: 4096}})
	if sum.Frames != 16 {
		t.Fatalf("sent %d frames", sum.Frames)
	}
	evs := checkLifecycles(t, tr.stop(t), uint32(os.Getpid()), 16, 1)
	reasons := map[event.Wait]int{}
	wakers := map[event.Wait]int{}
	for _, e := range evs {
		switch e.Kind {
		case event.Sleep:
			reasons[event.Wait(e.Aux)]++
		case event.Wake:
			wakers[event.Wait(e.Aux)]++
		}
	}
	if reasons[event.WaitCompletion] == 0 || wakers[event.WaitCompletion] == 0 {
		t.Errorf("sleeps %v, wakers %v: want TX-completion waits woken by completions", reasons, wakers)
	}
	// The call lasts at least the wire time of what the tbf bucket (2
	// full frames' worth at this rate) does not let through at once.
	var d uint64
	for _, e := range evs {
		if e.Kind == event.SendmsgReturn {
			d = e.TS - e.A[2]
		}
	}
	wire := time.Duration(float64((16*1000-2*1514)*8) / float64(nic.Rate) * float64(time.Second))
	if time.Duration(d) < wire*8/10 {
		t.Errorf("blocking call took %v, want about the %v wire time behind the tbf bucket", time.Duration(d), wire)
	}
}

// TestFilters: --comm and --ifname keep only matching sockets.
func TestFilters(t *testing.T) {
	l := newLab(t)
	send := func() {
		sendRing(t, l, l.SenderIf, txring.Options{Count: 4})
		sendRing(t, l, "lo", txring.Options{Count: 4})
	}
	devsOf := func(evs []event.Event) map[string]bool {
		m := map[string]bool{}
		for _, e := range evs {
			if e.Kind == event.FrameState && e.New == event.Sending {
				m[e.Dev] = true
			}
		}
		return m
	}
	tr := startTracer(t, plan.Auto, session.Filter{Comm: "no-such-comm"})
	send()
	// Blind windows are per CPU, not any socket's: they are streamed
	// whatever the filter (this host hides PID 1's threads).
	if evs := slices.DeleteFunc(tr.stop(t), func(e event.Event) bool { return e.Kind.Always() }); len(evs) != 0 {
		f := event.NewFormatter(0, event.Names{})
		for _, e := range evs {
			t.Log(f.Text(&e))
		}
		t.Errorf("--comm no-such-comm: %d events", len(evs))
	}
	tr = startTracer(t, plan.Auto, session.Filter{PID: uint32(os.Getpid()), Ifname: l.SenderIf})
	send()
	if d := devsOf(tr.stop(t)); !d[l.SenderIf] || d["lo"] {
		t.Errorf("--ifname %s: frames sent on %v", l.SenderIf, d)
	}
	comm, _ := os.ReadFile("/proc/self/comm")
	tr = startTracer(t, plan.Auto, session.Filter{Comm: strings.TrimSpace(string(comm))})
	send()
	if d := devsOf(tr.stop(t)); !d[l.SenderIf] || !d["lo"] {
		t.Errorf("--comm %s: frames sent on %v", comm, d)
	}
}

// rawTrace is a session whose undecoded-order events are kept as they
// leave the ring buffer (the raw callback), before any normalisation.
type rawTrace struct {
	sess   *session.Session
	mu     sync.Mutex
	evs    []event.Event
	enter  chan event.Event // the first sendmsg entry
	cancel context.CancelFunc
	done   chan error
}

func startRawTrace(t *testing.T, sweep time.Duration) *rawTrace {
	t.Helper()
	o := options(t, plan.Auto)
	kerneltest.Require(t, o.Facts, "bpf_loop") // the walk at return and the in-kernel sweep
	o.Filter, o.SweepInterval = session.Filter{PID: uint32(os.Getpid())}, sweep
	sess, err := session.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rt := &rawTrace{sess: sess, enter: make(chan event.Event, 1), cancel: cancel, done: make(chan error, 1)}
	var dec event.Decoder // records come in order: short ones get their names
	go func() {
		rt.done <- sess.Run(ctx, &session.Collector{}, func(b []byte) error {
			var e event.Event
			if err := dec.Decode(b, &e); err != nil {
				return err
			}
			rt.mu.Lock()
			rt.evs = append(rt.evs, e)
			rt.mu.Unlock()
			if e.Kind == event.SendmsgEnter {
				select {
				case rt.enter <- e:
				default:
				}
			}
			return nil
		})
	}()
	t.Cleanup(func() { rt.stop(t); sess.Close() })
	return rt
}

// stop ends the trace (once) and returns the raw events.
func (rt *rawTrace) stop(t *testing.T) []event.Event {
	t.Helper()
	if rt.cancel != nil {
		time.Sleep(100 * time.Millisecond)
		rt.cancel()
		rt.cancel = nil
		if err := <-rt.done; err != nil {
			t.Fatal(err)
		}
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.evs
}

// firstEnter waits for the first sendmsg entry.
func (rt *rawTrace) firstEnter(t *testing.T) event.Event {
	t.Helper()
	select {
	case e := <-rt.enter:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no sendmsg entry seen")
	}
	return event.Event{}
}

// forget makes one completion of sk after since look unseen (see
// Session.ForgetCompletion), once taken frames have left SEND_REQUEST,
// waiting up to 5 s for one.
func (rt *rawTrace) forget(t *testing.T, sk, since uint64, taken int) uint32 {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		idx, ok, err := rt.sess.ForgetCompletion(sk, since, taken)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			return idx
		}
	}
	t.Fatal("no frame completed")
	return 0
}

// TestSweepBudget: one sweep run reads at most 8192 frame entries of a
// ring, so that no run holds its CPU for milliseconds; the next run
// resumes where it stopped. A completion no hook saw, deep in a
// 16384-frame ring, is found by the second run, not the first.
func TestSweepBudget(t *testing.T) {
	l := newLab(t)
	rt := startRawTrace(t, time.Hour) // the test runs the sweeps
	const n, deep = 16384, 12000
	r, err := txring.Open(txring.SocketConfig{Ifname: l.SenderIf, NetNS: l.SenderNS},
		txring.Geometry{Version: txring.V2, Frames: n, FrameSize: 256, BlockSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	pkt := txring.FrameSpec{Dst: txring.BroadcastMAC, EtherType: txring.EtherTypeLocalExp1, Size: 64}.Build()
	for i := 0; i < n; i++ {
		r.Fill(i, pkt)
		r.SetStatus(i, txring.SendRequest)
	}
	if got, err := r.Send(0); err != nil || got != n*64 {
		t.Fatalf("sendto = %d, %v; want %d", got, err, n*64)
	}
	in := rt.firstEnter(t)
	var idx uint32
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(2 * time.Millisecond) {
		i, ok, err := rt.sess.ForgetCompletionFrom(in.Sk, 0, n, deep)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			idx = i
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no frame from %d completed", deep)
		}
	}
	// The first run spends its budget before the frame, the second reaches
	// it. Where the uarg's kfree is the completion hook, the sweep leaves a
	// completion it reads first to that hook until it reaches the frame
	// again: two runs later (the third walks the ring's first half).
	want := []int{0, 1}
	if rt.sess.Plan().Config.UargViaKfree {
		want = []int{0, 1, 0, 1}
	}
	var found []int
	for range want {
		got, err := rt.sess.Sweep()
		if err != nil {
			t.Fatal(err)
		}
		found = append(found, got)
	}
	ss, err := rt.sess.SockState(in.Sk)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("frame %d forgotten; SENDING entries the sweep runs reached: %v; still SENDING after them: %d", idx, found, ss.MapSending)
	if fmt.Sprint(found) != fmt.Sprint(want) || ss.MapSending != 0 {
		t.Errorf("sweep runs reached %v SENDING entries, %d left: want %v (the budget spent before frame %d on the first), then none left", found, ss.MapSending, want, idx)
	}
}

// availables returns the AVAILABLE events of one frame of sk.
func availables(evs []event.Event, sk uint64, frame uint32) []event.Event {
	var out []event.Event
	for _, e := range evs {
		if e.Sk == sk && e.Kind == event.FrameState && e.Frame == frame && e.New == event.Available {
			out = append(out, e)
		}
	}
	return out
}

var (
	hookSweep = event.Hook(bpftypes.RingtraceRtHookRT_H_SWEEP)
	// 40 x 1000 B at 250 kbit/s, within the pfifo's 50: one blocking
	// call of ~1.2 s, a completion every 32 ms after tbf's burst: time
	// for the test to act during the call, between two completions, even
	// on a loaded machine or a TCG guest (tbf's clock is wall time).
	slowNIC = lab.NIC{Rate: 250e3, FifoLimit: 50}
	fortyKB = txring.Options{Count: 40, Frame: txring.FrameSpec{Size: 1000},
		Ring: txring.Geometry{Version: txring.V2, Frames: 40, FrameSize: 2048, BlockSize: 4096}}
)

// TestMissedCompletionFoundAtReturn: a completion no hook reported (the
// kernel skipped a kprobe program) is found when the call returns, bounded
// by when the frame was last seen SENDING, not later by the sweep. The
// miss is made by setting one completed frame back to SENDING in the
// tracer's maps during a blocking call; the sweep is off.
func TestMissedCompletionFoundAtReturn(t *testing.T) {
	l := newLab(t)
	if err := l.Shape(slowNIC); err != nil {
		t.Fatal(err)
	}
	rt := startRawTrace(t, time.Hour)
	if rt.sess.Plan().LateCompletions() {
		rt.stop(t)
		t.Skip("completions reported at the uarg's kfree come after a blocking sender's wake-up, so the return does not look for unseen ones (TestSweepFindsMissedCompletion covers the sweep, which does)")
	}
	sent := make(chan txring.Summary, 1)
	go func() { sent <- sendRing(t, l, l.SenderIf, fortyKB) }()
	in := rt.firstEnter(t)
	idx := rt.forget(t, in.Sk, in.TS, 40)
	forgotten := event.MonotonicNow()
	if sum := <-sent; sum.Frames != 40 {
		t.Fatalf("sent %d frames, want 40", sum.Frames)
	}
	// The frames map's entries, not the socket's count: the test's own
	// read-modify-write of the socket's state (ForgetCompletion) can race
	// a completion and leave that count off by one.
	if left := sendingOf(t, rt.sess, in.Sk); len(left) != 0 {
		t.Errorf("after the call: frames %v still SENDING in the frames map, want none", left)
	}
	evs := rt.stop(t)
	var ret event.Event
	for _, e := range evs {
		if e.Sk == in.Sk && e.Kind == event.SendmsgReturn {
			ret = e
			break
		}
	}
	if ret.TS == 0 {
		t.Fatal("no sendmsg return seen")
	}
	if forgotten > ret.TS {
		t.Fatalf("the call returned (%d) before frame %d was set back to SENDING (%d): nothing to find at the return", ret.TS, idx, forgotten)
	}
	avail := availables(evs, in.Sk, idx)
	if len(avail) != 2 {
		t.Fatalf("frame %d: %d AVAILABLE events, want 2 (the completion, then the one found at return): %v", idx, len(avail), avail)
	}
	first, found := avail[0], avail[1]
	if found.Prec != event.Bounded || found.Cause != event.CauseScan || found.Hook == hookSweep {
		t.Errorf("found as %v/%v by %v, want bounded, scan, by the return's hook", found.Prec, found.Cause, found.Hook)
	}
	if found.TS > ret.TS || found.TSLo > first.TS || found.TSLo < in.TS {
		t.Errorf("found in [%d, %d], want within [entry %d .. completion %d, return %d]", found.TSLo, found.TS, in.TS, first.TS, ret.TS)
	}
}

// sendingOf lists the frames of socket sk the frames map holds SENDING.
func sendingOf(t *testing.T, s *session.Session, sk uint64) []uint32 {
	t.Helper()
	all, err := s.StillSending()
	if err != nil {
		t.Fatal(err)
	}
	var out []uint32
	for _, f := range all {
		if f.Sock.Sk == sk {
			out = append(out, f.Frame)
		}
	}
	return out
}

// TestSweepFindsMissedCompletion: a completion no hook reported after the
// last call, its socket still open, is found by the in-kernel sweep.
func TestSweepFindsMissedCompletion(t *testing.T) {
	l := newLab(t)
	rt := startRawTrace(t, 20*time.Millisecond)
	r := requestedRing(t, l, 8, 300)
	if n, err := r.Send(0); err != nil || n != 8*300 {
		t.Fatalf("sendto = %d, %v; want %d", n, err, 8*300)
	}
	in := rt.firstEnter(t)
	idx := rt.forget(t, in.Sk, 0, 8)
	time.Sleep(200 * time.Millisecond)
	if ss, err := rt.sess.SockState(in.Sk); err != nil || ss.MapSending != 0 {
		t.Errorf("after the sweep: %d frames still SENDING in the maps (%v), want 0", ss.MapSending, err)
	}
	avail := availables(rt.stop(t), in.Sk, idx)
	if len(avail) != 2 || avail[1].Hook != hookSweep || avail[1].Prec != event.Bounded || avail[1].TSLo > avail[0].TS {
		t.Fatalf("frame %d: AVAILABLE events %v, want the completion, then a bounded one by the sweep", idx, avail)
	}
}

// TestSendSyscallFlags: where the send calls are hooked at their syscalls
// (class C), one entry program serves sendto, sendmsg and sendmmsg, whose
// flags sit in different arguments. Each call here has flags of its own;
// each must be reported with exactly those.
func TestSendSyscallFlags(t *testing.T) {
	l := newLab(t)
	tr := startTracer(t, plan.Auto, session.Filter{PID: uint32(os.Getpid())})
	fd := uintptr(labRing(t, l, 8, 2048).FD())
	var empty unix.Msghdr
	mm := []unix.Mmsghdr{{}}
	calls := []struct {
		name  string
		flags int
		call  func(flags uintptr) unix.Errno
	}{
		{"sendto", unix.MSG_DONTWAIT | unix.MSG_NOSIGNAL, func(f uintptr) unix.Errno {
			_, _, e := unix.Syscall6(unix.SYS_SENDTO, fd, 0, 0, f, 0, 0)
			return e
		}},
		{"sendmsg", unix.MSG_DONTWAIT | unix.MSG_EOR, func(f uintptr) unix.Errno {
			_, _, e := unix.Syscall(unix.SYS_SENDMSG, fd, uintptr(unsafe.Pointer(&empty)), f)
			return e
		}},
		{"sendmmsg", unix.MSG_DONTWAIT | unix.MSG_CONFIRM, func(f uintptr) unix.Errno {
			_, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&mm[0])), 1, f, 0, 0)
			return e
		}},
	}
	for _, c := range calls {
		if e := c.call(uintptr(c.flags)); e != 0 {
			t.Fatalf("%s on an empty ring: %v", c.name, e)
		}
	}
	got := map[int]int{}
	for _, e := range tr.stop(t) {
		if e.Kind == event.SendmsgEnter && e.Sk != 0 {
			got[int(uint32(e.A[0]))]++
		}
	}
	if tr.plan.Class != plan.Tracepoint {
		t.Logf("class %s hooks packet_sendmsg, not the syscalls", tr.plan.Class)
	}
	for _, c := range calls {
		if got[c.flags] != 1 {
			t.Errorf("%s with flags %#x: %d entries reported with those flags; all entries' flags: %v", c.name, c.flags, got[c.flags], got)
		}
	}
	if len(got) != len(calls) {
		t.Errorf("entries with flags %v, want one each of the %d calls'", got, len(calls))
	}
}
