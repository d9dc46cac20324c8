package holders

import (
	"strings"
	"testing"

	"github.com/ringtrace/ringtrace/tracer/bpfobj"
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

// records: a 4-frame ring (2 per 4096-byte block) owned by pid 42 fd 3,
// bound to ETH_P_ALL, whose own queue holds frames #1 and #2, and a tap
// socket (pid 50) holding frame #3; one skb points outside every ring.
func records() []bpfobj.HoldersRtHolder {
	ring := bpfobj.HoldersRtHolder{Kind: uint32(bpfobj.HoldersRtHolderKindRT_HR_RING), Pid: 42, Fd: 3, Ino: 100, Sk: senderSk,
		Family: 17, Protocol: 0x0300, FrameSize: 2048, FramesPerBlock: 2, FrameMax: 3, Nblocks: 2, TotalBlocks: 2, Comm: comm("sender")}
	ring.Blocks[0], ring.Blocks[1] = block0, block1
	skb := func(sk uint64, ino, pid, fd uint32, ph uint64, form bpfobj.HoldersRtHolderForm) bpfobj.HoldersRtHolder {
		return bpfobj.HoldersRtHolder{Kind: uint32(bpfobj.HoldersRtHolderKindRT_HR_SKB), Pid: pid, Fd: fd, Ino: ino, Sk: sk, Family: 17,
			Skb: ph ^ 0xabc000, Ph: ph, Sender: senderSk, Qlen: 3, Form: uint32(form), Comm: comm("x")}
	}
	q := func(sk uint64, ino, pid, fd, qlen, found uint32) bpfobj.HoldersRtHolder {
		return bpfobj.HoldersRtHolder{Kind: uint32(bpfobj.HoldersRtHolderKindRT_HR_QUEUE), Pid: pid, Fd: fd, Ino: ino, Sk: sk, Family: 17,
			Qlen: qlen, Form: found, Walked: qlen, Comm: comm(map[uint32]string{42: "sender", 50: "tap", 51: "tap"}[pid])}
	}
	return []bpfobj.HoldersRtHolder{
		skb(senderSk, 100, 42, 3, block0+2048, bpfobj.HoldersRtHolderFormRT_HF_UARG),
		skb(senderSk, 100, 42, 3, block1, bpfobj.HoldersRtHolderFormRT_HF_UARG),
		q(senderSk, 100, 42, 3, 3, 2),
		ring,
		skb(otherSk, 200, 50, 7, block1+2048, bpfobj.HoldersRtHolderFormRT_HF_DESTRUCTOR),
		skb(otherSk, 200, 50, 7, block1+100, bpfobj.HoldersRtHolderFormRT_HF_DESTRUCTOR), // not a frame start
		q(otherSk, 200, 50, 7, 2, 2),
		// The tap's socket is also open in a forked child: same records again.
		skb(otherSk, 200, 51, 4, block1+2048, bpfobj.HoldersRtHolderFormRT_HF_DESTRUCTOR),
		q(otherSk, 200, 51, 4, 2, 2),
	}
}

func TestDecodeAndFind(t *testing.T) {
	s, err := Decode(Encode(records()))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Rings) != 1 || len(s.Queues) != 2 || len(s.Held) != 4 {
		t.Fatalf("rings %d queues %d held %d, want 1 2 4: %+v", len(s.Rings), len(s.Queues), len(s.Held), s)
	}
	r := s.Ring(senderSk, 100)
	if r == nil || r.Frames != 4 || r.Protocol != 3 || len(r.Blocks) != 2 {
		t.Fatalf("ring %+v", r)
	}
	for frame, want := range map[uint32]uint32{0: 0, 1: 100, 2: 100, 3: 200} {
		h := s.Find(Frame{Sk: senderSk, Ino: 100, Frame: frame})
		switch {
		case want == 0 && h != nil:
			t.Errorf("frame #%d: found %+v, no skb holds it", frame, h)
		case want != 0 && (h == nil || h.HolderIno != want):
			t.Errorf("frame #%d: found %+v, want held by inode %d", frame, h, want)
		}
	}
	if h := s.Find(Frame{Sk: senderSk, Ino: 999, Frame: 1}); h != nil {
		t.Errorf("a socket at the same address with another inode matched: %+v", h)
	}
	var stray int
	for _, h := range s.Held {
		if h.Frame == NoFrame {
			stray++
		}
	}
	if stray != 1 {
		t.Errorf("%d skbs with no frame, want 1 (the one not at a frame start)", stray)
	}
	if q := s.Queue(otherSk); q == nil || len(q.Owners) != 2 || q.RingSkbs != 2 {
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

func TestDecodeBad(t *testing.T) {
	b := Encode(records())
	if _, err := Decode(b[:len(b)-1]); err == nil {
		t.Error("a truncated record decoded")
	}
	bad := records()
	bad[0].Kind = 9
	if _, err := Decode(Encode(bad)); err == nil || !strings.Contains(err.Error(), "unknown kind 9") {
		t.Errorf("unknown kind: %v", err)
	}
	bad = records()
	bad[3].Nblocks = 33
	if _, err := Decode(Encode(bad)); err == nil {
		t.Error("a ring record claiming 33 blocks decoded")
	}
	if s, err := Decode(nil); err != nil || len(s.Held)+len(s.Rings)+len(s.Queues) != 0 {
		t.Errorf("empty output: %+v, %v", s, err)
	}
}

func TestRingIndex(t *testing.T) {
	r := Ring{FrameSize: 2048, FramesPerBlock: 2, Frames: 3, Blocks: []uint64{block0, block1}}
	cases := []struct {
		ph   uint64
		idx  uint32
		isOK bool
	}{
		{block0, 0, true}, {block0 + 2048, 1, true}, {block1, 2, true},
		{block1 + 2048, 0, false}, // beyond frame_max
		{block0 + 4096, 0, false}, // past block 0
		{block0 + 1, 0, false}, {block0 - 2048, 0, false},
	}
	for _, c := range cases {
		idx, ok := r.Index(c.ph)
		if ok != c.isOK || (ok && idx != c.idx) {
			t.Errorf("Index(%#x) = %d, %v; want %d, %v", c.ph, idx, ok, c.idx, c.isOK)
		}
	}
}

func TestParseSyscall(t *testing.T) {
	cases := []struct {
		line string
		want Thread
	}{
		{"44 0x3 0x0 0x0 0x40 0x0 0x0 0x7ffc5e0 0x4a1b2c\n", Thread{PID: 1, TID: 2, Syscall: "sendto", FD: 3, Flags: 0x40}},
		{"46 0x5 0x7ffc 0x0 0x0 0x0 0x0 0x7ffc 0x4a", Thread{PID: 1, TID: 2, Syscall: "sendmsg", FD: 5}},
		{"running\n", Thread{PID: 1, TID: 2, Syscall: "running", FD: -1}},
		{"-1 0x7ffc 0x4a\n", Thread{PID: 1, TID: 2, Syscall: "none", FD: -1}},
		{"202 0x1 0x80 0x0 0x0 0x0 0x0 0x1 0x2", Thread{PID: 1, TID: 2, Syscall: "futex", FD: -1}},
		{"", Thread{PID: 1, TID: 2, Syscall: "unknown", FD: -1}},
	}
	for _, c := range cases {
		if got := ParseSyscall(1, 2, c.line); got != c.want {
			t.Errorf("ParseSyscall(%q) = %+v, want %+v", c.line, got, c.want)
		}
	}
	s := &Snapshot{Rings: []Ring{{Sk: 1, Owners: []Owner{{PID: 1, FD: 3}}}},
		Threads: []Thread{ParseSyscall(1, 2, cases[0].line), ParseSyscall(1, 3, cases[1].line)}}
	if b := s.BlockedSenders(&s.Rings[0]); len(b) != 1 || b[0].TID != 2 {
		t.Errorf("BlockedSenders = %+v, want thread 2 (sendto on fd 3; thread 3 sends on fd 5)", b)
	}
}

// TestMapPointers: a copy with pseudonyms for the addresses finds the same
// holders as the snapshot; the snapshot keeps its addresses.
func TestMapPointers(t *testing.T) {
	s, err := Decode(Encode(records()))
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
	if r := c.Ring(1, 100); r == nil || r.Blocks[0] != block0&0xfffff {
		t.Errorf("ring %+v", r)
	}
	if s.Rings[0].Sk != senderSk || s.Rings[0].Blocks[0] != block0 || s.Held[0].Sender != senderSk {
		t.Errorf("the snapshot changed: %+v", s)
	}
}
