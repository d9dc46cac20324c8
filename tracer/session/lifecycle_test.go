package session_test

import (
	"os/exec"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringtrace/ringtrace/scenarios/lab"
	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/nsexec"
	"github.com/ringtrace/ringtrace/tracer/plan"
	"github.com/ringtrace/ringtrace/tracer/session"
	"github.com/ringtrace/ringtrace/tracer/txring"
)

// sockUse is one socket's life as the sender saw it.
type sockUse struct {
	ino    uint64
	frames int // frames it handed to the kernel (every one came back AVAILABLE)
}

// sendAndClose opens a ring of version v with n frames on lo in the lab's
// sender namespace, sends every frame blocking, waits for them and closes
// the socket.
func sendAndClose(t *testing.T, l *lab.Lab, v txring.Version, n, frameSize int) sockUse {
	t.Helper()
	block := 4096
	if frameSize > block {
		block = frameSize
	}
	frames := n
	if per := block / frameSize; frames%per != 0 {
		frames += per - frames%per
	}
	r, err := txring.Open(txring.SocketConfig{Ifname: "lo", NetNS: l.SenderNS},
		txring.Geometry{Version: v, Frames: frames, FrameSize: frameSize, BlockSize: block})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var st unix.Stat_t
	if err := unix.Fstat(r.FD(), &st); err != nil {
		t.Fatal(err)
	}
	pkt := txring.FrameSpec{Dst: txring.BroadcastMAC, EtherType: txring.EtherTypeLocalExp1, Size: 100}.Build()
	for i := 0; i < n; i++ {
		r.Fill(i, pkt)
		r.SetStatus(i, txring.SendRequest)
	}
	if ret, err := r.Send(0); err != nil || ret != n*len(pkt) {
		t.Fatalf("%v: sendto = %d, %v; want %d", v, ret, err, n*len(pkt))
	}
	if c := r.WaitAvailable(time.Second); c.Available != frames {
		t.Fatalf("%v: ring %v after the send", v, c)
	}
	return sockUse{ino: st.Ino, frames: n}
}

// perSocket counts each socket's SENDING and AVAILABLE events, by inode.
func perSocket(evs []event.Event) (sending, avail map[uint64]int, addrs map[uint64]map[uint64]bool) {
	sending, avail, addrs = map[uint64]int{}, map[uint64]int{}, map[uint64]map[uint64]bool{}
	for _, e := range evs {
		if e.SockIno == 0 {
			continue
		}
		ino := uint64(e.SockIno)
		if addrs[ino] == nil {
			addrs[ino] = map[uint64]bool{}
		}
		addrs[ino][e.Sk] = true
		if e.Kind != event.FrameState {
			continue
		}
		switch e.New {
		case event.Sending:
			sending[ino]++
		case event.Available:
			avail[ino]++
		}
	}
	return sending, avail, addrs
}

// TestSocketsInSequence: sockets opened, used and closed one after the
// other (TPACKET_V1, V2, V3, then another process's two sends from a
// one-frame ring) get the slab's freed addresses again. Each must still be
// followed through every frame: a socket's address is not its identity.
func TestSocketsInSequence(t *testing.T) {
	l := newLab(t)
	bin := ringtraceBinary(t)
	tr := startTracer(t, plan.Auto, session.Filter{})
	var uses []sockUse
	for _, v := range []txring.Version{txring.V1, txring.V2, txring.V3} {
		uses = append(uses, sendAndClose(t, l, v, 100, 2048))
	}
	cmd := exec.Command(bin, "send", "-i", "lo", "--frames", "1", "--frame-size", "4096", "--block-size", "4096",
		"--count", "2", "--size", "100", "-q")
	if err := nsexec.Do(l.SenderNS, cmd.Start); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("second process: %v", err)
	}
	evs := tr.stop(t)
	sending, avail, addrs := perSocket(evs)
	child := uint32(cmd.Process.Pid)
	for _, e := range evs {
		if e.PID == child && e.Kind == event.SendmsgEnter {
			uses = append(uses, sockUse{ino: uint64(e.SockIno), frames: 2})
			break
		}
	}
	if len(uses) != 4 {
		t.Fatalf("the second process's socket was not seen (pid %d)", child)
	}
	seen := map[uint64]int{}
	for i, u := range uses {
		for a := range addrs[u.ino] {
			seen[a]++
		}
		if sending[u.ino] != u.frames || avail[u.ino] != u.frames {
			t.Errorf("socket %d (inode %d): %d SENDING, %d AVAILABLE; want %d each", i, u.ino, sending[u.ino], avail[u.ino], u.frames)
		}
	}
	reused := 0
	for _, n := range seen {
		if n > 1 {
			reused++
		}
	}
	t.Logf("%d sockets, %d kernel addresses among them used by more than one", len(uses), reused)
}

// TestSocketChurn: 200 sockets opened, used and closed in a row, with
// rings of every version and of 1 to 4096 frames, some by this process and
// some by short-lived ones; the slab hands their addresses out again and
// again. Every socket's every frame must be followed to AVAILABLE.
func TestSocketChurn(t *testing.T) {
	if testing.Short() {
		t.Skip("churn")
	}
	t.Run("plan", func(t *testing.T) { socketChurn(t, false) })
	// Kernels before 5.17 (no bpf_loop) clean up through user space: run
	// that path here too when this kernel has bpf_loop.
	t.Run("without-bpf_loop", func(t *testing.T) { socketChurn(t, true) })
}

func socketChurn(t *testing.T, noLoop bool) {
	l := newLab(t)
	bin := ringtraceBinary(t)
	o := options(t, plan.Auto)
	if noLoop {
		if !o.Facts.Features.BPFLoop.OK {
			t.Skip("this kernel has no bpf_loop: the plan subtest ran this path")
		}
		f := *o.Facts
		f.Features.BPFLoop.OK = false
		p, err := plan.Build(&f, plan.Auto)
		if err != nil {
			t.Fatal(err)
		}
		o.Facts, o.Plan = &f, p
	}
	tr := startTracerWith(t, o)
	versions := []txring.Version{txring.V1, txring.V2, txring.V3}
	sizes := []int{1, 2, 7, 64, 256, 4096}
	var uses []sockUse
	var children []*exec.Cmd
	for i := 0; i < 200; i++ {
		v, n := versions[i%3], sizes[i%len(sizes)]
		if i%10 == 9 {
			cmd := exec.Command(bin, "send", "-i", "lo", "--tpacket-version", strconv.Itoa(int(v)), "--frames", "2",
				"--count", "3", "--size", "100", "-q")
			if err := nsexec.Do(l.SenderNS, cmd.Start); err != nil {
				t.Fatal(err)
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("child %d: %v", i, err)
			}
			children = append(children, cmd)
			continue
		}
		fs := 2048
		if n == 1 {
			fs = 4096
		}
		uses = append(uses, sendAndClose(t, l, v, n, fs))
	}
	// While the tracer runs on, its per-socket and per-frame state must
	// go with the sockets: a long trace cannot leak.
	mapsEmpty(t, tr, 3*time.Second)
	evs := tr.stop(t)
	for _, c := range children {
		for _, e := range evs {
			if e.PID == uint32(c.Process.Pid) && e.Kind == event.SendmsgEnter {
				uses = append(uses, sockUse{ino: uint64(e.SockIno), frames: 3})
				break
			}
		}
	}
	if len(uses) != 200 {
		t.Errorf("%d of 200 sockets seen", len(uses))
	}
	sending, avail, addrs := perSocket(evs)
	seen := map[uint64]int{}
	bad := 0
	for _, u := range uses {
		for a := range addrs[u.ino] {
			seen[a]++
		}
		if sending[u.ino] != u.frames || avail[u.ino] != u.frames {
			if bad++; bad <= 10 {
				t.Errorf("socket inode %d: %d SENDING, %d AVAILABLE; want %d each", u.ino, sending[u.ino], avail[u.ino], u.frames)
			}
		}
	}
	reused := 0
	for _, n := range seen {
		if n > 1 {
			reused++
		}
	}
	t.Logf("200 sockets on %d kernel addresses, %d of them used more than once; %d sockets not followed", len(seen), reused, bad)
	if reused == 0 {
		t.Log("no address was reused: this run proves nothing about reuse")
	}
}

// mapsEmpty waits until the tracer holds no state of any socket: sockets,
// frames, calls, and (where the kernel deletes them itself, with bpf_loop)
// the frame-address cache.
func mapsEmpty(t *testing.T, tr *tracer, within time.Duration) {
	t.Helper()
	names := []string{"socks", "frames", "calls", "graves"}
	if tr.plan.Config.UseLoop {
		names = append(names, "ph2idx")
	}
	deadline := time.Now().Add(within)
	for {
		left := map[string]int{}
		for _, n := range names {
			c, err := tr.sess.MapEntries(n)
			if err != nil {
				t.Fatal(err)
			}
			if c > 0 {
				left[n] = c
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%v after the sockets closed: entries left %v", within, left)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}
