package metrics_test

import (
	"io"
	"math"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/ringtrace/ringtrace/tracer/bpfobj/bpftypes"
	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/metrics"
	"github.com/ringtrace/ringtrace/tracer/session"
	"github.com/ringtrace/ringtrace/tracer/watch"
)

// serve exposes a watch fed one socket's events and its closed counts.
func serve(t *testing.T) string {
	t.Helper()
	w := watch.New(watch.Options{})
	k := session.SockKey{Sk: 0xff01, Ino: 9}
	for _, e := range []event.Event{
		{Kind: event.SendmsgEnter, TS: 1, TID: 5, Scan: event.Scan{Frames: 16}},
		{Kind: event.Sleep, TS: 2, TID: 5, Aux: uint8(event.WaitCompletion)},
		{Kind: event.Wake, TS: 2 + 5e8, A: [3]uint64{5, uint64(event.WaitCompletion)}},
		{Kind: event.SendmsgReturn, TS: 1e9, TID: 5, A: [3]uint64{16000}, SndBuf: 212992, Dev: "veth0"},
	} {
		e.Sk, e.SockIno, e.Comm, e.PID = k.Sk, k.Ino, "pktgen", 7
		w.Event(&e)
	}
	var hist [40]uint64
	hist[9], hist[12], hist[39] = 10, 5, 1 // [512 ns, 1 µs), [4, 8) µs, one beyond every bound
	w.Closed(k, bpftypes.RingtraceRtSockAgg{Sent: 16, CompletedExact: 16, InflightCount: 16, InflightSum: 3e9, Hist: hist})
	reg := metrics.NewRegistry(false)
	reg.MustRegister(metrics.NewCollector(w, nil, metrics.PlanInfo{Kernel: "6.18", Class: "tracepoint",
		Completion: "uarg", Detail: "frames", Verification: "not-run", Version: "test"}))
	srv, err := metrics.Listen("127.0.0.1:0", reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return "http://" + srv.Addr + "/metrics"
}

func scrape(t *testing.T, url string) (string, map[string]*dto.MetricFamily) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("scrape: %v %d", err, resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("the exposition does not parse: %v\n%s", err, body)
	}
	return string(body), fams
}

func TestExposition(t *testing.T) {
	body, fams := scrape(t, serve(t))
	one := func(name string) *dto.Metric {
		t.Helper()
		f := fams[name]
		if f == nil || len(f.Metric) == 0 {
			t.Fatalf("no %s in\n%s", name, body)
		}
		return f.Metric[0]
	}
	labels := map[string]string{}
	for _, l := range one("ringtrace_frames_sent_total").Label {
		labels[l.GetName()] = l.GetValue()
	}
	if labels["comm"] != "pktgen" || labels["pid"] != "7" || labels["ifname"] != "veth0" || labels["sock"] != "socket:[9]" {
		t.Errorf("socket labels %v", labels)
	}
	for name, want := range map[string]float64{
		"ringtrace_frames_sent_total":      16,
		"ringtrace_frames_completed_total": 16,
		"ringtrace_send_calls_total":       1,
		"ringtrace_sent_bytes_total":       16000,
		"ringtrace_socket_sndbuf_bytes":    212992,
		"ringtrace_ring_frames":            16,
		"ringtrace_sockets":                1,
		"ringtrace_events_lost_total":      0,
	} {
		m := one(name)
		got := m.GetCounter().GetValue() + m.GetGauge().GetValue()
		if got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	for _, m := range fams["ringtrace_sleep_seconds_total"].Metric {
		for _, l := range m.Label {
			if l.GetName() == "reason" && l.GetValue() == "tx-completion" && m.GetCounter().GetValue() != 0.5 {
				t.Errorf("tx-completion sleep %v, want 0.5 s", m.GetCounter().GetValue())
			}
		}
	}
	h := one("ringtrace_completion_latency_seconds").GetHistogram()
	if h.GetSampleCount() != 16 || h.GetSampleSum() != 3 {
		t.Errorf("histogram count %d sum %v", h.GetSampleCount(), h.GetSampleSum())
	}
	// cumulative: 10 at or below 1.024 µs, 15 at or below 8.192 µs, the
	// last one only in +Inf
	for _, b := range h.Bucket {
		switch b.GetUpperBound() {
		case 1.024e-6:
			if b.GetCumulativeCount() != 10 {
				t.Errorf("le=1.024µs: %d", b.GetCumulativeCount())
			}
		case 8.192e-6:
			if b.GetCumulativeCount() != 15 {
				t.Errorf("le=8.192µs: %d", b.GetCumulativeCount())
			}
		}
		if !math.IsInf(b.GetUpperBound(), 1) && b.GetCumulativeCount() > 15 {
			t.Errorf("le=%v holds the sample beyond every bound", b.GetUpperBound())
		}
	}
	info := one("ringtrace_plan_info")
	got := map[string]string{}
	for _, l := range info.Label {
		got[l.GetName()] = l.GetValue()
	}
	if got["class"] != "tracepoint" || got["completion"] != "uarg" || got["verification"] != "not-run" {
		t.Errorf("plan_info labels %v", got)
	}
	// Prometheus' own linter: names, units, _total, help.
	problems, err := promlint.New(strings.NewReader(body)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}
