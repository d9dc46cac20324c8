package session

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/ringtrace/ringtrace/tracer/bpfobj"
	"github.com/ringtrace/ringtrace/tracer/bpfobj/bpftypes"
	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/plan"
)

// rtConfig turns the plan's load-time configuration and the filters into
// the BPF side's struct rt_config.
func rtConfig(p *plan.Plan, f Filter, events uint32) (bpftypes.RingtraceRtConfig, error) {
	c := p.Config
	events = withXmitPairs(p, events)
	cfg := bpftypes.RingtraceRtConfig{
		DestructAddr: c.DestructAddr, UargCompleteAddr: c.UargCompleteAddr, FilterPid: f.PID,
		MaxScan: c.MaxScan, Events: events,
		KfreeHasReason: b2u(c.KfreeHasReason), AvailViaTp: b2u(c.AvailViaTP),
		SendingViaTp: b2u(c.SendingViaTP), CallsViaSyscalls: b2u(c.CallsViaSyscalls),
		UargForm: b2u(c.UargForm), UargCompleteLen: c.UargCompleteLen, UargViaKfree: b2u(c.UargViaKfree),
		DirectXmitAddr: c.DirectXmitAddr, CompleteHooked: b2u(c.CompleteHooked), Claims: b2u(c.Claims),
		CallsOnly: b2u(c.CallsOnly), CallsKept: b2u(c.CallsKept),
		SendmsgNr: unix.SYS_SENDMSG, // the entry program reads sendmsg's flags where the others' are not
		SkbCache:  b2u(needSkbCache(c, events)),
	}
	switch p.Class {
	case plan.Fentry:
		cfg.HookClass = uint8(bpftypes.RingtraceRtHookRT_H_FENTRY)
	case plan.Kprobe:
		cfg.HookClass = uint8(bpftypes.RingtraceRtHookRT_H_KPROBE)
	}
	if f.Comm != "" {
		if len(f.Comm) > 15 {
			return cfg, fmt.Errorf("--comm %q is longer than the kernel's 15-character task names", f.Comm)
		}
		cfg.FilterCommSet = 1
		copyCString(cfg.FilterComm[:], f.Comm)
	}
	if f.Ifname != "" {
		if len(f.Ifname) > 15 {
			return cfg, fmt.Errorf("--ifname %q is longer than 15 characters", f.Ifname)
		}
		cfg.FilterIfnameSet = 1
		copyCString(cfg.FilterIfname[:], f.Ifname)
	}
	if len(c.StackRanges) > len(cfg.StackRanges) {
		return cfg, fmt.Errorf("plan has %d stack ranges, BPF side holds %d", len(c.StackRanges), len(cfg.StackRanges))
	}
	for i, r := range c.StackRanges {
		cfg.StackRanges[i].Start, cfg.StackRanges[i].End, cfg.StackRanges[i].Reason = r.Start, r.End, uint32(r.Reason)
	}
	return cfg, nil
}

// withXmitPairs adds the one-record xmit start and return (event.XmitPair)
// to an event mask that asks for both, where net_dev_xmit's program, which
// writes the record, is attached.
func withXmitPairs(p *plan.Plan, events uint32) uint32 {
	const both = 1<<uint(event.XmitStart) | 1<<uint(event.XmitDone)
	if events&both == both && slices.Contains(p.Programs(), "tp_net_dev_xmit") {
		return events | 1<<uint(event.XmitPair)
	}
	return events
}

// needSkbCache tells whether the xmit hooks must cache skb -> frame (the
// skbs map): for the events of an skb (qdisc, driver, receive), and for
// completions read at a free or at the driver's return. Where the uarg's
// kfree reports completions, an aggregating trace needs none of it, and
// the cache cost a hash update at every frame's queueing and a delete at
// its free (≈ 450 ns a frame on the qdisc path).
func needSkbCache(c plan.Config, events uint32) bool {
	const skbEvents = 1<<uint(event.QdiscEnqueue) | 1<<uint(event.QdiscDequeue) | 1<<uint(event.XmitStart) |
		1<<uint(event.XmitDone) | 1<<uint(event.RX)
	return (c.AvailViaTP && !c.UargViaKfree) || events&skbEvents != 0
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

func copyCString(dst []int8, s string) {
	for i := 0; i < len(s) && i < len(dst)-1; i++ {
		dst[i] = int8(s[i])
	}
}

// EventMask turns a set of kinds into the rt_config events bitmap.
func EventMask(kinds []event.Kind) uint32 {
	m := uint32(1) << uint(event.Blind)
	for _, k := range kinds {
		m |= 1 << uint(k)
	}
	// Calls that find nothing to send come in one record when both of
	// their events are asked for (the decoders split it).
	if call := uint32(1)<<uint(event.SendmsgEnter) | 1<<uint(event.SendmsgReturn); m&call == call {
		m |= 1 << uint(event.SendmsgCall)
	}
	// Frame events come in short records where the thread's call entry
	// named it (the decoders fill the names in).
	if fs := uint32(1)<<uint(event.FrameState) | 1<<uint(event.SendmsgEnter); m&fs == fs {
		m |= 1 << uint(event.FrameShort)
	}
	return m
}

// withoutAtomics rewrites every cmpxchg, which kernels before 5.12 refuse
// on sight even where it cannot run, into a load of the same word: with
// rt_config.claims off the verifier proves those branches dead, so the
// rewrite only has to pass the kernel's opcode check.
func withoutAtomics(spec *ebpf.CollectionSpec) {
	for _, prog := range spec.Programs {
		for i, ins := range prog.Instructions {
			if ins.OpCode.Class() == asm.StXClass && ins.OpCode.Mode() == asm.AtomicMode && ins.OpCode.AtomicOp() == asm.CmpXchg {
				prog.Instructions[i] = asm.LoadMem(asm.R0, ins.Dst, ins.Offset, ins.OpCode.Size()).WithMetadata(ins.Metadata)
			}
		}
	}
}

// objects are the loaded maps and programs of a session.
type objects struct {
	maps  map[string]*ebpf.Map
	progs map[string]*ebpf.Program
}

func (o *objects) Close() {
	for _, p := range o.progs {
		p.Close()
	}
	for _, m := range o.maps {
		m.Close()
	}
}

// load builds what the plan asks for: unused programs are dropped from the
// spec before load (they may reference functions or types this kernel does
// not have); the maps are created once; then the programs are verified in
// parallel against them — verification is most of the start-up time.
func load(p *plan.Plan, kernelBTF *btf.Spec, cfg bpftypes.RingtraceRtConfig, ringSize, maxFrames uint32) (*objects, error) {
	spec, err := bpfobj.LoadRingtrace()
	if err != nil {
		return nil, fmt.Errorf("read embedded BPF object: %w", err)
	}
	keep := map[string]bool{}
	for _, a := range p.Attach {
		if _, ok := spec.Programs[a.Program]; !ok {
			return nil, fmt.Errorf("attach plan names program %q, which the BPF object does not have", a.Program)
		}
		keep[a.Program] = true
		if a.Kind == plan.KindFentry || a.Kind == plan.KindFexit {
			spec.Programs[a.Program].AttachTo = a.Target
		}
	}
	for name := range spec.Programs {
		if !keep[name] {
			delete(spec.Programs, name)
		}
	}
	if !p.Config.Claims {
		withoutAtomics(spec)
	}
	if p.Config.CallsOnly {
		// Frame entries are made only for a WRONG_FORMAT frame at head.
		maxFrames = min(maxFrames, 4096)
	}
	cfg.FrameSlots = frameSlots(p, maxFrames)
	if err := spec.Variables["cfg"].Set(cfg); err != nil {
		return nil, fmt.Errorf("set rt_config: %w", err)
	}
	spec.Maps["events"].MaxEntries = ringSize
	spec.Maps["frame_slots"].MaxEntries = max(cfg.FrameSlots, 1)
	if cfg.FrameSlots > 0 {
		// User space reads a socket's range from the array's memory.
		spec.Maps["frame_slots"].Flags |= unix.BPF_F_MMAPABLE
	}
	spec.Maps["frames"].MaxEntries = maxFrames
	spec.Maps["ph2idx"].MaxEntries = maxFrames

	mapsOnly := spec.Copy()
	mapsOnly.Programs = nil
	mc, err := ebpf.NewCollection(mapsOnly)
	if err != nil {
		return nil, fmt.Errorf("create BPF maps: %w", err)
	}
	objs := &objects{maps: mc.Maps, progs: map[string]*ebpf.Program{}}

	type result struct {
		name string
		prog *ebpf.Program
		err  error
	}
	names := make(chan string)
	results := make(chan result)
	workers := runtime.NumCPU()
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name := range names {
				prog, err := loadOne(spec, name, objs.maps, kernelBTF)
				results <- result{name, prog, err}
			}
		}()
	}
	go func() {
		for name := range spec.Programs {
			names <- name
		}
		close(names)
		wg.Wait()
		close(results)
	}()
	var errs []error
	for r := range results {
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		objs.progs[r.name] = r.prog
	}
	if len(errs) > 0 {
		objs.Close()
		return nil, errors.Join(errs...)
	}
	return objs, nil
}

// loadOne verifies one program of spec against already created maps.
func loadOne(spec *ebpf.CollectionSpec, name string, maps map[string]*ebpf.Map, kernelBTF *btf.Spec) (*ebpf.Program, error) {
	one := spec.Copy()
	for n := range one.Programs {
		if n != name {
			delete(one.Programs, n)
		}
	}
	coll, err := ebpf.NewCollectionWithOptions(one, ebpf.CollectionOptions{
		MapReplacements: maps,
		Programs:        ebpf.ProgramOptions{KernelTypes: kernelBTF},
	})
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			// The whole log is long; its tail says why.
			lines := ve.Log
			if len(lines) > 8 {
				lines = lines[len(lines)-8:]
			}
			return nil, fmt.Errorf("load BPF program %s: %v: %s", name, ve.Cause, strings.Join(lines, " | "))
		}
		return nil, fmt.Errorf("load BPF program %s: %w", name, err)
	}
	prog := coll.DetachProgram(name)
	coll.Close()
	return prog, nil
}

// attach makes every attachment of the plan. On error it closes what it
// attached so far.
func attach(p *plan.Plan, objs *objects) ([]link.Link, error) {
	var links []link.Link
	fail := func(err error) ([]link.Link, error) {
		for _, l := range links {
			l.Close()
		}
		return nil, err
	}
	for _, a := range p.Attach {
		prog := objs.progs[a.Program]
		var l link.Link
		var err error
		switch a.Kind {
		case plan.KindTestRun:
			continue
		case plan.KindTPBTF, plan.KindFentry, plan.KindFexit:
			l, err = link.AttachTracing(link.TracingOptions{Program: prog})
		case plan.KindRawTP:
			l, err = link.AttachRawTracepoint(link.RawTracepointOptions{Name: a.Target, Program: prog})
		case plan.KindTracepoint:
			group, name, _ := strings.Cut(a.Target, "/")
			l, err = link.Tracepoint(group, name, prog, nil)
		case plan.KindKprobe:
			l, err = link.Kprobe(a.Target, prog, nil)
		case plan.KindKretprobe:
			l, err = link.Kretprobe(a.Target, prog, nil)
		default:
			err = fmt.Errorf("unknown attach kind %q", a.Kind)
		}
		if err != nil {
			return fail(fmt.Errorf("attach %s %s (%s): %w", a.Kind, a.Target, a.Program, err))
		}
		links = append(links, l)
	}
	return links, nil
}
