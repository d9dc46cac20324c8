package session_test

import (
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/plan"
	"github.com/ringtrace/ringtrace/tracer/session"
	"github.com/ringtrace/ringtrace/tracer/txring"
)

// TestShortFrameRecords: a stream's frame events come in short records
// (event.FrameShort), and decode with the names a full record would have
// given: the sender's comm, and its socket's device (or, for a completion
// seen at the skb's free, the device the skb reached), through the qdisc
// and with the bypass.
func TestShortFrameRecords(t *testing.T) {
	l := newLab(t)
	o := options(t, plan.Auto)
	pid := uint32(os.Getpid())
	o.Filter = session.Filter{PID: pid}
	var mu sync.Mutex
	sizes := map[int]int{}
	tr := startTracerRaw(t, o, &session.Collector{}, func(b []byte) error {
		mu.Lock()
		sizes[len(b)]++
		mu.Unlock()
		return nil
	})
	sendRing(t, l, l.SenderIf, txring.Options{Count: 16})
	sendRing(t, l, l.SenderIf, txring.Options{Count: 16, Socket: txring.SocketConfig{QdiscBypass: true}})
	evs := tr.stop(t)
	comm, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Fatal(err)
	}
	want := strings.TrimSpace(string(comm))
	mu.Lock()
	short, full := sizes[event.ShortSize], sizes[event.RawSize]
	mu.Unlock()
	t.Logf("class %s: %d short records, %d full", tr.plan.Class, short, full)
	if short == 0 {
		t.Errorf("no short record among %d", full)
	}
	ifindex := map[uint64]uint32{} // socket -> its device, from its call entries
	for _, e := range evs {
		if e.Kind == event.SendmsgEnter && e.PID == pid && e.Dev != "" {
			ifindex[e.Sk] = e.Ifindex
		}
	}
	n, exactSending := 0, 0
	devIndex := map[string]uint32{}
	for _, e := range evs {
		if e.Kind != event.FrameState || e.PID != pid {
			continue
		}
		n++
		if e.Comm != want {
			t.Errorf("%s frame %d -> %s: comm %q, want %q", tr.plan.Class, e.Frame, e.New, e.Comm, want)
		}
		if e.New == event.Sending && e.Prec == event.Exact {
			exactSending++
			if e.Dev != l.SenderIf || e.Ifindex != ifindex[e.Sk] || e.Ifindex == 0 {
				t.Errorf("frame %d -> SENDING on %q (%d), want %q (%d)", e.Frame, e.Dev, e.Ifindex, l.SenderIf, ifindex[e.Sk])
			}
		}
		// Where the free of the frame's skb completes it (destructor
		// kernels), the event names the device the skb reached: the
		// peer. Names and indexes must match whichever record gave them.
		if e.Dev != "" {
			if e.Dev != l.SenderIf && e.Dev != l.PeerIf {
				t.Errorf("frame %d -> %s on %q, want %q, %q or none", e.Frame, e.New, e.Dev, l.SenderIf, l.PeerIf)
			}
			if i, seen := devIndex[e.Dev]; seen && i != e.Ifindex {
				t.Errorf("frame %d -> %s on %s with ifindex %d, earlier %d", e.Frame, e.New, e.Dev, e.Ifindex, i)
			}
			devIndex[e.Dev] = e.Ifindex
		}
	}
	if n < 2*2*16 {
		t.Errorf("%d frame events of pid %d, want at least %d", n, pid, 2*2*16)
	}
	if exactSending == 0 {
		t.Errorf("no exact SENDING through the qdisc")
	}
}
