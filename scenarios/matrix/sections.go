package matrix

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

func writeTests(w io.Writer, m *Matrix) error {
	var pkgs []string
	seen := map[string]bool{}
	for _, t := range m.Targets {
		for _, r := range t.Tests {
			if !seen[r.Package] {
				seen[r.Package] = true
				pkgs = append(pkgs, r.Package)
			}
		}
	}
	if len(pkgs) == 0 {
		return nil
	}
	fmt.Fprintln(w, "INTEGRATION TESTS in the guests, under each kernel's default class (PASS n: top-level tests passed)")
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "KERNEL\t%s\n", strings.Join(pkgs, "\t"))
	for _, t := range m.Targets {
		if len(t.Tests) == 0 {
			continue
		}
		var cells []string
		for _, p := range pkgs {
			cells = append(cells, testText(t, p))
		}
		fmt.Fprintf(tw, "%s\t%s\n", t.Name, strings.Join(cells, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, t := range m.Targets {
		for _, r := range t.Tests {
			if r.Excluded != "" {
				fmt.Fprintf(w, "  not run in the guests: %s -test.skip %s\n", r.Package, r.Excluded)
			}
		}
		if len(t.Tests) > 0 {
			break // the same exclusions hold for every guest
		}
	}
	fmt.Fprintln(w)
	return nil
}

func testText(t *Target, pkg string) string {
	for _, r := range t.Tests {
		if r.Package != pkg {
			continue
		}
		if r.State == Pass {
			return fmt.Sprintf("PASS %d", r.Passed)
		}
		if len(r.Failed) > 0 {
			return fmt.Sprintf("FAIL %d", len(r.Failed))
		}
		return r.State
	}
	return "-"
}

func writeTimes(w io.Writer, m *Matrix) error {
	fmt.Fprintln(w, "TIMES (boot: qemu start to the script; script: probes, scenarios and tests)")
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "KERNEL\tRELEASE\tVERSION\tACCEL\tBOOT\tSCRIPT\tTESTS\tSCENARIOS PER CLASS\tWALL\tATTEMPTS")
	for _, t := range m.Targets {
		var boot, script float64
		for _, a := range t.Attempts {
			boot += a.BootSeconds
			script += a.CommandSeconds
		}
		bootText := secs(boot)
		if t.Host {
			bootText = "-"
		}
		attempts := fmt.Sprint(len(t.Attempts))
		if len(t.Attempts) > 1 {
			attempts += " (guest died, booted again)"
		}
		tests := 0
		for _, r := range t.Tests {
			tests += r.Seconds
		}
		var classes []string
		for _, cl := range t.Classes {
			if cl.Seconds > 0 {
				classes = append(classes, fmt.Sprintf("%s %ds", cl.Letter, cl.Seconds))
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.Name, orDash(t.Release), orDash(t.Version), orDash(t.Accel),
			bootText, secs(script), secs(float64(tests)), orDash(strings.Join(classes, ", ")), secs(t.Seconds), attempts)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "total %s, %d guest(s) at a time, %d vCPU(s) each\n\n", (time.Duration(m.Seconds) * time.Second).String(), m.Parallel, m.CPUs)
	return nil
}

func secs(s float64) string { return fmt.Sprintf("%.0fs", s) }

func writeFailures(w io.Writer, m *Matrix) error {
	var lines []string
	for _, t := range m.Targets {
		name := targetName(t)
		if t.Error != "" {
			lines = append(lines, fmt.Sprintf("%s: %s", name, t.Error))
		}
		for i, a := range t.Attempts {
			if a.Died != "" {
				lines = append(lines, fmt.Sprintf("%s: boot %d: guest died: %s", name, i+1, a.Died))
			}
		}
		for _, cl := range t.Classes {
			lines = append(lines, verifyFailures(t, cl)...)
		}
		lines = append(lines, cellFailures(t)...)
		for _, r := range t.Tests {
			if r.State != Pass {
				lines = append(lines, fmt.Sprintf("%s test %s: %s %s %s", name, r.Package, r.State,
					strings.Join(topLevel(r.Failed), " "), r.Detail))
			}
		}
	}
	if len(lines) == 0 {
		fmt.Fprintf(w, "NO FAILURES\n\n")
		return nil
	}
	fmt.Fprintln(w, "FAILURES")
	for _, l := range lines {
		fmt.Fprintf(w, "  %s\n", strings.TrimSpace(l))
	}
	fmt.Fprintln(w)
	return nil
}

// cellFailures lists a target's cells that did not pass, one line for the
// scenarios of a class that failed the same way.
func cellFailures(t *Target) []string {
	type group struct {
		hooks, state, detail string
		scenarios            []string
	}
	var groups []*group
	for _, c := range t.Cells {
		if c.State == Pass {
			continue
		}
		var g *group
		for _, x := range groups {
			if x.hooks == c.Hooks && x.state == c.State && x.detail == c.Detail {
				g = x
			}
		}
		if g == nil {
			g = &group{hooks: c.Hooks, state: c.State, detail: c.Detail}
			groups = append(groups, g)
		}
		g.scenarios = append(g.scenarios, c.Scenario)
	}
	var lines []string
	for _, g := range groups {
		lines = append(lines, fmt.Sprintf("%s %s %s: %s: %s", targetName(t), letterOf(t, g.hooks), strings.Join(g.scenarios, ", "), g.state, g.detail))
	}
	return lines
}

// topLevel keeps the top-level test names and counts the subtests.
func topLevel(names []string) []string {
	var out []string
	sub := 0
	for _, n := range names {
		if strings.Contains(n, "/") {
			sub++
		} else {
			out = append(out, n)
		}
	}
	if sub > 0 {
		out = append(out, fmt.Sprintf("(%d subtests)", sub))
	}
	return out
}

// letterOf names a --hooks value on a target by its class: "C (tracepoint)".
func letterOf(t *Target, hooks string) string {
	for _, cl := range t.Classes {
		if cl.Hooks == hooks && cl.Letter != "" {
			return cl.Letter + " (" + hooks + ")"
		}
	}
	return hooks
}

// writeChanges prints each distinct list of plan changes once, with the
// kernels it holds on.
func writeChanges(w io.Writer, m *Matrix) error {
	type group struct {
		title   string
		lines   []string
		kernels []string
	}
	var groups []*group
	byKey := map[string]*group{}
	for _, t := range m.Targets {
		if len(t.Classes) == 0 || t.Classes[0].Plan == nil {
			continue
		}
		ref := t.Classes[0]
		for _, cl := range t.Classes[1:] {
			if cl.Plan == nil || cl.SameAs != "" {
				continue
			}
			title := fmt.Sprintf("%s %s against %s %s", cl.Letter, cl.Class, ref.Letter, ref.Class)
			lines := changeLines(cl.Changes)
			key := title + "\n" + strings.Join(lines, "\n")
			g := byKey[key]
			if g == nil {
				g = &group{title: title, lines: lines}
				byKey[key] = g
				groups = append(groups, g)
			}
			g.kernels = append(g.kernels, t.Name)
		}
	}
	if len(groups) == 0 {
		return nil
	}
	fmt.Fprintln(w, "PLAN CHANGES between classes (event: reference hook [precision] -> this class's; - = no such event)")
	for _, g := range groups {
		fmt.Fprintf(w, "%s, on %s:\n", g.title, strings.Join(g.kernels, ", "))
		for _, l := range g.lines {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
	fmt.Fprintln(w)
	return nil
}

func changeLines(cs []Change) []string {
	var lines, same []string
	for _, c := range cs {
		if c.KindOnly {
			same = append(same, c.Event)
			continue
		}
		lines = append(lines, fmt.Sprintf("%s: %s -> %s", c.Event, orDash(c.From), orDash(c.To)))
	}
	if len(same) > 0 {
		lines = append(lines, fmt.Sprintf("same function and precision, other mechanism: %s", strings.Join(same, ", ")))
	}
	if len(lines) == 0 {
		lines = append(lines, "no difference")
	}
	return lines
}
