package kernel

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/rlimit"

	"github.com/ringtrace/ringtrace/tracer/inputerr"
)

// Symbols ringtrace resolves from kallsyms: hook targets, the address the
// BPF side compares skb->destructor / uarg ops against, and the functions
// whose presence on a sleeping sender's stack says why it sleeps.
var Symbols = []string{
	"packet_sendmsg", "tpacket_snd", "__packet_set_status",
	"tpacket_destruct_skb", "tpacket_ubuf_complete",
	"__dev_queue_xmit", "dev_queue_xmit", "packet_direct_xmit", "__dev_direct_xmit",
	"sock_alloc_send_pskb", "sock_wait_for_wmem", "sock_def_write_space", "sock_wfree",
	"__wait_for_common", "wait_for_common", "wait_for_completion_interruptible_timeout",
	"__mutex_lock", "__mutex_lock_slowpath", "mutex_lock", "mutex_lock_interruptible",
}

// Tracepoints ringtrace may attach as tp_btf (btf_trace_<name> in BTF).
var Tracepoints = []string{
	"net_dev_queue", "net_dev_start_xmit", "net_dev_xmit", "netif_receive_skb",
	"qdisc_enqueue", "qdisc_dequeue", "kfree_skb", "consume_skb",
	"sched_switch", "sched_waking", "softirq_entry", "softirq_exit", "napi_poll",
	"sock_send_length", "kfree",
}

// BTFFuncs are functions whose presence in BTF (not inlined away) matters.
var BTFFuncs = []string{
	"packet_sendmsg", "tpacket_snd", "__packet_set_status", "tpacket_destruct_skb",
	"tpacket_ubuf_complete", "__dev_queue_xmit", "dev_queue_xmit", "packet_direct_xmit",
	"__dev_direct_xmit", "sock_alloc_send_pskb",
}

// Facts is everything the attach plan depends on.
type Facts struct {
	Release   string            `json:"release"`
	Version   Version           `json:"version"`
	BTFSource string            `json:"btf_source"`
	Config    map[string]string `json:"config,omitempty"` // selected CONFIG_ keys
	Symbols   map[string]Symbol `json:"symbols"`
	// BTF: functions present as BTF FUNC, types present, tracepoints with a
	// btf_trace_ typedef, and kfree_skb's tracepoint argument count.
	Funcs        map[string]bool `json:"btf_funcs"`
	Types        map[string]bool `json:"btf_types"`
	TPBTF        map[string]bool `json:"tp_btf"`
	KfreeSkbArgs int             `json:"kfree_skb_args"`
	// SyscallTPs: syscalls:sys_{enter,exit}_send{to,msg,mmsg} exist in tracefs.
	SyscallTPs  bool              `json:"syscall_tracepoints"`
	Tracefs     Tracefs           `json:"tracefs"`
	Features    Features          `json:"features"`
	DropReasons map[uint32]string `json:"drop_reasons,omitempty"`
	NumCPU      int               `json:"ncpu"`
}

// WithoutAddresses is a copy of f that holds no kernel address, for files
// meant to be shared: its symbols keep their names, types and sizes.
func (f *Facts) WithoutAddresses() *Facts {
	if f == nil {
		return nil
	}
	c := *f
	c.Symbols = make(map[string]Symbol, len(f.Symbols))
	for n, s := range f.Symbols {
		c.Symbols[n] = Symbol{Name: s.Name, Type: s.Type, Len: s.Size()}
	}
	return &c
}

// Options steer probing.
type Options struct {
	// BTFPath loads kernel BTF from a file instead of /sys/kernel/btf/vmlinux.
	BTFPath string
	// TracefsPath is where tracefs is (or gets mounted).
	TracefsPath string
}

// configKeys are the build options a decision reads: which hook families
// the kernel must have (MayLack) and why syscall tracepoints are missing.
var configKeys = []string{"CONFIG_KPROBES", "CONFIG_FUNCTION_TRACER", "CONFIG_DEBUG_INFO_BTF", "CONFIG_FTRACE_SYSCALLS"}

// Probe gathers the facts. It needs root: it mounts tracefs if needed and
// loads tiny programs to see which hook families the kernel accepts. The
// returned BTF spec is the one programs must be loaded against.
func Probe(o Options) (*Facts, *btf.Spec, error) {
	if os.Geteuid() != 0 {
		return nil, nil, inputerr.Wrap(inputerr.ErrNotPermitted, "ringtrace needs root to load BPF programs (CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN): run it with sudo")
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, nil, fmt.Errorf("raise RLIMIT_MEMLOCK: %w", err)
	}
	f := &Facts{Symbols: map[string]Symbol{}, Funcs: map[string]bool{}, Types: map[string]bool{},
		TPBTF: map[string]bool{}, Config: map[string]string{}}
	rel, err := uname()
	if err != nil {
		return nil, nil, err
	}
	f.Release = rel
	if f.Version, err = ParseRelease(rel); err != nil {
		return nil, nil, err
	}
	if pv, err := os.ReadFile("/proc/version"); err == nil {
		if v, ok := debianPatch(string(pv)); ok && v.Major == f.Version.Major && v.Minor == f.Version.Minor {
			f.Version = v
		}
	}
	f.NumCPU = numCPU()
	// /proc/kallsyms costs ~50 ms of kernel time to read: overlap it with
	// the BTF load and the feature probes.
	type symsResult struct {
		syms map[string]Symbol
		err  error
	}
	symsDone := make(chan symsResult, 1)
	go func() {
		s, err := LoadKallsyms(Symbols)
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
	f.scanBTF(spec)

	f.Tracefs, err = EnsureTracefs(o.TracefsPath)
	if err != nil {
		return nil, nil, err
	}
	f.SyscallTPs = true
	for _, n := range []string{"sys_enter_sendto", "sys_exit_sendto", "sys_enter_sendmsg", "sys_exit_sendmsg"} {
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

func (f *Facts) scanBTF(spec *btf.Spec) {
	for _, n := range BTFFuncs {
		var fn *btf.Func
		f.Funcs[n] = spec.TypeByName(n, &fn) == nil
	}
	for _, n := range []string{"packet_sock", "tpacket_uarg", "packet_ring_buffer"} {
		var st *btf.Struct
		f.Types[n] = spec.TypeByName(n, &st) == nil
	}
	for _, tp := range Tracepoints {
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

// CompletionForm tells how TX-ring frames complete on this kernel.
func (f *Facts) CompletionForm() string {
	if f.Types["tpacket_uarg"] || f.Funcs["tpacket_ubuf_complete"] {
		return "uarg"
	}
	return "destructor"
}
