package walk

import (
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf/btf"

	"golang.org/x/sys/unix"

	"github.com/ringtrace/ringtrace/tracer/bpfobj/bpftypes"
	"github.com/ringtrace/ringtrace/tracer/holders"
	"github.com/ringtrace/ringtrace/tracer/kernel"
	"github.com/ringtrace/ringtrace/tracer/txring"
)

// rootConfig is this kernel's iterator configuration; it skips the test
// without root or in -short.
func rootConfig(t *testing.T) Config {
	t.Helper()
	if testing.Short() || os.Geteuid() != 0 {
		t.Skip("needs root and a BPF-iterator kernel (not in -short)")
	}
	syms, err := kernel.LoadKallsyms([]string{"tpacket_destruct_skb", "tpacket_ubuf_complete"})
	if err != nil {
		t.Fatal(err)
	}
	return Config{DestructAddr: syms["tpacket_destruct_skb"].Addr, UargCompleteAddr: syms["tpacket_ubuf_complete"].Addr}
}

func rootWalker(t *testing.T) *Walker {
	t.Helper()
	w, err := NewWalker(rootConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func inode(t *testing.T, fd int) uint32 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	return uint32(st.Ino)
}

// TestWalkSelfLoop sends frames from a TX ring on lo bound to ETH_P_ALL,
// MSG_DONTWAIT, never reading the socket: the looped-back frames sit in its
// own receive queue. What that queue holds depends on the kernel, and the
// test checks the iterator against what the ring says:
//   - frames still SENDING (7.2 uarg form): every one of them is found, as
//     a ring skb of this very socket, in its own receive queue, at its index;
//   - every frame AVAILABLE (destructor form, and 6.12 uarg: lo orphans or
//     copies the pages before delivery; this is what 6.18 does): the queue
//     holds the copies (walked == queued == frames sent) and no ring skb.
func TestWalkSelfLoop(t *testing.T) {
	w := rootWalker(t)
	const frames = 8
	geo := txring.Geometry{Version: txring.V2, Frames: frames, FrameSize: 2048, BlockSize: 4096}
	r, err := txring.Open(txring.SocketConfig{Ifname: "lo", Protocol: unix.ETH_P_ALL}, geo)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ino := inode(t, r.FD())
	if kernelAtLeast(5, 17) == w.Bounded {
		t.Errorf("bounded loop %v on kernel %s: bpf_loop exists since 5.17", w.Bounded, kernelRelease())
	}

	// Nothing queued yet: the ring is described, no queue.
	s, err := w.Walk("test")
	if err != nil {
		t.Fatal(err)
	}
	ring := ringByIno(s, ino)
	if ring == nil {
		t.Fatalf("walk did not see the TX ring of socket inode %d: rings %+v", ino, s.Rings)
	}
	if ring.Frames != frames || ring.FrameSize != 2048 || ring.FramesPerBlock != 2 || ring.TotalBlocks != frames/2 || ring.Protocol != unix.ETH_P_ALL {
		t.Fatalf("ring geometry %+v, want 8 frames of 2048 in 4 blocks, protocol ETH_P_ALL", ring)
	}
	if len(ring.Owners) != 1 || ring.Owners[0].PID != uint32(os.Getpid()) || ring.Owners[0].FD != uint32(r.FD()) {
		t.Fatalf("ring owners %+v, want this process fd %d", ring.Owners, r.FD())
	}

	pkt := txring.FrameSpec{Dst: txring.BroadcastMAC, Src: net.HardwareAddr{2, 0, 0, 0, 0, 1}, EtherType: txring.EtherTypeLocalExp1, Size: 100}.Build()
	for i := 0; i < frames; i++ {
		r.Fill(i, pkt)
		r.SetStatus(i, txring.SendRequest)
	}
	if n, err := r.Send(unix.MSG_DONTWAIT); err != nil || n != frames*len(pkt) {
		t.Fatalf("send: %d, %v", n, err)
	}
	time.Sleep(50 * time.Millisecond)
	var sending []uint32
	for i, st := range r.Statuses() {
		if st.State() == txring.Sending {
			sending = append(sending, uint32(i))
		}
	}
	s, err = w.Walk("test")
	if err != nil {
		t.Fatal(err)
	}
	ring = ringByIno(s, ino)
	if ring == nil {
		t.Fatal("ring gone from the second walk")
	}
	q := s.Queue(ring.Sk)
	if q == nil || q.Qlen != frames || q.Walked != frames || q.Truncated {
		t.Fatalf("own receive queue %+v, want %d skbs queued and walked", q, frames)
	}
	t.Logf("kernel %s (bounded loop: %v): %d frames SENDING after the send, queue %+v, %d ring skbs held", kernelRelease(), w.Bounded, len(sending), *q, len(s.Held))
	if q.RingSkbs != len(sending) || len(s.Held) < len(sending) {
		t.Fatalf("%d frames SENDING, the iterator found %d ring skbs in the queue (%d overall)", len(sending), q.RingSkbs, len(s.Held))
	}
	for _, idx := range sending {
		h := s.Find(holders.Frame{Sk: ring.Sk, Ino: ino, Frame: idx})
		if h == nil {
			t.Fatalf("frame #%d SENDING but not found in any receive queue: %+v", idx, s.Held)
		}
		if h.Holder != ring.Sk || h.HolderIno != ino {
			t.Fatalf("frame #%d held by socket inode %d, want its own sender %d", idx, h.HolderIno, ino)
		}
		if h.Form != holders.FormUarg {
			t.Errorf("frame #%d recognised in form %s: only the uarg form survives into a receive queue", idx, h.Form)
		}
	}
	if len(sending) == 0 {
		for _, h := range s.Held {
			if h.Sender == ring.Sk {
				t.Fatalf("every frame is AVAILABLE, yet the walk claims a ring skb of this socket is held: %+v", h)
			}
		}
	}

	// Draining the queue releases whatever it held.
	buf := make([]byte, 2048)
	for i := 0; i < frames; i++ {
		if _, _, err := unix.Recvfrom(r.FD(), buf, unix.MSG_DONTWAIT); err != nil {
			t.Fatalf("drain: %v", err)
		}
	}
	if c := r.WaitAvailable(time.Second); c.Available != frames {
		t.Fatalf("after draining: %v", c)
	}
	s, err = w.Walk("test")
	if err != nil {
		t.Fatal(err)
	}
	if q := s.Queue(ring.Sk); q != nil {
		t.Fatalf("queue not empty after the drain: %+v", q)
	}
}

func ringByIno(s *holders.Snapshot, ino uint32) *holders.Ring {
	for i := range s.Rings {
		if s.Rings[i].Ino == ino {
			return &s.Rings[i]
		}
	}
	return nil
}

func kernelAtLeast(major, minor int) bool {
	var a, b int
	fmt.Sscanf(kernelRelease(), "%d.%d", &a, &b)
	return a > major || (a == major && b >= minor)
}

func kernelRelease() string {
	var u unix.Utsname
	unix.Uname(&u)
	return unix.ByteSliceToString(u.Release[:])
}

// TestWalkerClose: after Close nothing of the iterator stays loaded.
func TestWalkerClose(t *testing.T) {
	w := rootWalker(t)
	id, err := w.prog.Info()
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := id.ID()
	w.Close()
	if _, err := w.Walk("x"); err == nil {
		t.Fatal("walk after Close succeeded")
	}
	if p, err := ebpfProgramByID(pid); err == nil {
		p.Close()
		t.Fatalf("program %d still loaded after Close", pid)
	}
}

// loadBound is how soon after attaching the iterator must be loaded: the
// default --stuck-after, the earliest a stuck check can fire after a frame
// is sent; $RINGTRACE_TEST_READY_TIMEOUT where attaching is slow (a TCG
// guest of make vmtest). Measured: ~30 ms natively, ~0.35 s on an idle 7.2
// TCG guest.
func loadBound() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("RINGTRACE_TEST_READY_TIMEOUT")); err == nil && d > 0 {
		return d
	}
	return holders.DefaultStuckAfter
}

// TestLoaderReadyEarly: a Loader started with no frame stuck has the
// iterator loaded within loadBound, walks at once, and unloads it on Close.
func TestLoaderReadyEarly(t *testing.T) {
	cfg := rootConfig(t)
	start := time.Now()
	l := Load(cfg)
	defer l.Close()
	select {
	case <-l.Ready():
	case <-time.After(loadBound()):
		t.Fatalf("iterator not loaded %v after Load", loadBound())
	}
	took, err := l.Loaded()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("iterator loaded in %v (ready %v after Load)", took.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	ws := time.Now()
	if _, err := l.Walk("test"); err != nil {
		t.Fatal(err)
	}
	t.Logf("first walk took %v", time.Since(ws).Round(time.Microsecond))
	info, err := l.w.prog.Info()
	if err != nil {
		t.Fatal(err)
	}
	id, _ := info.ID()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Walk("x"); err == nil {
		t.Fatal("walk after Close succeeded")
	}
	if p, err := ebpfProgramByID(id); err == nil {
		p.Close()
		t.Fatalf("program %d still loaded after Close", id)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestLoaderCloseWhileLoading: Close right after Load (a trace stopped by
// Ctrl-C as it attaches) waits for the load and unloads what it loaded.
func TestLoaderCloseWhileLoading(t *testing.T) {
	l := Load(rootConfig(t))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Loaded(); err != nil {
		t.Fatal(err)
	}
	if l.w.prog != nil {
		t.Fatal("the program loaded during Close is still open")
	}
	if _, err := l.Walk("x"); err == nil {
		t.Fatal("walk after Close succeeded")
	}
}

// TestLoaderFails: a load that fails — CO-RE against a kernel BTF without
// the kernel's types, or one the loader panics on (a zero Spec) — fails
// every Walk with its reason, never the process, and Close has nothing to
// unload.
func TestLoaderFails(t *testing.T) {
	cfg := rootConfig(t)
	b, err := btf.NewBuilder([]btf.Type{&btf.Int{Name: "int", Size: 4, Encoding: btf.Signed}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	typesOnlyInt, err := b.Spec()
	if err != nil {
		t.Fatal(err)
	}
	for name, spec := range map[string]*btf.Spec{"no kernel types": typesOnlyInt, "zero spec": {}} {
		cfg.KernelBTF = spec
		l := Load(cfg)
		_, err := l.Walk("stuck")
		if err == nil || !strings.Contains(err.Error(), "load holders iterator") {
			t.Errorf("%s: walk with a failed load: %v", name, err)
		}
		if err := l.Close(); err != nil {
			t.Errorf("%s: Close after a failed load: %v", name, err)
		}
		t.Logf("%s: %v", name, err)
	}
}

// TestWalkLargeRing: the walk succeeds with TX rings of every size (a ring
// of more than ~2900 blocks once failed every walk with E2BIG: its block
// addresses outgrew the 32 KiB the kernel allows one fd's output), lists
// them, and the iterator's block search places frames anywhere in them.
// The self-check (Config.CheckStart) searches for the address of the
// ring's frame head, starting near the ring's end so that the search wraps
// around; the head is moved by sending. Frames the kernel keeps SENDING in
// the sender's own receive queue (7.2 uarg form) must each be found there,
// at their index; on kernels that copy them (6.18) the queue holds none.
func TestWalkLargeRing(t *testing.T) {
	cfg := rootConfig(t)
	for _, c := range []struct {
		name   string
		geo    txring.Geometry
		bounds bool // the program for kernels without bpf_loop
	}{
		{"call-return: 8096 frames of 2048 B, 4048 blocks", txring.Geometry{Version: txring.V2, Frames: 8096, FrameSize: 2048, BlockSize: 4096}, false},
		{"8192 frames of 2048 B, 4096 blocks", txring.Geometry{Version: txring.V2, Frames: 8192, FrameSize: 2048, BlockSize: 4096}, false},
		{"16384 blocks of 4096 B: beyond the old limit of 8192", txring.Geometry{Version: txring.V2, Frames: 16384, FrameSize: 4096, BlockSize: 4096}, false},
		{"4096 blocks, no bpf_loop", txring.Geometry{Version: txring.V2, Frames: 8192, FrameSize: 2048, BlockSize: 4096}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			// Kernels without bpf_loop get the bounded program anyway.
			bounded := c.bounds || !kernelAtLeast(5, 17)
			blocks, fpb := uint32(c.geo.Blocks()), uint32(c.geo.FramesPerBlock())
			target := uint32(c.geo.Frames*3/4 + 1) // where sending moves the head
			const held = 32
			// The self-check's search starts at block from: with bpf_loop
			// near the end, going up it wraps around to the head's block;
			// without, going down RTHolderSearchBounded blocks, it finds
			// the last head (target+held) only.
			from := blocks - 10
			if bounded {
				from = (target+held)/fpb + 1
			}
			cfg := cfg
			cfg.CheckStart = from + 1
			cfg.bounded = c.bounds
			w, err := NewWalker(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			r, err := txring.Open(txring.SocketConfig{Ifname: "lo", Protocol: unix.ETH_P_ALL}, c.geo)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			ino := inode(t, r.FD())

			walk := func(wantHead uint32) *holders.Snapshot {
				t.Helper()
				start := time.Now()
				s, err := w.Walk("test")
				if err != nil {
					t.Fatalf("walk with a %d-block ring: %v", blocks, err)
				}
				ring := ringByIno(s, ino)
				if ring == nil {
					t.Fatalf("walk did not list the TX ring of socket inode %d: %+v", ino, s.Rings)
				}
				if ring.Frames != uint32(c.geo.Frames) || ring.TotalBlocks != blocks || ring.FrameSize != uint32(c.geo.FrameSize) || len(ring.Blocks) != 0 {
					t.Fatalf("ring %+v, want %d frames in %d blocks", ring, c.geo.Frames, blocks)
				}
				ck := ring.SelfCheck
				wantFound := !bounded || (ck.Head/fpb <= from && ck.Head/fpb > from-RTHolderSearchBounded)
				t.Logf("walk took %v; head %d: search %s frame %d after %d blocks", time.Since(start).Round(time.Microsecond), ck.Head, statusName(ck.Status), ck.Frame, ck.Searched)
				if ck.Head != wantHead {
					t.Errorf("head %d, want %d", ck.Head, wantHead)
				}
				switch {
				case wantFound && (ck.Status != bpftypes.HoldersRtHolderLocateRT_HL_FOUND || ck.Frame != ck.Head):
					t.Errorf("the search placed frame head %d at %d (%s)", ck.Head, ck.Frame, statusName(ck.Status))
				case !wantFound && (ck.Status != bpftypes.HoldersRtHolderLocateRT_HL_CUT || ck.Searched != RTHolderSearchBounded):
					t.Errorf("the bounded search for frame %d: %s after %d blocks, want cut after %d", ck.Head, statusName(ck.Status), ck.Searched, RTHolderSearchBounded)
				}
				return s
			}
			walk(0)

			// Move the head to a frame in the second half of the ring,
			// draining whatever the socket receives of its own frames.
			pkt := txring.FrameSpec{Dst: txring.BroadcastMAC, Src: net.HardwareAddr{2, 0, 0, 0, 0, 1}, EtherType: txring.EtherTypeLocalExp1, Size: 100}.Build()
			buf := make([]byte, 2048)
			drain := func() {
				for {
					if _, _, err := unix.Recvfrom(r.FD(), buf, unix.MSG_DONTWAIT); err != nil {
						return
					}
				}
			}
			send := func(from, n int) {
				t.Helper()
				for i := from; i < from+n; i++ {
					r.Fill(i, pkt)
					r.SetStatus(i, txring.SendRequest)
				}
				if got, err := r.Send(unix.MSG_DONTWAIT); err != nil || got != n*len(pkt) {
					t.Fatalf("send of frames %d-%d: %d, %v", from, from+n-1, got, err)
				}
			}
			for sent := 0; sent < int(target); {
				n := min(128, int(target)-sent)
				send(sent, n)
				sent += n
				for deadline := time.Now().Add(2 * time.Second); r.Count().Available < c.geo.Frames && time.Now().Before(deadline); {
					drain()
					time.Sleep(time.Millisecond)
				}
			}
			time.Sleep(20 * time.Millisecond)
			drain()
			walk(target)

			// 32 frames more, not drained: held in the own queue on 7.2.
			send(int(target), held)
			time.Sleep(50 * time.Millisecond)
			var sending []uint32
			for i, st := range r.Statuses() {
				if st.State() == txring.Sending {
					sending = append(sending, uint32(i))
				}
			}
			s := walk(target + held)
			ring := ringByIno(s, ino)
			q := s.Queue(ring.Sk)
			if q == nil || q.Qlen < held { // and whatever else lo carried meanwhile
				t.Fatalf("own receive queue %+v, want the %d frames sent", q, held)
			}
			t.Logf("kernel %s: %d frames SENDING, queue %+v, %d ring skbs held", kernelRelease(), len(sending), *q, len(s.Held))
			if q.RingSkbs != len(sending) || q.Unlisted != 0 {
				t.Fatalf("%d frames SENDING, the iterator found %d ring skbs in the queue (%d unlisted)", len(sending), q.RingSkbs, q.Unlisted)
			}
			for _, idx := range sending {
				h := s.Find(holders.Frame{Sk: ring.Sk, Ino: ino, Frame: idx})
				if h == nil || h.Holder != ring.Sk || h.HolderIno != ino {
					t.Fatalf("frame #%d SENDING, held %+v, want in its own sender's queue: %+v", idx, h, s.Held)
				}
			}
			for _, h := range s.Held {
				if h.Sender == ring.Sk && h.Frame == holders.NoFrame {
					t.Errorf("a ring skb of this socket not placed: %+v", h)
				}
			}
			drain()
		})
	}
}

// RTHolderSearchBounded is RT_HOLDER_SEARCH_BOUNDED (bpf/holders.h).
const RTHolderSearchBounded = 4

func statusName(s bpftypes.HoldersRtHolderLocate) string {
	return map[bpftypes.HoldersRtHolderLocate]string{
		bpftypes.HoldersRtHolderLocateRT_HL_FOUND: "found", bpftypes.HoldersRtHolderLocateRT_HL_NOT_IN_RING: "not in ring",
		bpftypes.HoldersRtHolderLocateRT_HL_NO_RING: "no ring", bpftypes.HoldersRtHolderLocateRT_HL_CUT: "cut"}[s]
}
