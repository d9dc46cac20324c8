package probe

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/ringtrace/ringtrace/tracer/kernel"
)

// featureOf is a probe's outcome: usable, or what failed and why.
func featureOf(err error, what string) kernel.Feature {
	if err == nil {
		return kernel.Feature{OK: true}
	}
	return kernel.Feature{Why: fmt.Sprintf("%s: %v", what, err)}
}

var retZero = asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}

// probeTracing loads (and, for fentry, attaches and detaches) a program that
// does nothing, at a function that exists on every kernel ringtrace hooks.
func probeFentry(spec *btf.Spec, fn string) error {
	if spec == nil {
		return errors.New("no kernel BTF")
	}
	prog, err := ebpf.NewProgramWithOptions(&ebpf.ProgramSpec{
		Type: ebpf.Tracing, AttachType: ebpf.AttachTraceFEntry, AttachTo: fn,
		Instructions: retZero, License: "GPL",
	}, ebpf.ProgramOptions{KernelTypes: spec})
	if err != nil {
		return explainErrno(err)
	}
	defer prog.Close()
	l, err := link.AttachTracing(link.TracingOptions{Program: prog})
	if err != nil {
		return explainErrno(err)
	}
	return l.Close()
}

func probeTPBTF(spec *btf.Spec) error {
	if spec == nil {
		return errors.New("no kernel BTF")
	}
	prog, err := ebpf.NewProgramWithOptions(&ebpf.ProgramSpec{
		Type: ebpf.Tracing, AttachType: ebpf.AttachTraceRawTp, AttachTo: "sched_switch",
		Instructions: retZero, License: "GPL",
	}, ebpf.ProgramOptions{KernelTypes: spec})
	if err != nil {
		return explainErrno(err)
	}
	return prog.Close()
}

func probeKprobe(fn string) error {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.Kprobe, Instructions: retZero, License: "GPL"})
	if err != nil {
		return explainErrno(err)
	}
	defer prog.Close()
	l, err := link.Kprobe(fn, prog, nil)
	if err != nil {
		return explainErrno(err)
	}
	return l.Close()
}

// cmpxchg is `r0 = cmpxchg_64(dst + 0, r0, src)`. cilium/ebpf v0.22 encodes
// asm.CmpXchg.Mem with an immediate of 0, which is an atomic add (that
// 5.10 accepts): the immediate is set here as well.
func cmpxchg(dst, src asm.Register) asm.Instruction {
	ins := asm.CmpXchg.Mem(dst, src, asm.DWord, 0)
	ins.Constant = int64(asm.CmpXchg >> 8)
	return ins
}

// probeAtomics loads a program that does a 64-bit cmpxchg on its stack.
func probeAtomics() error {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.RawTracepoint, License: "GPL", Instructions: asm.Instructions{
		asm.Mov.Imm(asm.R0, 0),
		asm.StoreMem(asm.RFP, -8, asm.R0, asm.DWord),
		asm.Mov.Reg(asm.R1, asm.RFP),
		asm.Add.Imm(asm.R1, -8),
		asm.Mov.Imm(asm.R2, 1),
		cmpxchg(asm.R1, asm.R2),
		asm.Mov.Imm(asm.R0, 0),
		asm.Return(),
	}})
	if err != nil {
		return explainErrno(err)
	}
	return prog.Close()
}

func probeTestRun() error {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.RawTracepoint, Instructions: retZero, License: "GPL"})
	if err != nil {
		return explainErrno(err)
	}
	defer prog.Close()
	_, err = prog.Run(&ebpf.RunOptions{})
	return explainErrno(err)
}

// explainErrno names the errno behind a failed probe; EPERM on a kernel
// that otherwise works usually means the hook family is administratively
// refused (lockdown, LSM), not missing.
func explainErrno(err error) error {
	var en unix.Errno
	if errors.As(err, &en) {
		switch en {
		case unix.EPERM:
			return errors.New("refused by the kernel (EPERM)")
		case unix.Errno(524), unix.EOPNOTSUPP, unix.EINVAL: // 524: ENOTSUPP
			return fmt.Errorf("not supported by this kernel (%s)", unix.ErrnoName(en))
		}
	}
	return err
}

// probeFeatures runs every probe. fentryTarget/kprobeTarget name a function
// that exists on this kernel (packet_sendmsg always does).
func probeFeatures(spec *btf.Spec, target string, config map[string]string) kernel.Features {
	var f kernel.Features
	f.RingBuf = featureOf(features.HaveMapType(ebpf.RingBuf), "BPF ring buffer (Linux 5.8+)")
	f.BPFLoop = featureOf(features.HaveProgramHelper(ebpf.RawTracepoint, asm.FnLoop), "bpf_loop helper (Linux 5.17+)")
	f.TPBTF = featureOf(probeTPBTF(spec), "tp_btf programs (Linux 5.5+ with BTF)")
	f.Fentry = featureOf(probeFentry(spec, target), "fentry/fexit on "+target)
	if config["CONFIG_KPROBES"] == "n" {
		f.Kprobe = kernel.Feature{Why: "kprobes: CONFIG_KPROBES is not set in this kernel's config"}
	} else {
		f.Kprobe = featureOf(probeKprobe(target), "kprobe on "+target)
	}
	f.TestRun = featureOf(probeTestRun(), "BPF_PROG_TEST_RUN for raw_tp (Linux 5.10+)")
	f.Atomics = featureOf(probeAtomics(), "BPF atomic cmpxchg (Linux 5.12+)")
	return f
}
