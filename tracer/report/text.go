package report

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/ringtrace/ringtrace/tracer/event"
)

// TextOptions select the tables of the text report.
type TextOptions struct {
	Frames   bool // per-frame table
	AllCalls bool // every call, not the first MaxCalls
	MaxCalls int  // default 40
}

func sec(r *Report, ts uint64) string {
	if ts == 0 {
		return "-"
	}
	return fmt.Sprintf("%.6f", float64(ts-r.Start)/1e9)
}

func us(ns uint64) string {
	switch {
	case ns == 0:
		return "-"
	case ns >= 1e6:
		return fmt.Sprintf("%.3fms", float64(ns)/1e6)
	}
	return fmt.Sprintf("%.1fus", float64(ns)/1e3)
}

// WriteText renders the report for a terminal.
func (r *Report) WriteText(w io.Writer, o TextOptions) error {
	if o.MaxCalls == 0 {
		o.MaxCalls = 40
	}
	t := r.Totals
	if r.Kernel != "" {
		fmt.Fprintf(w, "kernel %s, hook class %s, TX completion %s\n", r.Kernel, r.Class, r.Completion)
	}
	if n := r.NotTraced(); n != "" {
		fmt.Fprintf(w, "NOTE: %s\n", n)
	}
	fmt.Fprintf(w, "trace %.3f s: %d sockets, %d sendto calls, %d frames sent, %d completed (%d exact, %d bounded), %d in flight at the end, %d events lost\n",
		float64(r.End-r.Start)/1e9, r.NSockets(), t.Calls, t.FramesSent, t.Completed, t.CompletedExact, t.CompletedBounded, t.InFlightAtEnd, r.Lost)
	fmt.Fprintf(w, "returns: %d -ENOBUFS, %d -EAGAIN, %d -ETIMEDOUT, %d other errors; %d frames dropped in sendto and rolled back, %d dropped later, %d WRONG_FORMAT\n",
		t.ENOBUFS, t.EAGAIN, t.ETIMEDOUT, t.OtherErrors, t.SyncDrops, t.AsyncDrops, t.WrongFormat)

	fmt.Fprintln(w, "\nDIAGNOSES")
	if len(r.Diagnoses) == 0 {
		fmt.Fprintln(w, "  none: every frame that was sent completed, no drops, no waits")
	}
	for _, d := range r.Diagnoses {
		who := ""
		if d.Socket != "" {
			who = d.Socket + ": "
		}
		fmt.Fprintf(w, "  [%s] %s%s\n", d.Severity, who, d.Title)
		for _, e := range d.Evidence {
			fmt.Fprintf(w, "      - %s\n", e)
		}
	}

	fmt.Fprintln(w, "\nSOCKETS")
	for _, s := range r.Sockets {
		if s.Folded > 0 {
			fmt.Fprintf(w, "  %s: %d more sockets that closed during the trace, summed up in one row (%s) on %s, rings up to %d frames: %d calls, %d frame uses, max sk_wmem_alloc %d, max pending %d, %d drops\n",
				s.Label, s.Folded, foldedOwner(s), strings.Join(s.Devs, ","), s.Frames, s.NCalls, s.FrameUses, s.MaxWmem, s.MaxPending, s.NDrops)
		} else {
			fmt.Fprintf(w, "  %s pid %d (%s) on %s, ring %d frames: %d calls, %d frame uses, sk_sndbuf %d, max sk_wmem_alloc %d, max pending %d, %d drops\n",
				s.Label, s.PID, s.Comm, strings.Join(s.Devs, ","), s.Frames, s.NCalls, s.FrameUses, s.SndBuf, s.MaxWmem, s.MaxPending, s.NDrops)
		}
		if h := &s.InFlight; h.Count > 0 {
			fmt.Fprintf(w, "      in flight (SENDING -> AVAILABLE) of %d frames: mean %s, p50 <= %s, p99 <= %s, max %s\n",
				h.Count, us(h.Mean()), us(h.Quantile(0.5)), us(h.Quantile(0.99)), us(h.Max))
		}
		if s.Truncated() {
			fmt.Fprintf(w, "      (lists kept to the first %d calls and %d drops: counts and diagnoses cover the whole trace)\n", len(s.Calls), len(s.Drops))
		}
	}
	r.writeStuck(w)
	if err := r.writeCalls(w, o); err != nil {
		return err
	}
	if o.Frames {
		if err := r.writeFrames(w); err != nil {
			return err
		}
	}
	return r.writeCPUs(w)
}

func (r *Report) writeCalls(w io.Writer, o TextOptions) error {
	fmt.Fprintln(w, "\nSENDMSG CALLS")
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "  SOCK\tTID\tENTER(s)\tDURATION\tFLAGS\tRETURN\tFRAMES\tSLEPT sndbuf/completion/cpu\tRING AT RETURN (head req/sending/avail)\t")
	n := 0
	for _, s := range r.Sockets {
		for _, c := range s.Calls {
			n++
			if !o.AllCalls && n > o.MaxCalls {
				continue
			}
			ret := "-"
			if c.Return != 0 {
				ret = event.ReturnString(c.Ret)
			}
			note := ""
			if c.LoopCall {
				note = " (loop)"
			}
			ring := fmt.Sprintf("%d %d/%d/%d", c.ReturnScan.Head, c.ReturnScan.SendRequest, c.ReturnScan.Sending, c.ReturnScan.Available)
			if rs := c.ReturnScan; rs.Scanned < rs.Frames {
				ring = fmt.Sprintf("%d, %d SEND_REQUEST from head", rs.Head, rs.RunSendRequest) // the run only: scans cost O(frames taken)
			}
			fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\t%s\t%s%s\t%d\t%s / %s / %s\t%s\t\n", s.Label, c.TID, sec(r, c.Enter), us(c.Duration()),
				event.MsgFlags(c.Flags), ret, note, c.FramesTaken, us(c.Slept(event.WaitSndbuf, r.End)), us(c.Slept(event.WaitCompletion, r.End)),
				us(c.Slept(event.WaitCPU, r.End)), ring)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if !o.AllCalls && n > o.MaxCalls {
		fmt.Fprintf(w, "  ... %d more calls (--calls shows all)\n", n-o.MaxCalls)
	}
	return nil
}

func (r *Report) writeFrames(w io.Writer) error {
	fmt.Fprintln(w, "\nFRAMES (times in s from the start; * bounded)")
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "  SOCK\tFRAME\tSEND_REQUEST\tSENDING\tAVAILABLE\tWAITED\tIN FLIGHT\tDROPS\tEND STATE\tHOW IT COMPLETED\t")
	for _, s := range r.Sockets {
		for _, rd := range s.Rounds {
			avail := sec(r, rd.Available)
			if rd.Done && !rd.ExactDone {
				avail += "*"
			}
			how := ""
			if len(rd.Transitions) > 0 {
				last := rd.Transitions[len(rd.Transitions)-1]
				how = last.Cause.String()
			}
			if rd.FreeReason != "" {
				how += " (" + rd.FreeReason + ")"
			}
			end := rd.State.String()
			if rd.Done {
				end = "AVAILABLE"
			}
			fmt.Fprintf(tw, "  %s\t#%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t\n", s.Label, rd.Frame, sec(r, rd.Requested), sec(r, rd.Sending),
				avail, us(rd.Waiting()), us(rd.InFlight()), rd.Drops, end, how)
		}
	}
	return tw.Flush()
}

func (r *Report) writeCPUs(w io.Writer) error {
	if len(r.CPUs) == 0 {
		return nil
	}
	fmt.Fprintln(w, "\nCPUS (network softirqs)")
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	hidden := false // a column only where the kernel hid CPU time
	for _, c := range r.CPUs {
		hidden = hidden || len(c.Hidden) > 0
	}
	head := "  CPU\tNET_RX\tRUNS\tNET_TX\tRUNS\tNAPI POLLS\tWORK\tBUDGET USED UP\tDEVICES\t"
	if hidden {
		head += "HIDDEN FROM BPF\t"
	}
	fmt.Fprintln(tw, head)
	for _, c := range r.CPUs {
		fmt.Fprintf(tw, "  %d\t%s\t%d\t%s\t%d\t%d\t%d\t%d\t%s\t", c.ID, us(c.NetRX), c.RXSpans, us(c.NetTX), c.TXSpans,
			c.NapiPolls, c.NapiWork, c.Exhausted, strings.Join(c.Devs, ","))
		if hidden {
			var ns uint64
			for _, h := range c.Hidden {
				ns += h.End - h.Start
			}
			fmt.Fprintf(tw, "%s, %s\t", us(ns), plural(len(c.Hidden), "window"))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// foldedOwner says who owned the sockets of the closed row.
func foldedOwner(s *Socket) string {
	switch {
	case s.PID != 0:
		return fmt.Sprintf("pid %d, %s", s.PID, s.Comm)
	case s.Comm != "various":
		return "several pids, " + s.Comm
	}
	return "several processes"
}
