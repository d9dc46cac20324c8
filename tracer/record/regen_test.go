package record_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringtrace/ringtrace/scenarios/lab"
	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/kernel"
	"github.com/ringtrace/ringtrace/tracer/kernel/probe"
	"github.com/ringtrace/ringtrace/tracer/plan"
	"github.com/ringtrace/ringtrace/tracer/record"
	"github.com/ringtrace/ringtrace/tracer/session"
	"github.com/ringtrace/ringtrace/tracer/txring"
)

// recordingsDir holds recordings of real traces taken on a developer
// machine: decoding and report tests run from them without root.
const recordingsDir = "../../testdata/recordings"

type nullSink struct{}

func (nullSink) Event(*event.Event) error { return nil }
func (nullSink) Flush() error             { return nil }

// recordTrace traces while send runs and writes the raw stream to name.
func recordTrace(t *testing.T, name, note string, send func(t *testing.T)) {
	t.Helper()
	facts, spec, err := probe.Kernel(probe.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := plan.Build(facts, plan.Auto)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := session.Open(session.Options{Facts: facts, BTF: spec, Plan: p,
		Filter: session.Filter{PID: uint32(os.Getpid())}, Kinds: event.Kinds()})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	path := filepath.Join(recordingsDir, name+".rtrec")
	var syms kernel.Symbolizer
	w, err := record.Create(path, record.Header{Tool: "ringtrace (testdata generator)", Created: time.Now().UTC(),
		Monotonic: uint64(ts.Nano()), Kernel: facts, Plan: p, Note: note}, record.Options{Symbol: syms.Lookup})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sess.Run(ctx, nullSink{}, w.Write) }()
	send(t)
	time.Sleep(300 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := sess.Stats(); st.Lost != 0 {
		t.Fatalf("lost %d events", st.Lost)
	}
	if err := w.CloseWithTrailer(record.Trailer{}); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %d records", path, w.Count())
}

func frame(size int) txring.FrameSpec {
	return txring.FrameSpec{Dst: txring.BroadcastMAC, EtherType: txring.EtherTypeLocalExp1, Size: size}
}

func run(t *testing.T, o txring.Options) {
	t.Helper()
	if o.Drain == 0 {
		o.Drain = 2 * time.Second
	}
	if _, err := txring.Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
}

// TestRegenerateRecordings rewrites testdata/recordings from this machine's
// kernel: RINGTRACE_REGEN=1 sudo go test ./tracer/record -run Regenerate.
func TestRegenerateRecordings(t *testing.T) {
	if os.Getenv("RINGTRACE_REGEN") == "" {
		t.Skip("set RINGTRACE_REGEN=1 to re-record testdata/recordings (root)")
	}
	if err := os.MkdirAll(recordingsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	newLab := func(t *testing.T, nic *lab.NIC) *lab.Lab {
		l, err := lab.New(lab.Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		if nic != nil {
			if err := l.Shape(*nic); err != nil {
				t.Fatal(err)
			}
		}
		return l
	}
	geo := func(v txring.Version, n int) txring.Geometry {
		return txring.Geometry{Version: v, Frames: n, FrameSize: 2048, BlockSize: 4096}
	}
	t.Run("lo", func(t *testing.T) {
		l := newLab(t, nil)
		recordTrace(t, "lo", "8 frames x 300 B, TPACKET_V2, blocking sendto on lo", func(t *testing.T) {
			run(t, txring.Options{Socket: txring.SocketConfig{Ifname: "lo", NetNS: l.SenderNS},
				Ring: geo(txring.V2, 8), Frame: frame(300), Count: 8})
		})
	})
	t.Run("veth", func(t *testing.T) {
		l := newLab(t, nil)
		recordTrace(t, "veth", "32 frames x 1000 B, TPACKET_V3, MSG_DONTWAIT then loop until empty, on veth", func(t *testing.T) {
			run(t, txring.Options{Socket: txring.SocketConfig{Ifname: l.SenderIf, NetNS: l.SenderNS},
				Ring: geo(txring.V3, 16), Frame: frame(1000), Count: 32, DontWait: true, Loop: true})
		})
	})
	t.Run("status", func(t *testing.T) {
		l := newLab(t, &lab.NIC{Rate: 100e3, Burst: 1600, LimitBytes: 64000})
		recordTrace(t, "status", "reference session 1: 2 frames x 1000 B, MSG_DONTWAIT, loop until queue empty, veth shaped to 100 kbit/s", func(t *testing.T) {
			run(t, txring.Options{Socket: txring.SocketConfig{Ifname: l.SenderIf, NetNS: l.SenderNS},
				Ring: geo(txring.V2, 2), Frame: frame(1000), Count: 2, DontWait: true, Loop: true})
		})
	})
	t.Run("qdisc-drop", func(t *testing.T) {
		l := newLab(t, &lab.NIC{Rate: 200e3, Burst: 1600, LimitBytes: 1600})
		recordTrace(t, "qdisc-drop", "4 frames x 1000 B, MSG_DONTWAIT, tbf 200 kbit/s with a 1600-byte queue: drop, roll-back, -ENOBUFS", func(t *testing.T) {
			r, err := txring.Open(txring.SocketConfig{Ifname: l.SenderIf, NetNS: l.SenderNS}, geo(txring.V2, 4))
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			for i := 0; i < 4; i++ {
				r.Fill(i, frame(1000).Build())
				r.SetStatus(i, txring.SendRequest)
			}
			if _, err := r.Send(unix.MSG_DONTWAIT); err != unix.ENOBUFS {
				t.Fatalf("sendto: %v, want ENOBUFS", err)
			}
			r.WaitAvailable(time.Second)
		})
	})
	t.Run("sndbuf-blocking", func(t *testing.T) {
		l := newLab(t, &lab.NIC{Rate: 10e6, FifoLimit: 50})
		recordTrace(t, "sndbuf-blocking", "32 frames x 1400 B, blocking, SO_SNDBUFFORCE 4608 (granted 9216), 10 Mbit/s + pfifo 50", func(t *testing.T) {
			run(t, txring.Options{Socket: txring.SocketConfig{Ifname: l.SenderIf, NetNS: l.SenderNS, SndBuf: 4608, ForceSndBuf: true},
				Ring: geo(txring.V2, 32), Frame: frame(1400), Count: 32})
		})
	})
	t.Run("dontwait-partial", func(t *testing.T) {
		l := newLab(t, &lab.NIC{Rate: 10e6, FifoLimit: 50})
		recordTrace(t, "dontwait-partial", "one MSG_DONTWAIT sendto of 16 frames x 1400 B with SO_SNDBUFFORCE 4608: partial send", func(t *testing.T) {
			r, err := txring.Open(txring.SocketConfig{Ifname: l.SenderIf, NetNS: l.SenderNS, SndBuf: 4608, ForceSndBuf: true}, geo(txring.V2, 16))
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			for i := 0; i < 16; i++ {
				r.Fill(i, frame(1400).Build())
				r.SetStatus(i, txring.SendRequest)
			}
			if _, err := r.Send(unix.MSG_DONTWAIT); err != nil {
				t.Fatalf("sendto: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		})
	})
	t.Run("bypass", func(t *testing.T) {
		l := newLab(t, nil)
		recordTrace(t, "bypass", "16 frames x 500 B, PACKET_QDISC_BYPASS, blocking, on veth", func(t *testing.T) {
			run(t, txring.Options{Socket: txring.SocketConfig{Ifname: l.SenderIf, NetNS: l.SenderNS, QdiscBypass: true},
				Ring: geo(txring.V2, 8), Frame: frame(500), Count: 16})
		})
	})
}
