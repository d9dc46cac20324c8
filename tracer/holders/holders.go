// Package holders answers "who holds this TX-ring frame?" from kernel state.
//
// A frame that stays SENDING has an skb somewhere that still carries it: in
// a qdisc, in a driver, or in a socket's receive queue (on 7.2 a packet
// socket bound to ETH_P_ALL on lo queues its own frames with the ring pages
// attached). A walk of the kernel's sockets (tracer/holders/walk runs the
// BPF iterator of bpf/holders.bpf.c) gives a Snapshot, which Decode builds
// from the iterator's records: the TX rings it saw and every ring skb
// found queued, with its frame index (the iterator searches the sender's
// ring for it), the socket, the processes that have it open, and what
// their threads are doing. Snapshot.Find maps a frame (ring socket, frame
// index) to where its skb is; Locate combines that with where the events
// last put the frame (Where) and its release, and words the evidence.
// Nothing here guesses from timing: a frame is "held" only when its skb
// was seen.
//
// Watcher follows a live trace's events and, when frames stay SENDING,
// reports who holds them, from a walk it is given (a walk.Loader's Walk).
// Everything here is pure Go: no kernel, no root, no BPF library, so the
// report rebuilds the same diagnoses from a recording's snapshots.
package holders

import (
	"fmt"
	"sort"
	"strings"
)

// NoFrame marks a ring skb whose frame address lies in no ring the walk saw.
const NoFrame = ^uint32(0)

// Form is how a ring skb was recognised.
type Form string

const (
	// FormDestructor: skb->destructor == tpacket_destruct_skb, destructor_arg == frame | 1.
	FormDestructor Form = "destructor"
	// FormUarg: destructor_arg is a struct tpacket_uarg {ubuf, po, ph}.
	FormUarg Form = "uarg"
)

// Owner is a process that has a socket open.
type Owner struct {
	PID  uint32 `json:"pid"`
	Comm string `json:"comm"`
	FD   uint32 `json:"fd"`
}

// Thread is a thread of an owning process and the system call it is in
// (/proc/PID/task/TID/syscall at the time of the walk).
type Thread struct {
	PID     uint32 `json:"pid"`
	TID     uint32 `json:"tid"`
	Syscall string `json:"syscall"` // "sendto", "sendmsg", "recvfrom", "running", "other(N)", ...
	FD      int    `json:"fd"`      // first argument of socket calls, -1 otherwise
	Flags   uint64 `json:"flags"`   // sendto/recvfrom flags argument
}

// InSendOn reports whether the thread is inside sendto/sendmsg on fd.
func (t Thread) InSendOn(fd uint32) bool {
	return (t.Syscall == "sendto" || t.Syscall == "sendmsg") && t.FD == int(fd)
}

// Ring is a packet socket's TX ring.
type Ring struct {
	Sk             uint64 `json:"sk"`
	Ino            uint32 `json:"inode"`
	Protocol       uint16 `json:"protocol"` // bound ethertype, host order (0x0003 ETH_P_ALL)
	FrameSize      uint32 `json:"frame_size"`
	FramesPerBlock uint32 `json:"frames_per_block"`
	Frames         uint32 `json:"frames"`
	TotalBlocks    uint32 `json:"total_blocks,omitempty"` // pg_vec_len (absent in older recordings)
	// Blocks are the block addresses, in ring order: only in recordings
	// made before the iterator named each held skb's frame itself.
	Blocks []uint64 `json:"blocks,omitempty"`
	Owners []Owner  `json:"owners"`

	// SelfCheck is the iterator's self-check, asked for by tests (walk.Config's
	// CheckStart); not recorded.
	SelfCheck SelfCheck `json:"-"`
}

// Queue is a socket whose receive queue held ring skbs.
type Queue struct {
	Sk        uint64 `json:"sk"`
	Ino       uint32 `json:"inode"`
	Family    uint32 `json:"family"`
	Qlen      uint32 `json:"qlen"`      // skbs queued
	RingSkbs  int    `json:"ring_skbs"` // of them carrying a TX-ring frame
	Walked    uint32 `json:"walked"`
	Truncated bool   `json:"truncated"` // the walk stopped before the end of the queue
	// Unlisted ring skbs were found but not listed in Held: the iterator
	// lists at most RT_HOLDER_MAX_LISTED (600) per socket.
	Unlisted int     `json:"unlisted,omitempty"`
	Owners   []Owner `json:"owners"`
}

// Held is a ring skb found in a receive queue.
type Held struct {
	Skb       uint64 `json:"skb"`
	Ph        uint64 `json:"ph"`
	Form      Form   `json:"form"`
	Sender    uint64 `json:"sender_sk"`          // the packet socket whose ring the frame is in
	SenderIno uint32 `json:"sender_inode"`       // 0 if that socket is in no fd table the walk saw
	Frame     uint32 `json:"frame"`              // NoFrame if the walk could not place ph in its sender's ring
	Unplaced  string `json:"unplaced,omitempty"` // why Frame is NoFrame (absent in older recordings)
	Holder    uint64 `json:"holder_sk"`          // the socket whose receive queue holds it
	HolderIno uint32 `json:"holder_inode"`
}

// Snapshot is one walk of the kernel's sockets.
type Snapshot struct {
	TS      uint64   `json:"ts_ns"`             // CLOCK_MONOTONIC when the walk started
	Done    uint64   `json:"done_ns,omitempty"` // CLOCK_MONOTONIC when the iterator's pass ended (0: not recorded)
	Why     string   `json:"why"`               // what asked for it ("stuck", "end")
	Rings   []Ring   `json:"rings"`
	Queues  []Queue  `json:"queues"`
	Held    []Held   `json:"held"`
	Threads []Thread `json:"threads,omitempty"`
	Err     string   `json:"error,omitempty"` // the walk failed: nothing can be said
}

// MapPointers is a copy of s with its kernel addresses replaced: a
// socket's (rings, queues, a held skb's sender and holder) by what socket
// returns, the others (skbs, frame and block addresses) by what other
// returns; zero stays zero. With pseudonyms that tell the same addresses
// apart as the real ones did, Find, Ring, Queue and the report read the
// copy as they read s; Ring.Index no longer works on it.
func (s *Snapshot) MapPointers(socket, other func(uint64) uint64) *Snapshot {
	if s == nil {
		return nil
	}
	m := func(f func(uint64) uint64, v uint64) uint64 {
		if v == 0 {
			return 0
		}
		return f(v)
	}
	c := *s
	c.Rings = append([]Ring(nil), s.Rings...)
	for i := range c.Rings {
		r := &c.Rings[i]
		r.Sk = m(socket, r.Sk)
		r.Blocks = append([]uint64(nil), r.Blocks...)
		for j, b := range r.Blocks {
			r.Blocks[j] = m(other, b)
		}
	}
	c.Queues = append([]Queue(nil), s.Queues...)
	for i := range c.Queues {
		c.Queues[i].Sk = m(socket, c.Queues[i].Sk)
	}
	c.Held = append([]Held(nil), s.Held...)
	for i := range c.Held {
		h := &c.Held[i]
		h.Skb, h.Ph = m(other, h.Skb), m(other, h.Ph)
		h.Sender, h.Holder = m(socket, h.Sender), m(socket, h.Holder)
	}
	return &c
}

// Frame names one ring frame: its socket (address and inode) and index.
type Frame struct {
	Sk    uint64
	Ino   uint32
	Frame uint32
}

// Ring is the ring of socket (sk, ino), if the walk saw it.
func (s *Snapshot) Ring(sk uint64, ino uint32) *Ring {
	for i := range s.Rings {
		if r := &s.Rings[i]; r.Sk == sk && (ino == 0 || r.Ino == 0 || r.Ino == ino) {
			return r
		}
	}
	return nil
}

// Queue is the receive queue record of socket sk.
func (s *Snapshot) Queue(sk uint64) *Queue {
	for i := range s.Queues {
		if s.Queues[i].Sk == sk {
			return &s.Queues[i]
		}
	}
	return nil
}

// Find is where frame f's skb was: the Held record, or nil when no
// receive queue held it.
func (s *Snapshot) Find(f Frame) *Held {
	for i := range s.Held {
		h := &s.Held[i]
		if h.Sender == f.Sk && h.Frame == f.Frame && (f.Ino == 0 || h.SenderIno == 0 || h.SenderIno == f.Ino) {
			return h
		}
	}
	return nil
}

// Unseen says why frame f, which Find does not place, may still be in a
// receive queue: ring skbs of its socket whose frame the walk could not
// name, and queues whose ring skbs the walk did not all list. Empty when
// the walk saw every ring skb and placed them all.
func (s *Snapshot) Unseen(f Frame) []string {
	var out []string
	n, why := 0, ""
	for _, h := range s.Held {
		if h.Sender == f.Sk && h.Frame == NoFrame && (f.Ino == 0 || h.SenderIno == 0 || h.SenderIno == f.Ino) {
			if n++; why == "" {
				why = h.Unplaced
			}
		}
	}
	if n > 0 {
		out = append(out, fmt.Sprintf("the walk found %d skbs of this ring in receive queues without naming their frame (%s): it may be one of them", n, why))
	}
	for _, q := range s.Queues {
		if q.Unlisted > 0 {
			out = append(out, fmt.Sprintf("the receive queue of %s socket inode %d (%s) held %d ring skbs, %d of them not listed by the walk (at most %d are, per socket): it may be one of those",
				FamilyName(q.Family), q.Ino, OwnersString(q.Owners), q.RingSkbs, q.Unlisted, q.RingSkbs-q.Unlisted))
		}
	}
	return out
}

// HeldBy counts the frames of ring socket sender that socket holder holds.
func (s *Snapshot) HeldBy(holder, sender uint64) int {
	n := 0
	for _, h := range s.Held {
		if h.Holder == holder && h.Sender == sender {
			n++
		}
	}
	return n
}

// ThreadsOf are the snapshot's threads of process pid.
func (s *Snapshot) ThreadsOf(pid uint32) []Thread {
	var out []Thread
	for _, t := range s.Threads {
		if t.PID == pid {
			out = append(out, t)
		}
	}
	return out
}

// BlockedSenders are the threads of the ring's owners inside sendto/sendmsg
// on the ring's socket.
func (s *Snapshot) BlockedSenders(r *Ring) []Thread {
	var out []Thread
	for _, o := range r.Owners {
		for _, t := range s.ThreadsOf(o.PID) {
			if t.InSendOn(o.FD) {
				out = append(out, t)
			}
		}
	}
	return out
}

// OwnersString is "pid 42 (comm) fd 3, pid 43 (comm) fd 5".
func OwnersString(os []Owner) string {
	if len(os) == 0 {
		return "no process has it open"
	}
	var parts []string
	for _, o := range os {
		parts = append(parts, fmt.Sprintf("pid %d (%s) fd %d", o.PID, o.Comm, o.FD))
	}
	return strings.Join(parts, ", ")
}

// Describe says in one line where the held skb is, e.g. "in the receive
// queue of packet socket inode 1234 (pid 42 (sender) fd 3), which holds 32
// ring skbs of 32 queued".
func (s *Snapshot) Describe(h *Held) string {
	q := s.Queue(h.Holder)
	fam := "socket"
	var owners []Owner
	qlen, ring := uint32(0), s.HeldBy(h.Holder, h.Sender)
	if q != nil {
		fam = FamilyName(q.Family) + " socket"
		owners, qlen = q.Owners, q.Qlen
	}
	self := ""
	if h.Holder == h.Sender {
		self = "its own sender's "
	}
	more := ""
	if q != nil && q.Unlisted > 0 {
		more = fmt.Sprintf(" (and %d ring skbs the walk did not list)", q.Unlisted)
	}
	return fmt.Sprintf("in the receive queue of %s%s inode %d (%s), which holds %d of this ring's skbs among %d queued%s",
		self, fam, h.HolderIno, OwnersString(owners), ring, qlen, more)
}

// FamilyName names an address family.
func FamilyName(f uint32) string {
	switch f {
	case 1:
		return "unix"
	case 2:
		return "inet"
	case 10:
		return "inet6"
	case 16:
		return "netlink"
	case 17:
		return "packet"
	}
	return fmt.Sprintf("family-%d", f)
}

// Remedies are what breaks a self-deadlock of a TX-ring sender on its own
// receive queue.
var Remedies = []string{
	"read (or drain) the socket's receive queue: each skb read releases its frame",
	"set SO_SNDTIMEO so a blocking sendto returns (-ETIMEDOUT) instead of waiting forever",
	"send with MSG_DONTWAIT and poll the ring's frame status instead of blocking in sendto",
	"open a second listener (a tap: another ETH_P_ALL packet socket) on the device: its clone copies the ring pages out",
	"bind the sending socket with protocol 0 (it then receives nothing, like trafgen)",
}

// Sort puts a snapshot's lists in a stable order (Decode does; a walk that
// adds Threads sorts again).
func (s *Snapshot) Sort() {
	sort.Slice(s.Rings, func(i, j int) bool { return s.Rings[i].Ino < s.Rings[j].Ino })
	sort.Slice(s.Queues, func(i, j int) bool { return s.Queues[i].Ino < s.Queues[j].Ino })
	sort.Slice(s.Held, func(i, j int) bool {
		a, b := s.Held[i], s.Held[j]
		if a.SenderIno != b.SenderIno {
			return a.SenderIno < b.SenderIno
		}
		return a.Frame < b.Frame
	})
	sort.Slice(s.Threads, func(i, j int) bool { return s.Threads[i].TID < s.Threads[j].TID })
}
