package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ringtrace/ringtrace/scenarios/lab"
)

// TestSendInterruptDrain: Ctrl-C ends `send --drain` early, with the frames
// still in flight reported. A first Ctrl-C while sending stops the sending
// and starts the drain; a second one ends it. Frames are held in flight by
// a qdisc that lets one 1000-byte frame out a second: the 32 take 32 s.
func TestSendInterruptDrain(t *testing.T) {
	l := slowLab(t)
	bin := buildBinary(t)
	for _, tc := range []struct {
		name string
		args []string // how the sending ends
		sigs int      // SIGINTs to end the drain
	}{
		{"sent-all", []string{"--count", "32"}, 1},
		{"interrupted", []string{"--duration", "5m"}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"send", "--netns", l.SenderNSName(), "-i", l.SenderIf, "-q", "--json",
				"--frames", "32", "--size", "1000", "--dontwait", "--drain", "5m"}, tc.args...)
			send := exec.Command(bin, args...)
			var out bytes.Buffer
			errb := &syncBuffer{}
			send.Stdout, send.Stderr = &out, errb
			if err := send.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { send.Process.Kill() })
			done := make(chan error, 1)
			go func() { done <- send.Wait() }()
			// Ready: its ring is set up; the 32 frames go in one call.
			for start := time.Now(); !strings.Contains(errb.String(), "sndbuf:"); time.Sleep(20 * time.Millisecond) {
				if time.Since(start) > readyTimeout(t) {
					t.Fatalf("send not ready in %v: %s", readyTimeout(t), errb.String())
				}
			}
			// Long enough for that call even in a TCG guest, and far
			// from the 32 s the qdisc takes to let them all out.
			wait := 3 * time.Second
			for i := 0; i < tc.sigs; i++ {
				select {
				case err := <-done:
					t.Fatalf("send ended before signal %d: %v: %s", i+1, err, errb.String())
				case <-time.After(wait):
				}
				send.Process.Signal(os.Interrupt)
				wait = time.Second
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("send: %v: %s", err, errb.String())
				}
			case <-time.After(readyTimeout(t)):
				t.Fatalf("send still draining %v after the last Ctrl-C: %s", readyTimeout(t), errb.String())
			}
			var sum struct {
				Frames   int `json:"frames"`
				InFlight int `json:"frames_in_flight_at_exit"`
			}
			if err := json.Unmarshal(out.Bytes(), &sum); err != nil {
				t.Fatalf("send --json: %v: %q", err, out.String())
			}
			if sum.Frames == 0 || sum.InFlight == 0 {
				t.Errorf("sent %d frames, %d in flight at exit: want both, the qdisc holding most", sum.Frames, sum.InFlight)
			}
		})
	}
}

// slowLab is the lab (skipped unless root) with the sender's veth shaped
// to 8 kbit/s: one 1000-byte frame a second leaves the qdisc, so frames
// sent in a burst stay SENDING for seconds. It is removed at the test's end.
func slowLab(t *testing.T) *lab.Lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	l, err := lab.New(lab.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if err := l.Shape(lab.NIC{Rate: 8000, FifoLimit: 50}); err != nil {
		t.Fatal(err)
	}
	return l
}
