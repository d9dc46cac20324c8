package txring_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringtrace/ringtrace/scenarios/lab"
	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/inputerr"
	"github.com/ringtrace/ringtrace/tracer/txring"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (packet sockets, network namespaces): run `sudo make test`")
	}
}

func newLab(t *testing.T, cfg lab.Config) *lab.Lab {
	t.Helper()
	needRoot(t)
	l, err := lab.New(cfg)
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("lab close: %v", err)
		}
	})
	return l
}

func baseOptions(l *lab.Lab) txring.Options {
	return txring.Options{
		Socket: txring.SocketConfig{Ifname: l.SenderIf, NetNS: l.SenderNS},
		Ring:   txring.Geometry{Version: txring.V2, Frames: 64, FrameSize: 2048, BlockSize: 4096},
		Frame:  txring.FrameSpec{Dst: txring.BroadcastMAC, EtherType: txring.EtherTypeLocalExp1, Size: 1000},
		Mode:   txring.ModeRing,
		Drain:  2 * time.Second,
	}
}

// runAndCount runs the sender and checks that the sender veth transmitted
// exactly the frames the sender says the kernel accepted, and that every
// ring frame is AVAILABLE again.
func runAndCount(t *testing.T, l *lab.Lab, o txring.Options, want uint64) txring.Summary {
	t.Helper()
	before, err := l.SenderStats()
	if err != nil {
		t.Fatal(err)
	}
	sum, err := txring.Run(context.Background(), o)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	after, err := l.SenderStats()
	if err != nil {
		t.Fatal(err)
	}
	if sum.Frames != want {
		t.Errorf("summary: %d frames accepted, want %d (%+v)", sum.Frames, want, sum)
	}
	if got := after.TxPackets - before.TxPackets; got != want {
		t.Errorf("%s tx_packets grew by %d, want %d", l.SenderIf, got, want)
	}
	if got := after.TxBytes - before.TxBytes; got != want*uint64(o.Frame.Size) {
		t.Errorf("%s tx_bytes grew by %d, want %d", l.SenderIf, got, want*uint64(o.Frame.Size))
	}
	if sum.Bytes != want*uint64(o.Frame.Size) {
		t.Errorf("summary bytes %d, want %d", sum.Bytes, want*uint64(o.Frame.Size))
	}
	for i, c := range sum.Final {
		if c.Available != o.Ring.Frames {
			t.Errorf("thread %d: ring at exit %v, want all %d AVAILABLE", i, c, o.Ring.Frames)
		}
	}
	return sum
}

func TestRingVersionsAndFlags(t *testing.T) {
	l := newLab(t, lab.Config{})
	for _, tc := range []struct {
		name     string
		ver      txring.Version
		dontwait bool
		bypass   bool
		count    int64
		linear   bool // frames copied into linear skbs: tx_bytes shows no virtio_net_hdr leaks onto the wire
	}{
		{"v2-blocking", txring.V2, false, false, 64, false},
		{"v3-blocking", txring.V3, false, false, 64, false},
		{"v2-dontwait-reuse", txring.V2, true, false, 1000, false},
		{"v3-dontwait-reuse", txring.V3, true, false, 1000, false},
		{"v2-blocking-reuse", txring.V2, false, false, 1000, false},
		{"v2-qdisc-bypass", txring.V2, false, true, 500, false},
		{"v3-qdisc-bypass-dontwait", txring.V3, true, true, 500, false},
		{"v2-linear", txring.V2, false, false, 1000, true},
		{"v3-linear-qdisc-bypass", txring.V3, true, true, 1000, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := baseOptions(l)
			o.Ring.Version = tc.ver
			o.DontWait = tc.dontwait
			o.Socket.QdiscBypass = tc.bypass
			o.Count = tc.count
			o.Socket.Linear = tc.linear
			sum := runAndCount(t, l, o, uint64(tc.count))
			if sum.Errnos["other"] != 0 {
				t.Errorf("unexpected errors: %v", sum.Errnos)
			}
		})
	}
}

func TestPerPacketMode(t *testing.T) {
	l := newLab(t, lab.Config{})
	o := baseOptions(l)
	o.Mode = txring.ModePerPacket
	o.Count = 300
	sum := runAndCount(t, l, o, 300)
	if sum.Calls != 300 {
		t.Errorf("%d sendto calls, want one per frame (300)", sum.Calls)
	}
}

func TestThreads(t *testing.T) {
	l := newLab(t, lab.Config{})
	o := baseOptions(l)
	o.Threads = 3
	o.CPUs = []int{0}
	o.Count = 1001 // not a multiple of 3: quotas 334+334+333
	sum := runAndCount(t, l, o, 1001)
	if len(sum.SndBuf) != 3 || len(sum.Final) != 3 {
		t.Errorf("want 3 sockets, got sndbuf %v final %v", sum.SndBuf, sum.Final)
	}
}

// TestLoopUntilEmpty is the reference "status" session: 2 frames with
// MSG_DONTWAIT, then sendto() again until it returns 0.
func TestLoopUntilEmpty(t *testing.T) {
	l := newLab(t, lab.Config{})
	o := baseOptions(l)
	o.Ring.Frames = 2
	o.Ring.BlockSize = 4096
	o.DontWait = true
	o.Loop = true
	o.Count = 2
	var calls []txring.Call
	o.OnCall = func(c txring.Call) { calls = append(calls, c) }
	runAndCount(t, l, o, 2)
	if len(calls) < 2 {
		t.Fatalf("want at least 2 sendto calls, got %+v", calls)
	}
	if calls[0].Ret != 2*o.Frame.Size || calls[0].Accepted != 2 {
		t.Errorf("first call returned %d (%d frames), want %d bytes of 2 frames", calls[0].Ret, calls[0].Accepted, 2*o.Frame.Size)
	}
	if last := calls[len(calls)-1]; last.Ret != 0 || !last.Loop {
		t.Errorf("last call %+v, want a loop call returning 0", last)
	}
}

func TestSndBufGranted(t *testing.T) {
	l := newLab(t, lab.Config{})
	o := baseOptions(l)
	o.Socket.SndBuf = 1228800
	o.Socket.ForceSndBuf = true
	var granted int
	o.OnReady = func(infos []txring.SocketInfo) { granted = infos[0].SndBuf }
	o.Count = 64
	runAndCount(t, l, o, 64)
	if granted != 2*1228800 {
		t.Errorf("SO_SNDBUFFORCE 1228800 granted %d, want the kernel's doubled 2457600", granted)
	}
}

// TestWrongFormat drives the ring API directly with a tp_len the kernel
// refuses: sendto fails with EMSGSIZE and the frame is left WRONG_FORMAT,
// the next one untouched in SEND_REQUEST.
func TestWrongFormat(t *testing.T) {
	l := newLab(t, lab.Config{MTU: 1000})
	r, err := txring.Open(txring.SocketConfig{Ifname: l.SenderIf, NetNS: l.SenderNS},
		txring.Geometry{Version: txring.V2, Frames: 4, FrameSize: 2048, BlockSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.MaxLen() != 1014 {
		t.Errorf("MaxLen %d, want MTU+14 = 1014", r.MaxLen())
	}
	big := txring.FrameSpec{Dst: txring.BroadcastMAC, EtherType: txring.EtherTypeLocalExp1, Size: 1500}.Build()
	r.Fill(0, big)
	r.Fill(1, big)
	r.SetStatus(0, txring.SendRequest)
	r.SetStatus(1, txring.SendRequest)
	n, err := r.Send(unix.MSG_DONTWAIT)
	if err != unix.EMSGSIZE {
		t.Errorf("sendto returned %d, %v; want EMSGSIZE", n, err)
	}
	if s := r.Status(0); s != txring.WrongFormat {
		t.Errorf("frame 0 is %v, want WRONG_FORMAT", s)
	}
	if s := r.Status(1); s != txring.SendRequest {
		t.Errorf("frame 1 is %v, want untouched SEND_REQUEST", s)
	}
}

func TestBadInput(t *testing.T) {
	l := newLab(t, lab.Config{})
	// A down interface in the sender namespace.
	h, err := l.Handle()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	lo, err := h.LinkByName(l.SenderIf)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		mod  func(o *txring.Options)
	}{
		{"no-such-interface", func(o *txring.Options) { o.Socket.Ifname = "nope0" }},
		{"interface-in-other-netns", func(o *txring.Options) { o.Socket.Ifname = l.PeerIf }},
		{"block-not-page-multiple", func(o *txring.Options) { o.Ring.BlockSize = 5000 }},
		{"frames-not-filling-blocks", func(o *txring.Options) { o.Ring.Frames = 63 }},
		{"frame-size-unaligned", func(o *txring.Options) { o.Ring.FrameSize = 2008 }},
		{"frame-larger-than-block", func(o *txring.Options) { o.Ring.FrameSize = 8192 }},
		{"size-over-mtu", func(o *txring.Options) { o.Frame.Size = 1515 }},
		{"size-over-frame", func(o *txring.Options) { o.Ring.FrameSize = 1024; o.Ring.BlockSize = 4096; o.Frame.Size = 1000 }},
		{"size-under-header", func(o *txring.Options) { o.Frame.Size = 10 }},
		{"negative-count", func(o *txring.Options) { o.Count = -1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := baseOptions(l)
			tc.mod(&o)
			_, err := txring.Run(context.Background(), o)
			if err == nil || !inputerr.Is(err) {
				t.Fatalf("want an input error, got %v", err)
			}
			t.Logf("%v", err)
		})
	}
	t.Run("interface-down", func(t *testing.T) {
		if err := h.LinkSetDown(lo); err != nil {
			t.Fatal(err)
		}
		defer h.LinkSetUp(lo)
		_, err := txring.Run(context.Background(), baseOptions(l))
		if err == nil || !inputerr.Is(err) {
			t.Fatalf("want an input error, got %v", err)
		}
		t.Logf("%v", err)
	})
}

// The tracer's frame states are the kernel's tp_status values (uapi
// if_packet.h), which the ring writes and reads: one set of numbers.
func TestStatesAreTheKernels(t *testing.T) {
	for _, c := range []struct {
		st txring.Status
		ev event.State
	}{{txring.Available, event.Available}, {txring.SendRequest, event.SendRequest}, {txring.Sending, event.Sending}, {txring.WrongFormat, event.WrongFormat}} {
		if event.State(c.st) != c.ev || c.st.String() != c.ev.String() {
			t.Errorf("tp_status %d (%s) is event state %d (%s)", c.st, c.st, c.ev, c.ev)
		}
	}
	if s := txring.Status(3).String(); s != "STATUS(0x3)" {
		t.Errorf("status 3: %s", s)
	}
}

// TestBlockingSendIgnoresRuntimeSignals: a blocking sendto sleeps in
// tpacket_snd (for sndbuf, then for completions) and returns early with the
// bytes queued so far when a signal arrives. Go sends SIGURG to preempt
// goroutines at any time; with SIGURG fired at every thread of the process
// all along, one blocking call must still send the whole ring, as a C
// sender's does.
func TestBlockingSendIgnoresRuntimeSignals(t *testing.T) {
	l := newLab(t, lab.Config{})
	if err := l.Shape(lab.NIC{Rate: 20_000_000, FifoLimit: 50}); err != nil {
		t.Fatal(err)
	}
	o := baseOptions(l)
	o.Socket.SndBuf, o.Socket.ForceSndBuf = 9216, true
	var calls []txring.Call
	o.OnCall = func(c txring.Call) { calls = append(calls, c) }
	stop := make(chan struct{})
	done := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				done <- n
				return
			default:
			}
			tasks, _ := os.ReadDir("/proc/self/task")
			for _, task := range tasks {
				var tid int
				if _, err := fmt.Sscan(task.Name(), &tid); err == nil && unix.Tgkill(os.Getpid(), tid, unix.SIGURG) == nil {
					n++
				}
			}
			time.Sleep(100 * time.Microsecond)
		}
	}()
	sum, err := txring.Run(context.Background(), o)
	close(stop)
	sent := <-done
	if err != nil {
		t.Fatal(err)
	}
	// 64 frames of 1000 bytes at 20 Mbit/s: ~26 ms asleep in the call.
	if len(calls) != 1 || calls[0].Ret != 64*1000 || sum.Frames != 64 {
		t.Fatalf("with %d SIGURGs sent to the process's threads: calls %+v, %d frames; want one call returning 64000", sent, calls, sum.Frames)
	}
	t.Logf("one blocking call sent 64 frames while %d SIGURGs were sent to the process's threads", sent)
}
