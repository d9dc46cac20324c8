package matrix

import (
	"fmt"
	"strings"

	"github.com/ringtrace/ringtrace/tracer/plan"
)

// Change is how one logical event of a plan differs from the reference
// class's plan. An event only one plan has has an empty side.
type Change struct {
	Event string `json:"event"`
	From  string `json:"from"` // "fentry packet_sendmsg [exact]", or "" (event absent)
	To    string `json:"to"`
	// KindOnly: the same function hooked through another mechanism
	// (fentry -> kprobe, fexit -> kretprobe) at the same precision.
	KindOnly bool `json:"kind_only,omitempty"`
}

// comparePlans lists the events whose hook or precision differs, in the
// reference's order, then the events only p has.
func comparePlans(ref, p *plan.Plan) []Change {
	rows := map[string]plan.Row{}
	for _, r := range p.Rows {
		rows[r.Event] = r
	}
	seen := map[string]bool{}
	var out []Change
	for _, a := range ref.Rows {
		seen[a.Event] = true
		b, ok := rows[a.Event]
		switch {
		case !ok:
			out = append(out, Change{Event: a.Event, From: rowText(a)})
		case a.Hook != b.Hook || a.Precision != b.Precision:
			out = append(out, Change{Event: a.Event, From: rowText(a), To: rowText(b),
				KindOnly: a.Precision == b.Precision && hookFunction(a.Hook) == hookFunction(b.Hook)})
		}
	}
	for _, b := range p.Rows {
		if !seen[b.Event] {
			out = append(out, Change{Event: b.Event, To: rowText(b)})
		}
	}
	return out
}

func rowText(r plan.Row) string { return fmt.Sprintf("%s [%s]", r.Hook, r.Precision) }

// hookFunction is a hook with its mechanism word normalised, so that
// "fentry packet_sendmsg" and "kprobe packet_sendmsg" compare equal.
func hookFunction(h string) string {
	r := strings.NewReplacer("kretprobe", "<ret>", "fexit", "<ret>", "kprobe", "<entry>", "fentry", "<entry>")
	return r.Replace(h)
}

// precisionTally counts a plan's events by precision: "12 exact, 3 bounded".
func precisionTally(p *plan.Plan) string {
	counts := map[string]int{}
	var order []string
	for _, r := range p.Rows {
		if counts[r.Precision] == 0 {
			order = append(order, r.Precision)
		}
		counts[r.Precision]++
	}
	var parts []string
	for _, want := range []string{"exact", "bounded", "unavailable"} {
		if n := counts[want]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, want))
		}
	}
	for _, k := range order {
		if k != "exact" && k != "bounded" && k != "unavailable" {
			parts = append(parts, fmt.Sprintf("%d %s", counts[k], k))
		}
	}
	return strings.Join(parts, ", ")
}

// changeSummary is a class's plan changes in a few words for the table:
// "6 hooks fentry->kprobe; 5 other events differ".
func changeSummary(cs []Change) string {
	kind, other := 0, 0
	for _, c := range cs {
		if c.KindOnly {
			kind++
		} else {
			other++
		}
	}
	var parts []string
	if kind > 0 {
		parts = append(parts, fmt.Sprintf("%d same function, other mechanism", kind))
	}
	if other > 0 {
		parts = append(parts, fmt.Sprintf("%d other events differ", other))
	}
	if len(parts) == 0 {
		return "no difference"
	}
	return strings.Join(parts, "; ")
}
