package holders

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"unsafe"

	"github.com/ringtrace/ringtrace/tracer/bpfobj/bpftypes"
)

// recordSize is sizeof(struct rt_holder), skbRecordSize sizeof(struct
// rt_holder_skb): the iterator's records, told apart by their first field,
// the kind.
const (
	recordSize    = int(unsafe.Sizeof(bpftypes.HoldersRtHolder{}))
	skbRecordSize = int(unsafe.Sizeof(bpftypes.HoldersRtHolderSkb{}))
)

// Decode builds a snapshot from the iterator's output: a sequence of
// struct rt_holder (rings, queues) and struct rt_holder_skb (ring skbs,
// each with its frame index as the iterator found it, followed by the
// queue record of the socket that holds them).
func Decode(b []byte) (*Snapshot, error) {
	s := &Snapshot{}
	rings := map[uint64]*Ring{}
	queues := map[uint64]*Queue{}
	var order []uint64
	var qorder []uint64
	var pending []bpftypes.HoldersRtHolderSkb // skb records waiting for their queue record
	for off := 0; off < len(b); {
		if len(b)-off < 4 {
			return nil, fmt.Errorf("holders iterator output: %d bytes left at %d, not a record", len(b)-off, off)
		}
		kind := bpftypes.HoldersRtHolderKind(binary.NativeEndian.Uint32(b[off:]))
		if kind == bpftypes.HoldersRtHolderKindRT_HR_SKB {
			if len(b)-off < skbRecordSize {
				return nil, fmt.Errorf("holders iterator output: a %d-byte skb record at %d, %d bytes left", skbRecordSize, off, len(b)-off)
			}
			var r bpftypes.HoldersRtHolderSkb
			copy(unsafe.Slice((*byte)(unsafe.Pointer(&r)), skbRecordSize), b[off:off+skbRecordSize])
			pending = append(pending, r)
			off += skbRecordSize
			continue
		}
		if len(b)-off < recordSize {
			return nil, fmt.Errorf("holders iterator output: a %d-byte record at %d, %d bytes left", recordSize, off, len(b)-off)
		}
		var r bpftypes.HoldersRtHolder
		copy(unsafe.Slice((*byte)(unsafe.Pointer(&r)), recordSize), b[off:off+recordSize])
		owner := Owner{PID: r.Pid, Comm: cstring(r.Comm[:]), FD: r.Fd}
		switch kind {
		case bpftypes.HoldersRtHolderKindRT_HR_RING:
			if len(pending) > 0 {
				return nil, fmt.Errorf("holders record at %d: %d skb records before a ring record, not a queue record", off, len(pending))
			}
			g := rings[r.Sk]
			if g == nil {
				g = &Ring{Sk: r.Sk, Ino: r.Ino, Protocol: ntohs(uint16(r.Protocol)), FrameSize: r.FrameSize,
					FramesPerBlock: r.FramesPerBlock, Frames: r.FrameMax + 1, TotalBlocks: r.Blocks,
					SelfCheck: SelfCheck{Head: r.Head, Frame: r.CheckFrame, Status: bpftypes.HoldersRtHolderLocate(r.CheckStatus), Searched: r.CheckSearched}}
				rings[r.Sk] = g
				order = append(order, r.Sk)
			}
			g.Owners = addOwner(g.Owners, owner)
		case bpftypes.HoldersRtHolderKindRT_HR_QUEUE:
			if uint32(len(pending)) != r.Listed || r.Listed > r.Found {
				return nil, fmt.Errorf("holders record at %d: a queue record listing %d of %d ring skbs after %d skb records", off, r.Listed, r.Found, len(pending))
			}
			q := queues[r.Sk]
			if q == nil {
				q = &Queue{Sk: r.Sk, Ino: r.Ino, Family: r.Family, Qlen: r.Qlen, RingSkbs: int(r.Found), Unlisted: int(r.Found - r.Listed),
					Walked: r.Walked, Truncated: r.Truncated != 0}
				queues[r.Sk] = q
				qorder = append(qorder, r.Sk)
			}
			q.Owners = addOwner(q.Owners, owner)
			for _, p := range pending {
				s.addHeld(p, r.Sk, r.Ino)
			}
			pending = pending[:0]
		default:
			return nil, fmt.Errorf("holders record at %d: unknown kind %d", off, r.Kind)
		}
		off += recordSize
	}
	if len(pending) > 0 {
		return nil, fmt.Errorf("holders iterator output: %d skb records at the end with no queue record", len(pending))
	}
	for _, sk := range order {
		s.Rings = append(s.Rings, *rings[sk])
	}
	for _, sk := range qorder {
		s.Queues = append(s.Queues, *queues[sk])
	}
	for i := range s.Held {
		h := &s.Held[i]
		if g := rings[h.Sender]; g != nil {
			h.SenderIno = g.Ino
		}
	}
	s.Sort()
	return s, nil
}

// addHeld adds the ring skb of record r, held by socket (holder, ino),
// unless the walk saw it already (the same socket open in several fd
// tables).
func (s *Snapshot) addHeld(r bpftypes.HoldersRtHolderSkb, holder uint64, ino uint32) {
	for _, h := range s.Held {
		if h.Skb == r.Skb && h.Holder == holder {
			return
		}
	}
	form := FormDestructor
	if bpftypes.HoldersRtHolderForm(r.Form) == bpftypes.HoldersRtHolderFormRT_HF_UARG {
		form = FormUarg
	}
	h := Held{Skb: r.Skb, Ph: r.Ph, Form: form, Sender: r.Sender, Frame: NoFrame, Holder: holder, HolderIno: ino}
	if why := unplaced(bpftypes.HoldersRtHolderLocate(r.Status), r.Searched, r.Blocks); why == "" {
		h.Frame = r.Frame
	} else {
		h.Unplaced = why
	}
	s.Held = append(s.Held, h)
}

// unplaced says why the iterator's search named no frame ("" when it did).
func unplaced(st bpftypes.HoldersRtHolderLocate, searched, blocks uint32) string {
	switch st {
	case bpftypes.HoldersRtHolderLocateRT_HL_FOUND:
		return ""
	case bpftypes.HoldersRtHolderLocateRT_HL_NOT_IN_RING:
		return fmt.Sprintf("no frame of its sender's TX ring starts at its address (all %d blocks searched)", blocks)
	case bpftypes.HoldersRtHolderLocateRT_HL_NO_RING:
		return "its sender has no TX ring"
	case bpftypes.HoldersRtHolderLocateRT_HL_CUT:
		return fmt.Sprintf("the search of its sender's TX ring stopped after %d of its %d blocks (%s)", searched, blocks, cutWhy)
	}
	return fmt.Sprintf("unknown search result %d", st)
}

// cutWhy is what bounds a search that stops early (holders.h).
const cutWhy = "without bpf_loop, before 5.17, a search reads 4 blocks down from the previous frame's; with it, one socket's searches read at most 1048576 blocks"

// SelfCheck is what the iterator's self-check (walk.Config's CheckStart)
// made of the address of the ring's frame head: the head's index, the
// frame its search placed the address at, how many blocks it searched and
// how it ended.
type SelfCheck struct {
	Head, Frame, Searched uint32
	Status                bpftypes.HoldersRtHolderLocate
}

// Encode writes records in the iterator's layout (tests): each a
// bpftypes.HoldersRtHolder or a bpftypes.HoldersRtHolderSkb.
func Encode(recs ...any) []byte {
	var out []byte
	for _, r := range recs {
		switch r := r.(type) {
		case bpftypes.HoldersRtHolder:
			out = append(out, unsafe.Slice((*byte)(unsafe.Pointer(&r)), recordSize)...)
		case bpftypes.HoldersRtHolderSkb:
			out = append(out, unsafe.Slice((*byte)(unsafe.Pointer(&r)), skbRecordSize)...)
		default:
			panic(fmt.Sprintf("holders.Encode: %T is not a record", r))
		}
	}
	return out
}

func addOwner(os []Owner, o Owner) []Owner {
	for _, x := range os {
		if x.PID == o.PID && x.FD == o.FD {
			return os
		}
	}
	return append(os, o)
}

func cstring(b []int8) string {
	u := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(b))), len(b))
	if i := bytes.IndexByte(u, 0); i >= 0 {
		u = u[:i]
	}
	return string(u)
}

func ntohs(v uint16) uint16 { return v<<8 | v>>8 }
