package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/cilium/ebpf/btf"
	"github.com/urfave/cli/v2"

	"github.com/ringtrace/ringtrace/scenarios/verify"
	"github.com/ringtrace/ringtrace/tracer/inputerr"
	"github.com/ringtrace/ringtrace/tracer/kernel"
	"github.com/ringtrace/ringtrace/tracer/kernel/probe"
	"github.com/ringtrace/ringtrace/tracer/plan"
)

// kernelFlags are shared by every command that loads BPF.
func kernelFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "hooks", Value: "auto", Usage: "hook class: auto, fentry (A), kprobe (B) or tracepoint (C)"},
		&cli.StringFlag{Name: "btf", Usage: "kernel BTF file to use instead of /sys/kernel/btf/vmlinux"},
		&cli.StringFlag{Name: "tracefs", Value: kernel.DefaultTracefs, Usage: "where tracefs is, or is mounted if it is not"},
	}
}

// probeKernel gathers the kernel facts and builds the attach plan.
func probeKernel(c *cli.Context) (*kernel.Facts, *btf.Spec, *plan.Plan, error) {
	class, err := plan.ParseClass(c.String("hooks"))
	if err != nil {
		return nil, nil, nil, err
	}
	facts, spec, err := probe.Kernel(probe.Options{BTFPath: c.String("btf"), TracefsPath: c.String("tracefs")})
	if err != nil {
		return nil, nil, nil, err
	}
	p, err := plan.Build(facts, class)
	if err != nil {
		return nil, nil, nil, err
	}
	if c.String("detail") != "" { // trace, run
		d, err := plan.ParseDetail(c.String("detail"))
		if err != nil {
			return nil, nil, nil, err
		}
		if d == plan.DetailCalls {
			if p, err = p.CallsOnly(facts); err != nil {
				return nil, nil, nil, err
			}
		}
	}
	return facts, spec, p, nil
}

func probeCommand() *cli.Command {
	return &cli.Command{
		Name:  "probe",
		Usage: "show what this kernel allows and the attach plan ringtrace would use",
		Flags: append(kernelFlags(),
			&cli.BoolFlag{Name: "json", Usage: "print facts and plan as JSON"},
			kernelAddressesFlagDef("print the symbols' and the plan's raw kernel addresses in --json: never share what it prints"),
			&cli.BoolFlag{Name: "verify", Usage: "prove the plan: trace a few frames sent in a throwaway network namespace and check every promised precision (exit 1 if one is broken)"},
			detailFlag(),
		),
		Action: func(c *cli.Context) error {
			if c.Bool("verify") && callsOnly(c) {
				return inputerr.New("--verify proves the per-frame hooks: --detail calls has none (its frame counts are checked by `ringtrace run --detail calls call-return`)")
			}
			facts, spec, p, err := probeKernel(c)
			if err != nil {
				return err
			}
			var res *verify.Result
			if c.Bool("verify") {
				var log io.Writer = os.Stderr
				if c.Bool("json") {
					log = nil
				}
				if res, err = verify.Run(c.Context, verify.Options{Facts: facts, BTF: spec, Plan: p, Log: log}); err != nil {
					return err
				}
			}
			if c.Bool("json") {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				facts.DropReasons = nil
				shown, shownPlan := facts, p
				if !c.Bool(kernelAddressesFlag) {
					shown, shownPlan = facts.WithoutAddresses(), p.WithoutAddresses()
				}
				if err := enc.Encode(struct {
					Facts  *kernel.Facts  `json:"kernel"`
					Plan   *plan.Plan     `json:"plan"`
					Verify *verify.Result `json:"verify,omitempty"`
				}{shown, shownPlan, res}); err != nil {
					return err
				}
			} else {
				if err := writeProbe(os.Stdout, facts, p); err != nil {
					return err
				}
				if res != nil {
					fmt.Println()
					if err := writeVerify(os.Stdout, p, res); err != nil {
						return err
					}
				}
			}
			if res != nil && !res.OK {
				return fmt.Errorf("verify: %d broken: %s", len(res.Broken), res.Broken[0])
			}
			return nil
		},
	}
}

// writeVerify prints a verification: per promise, what was seen.
func writeVerify(w io.Writer, p *plan.Plan, res *verify.Result) error {
	frames := 0
	for _, s := range res.Cases {
		frames += s.NFrames
	}
	fmt.Fprintf(w, "VERIFY: %d sends (%d frames) in a throwaway network namespace, traced with hook class %s (%s), %s completion, in %.2fs\n",
		len(res.Cases), frames, p.Class.Letter(), p.Class, p.Completion, res.Seconds)
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "LOGICAL EVENT\tPROMISED\tOBSERVED\tRESULT\tCASES")
	for _, pr := range res.Promises {
		verdict := "held"
		if !pr.Held {
			verdict = "BROKEN: " + pr.Detail
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", pr.Event, pr.Promised, pr.Observed(), verdict, strings.Join(pr.Cases, ","))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, h := range res.Hidden {
		fmt.Fprintf(w, "hidden CPU time: %s: this kernel runs no BPF program while it is current; what happens on its time (softirqs included) no hook can see\n", h)
	}
	if res.OK {
		fmt.Fprintln(w, "verified: every promise held")
		return nil
	}
	for _, b := range res.Broken {
		fmt.Fprintf(w, "BROKEN: %s\n", b)
	}
	return nil
}

func yesNo(f kernel.Feature) string {
	if f.OK {
		return "yes"
	}
	return "no (" + f.Why + ")"
}

// CompletionLine names the TX completion form the way the plan uses it.
func completionLine(p *plan.Plan) string {
	if p.Completion == "uarg" {
		return "uarg (tpacket_ubuf_complete)"
	}
	return "destructor (tpacket_destruct_skb)"
}

func writeProbe(w io.Writer, f *kernel.Facts, p *plan.Plan) error {
	fmt.Fprintf(w, "kernel         %s (%s), %d CPUs\n", f.Version, f.Release, f.NumCPU)
	fmt.Fprintf(w, "BTF            %s\n", f.BTFSource)
	fmt.Fprintf(w, "ring buffer    %s\n", yesNo(f.Features.RingBuf))
	fmt.Fprintf(w, "bpf_loop       %s\n", yesNo(f.Features.BPFLoop))
	fmt.Fprintf(w, "BPF cmpxchg    %s\n", yesNo(f.Features.Atomics))
	how := "already mounted"
	if f.Tracefs.Mounted {
		how = "was not mounted: mounted by ringtrace (mount -t tracefs nodev " + f.Tracefs.Path + ")"
	}
	fmt.Fprintf(w, "tracefs        %s (%s)\n", f.Tracefs.Path, how)
	fmt.Fprintf(w, "fentry/fexit   %s\n", yesNo(f.Features.Fentry))
	fmt.Fprintf(w, "kprobes        %s\n", yesNo(f.Features.Kprobe))
	fmt.Fprintf(w, "tp_btf         %s\n", yesNo(f.Features.TPBTF))
	if f.SyscallTPs {
		how := "preemption disabled"
		if f.SyscallProgsPreemptible() {
			how = "preemptible, migration disabled only (trace_call_bpf_faultable)"
		}
		fmt.Fprintf(w, "syscall TP     programs run with %s\n", how)
	}
	fmt.Fprintf(w, "hook class     %s (%s): %s\n", p.Class.Letter(), p.Class, p.ClassWhy)
	fmt.Fprintf(w, "TX completion: %s\n", completionLine(p))
	var fns []string
	for _, n := range []string{"packet_sendmsg", "tpacket_snd", "__packet_set_status", "tpacket_destruct_skb",
		"tpacket_ubuf_complete", "__dev_queue_xmit", "__dev_direct_xmit", "sock_alloc_send_pskb"} {
		s, ok := f.Symbols[n]
		switch {
		case ok && f.Funcs[n]:
			fns = append(fns, n+": symbol")
		case ok:
			fns = append(fns, n+": symbol "+s.Name+" (no BTF func)")
		case n == "tpacket_ubuf_complete" && p.Completion == "destructor":
			fns = append(fns, n+": absent (destructor completion form)")
		case n == "tpacket_destruct_skb" && p.Completion == "uarg":
			fns = append(fns, n+": absent (uarg completion form)")
		default:
			fns = append(fns, n+": inlined on this kernel (no symbol)")
		}
	}
	fmt.Fprintf(w, "functions      %s\n\n", strings.Join(fns, "\n               "))
	if err := p.WriteTable(w); err != nil {
		return err
	}
	for _, n := range p.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	return nil
}
