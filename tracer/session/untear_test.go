package session

import (
	"testing"

	"github.com/ringtrace/ringtrace/tracer/bpfobj/bpftypes"
)

// TestUntear: a copy of the per-CPU aggregates taken while frames are sent
// and completed can hold a completion whose sending it missed; the sum
// read never says fewer frames sent than completed, and a consistent one is
// left as it is.
func TestUntear(t *testing.T) {
	for _, c := range []struct {
		name string
		per  []bpftypes.RingtraceRtSockAgg
		sent uint64
	}{
		{"consistent", []bpftypes.RingtraceRtSockAgg{{Sent: 10, CompletedExact: 7}, {Sent: 5, CompletedBounded: 6}}, 15},
		// CPU 0 copied before a frame was sent there, CPU 1 after it
		// completed there.
		{"torn across CPUs", []bpftypes.RingtraceRtSockAgg{{Sent: 10, CompletedExact: 10}, {CompletedExact: 1}}, 11},
		// one CPU's sent copied before, its completion after.
		{"torn in a CPU", []bpftypes.RingtraceRtSockAgg{{Sent: 379630, CompletedExact: 379631}}, 379631},
		// a rollback on another CPU than the sending: that CPU's count
		// wrapped, and its sending not copied.
		{"wrapped", []bpftypes.RingtraceRtSockAgg{{Sent: 0}, {Sent: ^uint64(0)}}, 0},
		{"in flight", []bpftypes.RingtraceRtSockAgg{{Sent: 9, CompletedExact: 3, CompletedBounded: 2}}, 9},
	} {
		got := untear(addAgg(bpftypes.RingtraceRtSockAgg{}, c.per))
		if got.Sent != c.sent {
			t.Errorf("%s: sent %d, want %d", c.name, got.Sent, c.sent)
		}
		if want := addAgg(bpftypes.RingtraceRtSockAgg{}, c.per); got.CompletedExact != want.CompletedExact ||
			got.CompletedBounded != want.CompletedBounded {
			t.Errorf("%s: completions changed: %+v", c.name, got)
		}
	}
}
