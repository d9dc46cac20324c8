package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/ringtrace/ringtrace/tracer/event"
)

//go:embed assets/report.html.tmpl
var htmlTemplate string

// Limits that keep the page of a huge trace usable; the page says when it
// applied one.
const (
	maxFrameRows    = 512  // frame rows in the timeline, over all sockets
	maxOtherRows    = 256  // sender threads, CPUs, sockets in the series charts
	maxSeriesPoints = 2000 // points per series line
	maxExactBars    = 400  // bars of a row drawn one by one; more are binned
	binPx           = 2.0  // width of a bin when a row is binned
)

// Chart geometry (px): every chart shares the time axis.
const (
	chartW = 1320.0
	plotX  = 200.0
	plotW  = 1090.0
	axisH  = 24.0
	rowH   = 14.0
	rowGap = 4.0
)

// px is an SVG coordinate, printed with one decimal.
type px float64

func (p px) String() string { return strconv.FormatFloat(float64(p), 'f', 1, 64) }

type svgRect struct {
	X, Y, W, H   px
	Class, Title string
}

type svgPath struct{ D, Class, Title string }

type svgText struct {
	X, Y     px
	Class, S string
}

// svgRow is a group of a chart: a frame, a thread, a CPU, a series panel.
type svgRow struct {
	Class, Key string
	Rects      []svgRect
	Paths      []svgPath
	Texts      []svgText
}

type svgTick struct {
	X     px
	Label string
}

type svgChart struct {
	ID, Label string
	H         px
	Ticks     []svgTick
	Rows      []svgRow
}

// W is the chart width.
func (svgChart) W() px { return chartW }

type htmlPage struct {
	Title, Subtitle string
	Summary         []string
	Diagnoses       []Diagnosis
	Sockets         [][]string
	CPUs            [][]string
	Timeline        svgChart
	Calls           *svgChart
	Wmem, Pending   svgChart
	Softirq         *svgChart
	Notes           []string
}

// WriteHTML renders the report as one self-contained HTML page: summary,
// diagnoses, the frame timeline and the sk_wmem_alloc / sk_sndbuf /
// pending series as inline SVG under one time axis, the sendto calls and
// the softirq runs. It loads nothing and needs no JavaScript.
func (r *Report) WriteHTML(w io.Writer) error {
	t, err := template.New("report").Parse(htmlTemplate)
	if err != nil {
		return fmt.Errorf("html template: %w", err)
	}
	if err := t.Execute(w, r.htmlPage()); err != nil {
		return fmt.Errorf("write html report: %w", err)
	}
	return nil
}

func (r *Report) htmlPage() *htmlPage {
	ts := newTimeScale(r.Start, r.End)
	p := &htmlPage{Title: "ringtrace report", Diagnoses: r.Diagnoses}
	if r.Kernel != "" {
		p.Subtitle = fmt.Sprintf("kernel %s, hook class %s, TX completion %s", r.Kernel, r.Class, r.Completion)
	}
	t := r.Totals
	p.Summary = []string{
		fmt.Sprintf("trace %.3f s: %d sockets, %d sendto calls, %d frames sent, %d completed (%d exact, %d bounded), %d in flight at the end, %d events lost",
			float64(r.End-r.Start)/1e9, r.NSockets(), t.Calls, t.FramesSent, t.Completed, t.CompletedExact, t.CompletedBounded, t.InFlightAtEnd, r.Lost),
		fmt.Sprintf("returns: %d -ENOBUFS, %d -EAGAIN, %d -ETIMEDOUT, %d other errors; %d frames dropped in sendto and rolled back, %d dropped later, %d WRONG_FORMAT",
			t.ENOBUFS, t.EAGAIN, t.ETIMEDOUT, t.OtherErrors, t.SyncDrops, t.AsyncDrops, t.WrongFormat),
	}
	for _, s := range r.Sockets {
		p.Sockets = append(p.Sockets, []string{s.Label, strconv.Itoa(int(s.PID)), s.Comm, strings.Join(s.Devs, ","),
			strconv.Itoa(int(s.Frames)), strconv.Itoa(s.NCalls), strconv.Itoa(s.FrameUses),
			strconv.Itoa(int(s.SndBuf)), strconv.Itoa(int(s.MaxWmem)), strconv.Itoa(int(s.MaxPending)), strconv.Itoa(s.NDrops)})
	}
	for _, c := range r.CPUs {
		p.CPUs = append(p.CPUs, []string{strconv.Itoa(int(c.ID)), us(c.NetRX), strconv.Itoa(c.RXSpans), us(c.NetTX),
			strconv.Itoa(c.TXSpans), strconv.Itoa(c.NapiPolls), strconv.FormatUint(c.NapiWork, 10), strconv.Itoa(c.Exhausted)})
	}
	if n := r.NotTraced(); n != "" {
		p.Notes = append(p.Notes, n)
	}
	p.Timeline = r.frameTimeline(ts, &p.Notes)
	p.Calls = r.callsChart(ts, &p.Notes)
	p.Wmem, p.Pending = r.seriesCharts(ts, &p.Notes)
	p.Softirq = r.softirqChart(ts, &p.Notes)
	return p
}

// timeScale maps trace times onto the plot's x axis.
type timeScale struct{ start, span uint64 }

func newTimeScale(start, end uint64) timeScale {
	return timeScale{start: start, span: max(end-start, 1)}
}

func (t timeScale) x(ts uint64) float64 {
	d := min(max(ts, t.start)-t.start, t.span)
	return plotX + float64(d)/float64(t.span)*plotW
}

// ticks are ~10 round times across the trace.
func (t timeScale) ticks() []svgTick {
	step := niceStep(t.span)
	unit, div := "ns", 1.0
	switch {
	case step >= 1e9:
		unit, div = "s", 1e9
	case step >= 1e6:
		unit, div = "ms", 1e6
	case step >= 1e3:
		unit, div = "µs", 1e3
	}
	var out []svgTick
	for i := uint64(0); i <= t.span/step; i++ {
		l := "0"
		if i > 0 {
			l = strconv.FormatFloat(float64(i*step)/div, 'f', -1, 64) + " " + unit
		}
		out = append(out, svgTick{X: px(t.x(t.start + i*step)), Label: l})
	}
	return out
}

// niceStep is the smallest 1, 2 or 5 times a power of ten that cuts span
// into at most 10 steps.
func niceStep(span uint64) uint64 {
	for base := uint64(1); base <= math.MaxUint64/50; base *= 10 {
		for _, k := range []uint64{1, 2, 5} {
			if span/(k*base) <= 10 {
				return k * base
			}
		}
	}
	return math.MaxUint64 / 10
}

func newChart(id, label string, ts timeScale) svgChart {
	return svgChart{ID: id, Label: label, Ticks: ts.ticks(), H: axisH}
}

// headerRow is a full-width title line inside a chart.
func (c *svgChart) headerRow(class, key, title string) {
	c.Rows = append(c.Rows, svgRow{Class: class, Key: key, Texts: []svgText{{X: 4, Y: c.H + 15, Class: "chart-title", S: title}}})
	c.H += 22
}

// row adds a labelled row of height h and returns it to be filled.
func (c *svgChart) row(class, key, label string, h float64) *svgRow {
	c.Rows = append(c.Rows, svgRow{Class: class, Key: key,
		Texts: []svgText{{X: plotX - 8, Y: c.H + px(h/2+4), Class: "row-label", S: label}}})
	c.H += px(h + rowGap)
	return &c.Rows[len(c.Rows)-1]
}

// bar is an interval to draw in a row.
type bar struct {
	t0, t1 uint64
	class  string
	title  string
}

// bars draws a row's intervals at y: one rect each (at least 1 px wide)
// when there are few, else binned to binPx columns, each painted with the
// class that covers most of it.
func bars(ts timeScale, bs []bar, y, h float64, binned *bool) []svgRect {
	if len(bs) <= maxExactBars {
		out := make([]svgRect, 0, len(bs))
		for _, b := range bs {
			x0, x1 := ts.x(b.t0), ts.x(b.t1)
			out = append(out, svgRect{X: px(x0), Y: px(y), W: px(max(x1-x0, 1)), H: px(h), Class: b.class, Title: b.title})
		}
		return out
	}
	*binned = true
	classes, cover := binCover(ts, bs)
	var out []svgRect
	for i := range cover[0] {
		best, bw := -1, 0.0
		for ci := range classes { // in class order: deterministic ties
			if cover[ci][i] > bw {
				best, bw = ci, cover[ci][i]
			}
		}
		if best < 0 {
			continue
		}
		x := plotX + float64(i)*binPx
		if k := len(out) - 1; k >= 0 && out[k].Class == classes[best] && float64(out[k].X+out[k].W) >= x-0.05 {
			out[k].W += binPx
			continue
		}
		out = append(out, svgRect{X: px(x), Y: px(y), W: binPx, H: px(h), Class: classes[best]})
	}
	return out
}

// binCover is how much of each binPx column each class covers (px), in
// time linear in bars plus columns: columns a bar covers whole are added
// as a difference array, its partial ends directly.
func binCover(ts timeScale, bs []bar) ([]string, [][]float64) {
	n := int(math.Ceil(plotW / binPx))
	var classes []string
	var whole, cover [][]float64
	for _, b := range bs {
		ci := slices.Index(classes, b.class)
		if ci < 0 {
			ci = len(classes)
			classes = append(classes, b.class)
			whole, cover = append(whole, make([]float64, n+1)), append(cover, make([]float64, n))
		}
		x0 := min(ts.x(b.t0)-plotX, plotW-0.01)
		x1 := min(max(ts.x(b.t1)-plotX, x0+0.01), plotW-0.001)
		i0, i1 := int(x0/binPx), int(x1/binPx)
		if i0 == i1 {
			cover[ci][i0] += x1 - x0
			continue
		}
		cover[ci][i0] += float64(i0+1)*binPx - x0
		cover[ci][i1] += x1 - float64(i1)*binPx
		whole[ci][i0+1]++
		whole[ci][i1]--
	}
	for ci := range classes {
		run := 0.0
		for i := range cover[ci] {
			run += whole[ci][i]
			cover[ci][i] += run * binPx
		}
	}
	if len(classes) == 0 {
		cover = [][]float64{nil}
	}
	return classes, cover
}

// segClass is the CSS class of a frame segment.
func segClass(g *segment) string {
	c := "seg "
	switch {
	case g.Dropped:
		c += "st-dropped"
	case g.State == event.SendRequest && g.RolledBack:
		c += "st-rolled-back"
	case g.State == event.SendRequest:
		c += "st-send-request"
	case g.State == event.Sending:
		c += "st-sending"
	case g.State == event.Available:
		c += "st-available"
	case g.State == event.WrongFormat:
		c += "st-wrong-format"
	default:
		c += "st-other"
	}
	if g.Open && (g.State == event.SendRequest || g.State == event.Sending) {
		c += " open"
	}
	return c
}

func (r *Report) segTitle(s *Socket, g *segment) string {
	t := fmt.Sprintf("%s #%d %s: %s .. %s (%s), entered by %s", s.Label, g.Frame, g.Name(), r.relTime(g.Start), r.relTime(g.End), us(g.End-g.Start), g.StartCause)
	if !g.Open {
		t += fmt.Sprintf(", left by %s (%s)", g.EndCause, precision(g.EndExact))
	}
	if g.Round.FreeReason != "" && g.State == event.Sending {
		t += ", freed: " + g.Round.FreeReason
	}
	if h := stuckHolder(g); h != nil {
		t += "; stuck: " + h.Summary
	}
	return t
}

func (r *Report) relTime(ts uint64) string {
	return fmt.Sprintf("%.6f s", float64(max(ts, r.Start)-r.Start)/1e9)
}

// frameTimeline draws one row per frame of each socket.
func (r *Report) frameTimeline(ts timeScale, notes *[]string) svgChart {
	c := newChart("frame-timeline", "frame states over time, one row per ring frame", ts)
	rows, total, binned := 0, 0, false
	for _, s := range r.Sockets {
		segs := frameSegments(s, r.End)
		byFrame := map[uint32][]segment{}
		var frames []uint32
		for _, g := range segs {
			if byFrame[g.Frame] == nil {
				frames = append(frames, g.Frame)
			}
			byFrame[g.Frame] = append(byFrame[g.Frame], g)
		}
		drops := map[uint32][]Drop{}
		for _, d := range s.Drops {
			drops[d.Frame] = append(drops[d.Frame], d)
		}
		total += len(frames)
		if rows >= maxFrameRows {
			continue
		}
		c.headerRow("socket-header", s.Label, fmt.Sprintf("%s, ring %d frames", socketTitle(s), s.Frames))
		for _, f := range frames {
			if rows >= maxFrameRows {
				break
			}
			rows++
			row := c.row("frame-row", fmt.Sprintf("%s/%d", s.Label, f), fmt.Sprintf("#%d", f), rowH)
			y := float64(c.H) - rowH - rowGap
			var bs []bar
			for i := range byFrame[f] {
				g, title := &byFrame[f][i], ""
				if len(byFrame[f]) <= maxExactBars { // binned bars have no titles
					title = r.segTitle(s, g)
				}
				bs = append(bs, bar{g.Start, g.End, segClass(g), title})
			}
			row.Rects = bars(ts, bs, y, rowH, &binned)
			if len(bs) <= maxExactBars {
				row.Rects = append(row.Rects, r.windows(ts, byFrame[f], y)...)
			}
			row.Paths = dropMarks(ts, r, drops[f], y)
		}
	}
	if rows < total {
		*notes = append(*notes, fmt.Sprintf("The frame timeline shows %d of %d frame rows (the first frames of each socket in order).", rows, total))
	}
	if binned {
		*notes = append(*notes, fmt.Sprintf("Frame rows with more than %d state changes are drawn in %.0f px bins, each with the state that covers most of it.", maxExactBars, binPx))
	}
	c.H += 6
	return c
}

// windows hatches the intervals bounded transitions happened in.
func (r *Report) windows(ts timeScale, segs []segment, y float64) []svgRect {
	var out []svgRect
	for _, g := range segs {
		name, ok := g.Window()
		if !ok {
			continue
		}
		x0, x1 := ts.x(g.EndLo), ts.x(g.End)
		out = append(out, svgRect{X: px(x0), Y: px(y), W: px(max(x1-x0, 1)), H: rowH, Class: "bounded",
			Title: fmt.Sprintf("%s: between %s and %s", name, r.relTime(g.EndLo), r.relTime(g.End))})
	}
	return out
}

// dropMarks draws a red tick with a triangle at each drop, at most one per pixel.
func dropMarks(ts timeScale, r *Report, ds []Drop, y float64) []svgPath {
	var out []svgPath
	last := -1.0
	for _, d := range ds {
		x := ts.x(d.TS)
		if x-last < 1 {
			continue
		}
		last = x
		where := "later (asynchronous)"
		if d.Synchronous {
			where = "inside sendto: rolled back, sendto gets -ENOBUFS"
		}
		out = append(out, svgPath{Class: "drop-mark",
			D:     fmt.Sprintf("M%.1f %.1fV%.1fM%.1f %.1fh8l-4 6z", x, y-2, y+rowH+2, x-4, y-4),
			Title: fmt.Sprintf("drop at %s: %s at %s on %s, %s", r.relTime(d.TS), d.Reason, d.Location, d.Dev, where)})
	}
	return out
}

// callsChart draws the sendto calls per sender thread, sleeps on top.
func (r *Report) callsChart(ts timeScale, notes *[]string) *svgChart {
	type thread struct{ pid, tid uint32 }
	var order []thread
	calls := map[thread][]bar{}
	sleeps := map[thread][]bar{}
	comm := map[thread]string{}
	for _, s := range r.Sockets {
		for _, c := range s.Calls {
			k := thread{c.PID, c.TID}
			if _, ok := comm[k]; !ok {
				order = append(order, k)
				comm[k] = c.Comm
			}
			end, ret, cls := c.Return, "still in the kernel at the end", "call"
			if end == 0 {
				end, cls = r.End, "call open"
			} else {
				ret = "returned " + event.ReturnString(c.Ret)
				if c.Ret < 0 {
					cls = "call call-error"
				}
			}
			calls[k] = append(calls[k], bar{c.Enter, end, cls, fmt.Sprintf("%s sendto(%s) at %s, %s, %s, %d frames taken",
				s.Label, event.MsgFlags(c.Flags), r.relTime(c.Enter), us(sub(end, c.Enter)), ret, c.FramesTaken)})
			for _, sl := range c.Sleeps {
				se := sl.End
				if se == 0 {
					se = r.End
				}
				woken := "still asleep at the end"
				if sl.End != 0 {
					woken = "woken by " + sl.Waker.String()
				}
				what := fmt.Sprintf("asleep (%s) %s from %s, %s; sk_wmem_alloc %d / sk_sndbuf %d, %d pending, %d completions meanwhile",
					sl.Reason, us(sub(se, sl.Start)), r.relTime(sl.Start), woken, sl.Wmem, sl.SndBuf, sl.Pending, sl.Completions)
				if sl.Reason == event.WaitCPU {
					what = fmt.Sprintf("runnable without a CPU %s from %s; %d frames in flight when it began", us(sub(se, sl.Start)), r.relTime(sl.Start), sl.Pending)
				}
				sleeps[k] = append(sleeps[k], bar{sl.Start, se, "sleep sleep-" + sl.Reason.String(), what})
			}
		}
	}
	if len(order) == 0 {
		return nil
	}
	c := newChart("calls-chart", "sendto calls per sender thread, sleeps highlighted", ts)
	binned := false
	if len(order) > maxOtherRows {
		*notes = append(*notes, fmt.Sprintf("The calls chart shows the first %d of %d sender threads.", maxOtherRows, len(order)))
		order = order[:maxOtherRows]
	}
	for _, k := range order {
		row := c.row("thread-row", fmt.Sprintf("%d/%d", k.pid, k.tid), fmt.Sprintf("%s %d", comm[k], k.tid), rowH+2)
		y := float64(c.H) - rowH - 2 - rowGap
		row.Rects = append(bars(ts, calls[k], y, rowH+2, &binned), bars(ts, sleeps[k], y+3, rowH-4, &binned)...)
	}
	if binned {
		*notes = append(*notes, fmt.Sprintf("Threads with more than %d calls or sleeps are drawn in %.0f px bins.", maxExactBars, binPx))
	}
	c.H += 4
	return &c
}

// stats of a series: maxima and the last sk_sndbuf.
type stats struct{ wmem, pending, sndbuf, maxSndbuf int32 }

func seriesStats(ss []Sample) stats {
	var st stats
	for _, p := range ss {
		st.wmem, st.pending, st.maxSndbuf = max(st.wmem, p.Wmem), max(st.pending, p.Pending), max(st.maxSndbuf, p.SndBuf)
		st.sndbuf = p.SndBuf
	}
	return st
}

// seriesCharts draws, per socket, sk_wmem_alloc against sk_sndbuf and the
// frames pending, as step lines.
func (r *Report) seriesCharts(ts timeScale, notes *[]string) (svgChart, svgChart) {
	wm := newChart("wmem-chart", "sk_wmem_alloc and sk_sndbuf per socket (bytes)", ts)
	pe := newChart("pending-chart", "frames pending (sent, not completed) per socket", ts)
	down := false
	for i, s := range r.Sockets {
		if i == maxOtherRows {
			*notes = append(*notes, fmt.Sprintf("The accounting charts show the first %d of %d sockets.", i, len(r.Sockets)))
			break
		}
		if len(s.Series) == 0 {
			wm.headerRow("series-header", s.Label, s.Label+": no accounting samples")
			pe.headerRow("series-header", s.Label, s.Label+": no accounting samples")
			continue
		}
		pts := downsample(s.Series, maxSeriesPoints)
		down = down || len(pts) < len(s.Series)
		st := seriesStats(s.Series)
		top := niceCeil(float64(max(st.wmem, st.maxSndbuf)))
		title := s.Label + ": sk_wmem_alloc (solid) and sk_sndbuf (dashed)"
		if st.maxSndbuf > 4*st.wmem && st.wmem > 0 {
			top = niceCeil(float64(st.wmem) * 1.1)
			title = fmt.Sprintf("%s: sk_wmem_alloc (solid); sk_sndbuf %d bytes is far above this scale", s.Label, st.maxSndbuf)
		}
		wm.headerRow("series-header", s.Label, title)
		row := wm.row("series-panel", s.Label, "", 100)
		y0 := float64(wm.H) - rowGap
		row.Paths = append(row.Paths, stepPath(ts, r.End, pts, func(p Sample) int32 { return p.Wmem }, y0, 100, top, "line-wmem"))
		if top >= float64(st.maxSndbuf) {
			row.Paths = append(row.Paths, stepPath(ts, r.End, pts, func(p Sample) int32 { return p.SndBuf }, y0, 100, top, "line-sndbuf"))
		}
		row.Texts = append(row.Texts, yLabels(y0, 100, top, "B")...)

		pe.headerRow("series-header", s.Label, s.Label+": frames in SENDING charged to the socket")
		prow := pe.row("series-panel", s.Label, "", 60)
		ptop := niceCeil(float64(st.pending))
		prow.Paths = append(prow.Paths, stepPath(ts, r.End, pts, func(p Sample) int32 { return p.Pending }, float64(pe.H)-rowGap, 60, ptop, "line-pending"))
		prow.Texts = append(prow.Texts, yLabels(float64(pe.H)-rowGap, 60, ptop, "")...)
	}
	if down {
		*notes = append(*notes, fmt.Sprintf("Series with more than %d samples are downsampled (first, min, max and last of each bin are kept).", maxSeriesPoints))
	}
	wm.H += 4
	pe.H += 4
	return wm, pe
}

// stepPath draws v over time as a step line whose baseline is y0.
func stepPath(ts timeScale, end uint64, pts []Sample, v func(Sample) int32, y0, h, top float64, class string) svgPath {
	y := func(p Sample) float64 { return y0 - min(float64(max(v(p), 0))/top, 1)*h }
	var b strings.Builder
	for i, p := range pts {
		if i == 0 {
			fmt.Fprintf(&b, "M%.1f %.1f", ts.x(p.TS), y(p))
			continue
		}
		fmt.Fprintf(&b, "H%.1fV%.1f", ts.x(p.TS), y(p))
	}
	if len(pts) > 0 {
		fmt.Fprintf(&b, "H%.1f", ts.x(end))
	}
	return svgPath{D: b.String(), Class: class}
}

func yLabels(y0, h, top float64, unit string) []svgText {
	var out []svgText
	for _, f := range []float64{0, 0.5, 1} {
		if v := top * f; v == math.Round(v) {
			out = append(out, svgText{X: plotX - 8, Y: px(y0 - f*h + 4), Class: "row-label", S: fmtCount(v, unit)})
		}
	}
	return out
}

// niceCeil rounds v up to 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 1 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// downsample keeps at most n points: in each of n/4 time bins the first,
// smallest, largest and last (by sk_wmem_alloc, then pending).
func downsample(ss []Sample, n int) []Sample {
	if len(ss) <= n {
		return ss
	}
	bins := n / 4
	start, span := ss[0].TS, max(ss[len(ss)-1].TS-ss[0].TS, 1)
	out := make([]Sample, 0, n)
	for i := 0; i < len(ss); {
		b := (ss[i].TS - start) * uint64(bins-1) / span
		j, lo, hi := i, i, i
		for ; j < len(ss) && (ss[j].TS-start)*uint64(bins-1)/span == b; j++ {
			if key(ss[j]) < key(ss[lo]) {
				lo = j
			}
			if key(ss[j]) > key(ss[hi]) {
				hi = j
			}
		}
		keep := []int{i, lo, hi, j - 1}
		if lo > hi {
			keep[1], keep[2] = hi, lo
		}
		for k, idx := range keep {
			if k == 0 || idx != keep[k-1] {
				out = append(out, ss[idx])
			}
		}
		i = j
	}
	return out
}

func key(s Sample) int64 { return int64(s.Wmem)<<20 + int64(s.Pending) }

// softirqChart draws the NET_RX / NET_TX runs per CPU.
func (r *Report) softirqChart(ts timeScale, notes *[]string) *svgChart {
	if len(r.CPUs) == 0 {
		return nil
	}
	c := newChart("softirq-chart", "network softirq runs per CPU", ts)
	binned := false
	for i, cpu := range r.CPUs {
		if i == maxOtherRows {
			*notes = append(*notes, fmt.Sprintf("The softirq chart shows the first %d of %d CPUs.", i, len(r.CPUs)))
			break
		}
		var bs []bar
		for _, sp := range cpu.Spans {
			name := softirqName(sp.Vec)
			bs = append(bs, bar{sp.Start, sp.End, "sirq sirq-" + strings.ToLower(name),
				fmt.Sprintf("%s on CPU %d at %s for %s", name, cpu.ID, r.relTime(sp.Start), us(sub(sp.End, sp.Start)))})
		}
		row := c.row("cpu-row", strconv.Itoa(int(cpu.ID)), fmt.Sprintf("CPU %d", cpu.ID), rowH)
		row.Rects = bars(ts, bs, float64(c.H)-rowH-rowGap, rowH, &binned)
	}
	if binned {
		*notes = append(*notes, fmt.Sprintf("CPUs with more than %d softirq runs are drawn in %.0f px bins.", maxExactBars, binPx))
	}
	c.H += 4
	return &c
}

// sub is a - b, or 0 when b is later.
func sub(a, b uint64) uint64 {
	if a < b {
		return 0
	}
	return a - b
}

func fmtCount(v float64, unit string) string {
	if unit == "B" && v >= 10240 {
		return strconv.FormatFloat(math.Round(v/1024), 'f', -1, 64) + " KiB"
	}
	return strings.TrimSpace(strconv.FormatFloat(math.Round(v), 'f', -1, 64) + " " + unit)
}
