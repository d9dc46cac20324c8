// Package record owns ringtrace's recording file format: the raw event
// stream of a trace as the BPF programs wrote it, behind a versioned header
// that carries what is needed to read it anywhere — the kernel facts, the
// attach plan, the clock base and the record layout.
//
// Recordings are meant to be shared, and kernel addresses in them defeat
// KASLR: unless the header says KernelAddresses, the writer replaces every
// kernel pointer of the records by a pseudonym stable within the recording
// (pseudonyms.go), names their drop and free locations in the trailer,
// and leaves the addresses out of the header and trailer.
//
// Layout (all integers little-endian), documented in docs/recording-format.md:
//
//	magic    "RTREC\x00\r\n"              8 bytes
//	version  uint32                       currently 7 (1 to 6 are read too)
//	hlen     uint32                       length of the header JSON
//	header   hlen bytes of JSON           Header
//	records  repeated: uint32 n, n bytes  one struct rt_event, or struct rt_frame_short (version 6), each
//	trailer  optional: uint32 0xffffffff, uint32 tlen, tlen bytes of JSON (Trailer)
//
// A reader rejects unknown magic, versions newer than it knows, headers or
// records larger than sane limits, and truncated data, with the offset.
package record

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"sort"
	"time"

	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/holders"
	"github.com/ringtrace/ringtrace/tracer/inputerr"
	"github.com/ringtrace/ringtrace/tracer/kernel"
	"github.com/ringtrace/ringtrace/tracer/outfile"
	"github.com/ringtrace/ringtrace/tracer/plan"
	"github.com/ringtrace/ringtrace/tracer/promise"
)

// Magic starts every recording.
const Magic = "RTREC\x00\r\n"

// Version is the format version this package writes and the newest it reads.
const Version = 7

// VersionXmitPair is the first version whose records may be xmit pairs
// (event.XmitPair: a driver's xmit start and return in one record, which
// Events splits); an older reader would refuse them as of unknown kind.
const VersionXmitPair = 7

// VersionShortRecord is the first version whose records may be short
// frame records (event.FrameShort, struct rt_frame_short), whose names the
// records before them give: an older reader would refuse them by size.
const VersionShortRecord = 6

// VersionCallRecord is the first version whose records may be one-record
// calls (event.SendmsgCall: a poll's entry and return in one record,
// which Events splits); an older reader would refuse them as of unknown
// kind, record by record.
const VersionCallRecord = 5

// VersionPseudonyms is the first version whose records may carry
// pseudonyms instead of kernel pointers (Reader.KernelAddresses).
const VersionPseudonyms = 4

// VersionBypassFlag is the first version whose sendmsg_enter records say
// whether the socket sends with PACKET_QDISC_BYPASS (a[2]); before it a[2]
// was 0 whatever the socket did.
const VersionBypassFlag = 3

const (
	maxHeader = 16 << 20
	maxRecord = 64 << 10
	// trailerMark, in place of a record length, starts the trailer.
	trailerMark = 0xffffffff
)

// Trailer carries what is only known when the trace ends.
type Trailer struct {
	// Symbols names the kernel addresses events refer to (drop and free
	// locations), resolved from /proc/kallsyms of the traced machine, in a
	// recording with kernel addresses.
	Symbols map[uint64]string `json:"symbols,omitempty"`
	// Locations names the drop and free locations of a recording without
	// kernel addresses, resolved the same way: its records carry location
	// i (from 1) for Locations[i-1] ("" when unnamed).
	Locations []string `json:"locations,omitempty"`
	Lost      uint64   `json:"lost"`
	// Missed are the runs of each attachment the kernel skipped (see
	// session.Stats.Missed).
	Missed map[string]uint64 `json:"missed,omitempty"`
	// Holders are the walks of the kernel's sockets taken for stuck frames
	// (tracer/holders), and StuckAfterNS the threshold the trace used.
	Holders      []*holders.Snapshot `json:"holders,omitempty"`
	StuckAfterNS uint64              `json:"stuck_after_ns,omitempty"`
	// Promises are the plan's exact promises as the live trace kept them
	// (tracer/promise); a report recomputes them from the records.
	Promises []promise.Tally `json:"promises,omitempty"`
	// Check lets a reader detect records damaged after they were written.
	Check *Check `json:"check,omitempty"`
}

// Check is the record count and the CRC-32C (Castagnoli) of every record's
// length and bytes, in file order.
type Check struct {
	Records uint64 `json:"records"`
	CRC32C  uint32 `json:"crc32c"`
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Header describes a recording.
type Header struct {
	Tool            string        `json:"tool"`                        // "ringtrace <version>"
	Created         time.Time     `json:"created"`                     // wall clock when the trace started
	Monotonic       uint64        `json:"monotonic_ns"`                // CLOCK_MONOTONIC at Created: event times are on this clock
	RecordSize      int           `json:"record_size"`                 // sizeof(struct rt_event) when recorded
	ShortRecordSize int           `json:"short_record_size,omitempty"` // sizeof(struct rt_frame_short) when recorded (version 6 on)
	Kernel          *kernel.Facts `json:"kernel"`
	Plan            *plan.Plan    `json:"plan"`
	Command         []string      `json:"command,omitempty"`
	Note            string        `json:"note,omitempty"`
	// KernelAddresses: the records, the kernel facts and the plan keep the
	// kernel's addresses, the trailer names locations by address. Without
	// it (the default) they hold pseudonyms and no address.
	KernelAddresses bool `json:"kernel_addresses"`
}

// Options steer a Writer.
type Options struct {
	// Symbol names a kernel text address ("__dev_queue_xmit+0xd01", ""
	// when unknown): the drop and free locations of the records are named
	// with it in the trailer.
	Symbol func(addr uint64) string
}

// Writer appends records to a recording.
type Writer struct {
	w       *bufio.Writer
	f       io.Closer
	n       uint64
	crc     uint32
	len     [4]byte
	o       Options
	locs    *locations
	ps      *pseudonyms // nil: the recording keeps kernel addresses
	mapper  func(event.Pointer, uint64) uint64
	scratch [event.RawSize]byte // the record being made anonymous
}

// Create starts a recording at path, readable by its owner only.
func Create(path string, h Header, o Options) (*Writer, error) {
	f, err := outfile.Create(path)
	if err != nil {
		return nil, inputerr.New("--record %s: %v", path, err)
	}
	w, err := NewWriter(f, h, o)
	if err != nil {
		f.Close()
		return nil, err
	}
	w.f = f
	return w, nil
}

// NewWriter writes the header to w: without its kernel addresses unless
// h.KernelAddresses.
func NewWriter(w io.Writer, h Header, o Options) (*Writer, error) {
	if h.RecordSize == 0 {
		h.RecordSize = event.RawSize
	}
	if h.ShortRecordSize == 0 {
		h.ShortRecordSize = event.ShortSize
	}
	rw := &Writer{o: o, locs: newLocations()}
	rw.mapper = rw.keepAddress
	if !h.KernelAddresses {
		ps, err := newPseudonyms(rw.locs)
		if err != nil {
			return nil, err
		}
		rw.ps, rw.mapper = ps, ps.mapper
		h.Kernel, h.Plan = h.Kernel.WithoutAddresses(), h.Plan.WithoutAddresses()
	}
	hj, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("recording header: %w", err)
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	var pre [16]byte
	copy(pre[:8], Magic)
	binary.LittleEndian.PutUint32(pre[8:], Version)
	binary.LittleEndian.PutUint32(pre[12:], uint32(len(hj)))
	bw.Write(pre[:])
	if _, err := bw.Write(hj); err != nil {
		return nil, fmt.Errorf("write recording header: %w", err)
	}
	rw.w = bw
	return rw, nil
}

// keepAddress, for a recording with kernel addresses, leaves pointers as
// they are and notes the locations to name.
func (w *Writer) keepAddress(k event.Pointer, v uint64) uint64 {
	if k == event.PointerLocation {
		w.locs.index(v)
	}
	return v
}

// Write appends one raw record (struct rt_event or struct rt_frame_short),
// in the order the ring buffer gave them. Without kernel addresses
// it writes a copy with pseudonyms for the pointers, and refuses records
// it cannot read. It does not allocate.
func (w *Writer) Write(rec []byte) error {
	if w.ps != nil {
		if len(rec) != event.RawSize && len(rec) != event.ShortSize {
			return fmt.Errorf("record of %d bytes, want %d or %d", len(rec), event.RawSize, event.ShortSize)
		}
		rec = w.scratch[:copy(w.scratch[:], rec)]
	}
	if err := event.MapPointers(rec, w.mapper); err != nil && w.ps != nil {
		return fmt.Errorf("record %d: %w", w.n+1, err)
	}
	binary.LittleEndian.PutUint32(w.len[:], uint32(len(rec)))
	w.crc = crc32.Update(crc32.Update(w.crc, castagnoli, w.len[:]), castagnoli, rec)
	w.w.Write(w.len[:])
	_, err := w.w.Write(rec)
	w.n++
	return err
}

// Count is the number of records written.
func (w *Writer) Count() uint64 { return w.n }

// CloseWithTrailer appends the trailer, then closes. The writer adds the
// records' check and the names of their locations (Options.Symbol); in a
// recording without kernel addresses it replaces t's holder snapshots by
// copies with the records' pseudonyms, and drops t.Symbols.
func (w *Writer) CloseWithTrailer(t Trailer) error {
	t.Check = &Check{Records: w.n, CRC32C: w.crc}
	if w.ps == nil {
		t.Symbols = w.locs.byAddress(w.o.Symbol, t.Symbols)
	} else {
		t.Symbols, t.Locations = nil, w.locs.names(w.o.Symbol)
		snaps := make([]*holders.Snapshot, len(t.Holders))
		for i, s := range t.Holders {
			snaps[i] = w.ps.snapshot(s)
		}
		t.Holders = snaps
	}
	tj, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("recording trailer: %w", err)
	}
	var pre [8]byte
	binary.LittleEndian.PutUint32(pre[:4], trailerMark)
	binary.LittleEndian.PutUint32(pre[4:], uint32(len(tj)))
	w.w.Write(pre[:])
	w.w.Write(tj)
	return w.Close()
}

// Close flushes and closes the file (if Create opened it).
func (w *Writer) Close() error {
	err := w.w.Flush()
	if w.f != nil {
		if cerr := w.f.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// Reader reads a recording.
type Reader struct {
	Header Header
	// Trailer is filled in once Next has returned io.EOF (zero if the
	// recording has none: HasTrailer says which).
	Trailer    Trailer
	HasTrailer bool
	// Version is the file's format version.
	Version uint32
	// HeaderJSON and TrailerJSON are the header and trailer as the file has
	// them (TrailerJSON once Next has returned io.EOF, nil without one).
	HeaderJSON, TrailerJSON []byte
	r                       *bufio.Reader
	off                     int64
	buf                     []byte
	f                       io.Closer
	n                       uint64
	crc                     uint32
	dec                     event.Decoder
}

// Open opens a recording file.
func Open(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, inputerr.New("recording %s: %v", path, err)
	}
	r, err := NewReader(f)
	if err != nil {
		f.Close()
		return nil, inputerr.New("recording %s: %v", path, err)
	}
	r.f = f
	return r, nil
}

// ErrFormat is wrapped by every error about malformed recordings.
var ErrFormat = errors.New("not a valid ringtrace recording")

// NewReader reads and checks the header.
func NewReader(in io.Reader) (*Reader, error) {
	r := &Reader{r: bufio.NewReaderSize(in, 1<<20)}
	var pre [16]byte
	if _, err := io.ReadFull(r.r, pre[:]); err != nil {
		return nil, fmt.Errorf("%w: header truncated (%v)", ErrFormat, err)
	}
	if string(pre[:8]) != Magic {
		return nil, fmt.Errorf("%w: bad magic %q", ErrFormat, pre[:8])
	}
	v := binary.LittleEndian.Uint32(pre[8:])
	if v == 0 || v > Version {
		return nil, fmt.Errorf("%w: format version %d, this ringtrace reads up to version %d (upgrade ringtrace)", ErrFormat, v, Version)
	}
	r.Version = v
	hlen := binary.LittleEndian.Uint32(pre[12:])
	if hlen > maxHeader {
		return nil, fmt.Errorf("%w: header of %d bytes", ErrFormat, hlen)
	}
	hj := make([]byte, hlen)
	if _, err := io.ReadFull(r.r, hj); err != nil {
		return nil, fmt.Errorf("%w: header truncated (%v)", ErrFormat, err)
	}
	if err := json.Unmarshal(hj, &r.Header); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrFormat, err)
	}
	if r.Header.RecordSize != event.RawSize {
		return nil, fmt.Errorf("%w: records of %d bytes, this ringtrace decodes %d", ErrFormat, r.Header.RecordSize, event.RawSize)
	}
	if n := r.Header.ShortRecordSize; n != 0 && n != event.ShortSize {
		return nil, fmt.Errorf("%w: short records of %d bytes, this ringtrace decodes %d", ErrFormat, n, event.ShortSize)
	}
	r.off = int64(16 + hlen)
	r.HeaderJSON = hj
	return r, nil
}

// KernelAddresses reports whether the records hold the kernel's pointers
// (every recording before VersionPseudonyms, and those made with
// --kernel-addresses) rather than pseudonyms.
func (r *Reader) KernelAddresses() bool {
	return r.Version < VersionPseudonyms || r.Header.KernelAddresses
}

// Next returns the next raw record, or io.EOF at a clean end.
func (r *Reader) Next() ([]byte, error) {
	var l [4]byte
	n, err := io.ReadFull(r.r, l[:])
	if err == io.EOF {
		return nil, io.EOF
	}
	if err != nil {
		return nil, fmt.Errorf("%w: record length truncated at offset %d (%d of 4 bytes)", ErrFormat, r.off, n)
	}
	size := binary.LittleEndian.Uint32(l[:])
	if size == trailerMark {
		return nil, r.readTrailer()
	}
	if size == 0 || size > maxRecord {
		return nil, fmt.Errorf("%w: record of %d bytes at offset %d", ErrFormat, size, r.off)
	}
	if cap(r.buf) < int(size) {
		r.buf = make([]byte, size)
	}
	r.buf = r.buf[:size]
	if n, err := io.ReadFull(r.r, r.buf); err != nil {
		return nil, fmt.Errorf("%w: record truncated at offset %d (%d of %d bytes)", ErrFormat, r.off+4, n, size)
	}
	r.off += 4 + int64(size)
	r.n++
	r.crc = crc32.Update(crc32.Update(r.crc, castagnoli, l[:]), castagnoli, r.buf)
	return r.buf, nil
}

func (r *Reader) readTrailer() error {
	var l [4]byte
	if _, err := io.ReadFull(r.r, l[:]); err != nil {
		return fmt.Errorf("%w: trailer length truncated at offset %d", ErrFormat, r.off+4)
	}
	n := binary.LittleEndian.Uint32(l[:])
	if n > maxHeader {
		return fmt.Errorf("%w: trailer of %d bytes", ErrFormat, n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r.r, b); err != nil {
		return fmt.Errorf("%w: trailer truncated at offset %d", ErrFormat, r.off+8)
	}
	if err := json.Unmarshal(b, &r.Trailer); err != nil {
		return fmt.Errorf("%w: trailer: %v", ErrFormat, err)
	}
	r.TrailerJSON = b
	if _, err := r.r.ReadByte(); err != io.EOF {
		return fmt.Errorf("%w: data after the trailer", ErrFormat)
	}
	if c := r.Trailer.Check; c != nil && (c.Records != r.n || c.CRC32C != r.crc) {
		return fmt.Errorf("%w: damaged after it was written: %d records with CRC-32C %08x, the trailer says %d with %08x",
			ErrFormat, r.n, r.crc, c.Records, c.CRC32C)
	}
	r.HasTrailer = true
	return io.EOF
}

// NextEvent decodes the next record. A two-event record (event.SendmsgCall,
// event.XmitPair) comes as such: Events splits it, as Event.Unfold does. A short frame
// record comes as the frame_state it stands for, with the names the records
// before it gave.
func (r *Reader) NextEvent() (event.Event, error) {
	raw, err := r.Next()
	if err != nil {
		return event.Event{}, err
	}
	var e event.Event
	if err := r.dec.Decode(raw, &e); err != nil {
		return event.Event{}, fmt.Errorf("%w: record at offset %d: %v", ErrFormat, r.off-int64(len(raw)), err)
	}
	return e, nil
}

// Events reads every remaining event and puts them in timestamp order
// (stable: ties keep the order the ring buffer delivered them in), the order
// live output uses. It refuses more than max events (0: no limit).
func (r *Reader) Events(max int) ([]event.Event, error) {
	var evs []event.Event
	for {
		e, err := r.NextEvent()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if max > 0 && len(evs) >= max {
			return nil, fmt.Errorf("recording has more than %d events: split the trace", max)
		}
		if e.Kind.Folded() {
			var first event.Event
			e.Unfold(&first)
			evs = append(evs, first)
		}
		evs = append(evs, e)
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].TS < evs[j].TS })
	return evs, nil
}

// Close closes the file (if Open opened it).
func (r *Reader) Close() error {
	if r.f != nil {
		return r.f.Close()
	}
	return nil
}
