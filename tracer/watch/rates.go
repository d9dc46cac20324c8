package watch

import "time"

// Rates is what one socket did between two snapshots.
type Rates struct {
	FramesPerSec float64
	BitsPerSec   float64 // frame data the calls returned as sent
	// Latency percentiles of the frames that completed in between: each
	// the upper bound of its power-of-two bucket (0: none completed).
	P50, P99, Max time.Duration
	Completed     uint64
}

// RatesOf compares a socket with its view in an earlier snapshot (prev nil:
// since the trace began, over dt).
func RatesOf(prev, cur *Socket, dt time.Duration) Rates {
	var p Socket
	if prev != nil {
		p = *prev
	}
	var r Rates
	if dt > 0 {
		r.FramesPerSec = float64(cur.Sent-min(p.Sent, cur.Sent)) / dt.Seconds()
		r.BitsPerSec = float64(cur.Bytes-min(p.Bytes, cur.Bytes)) * 8 / dt.Seconds()
	}
	var d [len(Latency{}.Buckets)]uint64
	for b := range d {
		d[b] = cur.Latency.Buckets[b] - min(p.Latency.Buckets[b], cur.Latency.Buckets[b])
		r.Completed += d[b]
	}
	if r.Completed == 0 {
		return r
	}
	r.P50, r.P99 = quantile(d[:], r.Completed, 0.50), quantile(d[:], r.Completed, 0.99)
	for b := len(d) - 1; b >= 0; b-- {
		if d[b] > 0 {
			r.Max = bucketTop(b)
			break
		}
	}
	return r
}

// quantile is the upper bound of the bucket holding the q-th latency.
func quantile(d []uint64, n uint64, q float64) time.Duration {
	rank := uint64(q*float64(n) + 0.5)
	rank = max(rank, 1)
	var seen uint64
	for b, c := range d {
		seen += c
		if seen >= rank {
			return bucketTop(b)
		}
	}
	return bucketTop(len(d) - 1)
}

// bucketTop is the exclusive upper bound of latency bucket b: 2^(b+1) ns.
func bucketTop(b int) time.Duration { return time.Duration(uint64(1) << (b + 1)) }
