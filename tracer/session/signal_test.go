package session_test

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringtrace/ringtrace/scenarios/lab"
	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/report"
	"github.com/ringtrace/ringtrace/tracer/txring"
)

// TestInterruptedSendNamed: a signal that reaches a blocking sendto while
// tpacket_snd sleeps for sndbuf makes it return early, the rest of the
// ring left SEND_REQUEST. The return event says which signal was pending
// and the report names the interrupted calls. (ringtrace's own sender holds
// off SIGURG; SIGUSR2 is not held off.)
func TestInterruptedSendNamed(t *testing.T) {
	l := newLab(t)
	if err := l.Shape(lab.NIC{Rate: 20_000_000, FifoLimit: 50}); err != nil {
		t.Fatal(err)
	}
	rt := startRawTrace(t, 20*time.Millisecond)
	const n = 64
	r, err := txring.Open(txring.SocketConfig{Ifname: l.SenderIf, NetNS: l.SenderNS, SndBuf: 9216, ForceSndBuf: true},
		txring.Geometry{Version: txring.V2, Frames: n, FrameSize: 2048, BlockSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	pkt := txring.FrameSpec{Dst: txring.BroadcastMAC, EtherType: txring.EtherTypeLocalExp1, Size: 1000}.Build()
	for i := 0; i < n; i++ {
		r.Fill(i, pkt)
		r.SetStatus(i, txring.SendRequest)
	}
	sigs := make(chan os.Signal, 4096)
	signal.Notify(sigs, unix.SIGUSR2)
	defer signal.Stop(sigs)
	stop, stopped := make(chan struct{}), make(chan int)
	go func() { // SIGUSR2 at every thread of the process, every 200 us
		sent := 0
		for {
			select {
			case <-stop:
				stopped <- sent
				return
			case <-time.After(200 * time.Microsecond):
			}
			tasks, _ := os.ReadDir("/proc/self/task")
			for _, task := range tasks {
				var tid int
				if _, err := fmt.Sscan(task.Name(), &tid); err == nil && unix.Tgkill(os.Getpid(), tid, unix.SIGUSR2) == nil {
					sent++
				}
			}
		}
	}()
	var total, calls int
	for calls < 200 && total < n*1000 {
		got, err := r.Send(0)
		calls++
		if err != nil && err != unix.EINTR {
			t.Fatalf("sendto: %v", err)
		}
		total += max(got, 0)
	}
	close(stop)
	sent := <-stopped
	evs := rt.stop(t)
	var short, named int
	b := report.NewBuilder(event.Names{})
	for i := range evs {
		e := &evs[i]
		b.Add(e)
		if e.Kind == event.SendmsgReturn && e.Ret() > 0 && e.Ret() < n*1000 {
			short++
			if e.PendingSignal() == unix.SIGUSR2 {
				named++
			}
		}
	}
	t.Logf("%d calls sent %d bytes while %d SIGUSR2 were sent; %d short returns, %d with SIGUSR2 pending", calls, total, sent, short, named)
	if short == 0 {
		t.Skip("no call came back short: the signals missed the sndbuf waits")
	}
	if named == 0 {
		t.Fatalf("%d short returns, none with SIGUSR2 pending", short)
	}
	rep := b.Finish()
	var d *report.Diagnosis
	for i := range rep.Diagnoses {
		if rep.Diagnoses[i].ID == report.DiagInterrupted {
			d = &rep.Diagnoses[i]
		}
	}
	if d == nil || !strings.Contains(d.Title, "interrupted by a signal (SIGUSR2") {
		t.Fatalf("no interrupted-send diagnosis naming SIGUSR2: %+v", rep.Diagnoses)
	}
}
