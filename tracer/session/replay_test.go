package session

import (
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"unsafe"

	"github.com/ringtrace/ringtrace/tracer/bpfobj/bpftypes"
	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/kernel"
	"github.com/ringtrace/ringtrace/tracer/record"
)

const recordingsDir = "../../testdata/recordings"

// Offsets of the time fields in a raw record.
var (
	offTS   = unsafe.Offsetof(bpftypes.RingtraceRtEvent{}.Ts)
	offTSLo = unsafe.Offsetof(bpftypes.RingtraceRtEvent{}.TsLo)
	offA2   = unsafe.Offsetof(bpftypes.RingtraceRtEvent{}.A) + 16
)

// Which time fields a record carries.
const (
	hasTSLo = 1 << iota
	hasA2
)

// replay hands out the raw records of every recording in
// testdata/recordings as the ring buffer would, round after round, each
// round later than the one before by the span of the recordings.
type replay struct {
	tmpl   [][]byte // the records, times rebased: the recordings one after the other
	fields []uint8  // time fields of each record besides TS
	span   uint64   // added to every time per round
	rec    []byte   // the record handed out, like ringbuf.Record.RawSample
	i      int
	shift  uint64
	names  event.Names
}

// loadReplay reads the recordings. jitter > 0 moves each record up to
// jitter places later, the way records of several CPUs interleave in the
// ring buffer.
func loadReplay(tb testing.TB, jitter int) *replay {
	tb.Helper()
	files, _ := filepath.Glob(filepath.Join(recordingsDir, "*.rtrec"))
	if len(files) == 0 {
		tb.Fatal("no recordings")
	}
	rp := &replay{rec: make([]byte, event.RawSize)}
	var reasons map[uint32]string
	next := uint64(1e9) // where the next recording starts
	for _, f := range files {
		evs, r := readRecording(tb, f)
		if reasons == nil && r.Header.Kernel != nil {
			reasons = r.Header.Kernel.DropReasons
		}
		// Rebase: the recording's earliest time becomes next.
		first, last := ^uint64(0), uint64(0)
		for i := range evs {
			visitTimes(&evs[i], func(t *uint64) { first, last = min(first, *t), max(last, *t) })
		}
		for i := range evs {
			e := &evs[i]
			var fl uint8
			visitTimes(e, func(t *uint64) {
				*t = *t - first + next
				switch t {
				case &e.TSLo:
					fl |= hasTSLo
				case &e.A[2]:
					fl |= hasA2
				}
			})
			rp.tmpl = append(rp.tmpl, event.Encode(*e))
			rp.fields = append(rp.fields, fl)
		}
		next += last - first + 1e6
	}
	rp.span = next - 1e9
	if jitter > 0 {
		rnd := rand.New(rand.NewPCG(1, 2))
		pos := make([]int, len(rp.tmpl))
		for i := range pos {
			pos[i] = i + rnd.IntN(jitter+1)
		}
		idx := make([]int, len(pos))
		for i := range idx {
			idx[i] = i
		}
		slices.SortStableFunc(idx, func(a, b int) int { return pos[a] - pos[b] })
		tmpl, fields := make([][]byte, len(idx)), make([]uint8, len(idx))
		for i, j := range idx {
			tmpl[i], fields[i] = rp.tmpl[j], rp.fields[j]
		}
		rp.tmpl, rp.fields = tmpl, fields
	}
	sym := &kernel.Symbolizer{}
	rp.names = event.Names{
		DropReason: func(c uint32) string { return reasons[c] },
		Symbol:     sym.Lookup,
	}
	sym.Lookup(0) // read kallsyms now, not while timing
	return rp
}

func readRecording(tb testing.TB, path string) ([]event.Event, *record.Reader) {
	tb.Helper()
	r, err := record.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer r.Close()
	var evs []event.Event
	for {
		e, err := r.NextEvent()
		if errors.Is(err, io.EOF) {
			return evs, r
		}
		if err != nil {
			tb.Fatal(err)
		}
		evs = append(evs, e)
	}
}

// visitTimes calls fn with each field of e that is a time.
func visitTimes(e *event.Event, fn func(*uint64)) {
	fn(&e.TS)
	if e.TSLo != 0 {
		fn(&e.TSLo)
	}
	sendmsgReturn := e.Kind == event.SendmsgReturn // A[2]: the call's entry
	unseenSending := e.Kind == event.FrameState && e.Old == event.SendRequest && e.New == event.Available
	if (sendmsgReturn || unseenSending) && e.A[2] != 0 {
		fn(&e.A[2])
	}
}

// next returns the next record and its timestamp.
func (rp *replay) next() ([]byte, uint64) {
	if rp.i == len(rp.tmpl) {
		rp.i = 0
		rp.shift += rp.span
	}
	copy(rp.rec, rp.tmpl[rp.i])
	ts := addTime(rp.rec[offTS:], rp.shift)
	if fl := rp.fields[rp.i]; fl != 0 {
		if fl&hasTSLo != 0 {
			addTime(rp.rec[offTSLo:], rp.shift)
		}
		if fl&hasA2 != 0 {
			addTime(rp.rec[offA2:], rp.shift)
		}
	}
	rp.i++
	return rp.rec, ts
}

func addTime(b []byte, d uint64) uint64 {
	t := binary.LittleEndian.Uint64(b) + d
	binary.LittleEndian.PutUint64(b, t)
	return t
}

func newTestSession() *Session {
	s := &Session{}
	s.stats.PerKind = map[event.Kind]uint64{}
	return s
}

// heldEvents is how many events the benchmark keeps in the reorder buffer:
// Run's 10ms window at a million events per second.
const heldEvents = 10000

// runner feeds records through a batcher and a pipeline the way Run does,
// releasing the events older than the newest heldEvents after each batch.
type runner struct {
	rp     *replay
	s      *Session
	sink   Sink
	bt     *batcher
	p      *pipeline
	n      int             // records fed so far
	recent [1 << 14]uint64 // timestamps of the last records
}

func newRunner(rp *replay, sink Sink) *runner {
	r := &runner{rp: rp, s: newTestSession(), sink: sink, bt: newBatcher()}
	r.p = r.s.newPipeline(sink)
	return r
}

// run feeds n more records and delivers what is due.
func (r *runner) run(tb testing.TB, n int) {
	const mask = len(r.recent) - 1
	for end := r.n + n; r.n < end; r.n++ {
		raw, ts := r.rp.next()
		r.recent[r.n&mask] = ts
		if !r.bt.add(raw) {
			continue
		}
		evs := r.bt.take()
		r.p.push(evs)
		r.bt.recycle(evs)
		if r.n >= heldEvents {
			if err := r.p.release(r.recent[(r.n-heldEvents)&mask]); err != nil {
				tb.Fatal(err)
			}
			if err := r.sink.Flush(); err != nil {
				tb.Fatal(err)
			}
		}
	}
}

// finish delivers everything still held.
func (r *runner) finish(tb testing.TB) {
	r.p.push(r.bt.take())
	if err := r.p.flush(); err != nil {
		tb.Fatal(err)
	}
	if err := r.sink.Flush(); err != nil {
		tb.Fatal(err)
	}
}

// TestBatcherKeepsBatchesThroughLag: the loop falls behind at each release
// and then hands back every batch the reader filled meanwhile, up to
// batchesAhead. The reader must reuse them all at the next lag, not drop
// most and allocate anew (90 MB/s of garbage when it did, streaming).
func TestBatcherKeepsBatchesThroughLag(t *testing.T) {
	rp := loadReplay(t, 0)
	bt := newBatcher()
	queued := make([][]event.Event, 0, batchesAhead)
	lag := func() {
		queued = queued[:0]
		for len(queued) < batchesAhead {
			raw, _ := rp.next()
			if bt.add(raw) {
				queued = append(queued, bt.take())
			}
		}
		for _, evs := range queued { // the loop catches up
			bt.recycle(evs)
		}
	}
	lag() // the batches are made once
	if n := testing.AllocsPerRun(3, lag); n != 0 {
		t.Errorf("%.0f allocations per lag of %d batches once the batches exist, want 0", n, batchesAhead)
	}
}
