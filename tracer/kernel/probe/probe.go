// Package probe finds out what the running kernel offers ringtrace: it
// reads the release, the build config, BTF (CO-RE's kernel types), the
// kallsyms addresses of the hooked functions, mounts tracefs if needed and
// loads tiny BPF programs to see which hook families (fentry, kprobes,
// tp_btf, the BPF ring buffer, bpf_loop, atomics, test runs) the kernel
// accepts. It needs root. What it finds is tracer/kernel.Facts, plain data
// that the attach plan, recordings and reports read without this package.
package probe

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/ringtrace/ringtrace/tracer/inputerr"
	"github.com/ringtrace/ringtrace/tracer/kernel"
)

// Options steer probing.
type Options struct {
	// BTFPath loads kernel BTF from a file instead of /sys/kernel/btf/vmlinux.
	BTFPath string
	// TracefsPath is where tracefs is (or gets mounted).
	TracefsPath string
}

// configKeys are the build options a decision reads: which hook families
// the kernel must have (kernel.Facts.MayLack) and why syscall tracepoints are missing.
var configKeys = []string{"CONFIG_KPROBES", "CONFIG_FUNCTION_TRACER", "CONFIG_DEBUG_INFO_BTF", "CONFIG_FTRACE_SYSCALLS"}

// Kernel gathers the facts of the running kernel. It needs root: it mounts
// tracefs if needed and loads tiny programs to see which hook families the
// kernel accepts. The returned BTF spec is the one programs must be loaded
// against.
func Kernel(o Options) (*kernel.Facts, *btf.Spec, error) {
	if os.Geteuid() != 0 {
		return nil, nil, inputerr.Wrap(inputerr.ErrNotPermitted, "ringtrace needs root to load BPF programs (CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN): run it with sudo")
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, nil, fmt.Errorf("raise RLIMIT_MEMLOCK: %w", err)
	}
	f := &kernel.Facts{Symbols: map[string]kernel.Symbol{}, Funcs: map[string]bool{}, Types: map[string]bool{},
		TPBTF: map[string]bool{}, Config: map[string]string{}}
	rel, err := uname()
	if err != nil {
		return nil, nil, err
	}
	f.Release = rel
	if f.Version, err = kernel.ParseRelease(rel); err != nil {
		return nil, nil, err
	}
	if pv, err := os.ReadFile("/proc/version"); err == nil {
		if v, ok := kernel.DebianVersion(string(pv)); ok && v.Major == f.Version.Major && v.Minor == f.Version.Minor {
			f.Version = v
		}
	}
	f.NumCPU = numCPU()
	// /proc/kallsyms costs ~50 ms of kernel time to read: overlap it with
	// the BTF load and the feature probes.
	type symsResult struct {
		syms map[string]kernel.Symbol
		err  error
	}
	symsDone := make(chan symsResult, 1)
	go func() {
		s, err := kernel.LoadKallsyms(kernel.Symbols)
		symsDone <- symsResult{s, err}
	}()
	cfg := readConfig(rel)
	for _, k := range configKeys {
		if v, ok := cfg[k]; ok {
			f.Config[k] = v
		}
	}

	spec, src, err := loadBTF(o.BTFPath)
	if err != nil {
		return nil, nil, err
	}
	f.BTFSource = src
	scanBTF(f, spec)

	f.Tracefs, err = EnsureTracefs(o.TracefsPath)
	if err != nil {
		return nil, nil, err
	}
	f.SyscallTPs = true
	for _, n := range []string{"sys_enter_sendto", "sys_exit_sendto", "sys_enter_sendmsg", "sys_exit_sendmsg", "sys_enter_close"} {
		if _, err := os.Stat(f.Tracefs.Path + "/events/syscalls/" + n); err != nil {
			f.SyscallTPs = false
		}
	}

	f.Features = probeFeatures(spec, "packet_sendmsg", cfg)
	sr := <-symsDone
	if sr.err != nil {
		return nil, nil, fmt.Errorf("kallsyms: %w", sr.err)
	}
	f.Symbols = sr.syms
	if s, ok := f.Symbols["packet_sendmsg"]; !ok || s.Addr == 0 {
		return nil, nil, errors.New("packet_sendmsg not found in /proc/kallsyms (AF_PACKET not built in and af_packet not loaded?), or kptr_restrict hides addresses")
	}
	if !f.Features.RingBuf.OK {
		return nil, nil, inputerr.New("this kernel has no BPF ring buffer (Linux 5.8+ needed): %s", f.Features.RingBuf.Why)
	}
	return f, spec, nil
}

// loadBTF loads the kernel's BTF, from path if set, and says where from.
func loadBTF(path string) (*btf.Spec, string, error) {
	if path != "" {
		spec, err := btf.LoadSpec(path)
		if err != nil {
			return nil, "", inputerr.New("kernel BTF from %s: %v", path, err)
		}
		return spec, path, nil
	}
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return nil, "", inputerr.New("no kernel BTF (/sys/kernel/btf/vmlinux: %v): ringtrace needs CONFIG_DEBUG_INFO_BTF=y, or a BTF file for this kernel via --btf", err)
	}
	return spec, "/sys/kernel/btf/vmlinux", nil
}

// scanBTF notes which functions, types and tracepoints spec has.
func scanBTF(f *kernel.Facts, spec *btf.Spec) {
	for _, n := range kernel.BTFFuncs {
		var fn *btf.Func
		f.Funcs[n] = spec.TypeByName(n, &fn) == nil
	}
	for _, n := range []string{"packet_sock", "tpacket_uarg", "packet_ring_buffer"} {
		var st *btf.Struct
		f.Types[n] = spec.TypeByName(n, &st) == nil
	}
	for _, tp := range kernel.Tracepoints {
		var td *btf.Typedef
		if spec.TypeByName("btf_trace_"+tp, &td) == nil {
			f.TPBTF[tp] = true
			if tp == "kfree_skb" {
				f.KfreeSkbArgs = tracepointArgs(td)
			}
		}
	}
	var reasons *btf.Enum
	if spec.TypeByName("skb_drop_reason", &reasons) == nil {
		f.DropReasons = map[uint32]string{}
		for _, v := range reasons.Values {
			f.DropReasons[uint32(v.Value)] = strings.TrimPrefix(v.Name, "SKB_DROP_REASON_")
		}
	}
}

// tracepointArgs counts a btf_trace_<tp> typedef's arguments, without the
// leading void *__data.
func tracepointArgs(td *btf.Typedef) int {
	ptr, ok := td.Type.(*btf.Pointer)
	if !ok {
		return 0
	}
	proto, ok := ptr.Target.(*btf.FuncProto)
	if !ok || len(proto.Params) == 0 {
		return 0
	}
	return len(proto.Params) - 1
}

// numCPU counts the possible CPUs (per-CPU maps have one slot each).
func numCPU() int {
	b, err := os.ReadFile("/sys/devices/system/cpu/possible")
	if err != nil {
		return 1
	}
	// "0-1" or "0"
	s := strings.TrimSpace(string(b))
	n := 0
	for _, part := range strings.Split(s, ",") {
		var a, z int
		if c, _ := fmt.Sscanf(part, "%d-%d", &a, &z); c == 2 {
			n += z - a + 1
		} else {
			n++
		}
	}
	return n
}

// uname is the running kernel's release.
func uname() (string, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", fmt.Errorf("uname: %w", err)
	}
	return unix.ByteSliceToString(u.Release[:]), nil
}
