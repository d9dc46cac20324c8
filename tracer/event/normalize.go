package event

import "slices"

// Normalizer turns the raw event stream into the logical one, the same way
// live and when a recording is replayed:
//
//   - a sendmsg entry's ring scan shows frames user space set to
//     SEND_REQUEST since the kernel last looked; each becomes a frame_state
//     SEND_REQUEST event, bounded by when that frame was last seen AVAILABLE
//     (the write itself has no kernel event);
//   - a completion of a frame no hook saw become SENDING (qdisc bypass) is
//     one raw event, SEND_REQUEST -> AVAILABLE with A[2] the earliest time
//     it can have become SENDING: it is reported as the two transitions,
//     SENDING bounded in [A[2], ts], then AVAILABLE;
//   - frame transitions two hooks raced to report (same frame, same new
//     state) are reported once;
//   - a sendmsg return whose ring scan saw the whole ring with no frame
//     SENDING proves that every frame its thread sent had completed by then:
//     a completion no hook reported (a kprobe the kernel skipped, on kernels
//     without the in-kernel walk at the return) is reported there, bounded
//     by when the frame was last seen SENDING, and counted in FoundAtReturn.
//
// Events must be passed in timestamp order.
type Normalizer struct {
	frames map[frameKey]frameMem
	// sending counts each socket's frames in SENDING, so that a return
	// only walks frames when some may have completed unseen.
	sending map[uint64]int
	// socks are the sockets seen sending (address -> inode), until gone.
	socks         map[uint64]uint32
	Duplicates    uint64
	FoundAtReturn uint64
	// NoFindAtReturn turns the search at a return off: where completions
	// are reported after the status write (the uarg's kfree, after the
	// wake-up of a blocking sender), a return can read a frame AVAILABLE
	// a few hundred ns before its completion event.
	NoFindAtReturn bool
	// The events expandScan and splitCompletion emit, reused: emit does
	// not keep them.
	implied Event
	split   [2]Event
}

type frameKey struct {
	sk    uint64
	frame uint32
}

type frameMem struct {
	state State
	tid   uint32 // the thread whose event reported it
	ino   uint32 // the socket's inode
	ts    uint64 // when state was reached
}

// NewNormalizer returns an empty normalizer.
func NewNormalizer() *Normalizer {
	return &Normalizer{frames: map[frameKey]frameMem{}, sending: map[uint64]int{}, socks: map[uint64]uint32{}}
}

// Process passes e (and the events it implies) to emit. An event passed
// to emit is only valid during that call: emit copies what it keeps.
func (n *Normalizer) Process(e *Event, emit func(*Event) error) error {
	switch e.Kind {
	case SendmsgEnter:
		if e.SockIno != 0 {
			n.socks[e.Sk] = e.SockIno
		}
		if err := emit(e); err != nil {
			return err
		}
		return n.expandScan(e, emit)
	case FrameState:
		if e.Old == SendRequest && e.New == Available {
			return n.splitCompletion(e, emit)
		}
		k := frameKey{e.Sk, e.Frame}
		prev, ok := n.frames[k]
		// A retaken completion closes the frame's earlier use, which a
		// return may have found complete already (foundAtReturn).
		if ok && (prev.state == e.New || e.Cause == CauseRetaken && prev.state != Sending) {
			n.Duplicates++
			return nil
		}
		n.set(k, prev.state, frameMem{state: e.New, tid: e.TID, ino: e.SockIno, ts: e.TS})
	case SendmsgReturn:
		if err := n.foundAtReturn(e, emit); err != nil {
			return err
		}
	case SockGone:
		for k := range n.frames {
			if k.sk == e.Sk {
				delete(n.frames, k)
			}
		}
		delete(n.sending, e.Sk)
		if e.SockIno == 0 || n.socks[e.Sk] == e.SockIno {
			delete(n.socks, e.Sk)
		}
	}
	return emit(e)
}

// FrameRef is one ring frame of one socket (the socket's kernel address
// and inode).
type FrameRef struct {
	Sk    uint64
	Frame uint32
	Ino   uint32
}

// AppendSending appends the frames the events processed so far hold
// SENDING, in no particular order.
func (n *Normalizer) AppendSending(dst []FrameRef) []FrameRef {
	for k, m := range n.frames {
		if m.state == Sending && n.sending[k.sk] > 0 {
			dst = append(dst, FrameRef{k.sk, k.frame, m.ino})
		}
	}
	return dst
}

// AppendSockets appends the sockets seen sending and not yet gone (Frame
// unset).
func (n *Normalizer) AppendSockets(dst []FrameRef) []FrameRef {
	for sk, ino := range n.socks {
		dst = append(dst, FrameRef{Sk: sk, Ino: ino})
	}
	return dst
}

// set records a frame's new state, keeping the socket's SENDING count.
func (n *Normalizer) set(k frameKey, old State, m frameMem) {
	if old == Sending {
		n.sending[k.sk]--
	}
	if m.state == Sending {
		n.sending[k.sk]++
	}
	n.frames[k] = m
}

// foundAtReturn reports, before a sendmsg return whose scan of the whole
// ring found no frame SENDING, the completion of every frame the returning
// thread sent that the events still hold SENDING.
func (n *Normalizer) foundAtReturn(e *Event, emit func(*Event) error) error {
	s := e.Scan
	if n.NoFindAtReturn || n.sending[e.Sk] <= 0 || s.Frames == 0 || s.Scanned < s.Frames || s.Sending != 0 {
		return nil
	}
	var found []uint32
	for k, m := range n.frames {
		if k.sk == e.Sk && m.state == Sending && m.tid == e.TID {
			found = append(found, k.frame)
		}
	}
	slices.Sort(found)
	for _, idx := range found {
		k := frameKey{e.Sk, idx}
		m := n.frames[k]
		x := &n.implied
		*x = Event{Kind: FrameState, TS: e.TS, TSLo: m.ts, Sk: e.Sk, SockIno: e.SockIno, PID: e.PID, TID: e.TID, CPU: e.CPU,
			Frame: k.frame, SndBuf: e.SndBuf, Wmem: e.Wmem, Pending: e.Pending, Old: Sending, New: Available,
			Prec: Bounded, Cause: CauseScan, Hook: e.Hook, Comm: e.Comm, Dev: e.Dev}
		n.set(k, Sending, frameMem{state: Available, tid: e.TID, ino: e.SockIno, ts: e.TS})
		n.FoundAtReturn++
		if err := emit(x); err != nil {
			return err
		}
	}
	return nil
}

// splitCompletion reports a SEND_REQUEST -> AVAILABLE raw event as the
// SENDING nobody saw (bounded) and the completion.
func (n *Normalizer) splitCompletion(e *Event, emit func(*Event) error) error {
	sending, avail := &n.split[0], &n.split[1]
	*sending = *e
	sending.New, sending.Prec, sending.TSLo, sending.Cause = Sending, Bounded, e.A[2], CauseTaken
	sending.A = [3]uint64{}
	*avail = *e
	avail.Old, avail.A[2] = Sending, 0
	if err := n.Process(sending, emit); err != nil {
		return err
	}
	return n.Process(avail, emit)
}

// MaxScanRun is the longest run of frames one ring scan can report: the
// kernel side stops scanning there (plan.DefaultMaxScan). A recording that
// claims more is corrupt, and expanding it must not cost billions of events.
const MaxScanRun = 1 << 16

// expandScan emits SEND_REQUEST for each frame of the entry scan's run that
// is not already known to be SEND_REQUEST.
func (n *Normalizer) expandScan(e *Event, emit func(*Event) error) error {
	s := e.Scan
	if s.Frames == 0 {
		return nil
	}
	run := min(s.RunSendRequest, s.Frames, MaxScanRun)
	for i := uint32(0); i < run; i++ {
		idx := (s.Head + i) % s.Frames
		k := frameKey{e.Sk, idx}
		prev, known := n.frames[k]
		if known && prev.state == SendRequest {
			continue
		}
		old := Unknown
		var lo uint64
		if known {
			old, lo = prev.state, prev.ts
		}
		x := &n.implied
		*x = Event{Kind: FrameState, TS: e.TS, TSLo: lo, Sk: e.Sk, SockIno: e.SockIno, PID: e.PID, TID: e.TID, CPU: e.CPU,
			Frame: idx, SndBuf: e.SndBuf, Wmem: e.Wmem, Pending: e.Pending, Old: old, New: SendRequest,
			Prec: Bounded, Cause: CauseUser, Hook: e.Hook, Comm: e.Comm}
		n.set(k, old, frameMem{state: SendRequest, tid: e.TID, ino: e.SockIno, ts: e.TS})
		if err := emit(x); err != nil {
			return err
		}
	}
	return nil
}
