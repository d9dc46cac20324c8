package scenarios

import (
	"context"
	"fmt"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/report"
)

func sndbufBlockingScenario() *Scenario {
	return &Scenario{
		Name:  "sndbuf-blocking",
		Title: "a small sndbuf: the blocking sender sleeps on sndbuf, then on TX completion (NIC starvation)",
		Seed: "reference session 4: in blocking mode tpacket_snd queues skbs until sndbuf is exceeded, sleeps, " +
			"queues more as skbs are freed, and returns only after every frame was transmitted; and the pre-4.1 " +
			"bug: MSG_DONTWAIT still slept when sk_wmem_alloc >= sk_sndbuf",
		Defaults: Params{Rate: 20e6, Burst: 1514, FifoLimit: 50, Frames: 64, Size: 1400, SndBuf: 4608},
		Calls:    true,
		Run:      runSndbufBlocking,
	}
}

func runSndbufBlocking(ctx context.Context, env *Env) ([]Expectation, error) {
	p := env.Params
	r, err := env.openRing(p.Frames)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var c call
	rep, err := env.Trace(ctx, "blocking", func(ctx context.Context) error {
		request(r, 0, p.Frames)
		c = send(r, 0)
		fmt.Fprintf(env.Log, "blocking sendto(%d frames) with sk_sndbuf %d = %v after %v\n", p.Frames, r.SndBuf(), c, c.took.Round(time.Microsecond))
		return nil
	})
	if err != nil {
		return nil, err
	}
	exps := blockingExpectations(env, rep, c, p)

	// The same lab, MSG_DONTWAIT: does the call sleep on the full sndbuf?
	var dc call
	rep2, err := env.Trace(ctx, "dontwait", func(ctx context.Context) error {
		request(r, 0, p.Frames)
		dc = send(r, unix.MSG_DONTWAIT)
		fmt.Fprintf(env.Log, "MSG_DONTWAIT sendto(%d frames) = %v after %v\n", p.Frames, dc, dc.took.Round(time.Microsecond))
		for i := 0; i < 1000 && r.Count().SendRequest > 0; i++ { // send the rest
			r.WaitWritable(10 * time.Millisecond)
			send(r, unix.MSG_DONTWAIT)
		}
		r.WaitAvailable(5 * time.Second)
		return nil
	})
	if err != nil {
		return nil, err
	}
	var verdict *report.Diagnosis
	for i := range rep2.Diagnoses {
		if rep2.Diagnoses[i].ID == report.DiagDontwaitBug {
			verdict = &rep2.Diagnoses[i]
		}
	}
	v := "no verdict"
	if verdict != nil {
		v = verdict.Title
		fmt.Fprintf(env.Log, "%s\n  %s\n", verdict.Title, strings.Join(verdict.Evidence, "\n  "))
	}
	exps = append(exps, pass("a MSG_DONTWAIT run decides the pre-4.1 sndbuf-blocking bug from what it observed",
		verdict != nil && !strings.Contains(verdict.Title, "not determined"), v, "affected or not affected"))
	return exps, nil
}

func blockingExpectations(env *Env, rep *report.Report, c call, p Params) []Expectation {
	s := mainSocket(rep)
	if s == nil || len(s.Calls) == 0 || s.Calls[0].Return == 0 {
		return []Expectation{pass("the tracer saw the blocking call return", false, "no", "yes")}
	}
	tc := s.Calls[0]
	var sndbufSleeps, complSleeps int
	var firstCompl uint64
	lastSndbuf := uint64(0)
	for _, sl := range tc.Sleeps {
		switch sl.Reason {
		case event.WaitSndbuf:
			sndbufSleeps++
			lastSndbuf = sl.Start
		case event.WaitCompletion:
			complSleeps++
			if firstCompl == 0 {
				firstCompl = sl.Start
			}
		}
	}
	done, hidden := availableAtReturn(env, s, tc)
	lastSending := uint64(0)
	for _, rd := range s.Rounds {
		lastSending = max(lastSending, rd.Sending)
	}
	// The completion wait is physics, not a given: tpacket_snd sleeps there
	// only if a frame is still in flight once it has queued the last one.
	// When the sender wakes late from its last sndbuf wait, the link may
	// have drained; its lone last frame then goes out and completes inside
	// its own dev_queue_xmit and the call returns without that wait.
	inFlight := 0
	for _, rd := range s.Rounds {
		if rd.Sending < lastSending && (!rd.Done || rd.Available > lastSending) {
			inFlight++
		}
	}
	complWhat := fmt.Sprintf("%d sleeps, %s; %d frames in flight when the last was queued", complSleeps,
		fmtDur(float64(tc.Slept(event.WaitCompletion, rep.End))), inFlight)
	physics := complSleeps > 0 && firstCompl > lastSndbuf || inFlight == 0 && complSleeps == 0
	if !env.FramesTraced() {
		// No frame timeline: when the last frame was queued is unknown.
		complWhat = fmt.Sprintf("%d sleeps, %s; frames in flight then: not traced (--detail calls)", complSleeps,
			fmtDur(float64(tc.Slept(event.WaitCompletion, rep.End))))
		physics = complSleeps == 0 || firstCompl > lastSndbuf
	}
	want := p.Frames * p.Size
	wire := float64(p.Frames*p.Size*8) / float64(p.Rate) * 1e9
	exps := []Expectation{
		pass("the blocking sendto sends every frame", c.errno == 0 && c.ret == want, c.String(), fmt.Sprint(want)),
		pass("the sender sleeps in the sndbuf wait (sock_alloc_send_pskb)", sndbufSleeps > 0,
			fmt.Sprintf("%d sleeps, %s", sndbufSleeps, fmtDur(float64(tc.Slept(event.WaitSndbuf, rep.End)))), "> 0"),
		pass("then in the TX-completion wait, once every frame is queued",
			physics, complWhat, "> 0 after the sndbuf waits (0 only if none was in flight)"),
		pass("it returns only after every frame is AVAILABLE", done+hidden == p.Frames,
			atReturn(done, hidden, p.Frames), fmt.Sprint(p.Frames)),
		pass("the call lasts at least the wire time", float64(tc.Duration()) >= 0.75*wire,
			fmtDur(float64(tc.Duration())), ">= "+fmtDur(0.75*wire)),
	}
	diags := map[string]bool{}
	for _, d := range rep.Diagnoses {
		diags[d.ID] = true
	}
	exps = append(exps, pass("diagnosed: sender blocked on sndbuf, and the NIC-starvation completion wait",
		diags[report.DiagSndbufBlocked] && diags[report.DiagCompletionWait] == (complSleeps > 0),
		fmt.Sprintf("sndbuf-blocked %v, completion-wait %v", diags[report.DiagSndbufBlocked], diags[report.DiagCompletionWait]),
		"both (completion wait: when the call slept there)"))
	return exps
}
