package scenarios

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/ringtrace/ringtrace/scenarios/lab"
)

// within checks a measurement against a value derived from physics.
func within(what string, got, want, tol float64) Expectation {
	ok := want > 0 && math.Abs(got-want) <= tol*want
	return pass(what, ok, fmtDur(got), fmt.Sprintf("%s +/- %.0f%%", fmtDur(want), tol*100))
}

func fmtDur(ns float64) string { return time.Duration(ns).Round(time.Microsecond).String() }

func sortedU64(v []uint64) []uint64 {
	s := append([]uint64(nil), v...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s
}

// qdiscDelta is how a qdisc's counters moved: packets sent, drops, requeues.
// kind "" takes the root qdisc (a child's drop is counted by its parent
// too, so summing would count it twice).
func qdiscDelta(before, after []lab.QdiscStats, kind string) (sent, drops, requeues uint64) {
	find := func(qs []lab.QdiscStats, q lab.QdiscStats) lab.QdiscStats {
		for _, x := range qs {
			if x.Handle == q.Handle && x.Kind == q.Kind {
				return x
			}
		}
		return lab.QdiscStats{}
	}
	for _, a := range after {
		if kind == "" && a.Parent != netlink.HANDLE_ROOT || kind != "" && a.Kind != kind {
			continue
		}
		b := find(before, a)
		sent += a.Packets - b.Packets
		drops += uint64(a.Drops - b.Drops)
		requeues += uint64(a.Requeues - b.Requeues)
	}
	return sent, drops, requeues
}
