package main

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/urfave/cli/v2"

	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/kernel/probe"
	"github.com/ringtrace/ringtrace/tracer/plan"
)

// nullTracerCommand attaches, to every hook `ringtrace trace` would use on
// this kernel (its attach plan, default events), a program that returns at
// once, and waits for SIGINT: the hooks' own cost, the floor under any
// tracer of these events. `make bench` runs it as the "null" mode.
func nullTracerCommand() *cli.Command {
	return &cli.Command{
		Name:   "null-tracer",
		Usage:  "attach empty programs to ringtrace's hooks until interrupted (the overhead floor)",
		Hidden: true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "ready-file", Usage: "created once every program is attached"},
		},
		Action: runNullTracer,
	}
}

func runNullTracer(c *cli.Context) error {
	facts, kbtf, err := probe.Kernel(probe.Options{})
	if err != nil {
		return err
	}
	p, err := plan.Build(facts, plan.Auto)
	if err != nil {
		return err
	}
	wanted := map[string]bool{}
	for _, k := range event.DefaultKinds() {
		wanted[k.String()] = true
	}
	p = p.ForEvents(func(k string) bool { return wanted[k] })
	var links []link.Link
	defer func() {
		for _, l := range links {
			l.Close()
		}
	}()
	for _, a := range p.Attach {
		l, err := attachNull(a, kbtf)
		if err != nil {
			return fmt.Errorf("null %s %s: %w", a.Kind, a.Target, err)
		}
		if l != nil {
			links = append(links, l)
		}
	}
	if path := c.String("ready-file"); path != "" {
		if err := os.WriteFile(path, nil, 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "ringbench: %d empty programs attached (%s plan)\n", len(links), p.Class)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	return nil
}

// attachNull attaches a program that returns 0 where a is attached; nil for
// what is not a hook (test_run programs).
func attachNull(a plan.Attachment, kbtf *btf.Spec) (link.Link, error) {
	spec := &ebpf.ProgramSpec{License: "GPL", Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}}
	switch a.Kind {
	case plan.KindTracepoint:
		spec.Type = ebpf.TracePoint
	case plan.KindKprobe, plan.KindKretprobe:
		spec.Type = ebpf.Kprobe
	case plan.KindTPBTF:
		spec.Type, spec.AttachType, spec.AttachTo = ebpf.Tracing, ebpf.AttachTraceRawTp, a.Target
	case plan.KindFentry:
		spec.Type, spec.AttachType, spec.AttachTo = ebpf.Tracing, ebpf.AttachTraceFEntry, a.Target
	case plan.KindFexit:
		spec.Type, spec.AttachType, spec.AttachTo = ebpf.Tracing, ebpf.AttachTraceFExit, a.Target
	default:
		return nil, nil
	}
	prog, err := ebpf.NewProgramWithOptions(spec, ebpf.ProgramOptions{KernelTypes: kbtf})
	if err != nil {
		return nil, err
	}
	defer prog.Close() // the link holds its own reference
	switch a.Kind {
	case plan.KindTracepoint:
		group, name, _ := strings.Cut(a.Target, "/")
		return link.Tracepoint(group, name, prog, nil)
	case plan.KindKprobe:
		return link.Kprobe(a.Target, prog, nil)
	case plan.KindKretprobe:
		return link.Kretprobe(a.Target, prog, nil)
	}
	return link.AttachTracing(link.TracingOptions{Program: prog})
}
