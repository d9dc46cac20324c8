package scenarios

import (
	"context"
	"fmt"
)

func bypassScenario() *Scenario {
	return &Scenario{
		Name:  "bypass",
		Title: "PACKET_QDISC_BYPASS: no qdisc at all, every frame still completes",
		Seed: "reference session 5: with PACKET_QDISC_BYPASS the packet socket calls the driver directly " +
			"(packet_direct_xmit / dev_direct_xmit) instead of dev_queue_xmit: no qdisc, no qdisc statistics",
		// The emulated NIC is there to be bypassed.
		Defaults: Params{Rate: 1e9, FifoLimit: 50, Frames: 64, Size: 1000, Bypass: true},
		Run:      runBypass,
	}
}

func runBypass(ctx context.Context, env *Env) ([]Expectation, error) {
	p := env.Params
	r, err := env.openRing(p.Frames)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	qBefore, err := env.Lab.Qdiscs()
	if err != nil {
		return nil, err
	}
	tBefore, err := env.Lab.SenderStats()
	if err != nil {
		return nil, err
	}
	var calls []call
	rep, err := env.Trace(ctx, "", func(ctx context.Context) error {
		for round := 0; round < 2; round++ {
			request(r, 0, p.Frames)
			calls = append(calls, send(r, 0))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	qAfter, err := env.Lab.Qdiscs()
	if err != nil {
		return nil, err
	}
	tAfter, err := env.Lab.SenderStats()
	if err != nil {
		return nil, err
	}
	qsent, _, _ := qdiscDelta(qBefore, qAfter, "")
	want := 2 * p.Frames
	s := mainSocket(rep)
	if s == nil {
		return []Expectation{pass("the tracer saw the sender's socket", false, "no socket", "one")}, nil
	}
	completed := 0
	for _, rd := range s.Rounds {
		if rd.Done {
			completed++
		}
	}
	qev := rep.Events["qdisc_enqueue"] + rep.Events["qdisc_dequeue"]
	return []Expectation{
		pass("both sendto calls send every frame", fmt.Sprint(userReturns(calls)) == fmt.Sprint([]int64{int64(p.Frames * p.Size), int64(p.Frames * p.Size)}),
			fmt.Sprint(userReturns(calls)), fmt.Sprintf("[%d %d]", p.Frames*p.Size, p.Frames*p.Size)),
		pass("no qdisc events in the trace", qev == 0, fmt.Sprintf("%d qdisc events", qev), "0"),
		pass("the qdisc's counters did not move", qsent == 0, fmt.Sprintf("Sent %d pkt", qsent), "0"),
		pass("the veth transmitted every frame", tAfter.TxPackets-tBefore.TxPackets == uint64(want),
			fmt.Sprint(tAfter.TxPackets-tBefore.TxPackets), fmt.Sprint(want)),
		pass("every frame still reaches AVAILABLE", completed == want, fmt.Sprintf("%d of %d", completed, want), fmt.Sprint(want)),
	}, nil
}
