package event

import (
	"fmt"
	"testing"
)

// A long trace of short-lived sockets keeps a bounded number of labels,
// never reuses one, and a closed socket's late event keeps its label.
func TestFormatterForgetsClosedSockets(t *testing.T) {
	f := NewFormatter(0, Names{})
	const n = 10 * DefaultRecent
	for i := 1; i <= n; i++ {
		sk, ino := uint64(0xffff0000+i%64), uint32(i) // addresses are reused, inodes are not
		send := Event{Kind: SendmsgEnter, Sk: sk, SockIno: ino}
		if got, want := f.SocketLabel(send.Sk, send.SockIno), fmt.Sprintf("sk%d", i); got != want {
			t.Fatalf("socket %d labelled %s, want %s", i, got, want)
		}
		f.AppendJSON(nil, &Event{Kind: SockGone, Sk: sk, SockIno: ino})
		late := Event{Kind: FrameState, Sk: sk, SockIno: ino, New: Available}
		if got := f.SocketLabel(late.Sk, late.SockIno); got != fmt.Sprintf("sk%d", i) {
			t.Fatalf("late event of closed socket %d labelled %s", i, got)
		}
	}
	if len(f.socks) != 0 || f.gone.Len() > 2*DefaultRecent {
		t.Errorf("after %d closed sockets: %d open labels, %d remembered (want 0, at most %d)", n, len(f.socks), f.gone.Len(), 2*DefaultRecent)
	}
}

func TestRecentGenerations(t *testing.T) {
	r := Recent[int, string]{N: 2}
	r.Put(1, "a")
	r.Put(2, "b")
	r.Put(3, "c") // 1 and 2 become the old generation
	if v, ok := r.Get(1); !ok || v != "a" {
		t.Errorf("Get(1) = %q, %v after one rotation", v, ok)
	}
	r.Put(4, "d")
	r.Put(5, "e") // 1 and 2 dropped
	if _, ok := r.Get(1); ok || r.Len() != 3 {
		t.Errorf("after two rotations: 1 still there (%v) or %d entries, want 3", ok, r.Len())
	}
}
