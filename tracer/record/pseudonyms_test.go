package record_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/holders"
	"github.com/ringtrace/ringtrace/tracer/kaddr"
	"github.com/ringtrace/ringtrace/tracer/kernel"
	"github.com/ringtrace/ringtrace/tracer/plan"
	"github.com/ringtrace/ringtrace/tracer/record"
)

const (
	skA, skB       = 0xffff888105469000, 0xffff888105470800
	skbX, skbY     = 0xffff8881022a4e00, 0xffff8881022a5000
	locQdisc, locQ = 0xffffffff81e66371, 0xffffffff81e37ab0
	napiN          = 0xffff888627d2d1c8
	frameAddr      = 0xffffc90000a1c800
	blockAddr      = 0xffffc90000a1c000
)

// pointerEvents has two sockets, one address reused by a third (a new
// inode), skbs seen twice, two drop and free locations and a napi.
func pointerEvents() []event.Event {
	return []event.Event{
		{Kind: event.SendmsgEnter, TS: 1, Sk: skA, SockIno: 10, Frame: event.NoFrame, Comm: "a"},
		{Kind: event.FrameState, TS: 2, Sk: skA, SockIno: 10, Skb: skbX, Frame: 0, Old: event.SendRequest, New: event.Sending},
		{Kind: event.SendmsgEnter, TS: 3, Sk: skB, SockIno: 20, Frame: event.NoFrame, Comm: "b"},
		{Kind: event.Drop, TS: 4, Sk: skB, SockIno: 20, Skb: skbY, Frame: 1, A: [3]uint64{2, locQdisc, 0}},
		{Kind: event.FrameState, TS: 5, Sk: skA, SockIno: 10, Skb: skbX, Frame: 0, Old: event.Sending, New: event.Available, A: [3]uint64{2, locQ, 0}},
		{Kind: event.NapiPoll, TS: 6, A: [3]uint64{1, 64, napiN}, Frame: event.NoFrame},
		{Kind: event.SockGone, TS: 7, Sk: skA, SockIno: 10, Frame: event.NoFrame},
		{Kind: event.SendmsgEnter, TS: 8, Sk: skA, SockIno: 30, Frame: event.NoFrame, Comm: "c"}, // skA reused
		{Kind: event.FrameState, TS: 9, Sk: skA, SockIno: 30, Skb: skbY, Frame: 0, Old: event.Sending, New: event.Available, A: [3]uint64{2, locQ, 0}},
		{Kind: event.NapiPoll, TS: 10, A: [3]uint64{1, 64, napiN}, Frame: event.NoFrame},
	}
}

var symbols = map[uint64]string{locQdisc: "__dev_queue_xmit+0xd01", locQ: "skb_release_data+0x1a0"}

func pointerHeader(kernelAddresses bool) record.Header {
	return record.Header{Tool: "test", KernelAddresses: kernelAddresses,
		Kernel: &kernel.Facts{Release: "6.18", Symbols: map[string]kernel.Symbol{
			"packet_sendmsg": {Name: "packet_sendmsg", Addr: 0xffffffff82150cc0, End: 0xffffffff82152450, Type: "t"}}},
		Plan: &plan.Plan{Class: plan.Tracepoint, Config: plan.Config{DestructAddr: 0xffffffff8214ce40, UargCompleteAddr: 0xffffffff82196520,
			StackRanges: []plan.StackRange{{Symbol: "__wait_for_common", Start: 0xffffffff821fc1b0, End: 0xffffffff821fc350, Reason: event.WaitCompletion}}}}}
}

// pointerSnapshot is a walk that found skbX of socket skB's ring queued
// on socket skA (the third socket, at the reused address).
func pointerSnapshot() *holders.Snapshot {
	return &holders.Snapshot{TS: 8, Why: "end",
		Rings:  []holders.Ring{{Sk: skB, Ino: 20, FrameSize: 2048, FramesPerBlock: 2, Frames: 4, Blocks: []uint64{blockAddr, 0}}},
		Queues: []holders.Queue{{Sk: skA, Ino: 30, Family: 17, Qlen: 1, RingSkbs: 1}},
		Held:   []holders.Held{{Skb: skbX, Ph: frameAddr, Form: holders.FormUarg, Sender: skB, SenderIno: 20, Frame: 1, Holder: skA, HolderIno: 30}}}
}

func writePointers(t *testing.T, h record.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := record.NewWriter(&buf, h, record.Options{Symbol: func(a uint64) string { return symbols[a] }})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range pointerEvents() {
		if err := w.Write(event.Encode(e)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.CloseWithTrailer(record.Trailer{Holders: []*holders.Snapshot{pointerSnapshot()}}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func readPointers(t *testing.T, b []byte) (*record.Reader, []event.Event) {
	t.Helper()
	r, err := record.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	evs, err := r.Events(0) // in the order written: they are in timestamp order
	if err != nil {
		t.Fatal(err)
	}
	return r, evs
}

// TestPseudonyms: without kernel addresses every pointer has a pseudonym,
// the same for the same pointer and different for different ones, in the
// records and the holder walks alike; the rest of each record is as it
// was; sockets and napis are numbered, locations indexed in the trailer's
// names, skbs and frame addresses keyed below 2^48; the header keeps
// symbol sizes and no address.
func TestPseudonyms(t *testing.T) {
	h := pointerHeader(false)
	b := writePointers(t, h)
	hits, err := kaddr.FindRecording(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hits {
		t.Errorf("kernel address in the recording: %v", h)
	}
	r, evs := readPointers(t, b)
	if r.Version != record.Version || r.KernelAddresses() || r.Header.KernelAddresses {
		t.Errorf("version %d, kernel addresses %v", r.Version, r.KernelAddresses())
	}
	in := pointerEvents()
	pseudo := map[uint64]uint64{}            // every pointer's pseudonym
	byKind := map[string]map[uint64]uint64{} // pseudonym -> pointer, per kind of pointer
	same := func(what string, raw, got uint64) {
		if p, ok := pseudo[raw]; ok && p != got {
			t.Errorf("%s %#x is %#x here, %#x before", what, raw, got, p)
		}
		if byKind[what] == nil {
			byKind[what] = map[uint64]uint64{}
		}
		if r, ok := byKind[what][got]; ok && r != raw {
			t.Errorf("%ss %#x and %#x both became %#x", what, raw, r, got)
		}
		pseudo[raw], byKind[what][got] = got, raw
	}
	for i, e := range evs {
		want := in[i]
		if e.Sk != 0 {
			same("socket", want.Sk, e.Sk)
		}
		if e.Skb != 0 {
			same("skb", want.Skb, e.Skb)
		}
		switch e.Kind {
		case event.Drop, event.FrameState:
			if want.A[1] != 0 {
				same("location", want.A[1], e.A[1])
			}
		case event.NapiPoll:
			same("napi", want.A[2], e.A[2])
		}
		want.Sk, want.Skb, want.A = e.Sk, e.Skb, [3]uint64{want.A[0], e.A[1], e.A[2]}
		if e.Kind != event.Drop && e.Kind != event.FrameState && e.Kind != event.NapiPoll {
			want.A = in[i].A
		}
		if e != want {
			t.Errorf("record %d: %+v, want %+v", i, e, want)
		}
	}
	if pseudo[skA] != 1 || pseudo[skB] != 2 || pseudo[napiN] != 1 {
		t.Errorf("sockets %d %d, napi %d: want 1 2 and 1", pseudo[skA], pseudo[skB], pseudo[napiN])
	}
	for _, skb := range []uint64{skbX, skbY} {
		if p := pseudo[skb]; p < 1<<47 || p >= 1<<48 {
			t.Errorf("skb pseudonym %#x outside [2^47, 2^48)", p)
		}
	}
	locs := r.Trailer.Locations
	for a, n := range symbols {
		if i := pseudo[a]; i == 0 || i > uint64(len(locs)) || locs[i-1] != n {
			t.Errorf("location %#x: index %d of %q, want %q", a, i, locs, n)
		}
	}
	if r.Trailer.Symbols != nil {
		t.Errorf("trailer names addresses: %v", r.Trailer.Symbols)
	}
	s := r.Trailer.Holders[0]
	held := s.Held[0]
	if s.Rings[0].Sk != pseudo[skB] || s.Queues[0].Sk != pseudo[skA] || held.Sender != pseudo[skB] || held.Holder != pseudo[skA] || held.Skb != pseudo[skbX] {
		t.Errorf("holder walk not in the records' pseudonyms: %+v", s)
	}
	if held.Ph < 1<<47 || held.Ph >= 1<<48 || s.Rings[0].Blocks[0] < 1<<47 || s.Rings[0].Blocks[1] != 0 || held.Frame != 1 || held.SenderIno != 20 {
		t.Errorf("held %+v, ring blocks %#x", held, s.Rings[0].Blocks)
	}
	sym := r.Header.Kernel.Symbols["packet_sendmsg"]
	if sym.Addr != 0 || sym.End != 0 || sym.Size() != 0x1790 || sym.Name != "packet_sendmsg" {
		t.Errorf("header symbol %+v, want its name and size only", sym)
	}
	if c := r.Header.Plan.Config; c.DestructAddr != 0 || c.UargCompleteAddr != 0 || c.StackRanges[0] != (plan.StackRange{Symbol: "__wait_for_common", Reason: event.WaitCompletion}) {
		t.Errorf("plan config %+v", c)
	}
	if h.Plan.Config.DestructAddr == 0 || h.Plan.Config.StackRanges[0].Start == 0 || h.Kernel.Symbols["packet_sendmsg"].Addr == 0 {
		t.Error("the writer changed the caller's kernel facts or plan")
	}
}

// TestKeepKernelAddresses: with kernel addresses the records are as the
// kernel wrote them, the header says so, and the trailer names locations
// by address.
func TestKeepKernelAddresses(t *testing.T) {
	r, evs := readPointers(t, writePointers(t, pointerHeader(true)))
	if !r.KernelAddresses() || !r.Header.KernelAddresses || r.Version != record.Version {
		t.Errorf("version %d, kernel addresses %v", r.Version, r.KernelAddresses())
	}
	for i, e := range pointerEvents() {
		if evs[i] != e {
			t.Errorf("record %d: %+v, want %+v", i, evs[i], e)
		}
	}
	if len(r.Trailer.Symbols) != 2 || r.Trailer.Symbols[locQdisc] != symbols[locQdisc] || r.Trailer.Locations != nil {
		t.Errorf("trailer symbols %v, locations %v", r.Trailer.Symbols, r.Trailer.Locations)
	}
	if h := r.Trailer.Holders[0].Held[0]; h.Skb != skbX || h.Sender != skB {
		t.Errorf("holder walk %+v", h)
	}
	if r.Header.Kernel.Symbols["packet_sendmsg"].Addr == 0 || r.Header.Plan.Config.DestructAddr == 0 {
		t.Error("header lost its addresses")
	}
}

// TestOlderVersionsKeepAddresses: recordings before version 4 hold kernel
// addresses, whatever their header says.
func TestOlderVersionsKeepAddresses(t *testing.T) {
	r, err := record.Open(recordingsDir + "/status.rtrec")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Version >= record.VersionPseudonyms || !r.KernelAddresses() {
		t.Errorf("version %d: kernel addresses %v", r.Version, r.KernelAddresses())
	}
}

// TestWriteAllocations: writing a record without kernel addresses costs no
// allocation once its pointers were seen.
func TestWriteAllocations(t *testing.T) {
	w, err := record.NewWriter(io.Discard, record.Header{Tool: "test"}, record.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var recs [][]byte
	for _, e := range pointerEvents() {
		recs = append(recs, event.Encode(e))
	}
	write := func() {
		for _, rec := range recs {
			if err := w.Write(rec); err != nil {
				t.Fatal(err)
			}
		}
	}
	write()
	if n := testing.AllocsPerRun(100, write); n != 0 {
		t.Errorf("%.1f allocations per %d records, want 0", n, len(recs))
	}
	if err := w.Write(make([]byte, 10)); err == nil {
		t.Error("a record of 10 bytes was written without kernel addresses")
	}
}
