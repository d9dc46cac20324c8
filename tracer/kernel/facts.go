package kernel

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
	"trace_call_bpf_faultable",
}

// Tracepoints ringtrace may attach as tp_btf (btf_trace_<name> in BTF).
var Tracepoints = []string{
	"net_dev_queue", "net_dev_start_xmit", "net_dev_xmit", "netif_receive_skb",
	"qdisc_enqueue", "qdisc_dequeue", "kfree_skb", "consume_skb",
	"sched_switch", "sched_waking", "softirq_entry", "softirq_exit", "napi_poll",
	"sock_send_length", "kfree", "sched_process_exit",
}

// BTFFuncs are functions whose presence in BTF (not inlined away) matters.
var BTFFuncs = []string{
	"packet_sendmsg", "tpacket_snd", "__packet_set_status", "tpacket_destruct_skb",
	"tpacket_ubuf_complete", "__dev_queue_xmit", "dev_queue_xmit", "packet_direct_xmit",
	"__dev_direct_xmit", "sock_alloc_send_pskb", "trace_call_bpf_faultable",
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
	// SyscallTPs: syscalls:sys_{enter,exit}_send{to,msg,mmsg} and
	// sys_enter_close exist in tracefs.
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

// CompletionForm tells how TX-ring frames complete on this kernel.
func (f *Facts) CompletionForm() string {
	if f.Types["tpacket_uarg"] || f.Funcs["tpacket_ubuf_complete"] {
		return "uarg"
	}
	return "destructor"
}

// SyscallProgsPreemptible reports whether this kernel runs BPF programs on
// syscall tracepoints with only migration disabled (trace_call_bpf_faultable,
// 7.x: syscall tracepoints became faultable for sleepable programs), not
// with preemption disabled. On a preemptible kernel a sender can then be
// switched out in the middle of one, and until it runs again the same
// program skips other threads' calls on that CPU (a recursion miss).
func (f *Facts) SyscallProgsPreemptible() bool {
	_, sym := f.Symbols["trace_call_bpf_faultable"]
	return sym || f.Funcs["trace_call_bpf_faultable"]
}
