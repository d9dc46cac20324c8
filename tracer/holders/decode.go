package holders

import (
	"bytes"
	"fmt"
	"unsafe"

	"github.com/ringtrace/ringtrace/tracer/bpfobj"
)

// recordSize is sizeof(struct rt_holder).
const recordSize = int(unsafe.Sizeof(bpfobj.HoldersRtHolder{}))

// Decode builds a snapshot from the iterator's output: a sequence of
// struct rt_holder. Ring skbs are mapped to frames through the rings the
// same output describes.
func Decode(b []byte) (*Snapshot, error) {
	if len(b)%recordSize != 0 {
		return nil, fmt.Errorf("holders iterator output of %d bytes is not a whole number of %d-byte records", len(b), recordSize)
	}
	s := &Snapshot{}
	rings := map[uint64]*Ring{}
	queues := map[uint64]*Queue{}
	var order []uint64
	var qorder []uint64
	for off := 0; off < len(b); off += recordSize {
		var r bpfobj.HoldersRtHolder
		copy(unsafe.Slice((*byte)(unsafe.Pointer(&r)), recordSize), b[off:off+recordSize])
		owner := Owner{PID: r.Pid, Comm: cstring(r.Comm[:]), FD: r.Fd}
		switch bpfobj.HoldersRtHolderKind(r.Kind) {
		case bpfobj.HoldersRtHolderKindRT_HR_RING:
			g := rings[r.Sk]
			if g == nil {
				g = &Ring{Sk: r.Sk, Ino: r.Ino, Protocol: ntohs(uint16(r.Protocol)), FrameSize: r.FrameSize,
					FramesPerBlock: r.FramesPerBlock, Frames: r.FrameMax + 1}
				rings[r.Sk] = g
				order = append(order, r.Sk)
			}
			if r.Nblocks > uint32(len(r.Blocks)) {
				return nil, fmt.Errorf("holders record at %d: %d blocks in a record of %d", off, r.Nblocks, len(r.Blocks))
			}
			if int(r.FirstBlock) == len(g.Blocks) { // the first fd of a socket describes it; dups repeat it
				g.Blocks = append(g.Blocks, r.Blocks[:r.Nblocks]...)
			}
			if r.FirstBlock == 0 {
				g.Owners = addOwner(g.Owners, owner)
			}
		case bpfobj.HoldersRtHolderKindRT_HR_QUEUE:
			q := queues[r.Sk]
			if q == nil {
				q = &Queue{Sk: r.Sk, Ino: r.Ino, Family: r.Family, Qlen: r.Qlen, RingSkbs: int(r.Form), Walked: r.Walked, Truncated: r.Truncated != 0}
				queues[r.Sk] = q
				qorder = append(qorder, r.Sk)
			}
			q.Owners = addOwner(q.Owners, owner)
		case bpfobj.HoldersRtHolderKindRT_HR_SKB:
			form := FormDestructor
			if bpfobj.HoldersRtHolderForm(r.Form) == bpfobj.HoldersRtHolderFormRT_HF_UARG {
				form = FormUarg
			}
			dup := false
			for _, h := range s.Held {
				if h.Skb == r.Skb && h.Holder == r.Sk {
					dup = true // the same socket open in several fd tables
				}
			}
			if !dup {
				s.Held = append(s.Held, Held{Skb: r.Skb, Ph: r.Ph, Form: form, Sender: r.Sender, Frame: NoFrame, Holder: r.Sk, HolderIno: r.Ino})
			}
		default:
			return nil, fmt.Errorf("holders record at %d: unknown kind %d", off, r.Kind)
		}
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
			if idx, ok := g.Index(h.Ph); ok {
				h.Frame = idx
			}
		}
	}
	sortSnapshot(s)
	return s, nil
}

// Encode writes records in the iterator's layout (tests).
func Encode(recs []bpfobj.HoldersRtHolder) []byte {
	var out []byte
	for i := range recs {
		out = append(out, unsafe.Slice((*byte)(unsafe.Pointer(&recs[i])), recordSize)...)
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
