package report

import "github.com/ringtrace/ringtrace/tracer/plan"

// SetPlan records which hooks and which detail the trace had.
func (r *Report) SetPlan(p *plan.Plan) {
	if p == nil {
		return
	}
	r.Class, r.Completion = string(p.Class), p.Completion
	if !p.FramesTraced() {
		r.Detail = string(p.Detail)
	}
}

// NotTraced says what a trace did not follow ("" when it traced every
// frame): with --detail calls, frames were counted, and no per-frame
// timeline, qdisc or driver event exists.
func (r *Report) NotTraced() string {
	if r.Detail == string(plan.DetailCalls) {
		return plan.NotTracedNote
	}
	return ""
}
