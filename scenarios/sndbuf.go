package scenarios

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

func sndbufScenario() *Scenario {
	return &Scenario{
		Name:  "sndbuf",
		Title: "-ENOBUFS: a 50-packet pfifo, not the 2.4 MB sndbuf, bounds a MSG_DONTWAIT burst",
		Seed: "reference session 3: SO_SNDBUFFORCE 1228800 -> sk_sndbuf 2457600, 200 x 1500 B non-blocking, pfifo " +
			"limit 50: dev_queue_xmit drops, the frame is destructed and rolled back, sendto returns -105 repeatedly " +
			"while sk_wmem_alloc stays far below sk_sndbuf; ring frames in flight count against sk_wmem_alloc",
		// The link must be slower than the sender for the 50-packet queue to
		// fill: a traced sender spends ~10 us per frame in tracepoints on a
		// 2-core machine, no faster than 1 Gbit/s, so the emulated NIC runs
		// at 100 Mbit/s with a two-frame bucket.
		Defaults: Params{Rate: 100e6, Burst: 3028, FifoLimit: 50, Frames: 200, Size: 1500, SndBuf: 1228800},
		Run:      runSndbuf,
	}
}

func runSndbuf(ctx context.Context, env *Env) ([]Expectation, error) {
	p := env.Params
	r, err := env.openRing(p.Frames)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	before, err := env.Lab.Qdiscs()
	if err != nil {
		return nil, err
	}
	var calls []call
	accepted := 0
	rep, err := env.Trace(ctx, "", func(ctx context.Context) error {
		request(r, 0, p.Frames)
		// Like the seed's sender: call again after every -ENOBUFS until
		// the kernel took every frame.
		deadline := time.Now().Add(10 * time.Second)
		for accepted < p.Frames && time.Now().Before(deadline) && ctx.Err() == nil {
			c := send(r, unix.MSG_DONTWAIT)
			calls = append(calls, c)
			accepted = 0
			for i := 0; i < p.Frames; i++ {
				if r.Status(i).State() != 1 {
					accepted++
				}
			}
		}
		r.WaitAvailable(5 * time.Second)
		return nil
	})
	if err != nil {
		return nil, err
	}
	after, err := env.Lab.Qdiscs()
	if err != nil {
		return nil, err
	}
	enobufs := 0
	for _, c := range calls {
		if c.errno == unix.ENOBUFS {
			enobufs++
		}
	}
	fmt.Fprintf(env.Log, "%d sendto calls, %d returned -ENOBUFS; sk_sndbuf %d\n", len(calls), enobufs, r.SndBuf())
	s := mainSocket(rep)
	if s == nil {
		return []Expectation{pass("the tracer saw the sender's socket", false, "no socket", "one")}, nil
	}
	_, qdrops, _ := qdiscDelta(before, after, "")
	syncDrops, rolled := 0, 0
	for _, d := range s.Drops {
		if d.Synchronous {
			syncDrops++
		}
	}
	for _, rd := range s.Rounds {
		rolled += rd.Drops
	}
	var maxWmem int32
	for _, x := range s.Series {
		if x.Wmem > maxWmem {
			maxWmem = x.Wmem
		}
	}
	exps := []Expectation{
		pass("SO_SNDBUFFORCE is doubled by the kernel", r.SndBuf() == 2*p.SndBuf, fmt.Sprint(r.SndBuf()), fmt.Sprint(2*p.SndBuf)),
		pass("sendto returns -ENOBUFS", enobufs > 0, fmt.Sprintf("%d of %d calls", enobufs, len(calls)), "> 0"),
		pass("drop events equal the qdisc's own drop counter", uint64(syncDrops) == qdrops && qdrops > 0,
			fmt.Sprintf("%d traced, qdisc dropped %d", syncDrops, qdrops), "equal, > 0"),
		pass("every drop rolled its frame back to SEND_REQUEST", rolled == syncDrops,
			fmt.Sprintf("%d roll-backs", rolled), fmt.Sprint(syncDrops)),
		pass("each -ENOBUFS is one drop (tpacket_snd stops at the first)", enobufs == syncDrops,
			fmt.Sprintf("%d -ENOBUFS, %d drops", enobufs, syncDrops), "equal"),
		pass("every frame is eventually sent and AVAILABLE", accepted == p.Frames && r.Count().Available == r.Frames(),
			fmt.Sprintf("%d accepted, ring %v", accepted, r.Count()), fmt.Sprintf("%d, all AVAILABLE", p.Frames)),
		pass("sk_wmem_alloc stays far below sk_sndbuf: the qdisc limit bounds the burst", maxWmem > 0 && int(maxWmem) < r.SndBuf()/4,
			fmt.Sprintf("max sk_wmem_alloc %d / sk_sndbuf %d", maxWmem, r.SndBuf()), "< sndbuf/4"),
		pass("frames in flight are charged to sk_wmem_alloc", int(maxWmem) > int(p.FifoLimit)*p.Size,
			fmt.Sprintf("max %d bytes with up to %d frames queued", maxWmem, p.FifoLimit), fmt.Sprintf("> %d x %d B", p.FifoLimit, p.Size)),
	}
	return exps, nil
}
