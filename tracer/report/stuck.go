package report

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/holders"
)

// Diagnosis IDs of stuck frames.
const (
	DiagStuck        = "stuck-frames"
	DiagSelfDeadlock = "self-deadlock"
)

// Stuck is a frame that stayed SENDING for StuckAfter or more, or was
// still SENDING when the trace ended, and who held it.
type Stuck struct {
	Socket   string           `json:"socket"`
	Frame    uint32           `json:"frame"`
	Sending  uint64           `json:"sending_ns"`
	Released uint64           `json:"released_ns,omitempty"`   // AVAILABLE at last (or its socket closed); 0: still SENDING at the end
	Closed   bool             `json:"socket_closed,omitempty"` // released by the socket's close, not by a completion
	For      uint64           `json:"stuck_ns"`                // SENDING until Released, or until the end
	Holder   holders.Location `json:"holder"`
}

// SetStuckAfter sets how long a frame may stay SENDING before the report
// calls it stuck (default holders.DefaultStuckAfter).
func (b *Builder) SetStuckAfter(d time.Duration) { b.stuckAfter = d }

// AddSnapshot gives the builder a walk of the kernel's sockets taken during
// the trace (live, or from a recording's trailer).
func (b *Builder) AddSnapshot(s *holders.Snapshot) {
	if s != nil {
		b.snaps = append(b.snaps, s)
	}
}

// where follows the open round of e's frame through qdisc and driver events.
func (b *Builder) where(s *Socket, e *event.Event) {
	if s == nil || !e.HasFrame() {
		return
	}
	if rd := s.open[e.Frame]; rd != nil && rd.State == event.Sending {
		rd.where.Update(e)
	}
}

// snapshotFor is the walk that says most about a round: the latest taken
// while it was SENDING that saw its skb, else the latest taken while it was
// SENDING, else nil.
func (b *Builder) snapshotFor(f holders.Frame, rd *Round) *holders.Snapshot {
	var during *holders.Snapshot
	for i := len(b.snaps) - 1; i >= 0; i-- {
		sn := b.snaps[i]
		if sn.TS < rd.Sending || (rd.Done && sn.TS > rd.Available) || (rd.gone != 0 && sn.TS > rd.gone) {
			continue
		}
		if sn.Find(f) != nil {
			return sn
		}
		if during == nil {
			during = sn
		}
	}
	return during
}

// stuck finds the stuck frames of the report and who held them.
func (b *Builder) stuck(r *Report) {
	after := uint64(b.stuckAfter)
	if after == 0 {
		after = uint64(holders.DefaultStuckAfter)
	}
	r.StuckAfter = after
	r.Stuck = []Stuck{} // JSON: [] when none
	for _, s := range r.Sockets {
		for _, rd := range s.Rounds {
			if rd.Sending == 0 {
				continue
			}
			st := Stuck{Socket: s.Label, Frame: rd.Frame, Sending: rd.Sending}
			switch {
			case !rd.Done && rd.State == event.Sending:
				st.For = r.End - min(r.End, rd.Sending)
			case rd.Done && rd.Available >= rd.Sending && rd.Available-rd.Sending >= after:
				st.Released, st.For = rd.Available, rd.Available-rd.Sending
			case !rd.Done && rd.gone >= rd.Sending && rd.gone-rd.Sending >= after:
				st.Released, st.For, st.Closed = rd.gone, rd.gone-rd.Sending, true
			default:
				continue
			}
			f := holders.Frame{Sk: s.Sk, Ino: s.Ino, Frame: rd.Frame}
			st.Holder = holders.Locate(f, b.snapshotFor(f, rd), rd.where, rd.release(), r.Start, b.names.KernelAddresses)
			r.Stuck = append(r.Stuck, st)
			loc := st.Holder
			rd.holder = &loc
		}
	}
}

// release is how the round left SENDING for good: its completion (with
// the bound of a bounded one) or its socket's close; nil while SENDING.
func (rd *Round) release() *holders.Release {
	switch {
	case rd.Done:
		r := &holders.Release{TS: rd.Available, To: event.Available.String()}
		for i := len(rd.Transitions) - 1; i >= 0; i-- {
			if t := rd.Transitions[i]; t.To == event.Available && t.TS == rd.Available {
				if !t.Exact() {
					r.Lo = t.TSLo
				}
				break
			}
		}
		return r
	case rd.gone != 0:
		return &holders.Release{TS: rd.gone}
	}
	return nil
}

// stuckGroup is the frames of one socket held in one place.
type stuckGroup struct {
	sock     *Socket
	loc      holders.Location
	frames   []uint32
	released int
	closed   int
	longest  uint64
}

func groupStuck(r *Report) []*stuckGroup {
	var out []*stuckGroup
	idx := map[string]*stuckGroup{}
	for _, st := range r.Stuck {
		k := st.Socket + "\x00" + st.Holder.Summary
		g := idx[k]
		if g == nil {
			g = &stuckGroup{sock: r.SocketByLabel(st.Socket), loc: st.Holder}
			idx[k] = g
			out = append(out, g)
		}
		g.frames = append(g.frames, st.Frame)
		g.longest = max(g.longest, st.For)
		if st.Released != 0 {
			g.released++
		}
		if st.Closed {
			g.closed++
		}
	}
	return out
}

// stuckDiagnoses names each group of stuck frames, and a self-deadlock
// where a sender's own receive queue held its frames.
func stuckDiagnoses(r *Report, snaps []*holders.Snapshot) []Diagnosis {
	var ds []Diagnosis
	for _, g := range groupStuck(r) {
		title := fmt.Sprintf("%d frames stuck SENDING (%s), up to %s: %s", len(g.frames), holders.FrameList(g.frames), ms(g.longest), g.loc.Summary)
		ev := append([]string(nil), g.loc.Evidence...)
		if g.released > 0 {
			ev = append(ev, fmt.Sprintf("%d of them were released later (%d completed, %d went with their socket's close), %d were still SENDING at the end",
				g.released, g.released-g.closed, g.closed, len(g.frames)-g.released))
		}
		ds = append(ds, Diagnosis{ID: DiagStuck, Severity: "problem", Socket: g.sock.Label, Title: title, Evidence: ev})
		if g.loc.Self {
			title, ev := holders.SelfDeadlock(len(g.frames), senderState(r, g.sock, snaps))
			ds = append(ds, Diagnosis{ID: DiagSelfDeadlock, Severity: "problem", Socket: g.sock.Label, Title: title, Evidence: ev})
		}
	}
	return ds
}

// senderState says, from the calls and the walks' thread states, whether the
// socket's sender was blocked in sendto or its calls had returned.
func senderState(r *Report, s *Socket, snaps []*holders.Snapshot) []string {
	var out []string
	for _, c := range s.Calls {
		switch {
		case c.Return == 0:
			out = append(out, fmt.Sprintf("thread %d (%s) was blocked in sendto (%s) from %s s until the end of the trace (%s)",
				c.TID, c.Comm, event.MsgFlags(c.Flags), sec(r, c.Enter), ms(r.End-min(r.End, c.Enter))))
		case !c.DontWait && c.Ret < 0:
			out = append(out, fmt.Sprintf("thread %d's blocking sendto waited %s for its frames and returned %s", c.TID, ms(c.Duration()), event.ReturnString(c.Ret)))
		case c.DontWait && c.FramesTaken > 0:
			out = append(out, fmt.Sprintf("thread %d's MSG_DONTWAIT sendto returned %s at once (%s): the frames it queued stayed SENDING", c.TID, event.ReturnString(c.Ret), ms(c.Duration())))
		}
		if len(out) >= 4 {
			break
		}
	}
	seen := map[uint32]bool{}
	for _, sn := range snaps {
		ring := sn.Ring(s.Sk, s.Ino)
		if ring == nil {
			continue
		}
		for _, t := range sn.BlockedSenders(ring) {
			if !seen[t.TID] {
				seen[t.TID] = true
				out = append(out, fmt.Sprintf("kernel state at %s s: /proc/%d/task/%d/syscall shows %s on the ring's fd %d", sec(r, sn.TS), t.PID, t.TID, t.Syscall, t.FD))
			}
		}
	}
	return out
}

// stuckHolder is who held the frame during g, when g is the SENDING
// segment in which its round got stuck.
func stuckHolder(g *segment) *holders.Location {
	if g.State != event.Sending || g.Round == nil || g.Round.holder == nil || g.Start < g.Round.Sending {
		return nil
	}
	return g.Round.holder
}

// writeStuck renders the STUCK FRAMES section.
func (r *Report) writeStuck(w io.Writer) {
	if len(r.Stuck) == 0 {
		return
	}
	fmt.Fprintf(w, "\nSTUCK FRAMES (SENDING for %s or more, or at the end; holders from kernel state)\n", ms(r.StuckAfter))
	for _, g := range groupStuck(r) {
		var parts []string
		for _, p := range []struct {
			n    int
			what string
		}{{g.released - g.closed, "AVAILABLE later"}, {g.closed, "released by the socket's close"}, {len(g.frames) - g.released, "still SENDING at the end"}} {
			if p.n > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", p.n, p.what))
			}
		}
		state := strings.Join(parts, ", ")
		fmt.Fprintf(w, "  %s %s: %d frames, up to %s, %s\n", g.sock.Label, holders.FrameList(g.frames), len(g.frames), ms(g.longest), state)
		fmt.Fprintf(w, "      held: %s\n", g.loc.Summary)
	}
}

// sortStuck orders stuck frames by socket label order, then frame.
func sortStuck(r *Report) {
	pos := map[string]int{}
	for i, s := range r.Sockets {
		pos[s.Label] = i
	}
	sort.SliceStable(r.Stuck, func(i, j int) bool {
		a, b := r.Stuck[i], r.Stuck[j]
		if a.Socket != b.Socket {
			return pos[a.Socket] < pos[b.Socket]
		}
		return a.Frame < b.Frame
	})
}
