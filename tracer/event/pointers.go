package event

import (
	"encoding/binary"
	"fmt"
	"unsafe"

	"github.com/ringtrace/ringtrace/tracer/bpfobj/bpftypes"
)

// Pointer says what a kernel pointer field of a record points to
// (bpf/ringtrace.h).
type Pointer uint8

// The kernel pointers records carry.
const (
	// PointerSocket is the packet socket's struct sock * (sk, every kind).
	PointerSocket Pointer = iota + 1
	// PointerSkb is a struct sk_buff * (skb).
	PointerSkb
	// PointerLocation is a kernel text address: the drop or free site of
	// a drop or frame_state event (a[1]).
	PointerLocation
	// PointerNapi is a napi poll's struct napi_struct * (a[2]).
	PointerNapi
)

var pointerNames = [...]string{PointerSocket: "socket", PointerSkb: "skb", PointerLocation: "location", PointerNapi: "napi"}

func (p Pointer) String() string {
	if int(p) < len(pointerNames) && pointerNames[p] != "" {
		return pointerNames[p]
	}
	return fmt.Sprintf("pointer%d", uint8(p))
}

// Offsets of the fields of struct rt_event MapPointers reads and writes.
const (
	offKind = unsafe.Offsetof(bpftypes.RingtraceRtEvent{}.Kind)
	offSk   = unsafe.Offsetof(bpftypes.RingtraceRtEvent{}.Sk)
	offSkb  = unsafe.Offsetof(bpftypes.RingtraceRtEvent{}.Skb)
	offA1   = unsafe.Offsetof(bpftypes.RingtraceRtEvent{}.A) + 8
	offA2   = unsafe.Offsetof(bpftypes.RingtraceRtEvent{}.A) + 16
	// and of struct rt_frame_short
	offShortKind = unsafe.Offsetof(bpftypes.RingtraceRtFrameShort{}.Kind)
	offShortSk   = unsafe.Offsetof(bpftypes.RingtraceRtFrameShort{}.Sk)
	offShortSkb  = unsafe.Offsetof(bpftypes.RingtraceRtFrameShort{}.Skb)
)

// MapPointers replaces, in raw record b as Decode reads it, each kernel
// pointer by what f returns for it; fields that point nowhere (0), and
// those f returns unchanged, are not written. It fails, changing nothing,
// on a short record or one of a kind no BPF program writes. It does not
// allocate.
func MapPointers(b []byte, f func(p Pointer, v uint64) uint64) error {
	if len(b) == ShortSize {
		if k := Kind(binary.LittleEndian.Uint16(b[offShortKind:])); k != FrameShort {
			return fmt.Errorf("short event record with kind %d", uint16(k))
		}
		mapField(b[offShortSk:], PointerSocket, f)
		mapField(b[offShortSkb:], PointerSkb, f)
		return nil
	}
	if len(b) < RawSize {
		return fmt.Errorf("event record of %d bytes, want %d", len(b), RawSize)
	}
	k := Kind(binary.LittleEndian.Uint16(b[offKind:]))
	if !recorded(k) {
		return fmt.Errorf("event record with unknown kind %d", uint16(k))
	}
	mapField(b[offSk:], PointerSocket, f)
	if k != SendmsgCall { // its skb field holds the entry's flags and head
		mapField(b[offSkb:], PointerSkb, f)
	}
	switch k {
	case Drop, FrameState:
		mapField(b[offA1:], PointerLocation, f)
	case NapiPoll:
		mapField(b[offA2:], PointerNapi, f)
	}
	return nil
}

func mapField(b []byte, p Pointer, f func(Pointer, uint64) uint64) {
	if v := binary.LittleEndian.Uint64(b); v != 0 {
		if n := f(p, v); n != v {
			binary.LittleEndian.PutUint64(b, n)
		}
	}
}
