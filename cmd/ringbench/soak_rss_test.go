package main

import (
	"testing"
	"time"
)

// TestRSSGrowth: the soak's RSS criterion passes a warm-up plateau and
// fails a leak. The plateau is the tracer RSS (MiB, every 10 s) of a
// 10-minute streaming churn of 6 December 2026: it climbed from ~48 to
// ~55 MiB in its first 3 minutes and stayed there, and the old criterion
// (the 1-minute sample against the last) called that +14 %. The leak is
// the same run plus 0.2 MiB a sample after 3 minutes.
func TestRSSGrowth(t *testing.T) {
	plateau := []float64{48.6, 46.0, 50.7, 48.8, 46.0, 48.3, 50.3, 51.4, 52.3, 51.4, 52.0, 47.8, 49.0, 48.9, 52.6, 54.0, 55.4, 54.0, 55.3, 54.5, 55.5, 54.8, 54.1, 55.0, 55.4, 53.9, 55.2, 55.5, 55.3, 55.4, 53.2, 55.5, 53.7, 54.6, 53.7, 54.0, 55.5, 55.0, 55.4, 54.3, 55.4, 54.2, 55.4, 55.3, 55.5, 55.5, 53.7, 55.5, 54.7, 55.5, 55.5, 55.6, 55.6, 55.2, 54.8, 55.5, 55.0, 55.1, 55.6, 55.2}
	series := func(leak float64) []soakSample {
		var out []soakSample
		for i, mib := range plateau {
			at := time.Duration(i+1) * 10 * time.Second
			if at > 3*time.Minute {
				mib += leak * float64(i+1-18)
			}
			out = append(out, soakSample{at: at, rss: uint64(mib * (1 << 20))})
		}
		return out
	}
	for _, c := range []struct {
		name    string
		leak    float64
		maxGrow float64
		fail    bool
	}{{"plateau", 0, 0.10, false}, {"leak", 0.2, 0.10, true}} {
		warm, end := rssGrowth(series(c.leak))
		growth := float64(end)/float64(warm.rss) - 1
		t.Logf("%s: warm %.1f MiB at %v, end %.1f MiB: %+.1f%%", c.name, float64(warm.rss)/(1<<20), warm.at, float64(end)/(1<<20), 100*growth)
		if (growth > c.maxGrow) != c.fail {
			t.Errorf("%s: growth %+.1f%%, want a %s", c.name, 100*growth, map[bool]string{true: "failure", false: "pass"}[c.fail])
		}
	}
	short := []soakSample{{at: 2 * time.Second, rss: 100}, {at: 4 * time.Second, rss: 90}, {at: 10 * time.Second, rss: 120}}
	if warm, end := rssGrowth(short); warm.rss != 100 || end != 120 {
		t.Errorf("a 10 s run compares %d with %d, want the first sample (100) with the last (120)", warm.rss, end)
	}
}
