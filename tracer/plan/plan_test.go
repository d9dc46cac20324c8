package plan_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/inputerr"
	"github.com/ringtrace/ringtrace/tracer/kernel"
	"github.com/ringtrace/ringtrace/tracer/plan"
)

func sym(name string, addr uint64) kernel.Symbol {
	return kernel.Symbol{Name: name, Addr: addr, End: addr + 0x100, Type: "t"}
}

// facts builds a kernel: fentry/kprobe usable or not, functions present.
func facts(fentry, kprobe, loop bool, funcs ...string) *kernel.Facts {
	f := &kernel.Facts{
		Release: "6.1.0-test", Version: kernel.Version{Major: 6, Minor: 1},
		Symbols: map[string]kernel.Symbol{}, Funcs: map[string]bool{}, Types: map[string]bool{},
		TPBTF: map[string]bool{}, SyscallTPs: true, KfreeSkbArgs: 3,
	}
	f.Features.TPBTF.OK = true
	f.Features.TestRun.OK = true
	f.Features.RingBuf.OK = true
	f.Features.Fentry = kernel.Feature{OK: fentry, Why: "fentry: refused"}
	f.Features.Kprobe = kernel.Feature{OK: kprobe, Why: "kprobes: CONFIG_KPROBES is not set"}
	f.Features.BPFLoop = kernel.Feature{OK: loop, Why: "no bpf_loop"}
	for i, n := range funcs {
		f.Symbols[n] = sym(n, 0xffffffff81000000+uint64(i)*0x1000)
		f.Funcs[n] = true
	}
	for _, tp := range kernel.Tracepoints {
		f.TPBTF[tp] = true
	}
	return f
}

var modern = []string{"packet_sendmsg", "tpacket_destruct_skb", "__dev_queue_xmit", "__dev_direct_xmit",
	"sock_alloc_send_pskb", "__wait_for_common", "sock_def_write_space"}

func attached(p *plan.Plan) map[string]string {
	m := map[string]string{}
	for _, a := range p.Attach {
		m[a.Program] = string(a.Kind) + " " + a.Target
	}
	return m
}

// netDevXmitOnlyFor reports whether p attaches tp_net_dev_xmit, and for
// exactly these events (none: always).
func netDevXmitOnlyFor(p *plan.Plan, events ...string) bool {
	for _, a := range p.Attach {
		if a.Program == "tp_net_dev_xmit" {
			return slices.Equal(a.For, events)
		}
	}
	return false
}

func TestClassA(t *testing.T) {
	p, err := plan.Build(facts(true, true, true, modern...), plan.Auto)
	if err != nil {
		t.Fatal(err)
	}
	if p.Class != plan.Fentry {
		t.Fatalf("class %s, want fentry", p.Class)
	}
	a := attached(p)
	for prog, want := range map[string]string{
		"fentry_packet_sendmsg_loop":  "fentry packet_sendmsg",
		"fexit_packet_sendmsg_loop":   "fexit packet_sendmsg",
		"fentry_tpacket_destruct_skb": "fentry tpacket_destruct_skb",
		"fentry_qxmit":                "fentry __dev_queue_xmit",
		"fentry_direct_xmit":          "fentry __dev_direct_xmit",
		"fentry_sock_alloc_send_pskb": "fentry sock_alloc_send_pskb",
		"tp_kfree_skb":                "tp_btf kfree_skb",
	} {
		if a[prog] != want {
			t.Errorf("%s: %q, want %q", prog, a[prog], want)
		}
	}
	if _, ok := a["tp_net_dev_queue"]; ok {
		t.Error("class A also attached net_dev_queue for SENDING")
	}
	if p.Config.AvailViaTP || p.Config.SendingViaTP || p.Config.CallsViaSyscalls {
		t.Errorf("class A config uses tracepoint reconstruction: %+v", p.Config)
	}
}

func TestClassB(t *testing.T) {
	p, err := plan.Build(facts(false, true, true, modern...), plan.Auto)
	if err != nil {
		t.Fatal(err)
	}
	if p.Class != plan.Kprobe || !strings.Contains(p.ClassWhy, "fentry unavailable") {
		t.Fatalf("class %s (%s), want kprobe", p.Class, p.ClassWhy)
	}
	a := attached(p)
	if a["kprobe_tpacket_destruct_skb"] != "kprobe tpacket_destruct_skb" || a["kretprobe_packet_sendmsg_loop"] != "kretprobe packet_sendmsg" {
		t.Errorf("attachments %v", a)
	}
}

func TestClassCLikeThisHost(t *testing.T) {
	// tpacket_snd and __packet_set_status inlined, no kprobes, fentry refused.
	p, err := plan.Build(facts(false, false, true, modern...), plan.Auto)
	if err != nil {
		t.Fatal(err)
	}
	if p.Class != plan.Tracepoint || !strings.Contains(p.ClassWhy, "CONFIG_KPROBES") {
		t.Fatalf("class %s (%s)", p.Class, p.ClassWhy)
	}
	a := attached(p)
	for _, prog := range []string{"sys_enter_send_loop", "sys_exit_send_loop", "tp_net_dev_queue", "tp_kfree_skb", "sweep_loop"} {
		if _, ok := a[prog]; !ok {
			t.Errorf("class C plan lacks %s: %v", prog, a)
		}
	}
	// One entry and one exit program, attached to the three send syscalls.
	targets := map[string]string{}
	for _, at := range p.Attach {
		if strings.HasPrefix(at.Target, "syscalls/") {
			targets[at.Target] = at.Program
		}
	}
	for _, sc := range []string{"sendto", "sendmsg", "sendmmsg"} {
		if targets["syscalls/sys_enter_"+sc] != "sys_enter_send_loop" || targets["syscalls/sys_exit_"+sc] != "sys_exit_send_loop" {
			t.Errorf("%s: syscall attachments %v", sc, targets)
		}
	}
	if !p.Config.AvailViaTP || !p.Config.SendingViaTP || !p.Config.CallsViaSyscalls {
		t.Errorf("class C config %+v", p.Config)
	}
	// Destructor form: net_dev_xmit reads the status of frames lo and tun
	// complete inside the driver, whatever events are asked for.
	if !netDevXmitOnlyFor(p) {
		t.Errorf("net_dev_xmit is optional in a destructor-form class C plan: %v", p.Attach)
	}
	bounded := false
	for _, r := range p.Rows {
		if r.Event == "frame -> SENDING (qdisc bypass)" && r.Precision == "bounded" {
			bounded = true
		}
	}
	if !bounded {
		t.Error("bypass SENDING is not marked bounded in class C")
	}
}

func TestNoBPFLoopUsesBoundedVariants(t *testing.T) {
	p, err := plan.Build(facts(false, false, false, modern...), plan.Auto)
	if err != nil {
		t.Fatal(err)
	}
	a := attached(p)
	if _, ok := a["sys_enter_send_bounded"]; !ok {
		t.Errorf("pre-5.17 plan: %v", a)
	}
	if _, ok := a["tp_net_dev_queue_bounded"]; !ok {
		t.Errorf("pre-5.17 plan: %v", a)
	}
	if p.Config.MaxScan != plan.BoundedScan {
		t.Errorf("max scan %d", p.Config.MaxScan)
	}
}

func TestSetStatusHookedWhereNotInlined(t *testing.T) {
	p, err := plan.Build(facts(true, true, true, append(modern, "__packet_set_status")...), plan.Auto)
	if err != nil {
		t.Fatal(err)
	}
	if attached(p)["fentry_set_status"] != "fentry __packet_set_status" {
		t.Errorf("__packet_set_status not hooked: %v", attached(p))
	}
}

// On 5.10, kallsyms has only a compiler clone, __packet_set_status.part.0:
// a kprobe on the plain name fails, and the clone's entry is not the
// function's.
func TestSetStatusCloneNotHooked(t *testing.T) {
	f := facts(false, true, true, modern...)
	f.Symbols["__packet_set_status"] = sym("__packet_set_status.part.0", 0xffffffff81800000)
	p, err := plan.Build(f, plan.Kprobe)
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := attached(p)["kprobe_set_status"]; ok {
		t.Errorf("a clone was hooked: %s", a)
	}
}

func TestUargForm(t *testing.T) {
	f := facts(true, true, true, "packet_sendmsg", "tpacket_ubuf_complete", "__dev_queue_xmit", "sock_alloc_send_pskb")
	f.Types["tpacket_uarg"] = true
	// No data symbol (this host: CONFIG_KALLSYMS_ALL=n): the uarg is
	// recognised by its ops->complete, the text symbol.
	p, err := plan.Build(f, plan.Auto)
	if err != nil {
		t.Fatal(err)
	}
	if p.Completion != "uarg" || !p.Config.UargForm || p.Config.UargCompleteAddr != f.Symbols["tpacket_ubuf_complete"].Addr || p.Config.UargCompleteAddr == 0 {
		t.Errorf("completion %s config %+v", p.Completion, p.Config)
	}
	for _, n := range p.Notes {
		if strings.Contains(n, "cannot be recognised") {
			t.Errorf("note on a kernel whose ring skbs can be recognised: %s", n)
		}
	}
	if attached(p)["fentry_tpacket_ubuf_complete"] != "fentry tpacket_ubuf_complete" {
		t.Errorf("uarg completion not hooked: %v", attached(p))
	}
}

// TestUargTracepointsOnly: this host's kernel (uarg form, no fentry, no
// kprobes) completes frames exactly through the uarg's kfree, whose call
// site lies inside tpacket_ubuf_complete.
func TestUargTracepointsOnly(t *testing.T) {
	f := facts(false, false, true, "packet_sendmsg", "tpacket_ubuf_complete", "__dev_queue_xmit")
	f.Types["tpacket_uarg"] = true
	p, err := plan.Build(f, plan.Auto)
	if err != nil {
		t.Fatal(err)
	}
	s := f.Symbols["tpacket_ubuf_complete"]
	if !p.Config.UargViaKfree || p.Config.UargCompleteAddr != s.Addr || uint64(p.Config.UargCompleteLen) != s.End-s.Addr {
		t.Errorf("config %+v, want completions via kfree inside %#x..%#x", p.Config, s.Addr, s.End)
	}
	if attached(p)["tp_kfree_uarg"] != "raw_tp kfree" {
		t.Errorf("kfree not hooked: %v", attached(p))
	}
	var exact bool
	for _, r := range p.Rows {
		if r.Event == "frame -> AVAILABLE" {
			exact = r.Precision == "exact" && strings.Contains(r.Hook, "kfree")
		}
	}
	if !exact {
		t.Errorf("frame -> AVAILABLE is not promised exact at the uarg's kfree: %+v", p.Rows)
	}
	// net_dev_xmit reads no status here: only xmit_done events need it.
	if !netDevXmitOnlyFor(p, "xmit_done") {
		t.Errorf("net_dev_xmit attached for %v, want only for xmit_done", p.Attach)
	}

	// A kprobe on the completion function is backed up by the kfree (a
	// kprobe run nested in another kprobe program is skipped); fentry
	// needs no backup. With no size known for the function, no call site
	// can be matched.
	f.Features.Kprobe.OK = true
	p, _ = plan.Build(f, plan.Auto)
	if !p.Config.UargViaKfree || !p.Config.CompleteHooked || attached(p)["tp_kfree_uarg"] == "" || attached(p)["kprobe_tpacket_ubuf_complete"] == "" {
		t.Errorf("class %s: the kprobe is not backed by the kfree: %v %+v", p.Class, attached(p), p.Config)
	}
	f.Features.Fentry.OK = true
	f.Funcs["tpacket_ubuf_complete"] = true
	if p, _ = plan.Build(f, plan.Auto); p.Config.UargViaKfree || attached(p)["tp_kfree_uarg"] != "" {
		t.Errorf("class %s hooks kfree too: %v", p.Class, attached(p))
	}
	f.Features.Fentry.OK, f.Features.Kprobe.OK = false, false
	f.Symbols["tpacket_ubuf_complete"] = kernel.Symbol{Name: "tpacket_ubuf_complete", Addr: s.Addr, Type: "t"}
	if p, _ = plan.Build(f, plan.Auto); p.Config.UargViaKfree {
		t.Errorf("kfree hooked with no extent for tpacket_ubuf_complete")
	}
}

func TestForcedClassUnavailable(t *testing.T) {
	for _, c := range []plan.Class{plan.Fentry, plan.Kprobe} {
		_, err := plan.Build(facts(false, false, true, modern...), c)
		if err == nil || !inputerr.Is(err) {
			t.Errorf("--hooks=%s on a kernel without it: %v", c, err)
		}
	}
	p, err := plan.Build(facts(true, true, true, modern...), plan.Tracepoint)
	if err != nil || p.Class != plan.Tracepoint || !p.Config.AvailViaTP {
		t.Errorf("forced tracepoint on a class A kernel: %v %+v", err, p)
	}
}

func TestStackRanges(t *testing.T) {
	p, _ := plan.Build(facts(false, false, true, modern...), plan.Auto)
	reasons := map[string]event.Wait{}
	for _, r := range p.Config.StackRanges {
		reasons[r.Symbol] = r.Reason
		if r.End <= r.Start {
			t.Errorf("%s: empty range", r.Symbol)
		}
	}
	if reasons["sock_alloc_send_pskb"] != event.WaitSndbuf || reasons["__wait_for_common"] != event.WaitCompletion {
		t.Errorf("reasons %v", reasons)
	}
}

// TestDestructorKprobeBackedByFrees: on a class B destructor kernel the
// free tracepoints report completions first (immune to the kprobe skip),
// the kprobe the orphans; every path is promised exact, so no bounded row
// and no sweep row remain.
func TestDestructorKprobeBackedByFrees(t *testing.T) {
	p, err := plan.Build(facts(false, true, true, modern...), plan.Auto)
	if err != nil {
		t.Fatal(err)
	}
	if p.Class != plan.Kprobe || !p.Config.AvailViaTP || attached(p)["kprobe_tpacket_destruct_skb"] == "" {
		t.Fatalf("class %s, config %+v, attached %v", p.Class, p.Config, attached(p))
	}
	for _, r := range p.Rows {
		if strings.HasPrefix(r.Event, plan.EvAvailable) && r.Precision != "exact" {
			t.Errorf("bounded completion row on a kernel whose completions all have exact hooks: %+v", r)
		}
	}
	if p, _ = plan.Build(facts(true, true, true, modern...), plan.Auto); p.Config.AvailViaTP {
		t.Errorf("class A takes completions from the free tracepoints")
	}
}

// TestWithoutAddresses: the config loses its kernel addresses, the stack
// ranges keep symbol and reason; the plan itself is not changed.
func TestWithoutAddresses(t *testing.T) {
	f := facts(true, true, true, "tpacket_destruct_skb", "sock_alloc_send_pskb", "__wait_for_common")
	p, err := plan.Build(f, plan.Auto)
	if err != nil {
		t.Fatal(err)
	}
	c := p.WithoutAddresses()
	if c.Config.DestructAddr != 0 || c.Config.UargCompleteAddr != 0 || c.Config.DirectXmitAddr != 0 || len(c.Config.StackRanges) != len(p.Config.StackRanges) {
		t.Fatalf("config %+v", c.Config)
	}
	for i, r := range c.Config.StackRanges {
		if r.Start != 0 || r.End != 0 || r.Symbol != p.Config.StackRanges[i].Symbol || r.Reason != p.Config.StackRanges[i].Reason {
			t.Errorf("stack range %+v, from %+v", r, p.Config.StackRanges[i])
		}
	}
	if p.Config.DestructAddr == 0 || len(p.Config.StackRanges) == 0 || p.Config.StackRanges[0].Start == 0 {
		t.Errorf("the plan lost its addresses: %+v", p.Config)
	}
	if c.Class != p.Class || len(c.Rows) != len(p.Rows) {
		t.Error("the copy is not the plan")
	}
}

// TestCallsKept: a thread's call entry outlives its calls only where its
// exit can delete it (sched_process_exit) and the sweep can mark it idle
// (cmpxchg, bpf_loop); elsewhere each call inserts and deletes it.
func TestCallsKept(t *testing.T) {
	for _, tc := range []struct {
		name                        string
		loop, atomics, exitTP, want bool
	}{
		{"all there", true, true, true, true},
		{"no bpf_loop", false, true, true, false},
		{"no cmpxchg", true, false, true, false},
		{"no sched_process_exit", true, true, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, fentry := range []bool{true, false} {
				f := facts(fentry, false, tc.loop, modern...)
				f.Features.Atomics.OK = tc.atomics
				f.TPBTF["sched_process_exit"] = tc.exitTP
				p, err := plan.Build(f, plan.Auto)
				if err != nil {
					t.Fatal(err)
				}
				_, hooked := attached(p)["tp_thread_exit"]
				if p.Config.CallsKept != tc.want || hooked != tc.want {
					t.Errorf("class %s: calls_kept %v, exit hook %v, want %v", p.Class, p.Config.CallsKept, hooked, tc.want)
				}
			}
		})
	}
}

func TestPreemptibleSyscallProgsNamed(t *testing.T) {
	row := func(f *kernel.Facts) string {
		p, err := plan.Build(f, plan.Tracepoint)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range p.Rows {
			if r.Event == "sendmsg enter/return" {
				return r.Why
			}
		}
		t.Fatal("no sendmsg row")
		return ""
	}
	if why := row(facts(false, false, true, modern...)); strings.Contains(why, "preemptible") {
		t.Errorf("a kernel without trace_call_bpf_faultable is said to run syscall programs preemptible: %s", why)
	}
	// 7.2 has it as a text symbol (and in BTF); kallsyms alone must do.
	f := facts(false, false, true, modern...)
	f.Symbols["trace_call_bpf_faultable"] = sym("trace_call_bpf_faultable", 0xffffffff81800000)
	if !f.SyscallProgsPreemptible() {
		t.Fatal("trace_call_bpf_faultable in kallsyms is not recognised")
	}
	if why := row(f); !strings.Contains(why, "preemptible (trace_call_bpf_faultable)") {
		t.Errorf("the sendmsg row does not say the kernel runs its programs preemptible: %s", why)
	}
}
