package holders

import (
	"strings"
	"testing"

	"github.com/ringtrace/ringtrace/tracer/bpfobj/bpftypes"
)

func comm(s string) (c [16]int8) {
	for i := 0; i < len(s) && i < 15; i++ {
		c[i] = int8(s[i])
	}
	return c
}

const (
	senderSk = 0xffff888100001000
	otherSk  = 0xffff888100002000
	block0   = 0xffff888200000000
	block1   = 0xffff888200100000 // blocks are not contiguous
)

var (
	found    = bpftypes.HoldersRtHolderLocateRT_HL_FOUND
	notFound = bpftypes.HoldersRtHolderLocateRT_HL_NOT_IN_RING
	cut      = bpftypes.HoldersRtHolderLocateRT_HL_CUT
	uarg     = bpftypes.HoldersRtHolderFormRT_HF_UARG
	destr    = bpftypes.HoldersRtHolderFormRT_HF_DESTRUCTOR
)

// skbRec is the iterator's record of a ring skb of senderSk's 2-block ring
// at address ph, which its search placed at frame (st: found) or not.
func skbRec(ph uint64, frame uint32, st bpftypes.HoldersRtHolderLocate, form bpftypes.HoldersRtHolderForm) bpftypes.HoldersRtHolderSkb {
	if st != found {
		frame = NoFrame
	}
	return bpftypes.HoldersRtHolderSkb{Kind: uint32(bpftypes.HoldersRtHolderKindRT_HR_SKB), Form: uint32(form), Frame: frame, Status: uint32(st),
		Skb: ph ^ 0xabc000, Ph: ph, Sender: senderSk, Searched: 2, Blocks: 2}
}

func queueRec(sk uint64, ino, pid, fd, qlen, found, listed uint32) bpftypes.HoldersRtHolder {
	return bpftypes.HoldersRtHolder{Kind: uint32(bpftypes.HoldersRtHolderKindRT_HR_QUEUE), Pid: pid, Fd: fd, Ino: ino, Sk: sk, Family: 17,
		Qlen: qlen, Found: found, Listed: listed, Walked: qlen, Comm: comm(map[uint32]string{42: "sender", 50: "tap", 51: "tap"}[pid])}
}

func ringRec() bpftypes.HoldersRtHolder {
	return bpftypes.HoldersRtHolder{Kind: uint32(bpftypes.HoldersRtHolderKindRT_HR_RING), Pid: 42, Fd: 3, Ino: 100, Sk: senderSk,
		Family: 17, Protocol: 0x0300, FrameSize: 2048, FramesPerBlock: 2, FrameMax: 3, Blocks: 2, Comm: comm("sender")}
}

// records: a 4-frame ring (2 per 4096-byte block) owned by pid 42 fd 3,
// bound to ETH_P_ALL, whose own queue holds frames #1 and #2, and a tap
// socket (pid 50) holding frame #3; one skb points outside every frame
// start. Each socket's skb records come before its queue record, as the
// iterator writes them.
func records() []any {
	return []any{
		skbRec(block0+2048, 1, found, uarg),
		skbRec(block1, 2, found, uarg),
		queueRec(senderSk, 100, 42, 3, 3, 2, 2),
		ringRec(),
		skbRec(block1+2048, 3, found, destr),
		skbRec(block1+100, 0, notFound, destr), // not a frame start
		queueRec(otherSk, 200, 50, 7, 2, 2, 2),
		// The tap's socket is also open in a forked child: same records again.
		skbRec(block1+2048, 3, found, destr),
		queueRec(otherSk, 200, 51, 4, 2, 1, 1),
	}
}

func TestDecodeAndFind(t *testing.T) {
	s, err := Decode(Encode(records()...))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Rings) != 1 || len(s.Queues) != 2 || len(s.Held) != 4 {
		t.Fatalf("rings %d queues %d held %d, want 1 2 4: %+v", len(s.Rings), len(s.Queues), len(s.Held), s)
	}
	r := s.Ring(senderSk, 100)
	if r == nil || r.Frames != 4 || r.Protocol != 3 || r.TotalBlocks != 2 || len(r.Blocks) != 0 {
		t.Fatalf("ring %+v", r)
	}
	for frame, want := range map[uint32]uint32{0: 0, 1: 100, 2: 100, 3: 200} {
		h := s.Find(Frame{Sk: senderSk, Ino: 100, Frame: frame})
		switch {
		case want == 0 && h != nil:
			t.Errorf("frame #%d: found %+v, no skb holds it", frame, h)
		case want != 0 && (h == nil || h.HolderIno != want):
			t.Errorf("frame #%d: found %+v, want held by inode %d", frame, h, want)
		case h != nil && (h.SenderIno != 100 || h.Unplaced != ""):
			t.Errorf("frame #%d: %+v, want sender inode 100, placed", frame, h)
		}
	}
	if h := s.Find(Frame{Sk: senderSk, Ino: 999, Frame: 1}); h != nil {
		t.Errorf("a socket at the same address with another inode matched: %+v", h)
	}
	var stray []Held
	for _, h := range s.Held {
		if h.Frame == NoFrame {
			stray = append(stray, h)
		}
	}
	if len(stray) != 1 || !strings.Contains(stray[0].Unplaced, "no frame of its sender's TX ring starts at its address (all 2 blocks searched)") {
		t.Errorf("skbs with no frame %+v, want 1 (the one not at a frame start), saying why", stray)
	}
	if q := s.Queue(otherSk); q == nil || len(q.Owners) != 2 || q.RingSkbs != 2 || q.Unlisted != 0 {
		t.Errorf("tap queue %+v, want 2 owners (pid 50 and 51), 2 ring skbs", q)
	}
	if n := s.HeldBy(senderSk, senderSk); n != 2 {
		t.Errorf("sender holds %d of its own frames, want 2", n)
	}
	got := s.Describe(s.Find(Frame{Sk: senderSk, Ino: 100, Frame: 1}))
	want := "in the receive queue of its own sender's packet socket inode 100 (pid 42 (sender) fd 3), which holds 2 of this ring's skbs among 3 queued"
	if got != want {
		t.Errorf("Describe:\n got %s\nwant %s", got, want)
	}
	if got := s.Describe(s.Find(Frame{Sk: senderSk, Ino: 100, Frame: 3})); !strings.Contains(got, "inode 200 (pid 50 (tap) fd 7, pid 51 (tap) fd 4)") {
		t.Errorf("Describe of the tap's frame: %s", got)
	}
}

// cutSnapshot: senderSk's queue holds 700 skbs, 650 of them ring skbs, of
// which the iterator listed 2 (as if RT_HOLDER_MAX_LISTED were 2): frame #0
// placed, the other's search cut short.
func cutSnapshot(t *testing.T) *Snapshot {
	t.Helper()
	s, err := Decode(Encode(
		skbRec(block0, 0, found, uarg),
		skbRec(block1, 0, cut, uarg),
		queueRec(senderSk, 100, 42, 3, 700, 650, 2),
		ringRec(),
	))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestDecodeUnplaced: ring skbs the iterator found but could not place
// (its search cut short) or did not list (past RT_HOLDER_MAX_LISTED) are
// kept as such, and said.
func TestDecodeUnplaced(t *testing.T) {
	s := cutSnapshot(t)
	if h := s.Find(Frame{Sk: senderSk, Ino: 100, Frame: 0}); h == nil {
		t.Fatalf("frame #0 not found: %+v", s.Held)
	}
	if len(s.Held) != 2 || s.Held[1].Frame != NoFrame || s.Held[1].Unplaced != "the search of its sender's TX ring stopped after 2 of its 2 blocks ("+cutWhy+")" {
		t.Errorf("held %+v, want the second unplaced, cut", s.Held)
	}
	if q := s.Queue(senderSk); q == nil || q.RingSkbs != 650 || q.Unlisted != 648 {
		t.Errorf("queue %+v, want 650 ring skbs, 648 unlisted", q)
	}
}

func TestDecodeBad(t *testing.T) {
	b := Encode(records()...)
	if _, err := Decode(b[:len(b)-1]); err == nil {
		t.Error("a truncated record decoded")
	}
	if _, err := Decode(b[:2]); err == nil {
		t.Error("2 bytes decoded")
	}
	bad := records()
	q := bad[2].(bpftypes.HoldersRtHolder)
	q.Kind = 9
	bad[2] = q
	if _, err := Decode(Encode(bad...)); err == nil || !strings.Contains(err.Error(), "unknown kind 9") {
		t.Errorf("unknown kind: %v", err)
	}
	cases := map[string][]any{
		"skb records with no queue record":      {skbRec(block0, 0, found, uarg)},
		"skb records before a ring record":      {skbRec(block0, 0, found, uarg), ringRec()},
		"a queue record listing more than seen": {skbRec(block0, 0, found, uarg), queueRec(senderSk, 100, 42, 3, 3, 2, 2)},
		"a queue record listing fewer":          {skbRec(block0, 0, found, uarg), skbRec(block1, 2, found, uarg), queueRec(senderSk, 100, 42, 3, 3, 2, 1)},
		"listed more than found":                {skbRec(block0, 0, found, uarg), queueRec(senderSk, 100, 42, 3, 3, 0, 1)},
	}
	for name, recs := range cases {
		if _, err := Decode(Encode(recs...)); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	if s, err := Decode(nil); err != nil || len(s.Held)+len(s.Rings)+len(s.Queues) != 0 {
		t.Errorf("empty output: %+v, %v", s, err)
	}
}

// TestLocateUnseen: a frame the walk did not place, while the walk found
// ring skbs of its ring it could not name or did not list, is not said to
// be in no receive queue, nor released while the walk ran: the evidence
// says what the walk could not see.
func TestLocateUnseen(t *testing.T) {
	s := cutSnapshot(t)
	s.Why, s.TS, s.Done = "stuck", 2e9, 2e9+1000
	if got := s.Describe(s.Find(Frame{Sk: senderSk, Ino: 100, Frame: 0})); !strings.HasSuffix(got, "which holds 2 of this ring's skbs among 700 queued (and 648 ring skbs the walk did not list)") {
		t.Errorf("Describe: %s", got)
	}
	f := Frame{Sk: senderSk, Ino: 100, Frame: 3}
	// Released by the walk's end: with what the walk could not see, that
	// is no proof it was freed before the walk passed it.
	l := Locate(f, s, Where{}, &Release{TS: 2e9 + 500, To: "AVAILABLE"}, 1e9, false)
	if l.Place != "unknown" {
		t.Errorf("Place %q, want unknown: %+v", l.Place, l)
	}
	wantLines(t, strings.Join(l.Evidence, "\n"),
		"kernel state at 1.000000 s (stuck walk): no receive queue is seen holding its skb, but:",
		"the walk found 1 skbs of this ring in receive queues without naming their frame (the search of its sender's TX ring stopped after 2 of its 2 blocks (",
		"the receive queue of packet socket inode 100 (pid 42 (sender) fd 3) held 650 ring skbs, 648 of them not listed by the walk (at most 2 are, per socket): it may be one of those")
	if u := s.Unseen(Frame{Sk: otherSk, Frame: 0}); len(u) != 1 {
		t.Errorf("another ring's frame: %q, want only the unlisted queue", u)
	}
	// A walk that saw and placed everything has nothing to add.
	full, _ := Decode(Encode(skbRec(block0, 0, found, uarg), queueRec(senderSk, 100, 42, 3, 1, 1, 1), ringRec()))
	if u := full.Unseen(f); len(u) != 0 {
		t.Errorf("Unseen of a complete walk: %q", u)
	}
}

// TestMapPointers: a copy with pseudonyms for the addresses finds the same
// holders as the snapshot; the snapshot keeps its addresses.
func TestMapPointers(t *testing.T) {
	s, err := Decode(Encode(records()...))
	if err != nil {
		t.Fatal(err)
	}
	socks := map[uint64]uint64{senderSk: 1, otherSk: 2}
	c := s.MapPointers(func(v uint64) uint64 { return socks[v] }, func(v uint64) uint64 { return v & 0xfffff })
	for f := uint32(1); f <= 3; f++ {
		h, hc := s.Find(Frame{Sk: senderSk, Ino: 100, Frame: f}), c.Find(Frame{Sk: 1, Ino: 100, Frame: f})
		if h == nil || hc == nil || socks[h.Holder] != hc.Holder || h.HolderIno != hc.HolderIno || hc.Skb != h.Skb&0xfffff || hc.Ph != h.Ph&0xfffff {
			t.Errorf("frame %d: held %+v, in the copy %+v", f, h, hc)
		}
		if c.Describe(hc) != s.Describe(h) {
			t.Errorf("frame %d: %q, in the copy %q", f, s.Describe(h), c.Describe(hc))
		}
	}
	if r := c.Ring(1, 100); r == nil || r.Sk != 1 {
		t.Errorf("ring %+v", r)
	}
	if s.Rings[0].Sk != senderSk || s.Held[0].Sender != senderSk {
		t.Errorf("the snapshot changed: %+v", s)
	}
}
