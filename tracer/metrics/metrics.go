// Package metrics owns ringtrace's Prometheus exposition: a collector that,
// at each scrape, brings a watch.Watch up to date from the kernel and turns
// its snapshot into series labelled per socket (comm, pid, ifname, sock),
// and the HTTP server that serves them.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/watch"
)

// PlanInfo is what ringtrace_plan_info says of the trace.
type PlanInfo struct {
	Kernel     string // release
	Class      string // hook class: fentry, kprobe, tracepoint
	Completion string // destructor or uarg
	Detail     string // frames or calls
	// Verification is the start-up proof of the plan: "verified",
	// "broken", or "not-run".
	Verification string
	Version      string // ringtrace's
}

// sockLabels are every per-socket series' labels.
var sockLabels = []string{"comm", "pid", "ifname", "sock"}

func desc(name, help string, extra ...string) *prometheus.Desc {
	return prometheus.NewDesc("ringtrace_"+name, help, append(append([]string(nil), sockLabels...), extra...), nil)
}

var (
	dSent      = desc("frames_sent_total", "Frames that reached SENDING (tpacket_snd took them from the ring).")
	dCompleted = desc("frames_completed_total", "Frames that reached AVAILABLE again (TX completion).")
	dDropped   = desc("frames_dropped_total", "Frames dropped: stage=sendto (inside the call, rolled back and sent again) or later (qdisc, driver).", "stage")
	dRolled    = desc("frames_rolled_back_total", "Frames tpacket_snd wrote back to SEND_REQUEST after a drop.")
	dWrong     = desc("frames_wrong_format_total", "Frames tpacket_snd refused (TP_STATUS_WRONG_FORMAT).")
	dCalls     = desc("send_calls_total", "send calls (sendto, sendmsg) on the TX ring socket.")
	dErrors    = desc("send_errors_total", "Failed send calls, by errno.", "errno")
	dBytes     = desc("sent_bytes_total", "Frame bytes the send calls returned as sent.")
	dLatency   = desc("completion_latency_seconds", "Time from SENDING to AVAILABLE of frames whose SENDING was seen.")
	dSndbuf    = desc("socket_sndbuf_bytes", "sk_sndbuf at the socket's last send call or sleep.")
	dWmem      = desc("socket_wmem_alloc_bytes", "sk_wmem_alloc at the socket's last send call or sleep.")
	dInFlight  = desc("frames_in_flight", "Frames SENDING now.")
	dStuck     = desc("frames_stuck", "Frames SENDING for longer than the stuck threshold now.")
	dRing      = desc("ring_frames", "Frames in the socket's TX ring.")
	dSlept     = desc("sleep_seconds_total", "Time the sender slept inside send calls, by reason: sndbuf, tx-completion, pg_vec_lock, cpu (runnable, waiting for a CPU), other.", "reason")
	dLost      = prometheus.NewDesc("ringtrace_events_lost_total", "Events the BPF ring buffer dropped (the reader fell behind).", nil, nil)
	dSockets   = prometheus.NewDesc("ringtrace_sockets", "TX ring sockets in view (closed ones stay for the grace period).", nil, nil)
	dInfo      = prometheus.NewDesc("ringtrace_plan_info", "The attach plan in effect: hook class, TX completion form, detail, and the start-up verification of its promises.",
		[]string{"kernel", "class", "completion", "detail", "verification", "version"}, nil)
)

// waits are the sleep reasons exported, in order.
var waits = []event.Wait{event.WaitSndbuf, event.WaitCompletion, event.WaitPgVecLock, event.WaitCPU, event.WaitOther}

// Collector is a prometheus.Collector over a Watch.
type Collector struct {
	w    *watch.Watch
	src  watch.Source // nil: collect the Watch as it is
	info PlanInfo
}

// NewCollector collects w, updating it from src at each scrape.
func NewCollector(w *watch.Watch, src watch.Source, info PlanInfo) *Collector {
	return &Collector{w: w, src: src, info: info}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{dSent, dCompleted, dDropped, dRolled, dWrong, dCalls, dErrors, dBytes, dLatency,
		dSndbuf, dWmem, dInFlight, dStuck, dRing, dSlept, dLost, dSockets, dInfo} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	if c.src != nil {
		if err := c.w.Update(c.src); err != nil {
			ch <- prometheus.NewInvalidMetric(dSockets, fmt.Errorf("read the kernel's counts: %w", err))
			return
		}
	}
	snap := c.w.Snapshot()
	i := c.info
	ch <- prometheus.MustNewConstMetric(dInfo, prometheus.GaugeValue, 1, i.Kernel, i.Class, i.Completion, i.Detail, i.Verification, i.Version)
	ch <- prometheus.MustNewConstMetric(dLost, prometheus.CounterValue, float64(snap.Lost))
	ch <- prometheus.MustNewConstMetric(dSockets, prometheus.GaugeValue, float64(len(snap.Sockets)))
	for k := range snap.Sockets {
		collectSocket(ch, &snap.Sockets[k])
	}
}

func collectSocket(ch chan<- prometheus.Metric, s *watch.Socket) {
	l := []string{s.Comm, fmt.Sprint(s.PID), s.Ifname, s.Label}
	with := func(extra ...string) []string { return append(append([]string(nil), l...), extra...) }
	counter := func(d *prometheus.Desc, v float64, extra ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, with(extra...)...)
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	counter(dSent, float64(s.Sent))
	counter(dCompleted, float64(s.Completed))
	counter(dDropped, float64(s.DroppedSync), "sendto")
	counter(dDropped, float64(s.DroppedLate), "later")
	counter(dRolled, float64(s.RolledBack))
	counter(dWrong, float64(s.WrongFormat))
	counter(dCalls, float64(s.Calls))
	counter(dBytes, float64(s.Bytes))
	for errno, n := range s.Errnos {
		counter(dErrors, float64(n), errno)
	}
	for _, w := range waits {
		counter(dSlept, s.Slept[w].Seconds(), w.String())
	}
	gauge(dSndbuf, float64(s.SndBuf))
	gauge(dWmem, float64(s.Wmem))
	gauge(dInFlight, float64(s.Sending))
	gauge(dStuck, float64(s.Stuck))
	gauge(dRing, float64(s.RingFrames))
	ch <- prometheus.MustNewConstHistogram(dLatency, s.Latency.Count, float64(s.Latency.SumNS)/1e9, buckets(&s.Latency), l...)
}

// Latency buckets exported: upper bounds 2^minBound .. 2^maxBound ns
// (~1 µs .. ~69 s), the kernel's power-of-two buckets below and above
// folded into the first and +Inf.
const minBound, maxBound = 10, 36

// buckets are the cumulative counts Prometheus wants, by upper bound in
// seconds: kernel bucket b holds [2^b, 2^(b+1)) ns.
func buckets(l *watch.Latency) map[float64]uint64 {
	out := make(map[float64]uint64, maxBound-minBound+1)
	var cum uint64
	for b := range l.Buckets {
		cum += l.Buckets[b]
		if top := b + 1; top >= minBound && top <= maxBound {
			out[math.Ldexp(1, top)/1e9] = cum
		}
	}
	return out
}

// Server serves /metrics.
type Server struct {
	Addr string // where it listens (the port chosen, for ":0")
	srv  *http.Server
	done chan error
}

// Listen starts serving the registry's metrics at addr (HOST:PORT) under
// /metrics. It fails at once if addr cannot be listened on.
func Listen(addr string, reg *prometheus.Registry) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintln(w, "ringtrace: metrics at /metrics")
	})
	s := &Server{Addr: ln.Addr().String(), srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}, done: make(chan error, 1)}
	go func() { s.done <- s.srv.Serve(ln) }()
	return s, nil
}

// Close stops the server, letting scrapes in progress finish for a while.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if serr := <-s.done; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}

// NewRegistry is a registry for the collector (registered once the trace
// is attached: the endpoint listens before, so a bad address fails first),
// without Go runtime or process series unless asked (they are the
// exporter's, not the sender's).
func NewRegistry(runtime bool) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	if runtime {
		reg.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	}
	return reg
}
