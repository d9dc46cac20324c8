package record_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/record"
)

// readAll decodes a recording and returns its events normalised, in order.
func readAll(t *testing.T, path string) (record.Header, []event.Event) {
	t.Helper()
	r, err := record.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var raw []event.Event
	for {
		e, err := r.NextEvent()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		raw = append(raw, e)
	}
	sort.SliceStable(raw, func(i, j int) bool { return raw[i].TS < raw[j].TS })
	var out []event.Event
	n := event.NewNormalizer()
	for i := range raw {
		n.Process(&raw[i], func(e *event.Event) error { out = append(out, *e); return nil })
	}
	return r.Header, out
}

func lifecycle(evs []event.Event, frame uint32) string {
	var s []string
	for _, e := range evs {
		if e.Kind == event.FrameState && e.Frame == frame {
			s = append(s, e.New.String())
		}
	}
	return strings.Join(s, ">")
}

func TestRecordingsDecode(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(recordingsDir, "*.rtrec"))
	if len(files) == 0 {
		t.Fatal("no recordings in testdata/recordings")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			h, evs := readAll(t, f)
			if h.Kernel == nil || h.Plan == nil || h.Kernel.Release == "" {
				t.Fatalf("header lacks kernel facts or plan: %+v", h)
			}
			if len(evs) == 0 {
				t.Fatal("no events")
			}
			for _, e := range evs {
				if e.Kind == event.FrameState && !e.HasFrame() {
					t.Errorf("frame_state without a frame: %+v", e)
				}
			}
		})
	}
}

func TestRecordingLo(t *testing.T) {
	_, evs := readAll(t, filepath.Join(recordingsDir, "lo.rtrec"))
	for i := uint32(0); i < 8; i++ {
		if got := lifecycle(evs, i); got != "SEND_REQUEST>SENDING>AVAILABLE" {
			t.Errorf("frame %d: %s", i, got)
		}
	}
	for _, e := range evs {
		if e.Kind == event.SendmsgReturn && e.Ret() != 8*300 {
			t.Errorf("sendto returned %d, want 2400", e.Ret())
		}
	}
}

func TestRecordingQdiscDrop(t *testing.T) {
	_, evs := readAll(t, filepath.Join(recordingsDir, "qdisc-drop.rtrec"))
	var drop *event.Event
	for i := range evs {
		if evs[i].Kind == event.Drop {
			drop = &evs[i]
		}
	}
	if drop == nil {
		t.Fatal("no drop")
	}
	if got := lifecycle(evs, drop.Frame); got != "SEND_REQUEST>SENDING>AVAILABLE>SEND_REQUEST" {
		t.Errorf("dropped frame %d went %s", drop.Frame, got)
	}
}

func writeRecording(t *testing.T, evs []event.Event) []byte {
	t.Helper()
	return writeRecordingTrailer(t, evs, nil)
}

// writeRecordingTrailer ends the recording with tr when it is not nil.
func writeRecordingTrailer(t *testing.T, evs []event.Event, tr *record.Trailer) []byte {
	t.Helper()
	raw := make([][]byte, len(evs))
	for i, e := range evs {
		raw[i] = event.Encode(e)
	}
	return writeRaw(t, raw, tr)
}

// writeRaw writes records as they are (full or short) into a recording,
// ended with tr when it is not nil.
func writeRaw(t *testing.T, records [][]byte, tr *record.Trailer) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := record.NewWriter(&buf, record.Header{Tool: "test"}, record.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range records {
		if err := w.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	close := w.Close
	if tr != nil {
		close = func() error { return w.CloseWithTrailer(*tr) }
	}
	if err := close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	in := []event.Event{
		{Kind: event.SendmsgEnter, TS: 10, Sk: 1, Frame: 0, Comm: "x"},
		{Kind: event.FrameState, TS: 11, Sk: 1, Frame: 0, Old: event.SendRequest, New: event.Sending},
	}
	r, err := record.NewReader(bytes.NewReader(writeRecording(t, in)))
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		e, err := r.NextEvent()
		if err != nil {
			t.Fatal(err)
		}
		if e.Kind != in[i].Kind || e.TS != in[i].TS || e.New != in[i].New {
			t.Errorf("record %d: %+v, want %+v", i, e, in[i])
		}
	}
	if _, err := r.NextEvent(); err != io.EOF {
		t.Errorf("after the last record: %v, want EOF", err)
	}
}

// TestBadInput: every corruption is a clean error wrapping ErrFormat.
func TestBadInput(t *testing.T) {
	good := writeRecording(t, []event.Event{{Kind: event.FrameState, TS: 1, New: event.Sending}, {Kind: event.Drop, TS: 2}})
	future := append([]byte(nil), good...)
	future[8] = 99
	badKind := append([]byte(nil), good...)
	// The first record's kind field: corrupt it to an unknown kind.
	hlen := int(good[12]) | int(good[13])<<8 | int(good[14])<<16
	rec := 16 + hlen + 4
	kindOff := rec + event.RawSize - 16 - 16 - 8 // kind is 8 bytes before comm/dev
	badKind[kindOff] = 0xee
	// A flipped bit in a timestamp still decodes: only the trailer's check
	// can tell.
	damaged := writeRecordingTrailer(t, []event.Event{{Kind: event.FrameState, TS: 1, New: event.Sending}}, &record.Trailer{})
	damaged[rec] ^= 0x10
	cases := map[string][]byte{
		"damaged":        damaged,
		"empty":          nil,
		"bad-magic":      append([]byte("NOTREC\x00\x00"), good[8:]...),
		"future-version": future,
		"header-cut":     good[:20],
		"record-len-cut": good[:rec-2],
		"record-cut":     good[:rec+10],
		"unknown-kind":   badKind,
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			r, err := record.NewReader(bytes.NewReader(b))
			for err == nil {
				_, err = r.NextEvent()
			}
			if err == io.EOF {
				t.Fatal("read to a clean end")
			}
			if !errors.Is(err, record.ErrFormat) {
				t.Errorf("error %v does not wrap ErrFormat", err)
			}
			t.Log(err)
		})
	}
}

// TestTrailerCheck: a clean recording passes its check and says it has a
// trailer; one without a trailer reads, and says it has none.
func TestTrailerCheck(t *testing.T) {
	evs := []event.Event{{Kind: event.FrameState, TS: 1, New: event.Sending}, {Kind: event.Drop, TS: 2}}
	for _, withTrailer := range []bool{true, false} {
		var tr *record.Trailer
		if withTrailer {
			tr = &record.Trailer{Lost: 3}
		}
		r, err := record.NewReader(bytes.NewReader(writeRecordingTrailer(t, evs, tr)))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for ; err == nil; n++ {
			_, err = r.NextEvent()
		}
		if err != io.EOF || n != 3 {
			t.Fatalf("trailer %v: %d reads ending in %v", withTrailer, n, err)
		}
		if r.HasTrailer != withTrailer || (withTrailer && (r.Trailer.Lost != 3 || r.Trailer.Check.Records != 2)) {
			t.Errorf("trailer %v: has %v, %+v", withTrailer, r.HasTrailer, r.Trailer)
		}
	}
}

// FuzzReader: no input makes the reader panic, hang or allocate without
// bound. Seeds are small recordings (real ones carry a 15 KB header that
// slows the fuzzer to a crawl without finding more).
func FuzzReader(f *testing.F) {
	var t testing.T
	f.Add(writeRecording(&t, []event.Event{{Kind: event.FrameState, TS: 1, Frame: 2, New: event.Sending},
		{Kind: event.SendmsgReturn, TS: 2}}))
	f.Add([]byte(record.Magic + "\x01\x00\x00\x00\x02\x00\x00\x00{}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := record.NewReader(bytes.NewReader(b))
		if err != nil {
			return
		}
		for i := 0; i < 1<<16; i++ {
			if _, err := r.NextEvent(); err != nil {
				return
			}
		}
	})
}

// TestCreatePrivate: a recording is readable by its owner only, like
// perf.data, whatever the umask; an older file it replaces too.
func TestCreatePrivate(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	path := filepath.Join(t.TempDir(), "x.rtrec")
	if err := os.WriteFile(path, []byte("older"), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := record.Create(path, record.Header{Tool: "test"}, record.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.CloseWithTrailer(record.Trailer{}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m != 0o600 {
		t.Errorf("recording mode %o, want 600", m)
	}
}

// TestShortRecordRoundTrip: a short frame record is written and read back
// as the frame_state it stands for, its names from the full record before
// it and its socket under the same pseudonym; a header whose short records
// have another size is refused.
func TestShortRecordRoundTrip(t *testing.T) {
	const sk, skb = 0xffff888012345000, 0xffff888054321000
	enter := event.Event{Kind: event.SendmsgEnter, TS: 10, Sk: sk, TID: 7, Comm: "sender", Ifindex: 4, Dev: "veth0"}
	frame := event.Event{Kind: event.FrameState, TS: 11, Sk: sk, Skb: skb, TID: 7, Frame: 2, Old: event.Sending,
		New: event.Available, Dev: "veth0"}
	short, err := event.EncodeShort(frame)
	if err != nil {
		t.Fatal(err)
	}
	rec := writeRaw(t, [][]byte{event.Encode(enter), short}, nil)
	r, err := record.NewReader(bytes.NewReader(rec))
	if err != nil {
		t.Fatal(err)
	}
	if r.Header.ShortRecordSize != event.ShortSize || r.Version != record.Version {
		t.Errorf("version %d, short records of %d bytes", r.Version, r.Header.ShortRecordSize)
	}
	e1, err := r.NextEvent()
	if err != nil {
		t.Fatal(err)
	}
	e2, err := r.NextEvent()
	if err != nil {
		t.Fatal(err)
	}
	if e2.Kind != event.FrameState || e2.Comm != "sender" || e2.Dev != "veth0" || e2.Ifindex != 4 ||
		e2.Sk != e1.Sk || e2.Sk == sk || e2.Skb == skb || e2.Skb == 0 {
		t.Errorf("read back %+v after %+v", e2, e1)
	}
	odd := bytes.Replace(rec, []byte(`"short_record_size":80`), []byte(`"short_record_size":88`), 1)
	if bytes.Equal(odd, rec) {
		t.Fatal("no short_record_size in the header")
	}
	if _, err := record.NewReader(bytes.NewReader(odd)); !errors.Is(err, record.ErrFormat) {
		t.Errorf("short records of 88 bytes: %v", err)
	}
}

// TestXmitPairRecord: an xmit pair is read back as its start and return,
// each at its own time among the other events (a completion inside the
// driver comes between them), and a recording that holds one says version
// VersionXmitPair at least.
func TestXmitPairRecord(t *testing.T) {
	const sk, skb = 0xffff888012345000, 0xffff888054321000
	pair := event.Event{Kind: event.XmitPair, TS: 2000, TSLo: 1500, Sk: sk, Skb: skb, TID: 7, Frame: 2,
		A: [3]uint64{0, 100 | 1<<32, 4096}, SndBuf: 4096, Wmem: 0, Pending: 0, Old: event.Unknown, New: event.Unknown}
	done := event.Event{Kind: event.FrameState, TS: 1700, Sk: sk, Skb: skb, TID: 7, Frame: 2, Old: event.Sending,
		New: event.Available, SndBuf: -1, Wmem: -1, Pending: -1}
	// The pair arrives last: it is written at the driver's return.
	r, err := record.NewReader(bytes.NewReader(writeRecording(t, []event.Event{done, pair})))
	if err != nil {
		t.Fatal(err)
	}
	if r.Version < record.VersionXmitPair {
		t.Errorf("version %d holds an xmit pair", r.Version)
	}
	evs, err := r.Events(0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range evs {
		got = append(got, fmt.Sprintf("%s@%d", e.Kind, e.TS))
	}
	if want := "xmit_start@1500 frame_state@1700 xmit_done@2000"; strings.Join(got, " ") != want {
		t.Fatalf("events %v, want %s", got, want)
	}
	if s := evs[0]; s.Sk != evs[2].Sk || s.Skb != evs[2].Skb || s.Wmem != 100 || s.Pending != 1 || s.SndBuf != 4096 || s.Frame != 2 {
		t.Errorf("start %+v", s)
	}
	if d := evs[2]; d.Wmem != 0 || d.Pending != 0 || d.A != [3]uint64{} || d.TSLo != 0 {
		t.Errorf("done %+v", d)
	}
}
