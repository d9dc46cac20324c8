package event

import "golang.org/x/sys/unix"

// MonotonicNow is CLOCK_MONOTONIC in ns: the clock of event timestamps
// (bpf_ktime_get_ns), for comparing "now" with events.
func MonotonicNow() uint64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return uint64(ts.Nano())
}
