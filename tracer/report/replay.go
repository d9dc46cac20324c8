package report

import (
	"time"

	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/promise"
	"github.com/ringtrace/ringtrace/tracer/record"
)

// maxReplayEvents bounds how many events a replay holds for sorting.
const maxReplayEvents = 50_000_000

// Replay rebuilds the report of a recording: the raw records are put in
// timestamp order (stable: ties keep delivery order) and normalised exactly
// like a live trace.
func Replay(r *record.Reader) (*Report, error) { return ReplayLimits(r, Limits{}) }

// ReplayLimits is Replay keeping only what l allows.
func ReplayLimits(r *record.Reader, l Limits) (*Report, error) {
	return ReplayWith(r, ReplayOptions{Limits: l})
}

// ReplayOptions steer a replay.
type ReplayOptions struct {
	Limits Limits // what the report keeps
	// KernelAddresses shows the recording's raw kernel addresses (see
	// event.Names), when it has any.
	KernelAddresses bool
}

// ReplayWith is Replay with options.
func ReplayWith(r *record.Reader, o ReplayOptions) (*Report, error) {
	l := o.Limits
	evs, err := r.Events(maxReplayEvents)
	if err != nil {
		return nil, err
	}
	names := NamesFromRecording(r)
	names.KernelAddresses = o.KernelAddresses && r.KernelAddresses()
	b := NewBuilder(names)
	b.SetLimits(l)
	b.SetStuckAfter(l.StuckAfter)
	if l.StuckAfter == 0 {
		b.SetStuckAfter(time.Duration(r.Trailer.StuckAfterNS))
	}
	for _, s := range r.Trailer.Holders {
		b.AddSnapshot(s)
	}
	n := event.NewNormalizer()
	if r.Header.Plan != nil {
		n.NoFindAtReturn = r.Header.Plan.LateCompletions()
	}
	var watch *promise.Watch
	if r.Header.Plan != nil {
		watch = promise.New(r.Header.Plan, nil)
		if r.Version < record.VersionBypassFlag {
			watch.WithoutBypassFlag()
		}
	}
	for i := range evs {
		n.Process(&evs[i], func(e *event.Event) error {
			b.Add(e)
			if watch != nil {
				watch.Event(e)
			}
			return nil
		})
	}
	b.SetGaps(r.Trailer.Lost, n.Duplicates, r.Trailer.Missed)
	if watch != nil {
		watch.Skipped(r.Trailer.Missed)
		b.SetPromises(watch.Tallies())
	}
	rep := b.Finish()
	if h := r.Header; h.Kernel != nil {
		rep.Kernel = h.Kernel.Release
	}
	rep.SetPlan(r.Header.Plan)
	return rep, nil
}

// NamesFromRecording resolves drop reasons and kernel addresses from what
// the recording carries (its kernel may not be this one): the trailer's
// resolved locations, else the hooked functions' extents in the header.
// A recording without kernel addresses names the locations its records
// carry by index in the trailer's table. Names show no kernel address.
func NamesFromRecording(r *record.Reader) event.Names {
	var n event.Names
	h := &r.Header
	if h.Kernel == nil {
		return n
	}
	reasons := h.Kernel.DropReasons
	n.DropReason = func(c uint32) string { return reasons[c] }
	if !r.KernelAddresses() {
		locs := r.Trailer.Locations
		n.Symbol = func(i uint64) string {
			if i == 0 || i > uint64(len(locs)) {
				return ""
			}
			return locs[i-1]
		}
		return n
	}
	trailer := r.Trailer.Symbols
	syms := h.Kernel.Symbols
	n.Symbol = func(a uint64) string {
		if name, ok := trailer[a]; ok {
			return name
		}
		for _, s := range syms {
			if a >= s.Addr && a < s.End {
				if a == s.Addr {
					return s.Name
				}
				return s.Name + "+0x" + hex(a-s.Addr)
			}
		}
		return ""
	}
	return n
}

func hex(v uint64) string {
	const digits = "0123456789abcdef"
	if v == 0 {
		return "0"
	}
	var b [16]byte
	i := len(b)
	for v > 0 {
		i--
		b[i] = digits[v&15]
		v >>= 4
	}
	return string(b[i:])
}
