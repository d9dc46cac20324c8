package kernel

// Feature is the outcome of one probe: usable, or why not.
type Feature struct {
	OK  bool   `json:"ok"`
	Why string `json:"why,omitempty"`
}

// Features are the hook families and BPF facilities ringtrace can use.
type Features struct {
	RingBuf Feature `json:"ringbuf"`
	BPFLoop Feature `json:"bpf_loop"`
	TPBTF   Feature `json:"tp_btf"`
	Fentry  Feature `json:"fentry"`
	Kprobe  Feature `json:"kprobe"`
	// TestRun: BPF_PROG_TEST_RUN of raw_tp programs (the sweep, 5.10+).
	TestRun Feature `json:"test_run"`
	// Atomics: BPF atomic cmpxchg (5.12+), with which two CPUs reporting
	// one frame transition at once count it once.
	Atomics Feature `json:"atomics"`
}
