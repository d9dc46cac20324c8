package report_test

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/report"
)

// node is an element of the page. The page is well-formed XML (strictly
// parsed): every element is closed, every attribute quoted.
type node struct {
	name string
	attr map[string]string
	kids []*node
	text strings.Builder
}

func parsePage(t *testing.T, b []byte) *node {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	root := &node{name: "#document"}
	stack := []*node{root}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("page is not well-formed: %v", err)
		}
		top := stack[len(stack)-1]
		switch x := tok.(type) {
		case xml.StartElement:
			n := &node{name: x.Name.Local, attr: map[string]string{}}
			for _, a := range x.Attr {
				n.attr[a.Name.Local] = a.Value
			}
			top.kids = append(top.kids, n)
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			top.text.Write(x)
		}
	}
	return root
}

func (n *node) walk(f func(*node)) {
	f(n)
	for _, k := range n.kids {
		k.walk(f)
	}
}

// find returns the elements with this tag ("" any) and class ("" any).
func (n *node) find(tag, class string) []*node {
	var out []*node
	n.walk(func(k *node) {
		if (tag == "" || k.name == tag) && (class == "" || k.hasClass(class)) {
			out = append(out, k)
		}
	})
	return out
}

func (n *node) hasClass(c string) bool {
	for _, x := range strings.Fields(n.attr["class"]) {
		if x == c {
			return true
		}
	}
	return false
}

func (n *node) textContent() string {
	var b strings.Builder
	n.walk(func(k *node) { b.WriteString(k.text.String()) })
	return b.String()
}

func htmlOf(t *testing.T, rep *report.Report) ([]byte, *node) {
	t.Helper()
	var buf bytes.Buffer
	if err := rep.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), parsePage(t, buf.Bytes())
}

var externalRef = regexp.MustCompile(`(?i)https?:|//[a-z0-9.-]+/|\burl\(\s*[^#\s]|\bsrc=|<link\b|<script\b|<img\b|<iframe\b|@import`)

// checkHTML asserts what must hold for any report's page.
func checkHTML(t *testing.T, rep *report.Report, raw []byte, page *node) {
	t.Helper()
	if m := externalRef.Find(raw); m != nil {
		t.Errorf("page is not self-contained: %q", m)
	}
	ids := map[string]int{}
	page.walk(func(k *node) {
		if id := k.attr["id"]; id != "" {
			ids[id]++
		}
	})
	want := []string{"summary", "diagnoses", "frame-timeline", "wmem-chart", "pending-chart"}
	if len(rep.CPUs) > 0 {
		want = append(want, "softirq-chart")
	}
	if rep.Totals.Calls > 0 {
		want = append(want, "calls-chart")
	}
	for _, id := range want {
		if ids[id] != 1 {
			t.Errorf("id %q appears %d times, want once", id, ids[id])
		}
	}
	text := page.textContent()
	for _, d := range rep.Diagnoses {
		for _, s := range append([]string{d.Title}, d.Evidence...) {
			if !strings.Contains(text, s) {
				t.Errorf("diagnosis text %q missing", s)
			}
		}
	}
	for _, svg := range page.find("svg", "chart") {
		checkSVG(t, svg)
	}
	checkFrameRows(t, rep, page)
	for _, s := range rep.Sockets {
		if len(s.Series) == 0 {
			continue
		}
		for _, c := range []struct{ chart, line string }{{"wmem-chart", "line-wmem"}, {"pending-chart", "line-pending"}} {
			if n := len(byID(page, c.chart).find("path", c.line)); n == 0 {
				t.Errorf("%s: no %s in %s", s.Label, c.line, c.chart)
			}
		}
	}
}

func byID(page *node, id string) *node {
	var out *node
	page.walk(func(k *node) {
		if k.attr["id"] == id {
			out = k
		}
	})
	if out == nil {
		return &node{}
	}
	return out
}

// checkSVG: shapes lie inside the chart and have a size.
func checkSVG(t *testing.T, svg *node) {
	t.Helper()
	w, _ := strconv.ParseFloat(svg.attr["width"], 64)
	h, _ := strconv.ParseFloat(svg.attr["height"], 64)
	if w < 600 || h < 20 {
		t.Errorf("chart %s is %vx%v", svg.attr["id"], w, h)
	}
	for _, r := range svg.find("rect", "") {
		x, _ := strconv.ParseFloat(r.attr["x"], 64)
		y, _ := strconv.ParseFloat(r.attr["y"], 64)
		rw, _ := strconv.ParseFloat(r.attr["width"], 64)
		rh, _ := strconv.ParseFloat(r.attr["height"], 64)
		if rw <= 0 || rh <= 0 || x < 0 || y < 0 || x+rw > w+1.5 || y+rh > h {
			t.Errorf("chart %s: rect %v outside %vx%v", svg.attr["id"], r.attr, w, h)
			return
		}
	}
}

// checkFrameRows: one frame-row per frame, each with its states, as many
// SENDING bars as the frame was sent.
func checkFrameRows(t *testing.T, rep *report.Report, page *node) {
	t.Helper()
	rows := map[string]*node{}
	for _, g := range byID(page, "frame-timeline").find("g", "frame-row") {
		rows[g.attr["data-key"]] = g
	}
	n := 0
	for _, s := range rep.Sockets {
		sent := map[uint32]int{}
		for _, rd := range s.Rounds {
			if _, ok := sent[rd.Frame]; !ok {
				n++
			}
			for _, x := range rd.Transitions {
				if x.To == event.Sending {
					sent[rd.Frame]++
				}
			}
		}
		for f, want := range sent {
			row := rows[fmt.Sprintf("%s/%d", s.Label, f)]
			if row == nil {
				if n <= 512 {
					t.Errorf("%s #%d: no frame-row", s.Label, f)
				}
				continue
			}
			if got := len(row.find("rect", "st-sending")); got != want && want <= 100 {
				t.Errorf("%s #%d: %d SENDING bars, want %d", s.Label, f, got, want)
			}
			if len(row.find("rect", "seg")) == 0 {
				t.Errorf("%s #%d: empty row", s.Label, f)
			}
		}
	}
	if want := min(n, 512); len(rows) != want {
		t.Errorf("%d frame rows, want %d", len(rows), want)
	}
}

func TestHTMLRecordings(t *testing.T) {
	for _, name := range recordingNames(t) {
		t.Run(name, func(t *testing.T) {
			rep := replay(t, name)
			raw, page := htmlOf(t, rep)
			checkHTML(t, rep, raw, page)
		})
	}
}

func TestHTMLQdiscDrop(t *testing.T) {
	rep := replay(t, "qdisc-drop")
	_, page := htmlOf(t, rep)
	d := rep.Sockets[0].Drops[0]
	row := byID(page, "frame-timeline").find("g", "frame-row")[d.Frame]
	if row.attr["data-key"] != fmt.Sprintf("sk1/%d", d.Frame) {
		t.Fatalf("row %d is %v", d.Frame, row.attr)
	}
	marks := row.find("path", "drop-mark")
	if len(marks) != 1 || !strings.Contains(marks[0].textContent(), "QDISC_DROP") {
		t.Errorf("drop marks on frame %d: %d", d.Frame, len(marks))
	}
	rb := row.find("rect", "st-rolled-back")
	if len(rb) != 1 || !rb[0].hasClass("open") || len(row.find("rect", "st-dropped")) != 1 {
		t.Errorf("frame %d: rolled-back bars %d, dropped bars %d", d.Frame, len(rb), len(row.find("rect", "st-dropped")))
	}
	calls := byID(page, "calls-chart").find("rect", "call-error")
	if len(calls) != 1 || !strings.Contains(calls[0].textContent(), "ENOBUFS") {
		t.Errorf("-ENOBUFS call bars: %d", len(calls))
	}
}

func TestHTMLBoundedCompletions(t *testing.T) {
	rep := replay(t, "lo")
	_, page := htmlOf(t, rep)
	if n := len(byID(page, "frame-timeline").find("rect", "bounded")); n != rep.Totals.CompletedBounded || n == 0 {
		t.Errorf("%d hatched completion windows, want %d", n, rep.Totals.CompletedBounded)
	}
}

func TestHTMLSynthetic(t *testing.T) {
	rep := syntheticReport()
	raw, page := htmlOf(t, rep)
	checkHTML(t, rep, raw, page)
	checkGolden(t, "html-synthetic.html", raw)
	if bytes.Contains(raw, []byte("<script>alert")) || bytes.Contains(raw, []byte("<app>")) {
		t.Error("trace text is not escaped")
	}
	if !strings.Contains(page.textContent(), `tx<app>&"`) {
		t.Error("escaped comm does not read back")
	}
	tl := byID(page, "frame-timeline")
	for _, class := range []string{"st-wrong-format", "st-dropped", "st-rolled-back", "st-available", "bounded"} {
		if len(tl.find("rect", class)) == 0 {
			t.Errorf("no %s bar", class)
		}
	}
	open := tl.find("rect", "open")
	if len(open) != 1 || !open[0].hasClass("st-sending") || !strings.Contains(open[0].textContent(), "not completed") {
		t.Errorf("in-flight-at-end bars: %d", len(open))
	}
	calls := byID(page, "calls-chart")
	for _, class := range []string{"sleep-sndbuf", "sleep-tx-completion", "call-error", "open"} {
		if len(calls.find("rect", class)) != 1 {
			t.Errorf("calls chart: want one %s bar", class)
		}
	}
	if len(page.find("g", "thread-row")) != 2 || len(page.find("g", "cpu-row")) != 2 {
		t.Error("want 2 sender threads and 2 CPUs")
	}
}

// hugeReport has more frames than the page draws, a frame reused more often
// than a row draws bar by bar, and a long accounting series.
func hugeReport() *report.Report {
	const t0 = 1_000_000
	s := &report.Socket{Label: "sk1", PID: 1, Comm: "big", Frames: 600}
	add := func(f uint32, at uint64) {
		s.Rounds = append(s.Rounds, &report.Round{Frame: f, Call: -1, Done: true, ExactDone: true, State: event.Available,
			Requested: at, Sending: at + 30, Available: at + 70, Transitions: []report.Transition{
				{TS: at, From: event.Available, To: event.SendRequest, Prec: event.Exact},
				{TS: at + 30, From: event.SendRequest, To: event.Sending, Prec: event.Exact},
				{TS: at + 70, From: event.Sending, To: event.Available, Prec: event.Exact}}})
	}
	for i := uint64(0); i < 500; i++ { // busy for the first half, then idle
		add(0, t0+i*100)
	}
	for f := uint32(1); f < 600; f++ {
		add(f, t0+uint64(f)*50)
	}
	for i := uint64(0); i < 10000; i++ {
		s.Series = append(s.Series, report.Sample{TS: t0 + i*10, SndBuf: 9216, Wmem: int32(i % 7 * 1000), Pending: int32(i % 7)})
	}
	return &report.Report{Start: t0, End: t0 + 100_000, Sockets: []*report.Socket{s}}
}

func TestHTMLCaps(t *testing.T) {
	rep := hugeReport()
	raw, page := htmlOf(t, rep)
	checkHTML(t, rep, raw, page)
	notes := byID(page, "notes").textContent()
	for _, want := range []string{"512 of 600 frame rows", "bins", "downsampled"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes %q do not say %q", notes, want)
		}
	}
	busy := byID(page, "frame-timeline").find("g", "frame-row")[0]
	if n := len(busy.find("rect", "")); n == 0 || n > 545 {
		t.Errorf("binned row has %d rects", n)
	}
	if len(busy.find("rect", "st-sending")) == 0 || len(busy.find("rect", "st-available")) != 1 {
		t.Error("binned row: want SENDING while busy, then one AVAILABLE bar")
	}
	d := byID(page, "wmem-chart").find("path", "line-wmem")[0].attr["d"]
	if n := strings.Count(d, "V"); n > 2000 || n < 500 {
		t.Errorf("wmem line has %d points, want at most 2000 (and the shape kept)", n)
	}
	if len(raw) > 2<<20 {
		t.Errorf("page is %d bytes", len(raw))
	}
}

// TestHTMLHugeSpan: a corrupt trace spanning the whole clock still renders
// a page with a handful of axis ticks (found by FuzzRenderers).
func TestHTMLHugeSpan(t *testing.T) {
	rep := hugeReport()
	rep.Start, rep.End = 1, math.MaxUint64
	_, page := htmlOf(t, rep)
	if n := len(byID(page, "frame-timeline").find("text", "tick")); n < 2 || n > 11 {
		t.Errorf("%d axis ticks", n)
	}
}

// TestHTMLStuckHolder: a stuck frame's SENDING bar says who held it; a
// frame that completed in time says nothing of the kind.
func TestHTMLStuckHolder(t *testing.T) {
	rep := replay(t, "selfloop-7.2-blocking")
	_, page := htmlOf(t, rep)
	rows := byID(page, "frame-timeline").find("g", "frame-row")
	if len(rep.Stuck) == 0 || len(rows) == 0 {
		t.Fatalf("%d stuck frames, %d rows", len(rep.Stuck), len(rows))
	}
	for _, st := range rep.Stuck {
		row := rows[st.Frame]
		if !strings.Contains(row.textContent(), "stuck: "+st.Holder.Summary) {
			t.Errorf("frame %d's row does not name its holder %q", st.Frame, st.Holder.Summary)
		}
	}
	_, page = htmlOf(t, replay(t, "veth"))
	if strings.Contains(byID(page, "frame-timeline").textContent(), "stuck: ") {
		t.Error("veth frames completed, yet a bar says stuck")
	}
}
