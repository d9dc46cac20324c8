package report

import (
	"math/bits"

	"github.com/ringtrace/ringtrace/tracer/bpfobj/bpftypes"
)

// HistBuckets is the number of power-of-two buckets of a Histogram, the
// same as the in-kernel histograms (RT_HIST_BUCKETS in bpf/ringtrace.h).
const HistBuckets = len(bpftypes.RingtraceRtSockAgg{}.Hist)

// Histogram counts durations in power-of-two nanosecond buckets: bucket i
// holds [2^i, 2^(i+1)) ns, bucket 0 also 0 ns, the last everything above.
type Histogram struct {
	Count   uint64              `json:"count"`
	Sum     uint64              `json:"sum_ns"`
	Max     uint64              `json:"max_ns"`
	Buckets [HistBuckets]uint64 `json:"buckets"`
}

// Bucket is the bucket a duration falls in.
func Bucket(ns uint64) int {
	if ns == 0 {
		return 0
	}
	return min(bits.Len64(ns)-1, HistBuckets-1)
}

// Add counts one duration.
func (h *Histogram) Add(ns uint64) {
	h.Count++
	h.Sum += ns
	h.Max = max(h.Max, ns)
	h.Buckets[Bucket(ns)]++
}

// Merge adds o's counts.
func (h *Histogram) Merge(o *Histogram) {
	h.Count += o.Count
	h.Sum += o.Sum
	h.Max = max(h.Max, o.Max)
	for i, n := range o.Buckets {
		h.Buckets[i] += n
	}
}

// Quantile is an upper bound of the q-quantile (0 < q <= 1): the top of
// the bucket it falls in, or Max if that is lower.
func (h *Histogram) Quantile(q float64) uint64 {
	if h.Count == 0 {
		return 0
	}
	rank := uint64(q*float64(h.Count) + 0.5)
	rank = max(rank, 1)
	var seen uint64
	for i, n := range h.Buckets {
		seen += n
		if seen >= rank {
			if i == HistBuckets-1 {
				return h.Max
			}
			return min(uint64(1)<<(i+1)-1, h.Max)
		}
	}
	return h.Max
}

// Mean is the average duration.
func (h *Histogram) Mean() uint64 {
	if h.Count == 0 {
		return 0
	}
	return h.Sum / h.Count
}

// remove takes one duration back out (Max stays).
func (h *Histogram) remove(ns uint64) {
	if h.Count == 0 {
		return
	}
	h.Count--
	h.Sum -= min(ns, h.Sum)
	if b := Bucket(ns); h.Buckets[b] > 0 {
		h.Buckets[b]--
	}
}
