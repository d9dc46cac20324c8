package matrix

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/ringtrace/ringtrace/scenarios"
	"github.com/ringtrace/ringtrace/tracer/plan"
)

// WriteTable prints the matrix for people: kernel x class x scenario with
// the TX completion form and the plan, the integration tests, the timings,
// the plan changes between classes, and last every failure with its cause,
// so that the tail of a CI log (often all that is kept) says what failed.
func WriteTable(w io.Writer, m *Matrix) error {
	for _, section := range []func(io.Writer, *Matrix) error{writeCells, writeTests, writeTimes, writeChanges, writeFailures} {
		if err := section(w, m); err != nil {
			return err
		}
	}
	return nil
}

// scenarioNames are the table's scenario columns, in reference order.
func scenarioNames() []string {
	var names []string
	for _, s := range scenarios.All() {
		names = append(names, s.Name)
	}
	return names
}

func writeCells(w io.Writer, m *Matrix) error {
	names := scenarioNames()
	fmt.Fprintln(w, "KERNEL MATRIX: scenarios per kernel and hook class (PASS, FAIL passed/expectations, DIED, ERROR; n/a: the kernel lacks the class);")
	fmt.Fprintln(w, "VERIFIED: every promise of `ringtrace probe --verify` held, or BROKEN: the first broken one (all under FAILURES)")
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "KERNEL\tCLASS\tCOMPLETION\tVERIFIED\t%s\tPLAN\n", strings.Join(names, "\t"))
	for _, t := range m.Targets {
		labels := kernelLabels(t)
		if t.Error != "" && len(t.Classes) == 0 {
			fmt.Fprintf(tw, "%s\tERROR\t\t\t%s\t%s\n", labels[0], strings.Repeat("-\t", len(names)-1)+"-", t.Error)
			continue
		}
		for i, cl := range t.Classes {
			label := ""
			if i < len(labels) {
				label = labels[i]
			}
			var cells []string
			for _, n := range names {
				cells = append(cells, cellText(t, cl, n))
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", label, classLabel(cl, i == 0), orDash(cl.Completion),
				verifiedCell(cl), strings.Join(cells, "\t"), planText(t, cl, i == 0))
		}
		// The next kernel has one class, and two label lines; a row of
		// empty cells keeps the columns of the rows below aligned.
		for _, label := range labels[min(len(t.Classes), len(labels)):] {
			fmt.Fprintf(tw, "%s%s\n", label, strings.Repeat("\t", 4+len(names)))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	return nil
}

// kernelLabels are the KERNEL column's lines for a target: its release,
// then its version and selector.
func kernelLabels(t *Target) []string {
	rel := t.Release
	if rel == "" {
		rel = t.Name
	}
	if t.Host {
		return []string{rel, "(host, native)"}
	}
	second := "(" + t.Name + ")"
	if t.Version != "" {
		second = "(" + t.Name + ": " + t.Version + ")"
	}
	return []string{rel, second}
}

func classLabel(cl *Class, ref bool) string {
	s := cl.Hooks
	switch c := plan.Class(cl.Hooks); {
	case cl.Class != "":
		s = cl.Letter + " " + cl.Class
	case c.Letter() != "?":
		s = c.Letter() + " " + cl.Hooks
	}
	if ref {
		s += " (" + cl.Hooks + ")"
	}
	return s
}

// maxVerifiedCell caps the VERIFIED column; FAILURES has the whole line.
const maxVerifiedCell = 64

func verifiedCell(cl *Class) string {
	s := verifiedText(cl)
	if r := []rune(s); len(r) > maxVerifiedCell {
		s = string(r[:maxVerifiedCell]) + "…"
	}
	return s
}

func cellText(t *Target, cl *Class, scenario string) string {
	switch {
	case cl.Unavailable != "":
		return "n/a"
	case cl.SameAs != "":
		return "="
	}
	for _, c := range t.Cells {
		if c.Hooks != cl.Hooks || c.Scenario != scenario {
			continue
		}
		if c.State == Fail && c.Result != nil {
			n := 0
			for _, e := range c.Result.Expectations {
				if e.Pass {
					n++
				}
			}
			return fmt.Sprintf("FAIL %d/%d", n, len(c.Result.Expectations))
		}
		return c.State
	}
	return "-"
}

func planText(t *Target, cl *Class, ref bool) string {
	switch {
	case cl.Unavailable != "":
		return "unavailable: " + cl.Unavailable
	case cl.ProbeError != "":
		return "probe failed: " + cl.ProbeError
	case cl.SameAs != "":
		return "same class as --hooks=" + cl.SameAs + ", not run again"
	case cl.Plan == nil:
		return "no plan (not probed)"
	}
	s := precisionTally(cl.Plan)
	if !ref && len(t.Classes) > 0 {
		s += "; vs " + t.Classes[0].Letter + ": " + changeSummary(cl.Changes)
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
