package kaddr_test

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/holders"
	"github.com/ringtrace/ringtrace/tracer/kaddr"
	"github.com/ringtrace/ringtrace/tracer/kernel"
	"github.com/ringtrace/ringtrace/tracer/record"
)

func TestKernel(t *testing.T) {
	for v, want := range map[uint64]bool{
		0xffff888105469000: true,  // direct map, 4-level paging
		0xff11e98841387300: true,  // direct map, 5-level paging (the matrix's guests)
		0xffffc90000a1c000: true,  // vmalloc
		0xffffea0004151a40: true,  // vmemmap
		0xffffffff81e65670: true,  // text
		0xffffffffc0a01000: true,  // a module
		0xffffabf90c023448: true,  // arm64 text (7.2 guest, randomised)
		0xffff0000c1a2b300: true,  // arm64 linear map, 48-bit
		0xfff00000c1a2b300: true,  // arm64 linear map, 52-bit
		0:                  false, //
		1<<47 | 12345:      false, // user space
		1793448252691:      false, // a timestamp
		^uint64(0):         false, // -1
		^uint64(104):       false, // -ENOBUFS
		0xffffffff00000003: false, // two int32 words, the high one -1
	} {
		if got := kaddr.Kernel(v); got != want {
			t.Errorf("Kernel(%#x) = %v, want %v", v, got, want)
		}
	}
}

func TestTypical(t *testing.T) {
	for v, want := range map[uint64]bool{
		0xffff888105469000: true,  // x86_64 direct map
		0xffffffff81e65670: true,  // x86_64 text
		0xffff0000c1a2b300: false, // arm64 linear map: the shape of 16-bit -1, 0 fields
		0xffff000100000000: false, // (as a recording holds them)
		0xffffabf90c023448: false, // arm64 text: too wide a shape for byte scans
		^uint64(0):         false, // -1
		0xffffffff00000003: false, // two int32 words, the high one -1
		0x00ffff0000000000: false, // shifted by a byte
	} {
		if got := kaddr.Typical(v); got != want {
			t.Errorf("Typical(%#x) = %v, want %v", v, got, want)
		}
	}
}

func TestFindText(t *testing.T) {
	text := `{"socket":"0xffff888105469000","sock":"sk1","sock_ino":4242}
{"addr":18446744071597001920,"end":18446744071597007952,"ts_ns":1793448252691}
ffffffff81e65670 T __dev_queue_xmit
DROP reason=QDISC_DROP at __dev_queue_xmit+0xd01 dev=va ret=-105 word=deadbeef`
	hits := kaddr.FindText([]byte(text), "out")
	var got []string
	for _, h := range hits {
		got = append(got, h.String())
	}
	want := []string{"out line 1: 0xffff888105469000", "out line 2: 0xffffffff82150cc0", "out line 2: 0xffffffff82152450",
		"out line 3: 0xffffffff81e65670"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("hits\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestFindWords(t *testing.T) {
	b := make([]byte, 32)
	binary.LittleEndian.PutUint64(b[8:], 0xffff888105469000)
	binary.LittleEndian.PutUint64(b[12:], 0) // not aligned: the high half is gone
	binary.LittleEndian.PutUint64(b[16:], 0xffffffff81e65670)
	binary.LittleEndian.PutUint64(b[24:], ^uint64(0))
	hits := kaddr.FindWords(b, "rec")
	if len(hits) != 1 || hits[0].String() != "rec +16: 0xffffffff81e65670" {
		t.Errorf("hits %v", hits)
	}
}

func TestFindBytes(t *testing.T) {
	b := make([]byte, 40)
	binary.LittleEndian.PutUint64(b[3:], 0xffff888105469000)  // unaligned
	binary.LittleEndian.PutUint64(b[20:], 0xffffffff81e65670) // kernel text
	for i := 28; i < 40; i++ {
		b[i] = 0xff // three int32 -1s: not an address
	}
	var got []string
	for _, h := range kaddr.FindBytes(b, "file") {
		got = append(got, h.String())
	}
	// A text address read two bytes early still looks like the direct map.
	if want := "file +3: 0xffff888105469000|file +18: 0xffff81e656700000|file +20: 0xffffffff81e65670"; strings.Join(got, "|") != want {
		t.Errorf("found %v, want %s", got, want)
	}
}

// TestFindRecording: the kernel addresses of a recording's header, records
// and trailer are found, each where it is.
func TestFindRecording(t *testing.T) {
	rec := func(kernelAddresses bool) []byte {
		var buf bytes.Buffer
		h := record.Header{Tool: "test", KernelAddresses: kernelAddresses,
			Kernel: &kernel.Facts{Symbols: map[string]kernel.Symbol{"packet_sendmsg": {Name: "packet_sendmsg", Addr: 0xffffffff82150cc0}}}}
		w, err := record.NewWriter(&buf, h, record.Options{})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(event.Encode(event.Event{Kind: event.FrameState, TS: 1, Sk: 0xffff888105469000, SockIno: 7, New: event.Sending}))
		tr := record.Trailer{Holders: []*holders.Snapshot{{Held: []holders.Held{{Skb: 0xffff8881022a4e00}}}}}
		if err := w.CloseWithTrailer(tr); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	hits, err := kaddr.FindRecording(rec(true))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range hits {
		got = append(got, h.String())
	}
	want := "header line 1: 0xffffffff82150cc0|record 1 (frame_state) +16: 0xffff888105469000|trailer line 1: 0xffff8881022a4e00"
	if strings.Join(got, "|") != want {
		t.Errorf("found\n%s\nwant\n%s", strings.Join(got, "\n"), strings.ReplaceAll(want, "|", "\n"))
	}
	if hits, err := kaddr.FindRecording(rec(false)); err != nil || len(hits) != 0 {
		t.Errorf("a recording without kernel addresses: %v, %v", hits, err)
	}
}
