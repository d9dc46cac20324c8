package kernel

import (
	"strings"
	"testing"
)

func TestParseRelease(t *testing.T) {
	for rel, want := range map[string]Version{
		"6.18.44-fc-v669":            {6, 18, 44},
		"6.1.0-56-cloud-amd64":       {6, 1, 0},
		"6.12.117+deb13-cloud-amd64": {6, 12, 117},
		"5.10":                       {5, 10, 0},
	} {
		got, err := ParseRelease(rel)
		if err != nil || got != want {
			t.Errorf("%s: %v %v, want %v", rel, got, err, want)
		}
	}
	if _, err := ParseRelease("banana"); err == nil {
		t.Error("accepted banana")
	}
	v, ok := DebianVersion("Linux version 6.1.0-56-cloud-amd64 (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-1 (2025-10-01)")
	if !ok || v != (Version{6, 1, 192}) {
		t.Errorf("debian patch level: %v %v", v, ok)
	}
	if !v.AtLeast(6, 1, 0) || v.AtLeast(6, 2, 0) || !v.AtLeast(5, 17, 0) {
		t.Error("AtLeast")
	}
}

func TestReadKallsyms(t *testing.T) {
	in := `ffffffff81000000 T _stext
ffffffff8214cd50 t packet_xmit
ffffffff8214ce40 t tpacket_destruct_skb
ffffffff8214cf90 t packet_lookup_frame.isra.0
ffffffff821fc1b0 t __mutex_lock.constprop.0
ffffffff821fc3c0 T wait_for_completion_interruptible_timeout
ffffffff821fc3e0 T something_after
ffffffffc0000000 t veth_xmit	[veth]
`
	got, err := ReadKallsyms(strings.NewReader(in), []string{"tpacket_destruct_skb", "__mutex_lock", "wait_for_completion_interruptible_timeout", "tpacket_snd", "veth_xmit"})
	if err != nil {
		t.Fatal(err)
	}
	if s := got["tpacket_destruct_skb"]; s.Addr != 0xffffffff8214ce40 || s.End != 0xffffffff8214cf90 {
		t.Errorf("tpacket_destruct_skb %+v", s)
	}
	if s := got["__mutex_lock"]; s.Name != "__mutex_lock.constprop.0" || s.Size() != 0x210 {
		t.Errorf("GCC clone: %+v", s)
	}
	if _, ok := got["tpacket_snd"]; ok {
		t.Error("inlined tpacket_snd found")
	}
	if s := got["veth_xmit"]; s.Addr != 0xffffffffc0000000 {
		t.Errorf("module symbol %+v", s)
	}
}

// TestMayLack: a feature may be missing only for a reason the kernel gives.
func TestMayLack(t *testing.T) {
	f := &Facts{Version: Version{6, 18, 44}, Config: map[string]string{"CONFIG_KPROBES": "n", "CONFIG_FUNCTION_TRACER": "y", "CONFIG_DEBUG_INFO_BTF": "y"}}
	f.Features.Fentry.Why = "fentry/fexit on packet_sendmsg: refused by the kernel (EPERM)"
	for name, want := range map[string]string{
		"bpf_loop": "",                                       // 5.17+: must have it
		"kprobe":   "CONFIG_KPROBES is not set",              // configured out
		"fentry":   "refused by the kernel's policy (EPERM)", // this host
		"tp_btf":   "",
	} {
		if got := f.MayLack(name); got != want {
			t.Errorf("6.18 %s: MayLack = %q, want %q", name, got, want)
		}
	}
	f.Features.Fentry.Why = "fentry/fexit on packet_sendmsg: not supported by this kernel (ENOTSUPP)"
	if got := f.MayLack("fentry"); got != "" {
		t.Errorf("6.18 with CONFIG_FUNCTION_TRACER and fentry unsupported: MayLack = %q, want a failure", got)
	}
	f.Version = Version{5, 10, 251}
	if got := f.MayLack("atomics"); !strings.Contains(got, "older than 5.12") {
		t.Errorf("5.10 atomics: MayLack = %q", got)
	}
	if got := (&Facts{Version: Version{6, 1, 0}}).MayLack("kprobe"); got != "the kernel's build config cannot be read" {
		t.Errorf("no config: MayLack(kprobe) = %q", got)
	}
}

// TestSymbolizerRead: text symbols only, sorted, named with offsets.
func TestSymbolizerRead(t *testing.T) {
	var s Symbolizer
	s.once.Do(func() {
		s.read(strings.NewReader(strings.Join([]string{
			"ffffffff81e65000 T kfree_skb_reason",
			"ffffffff81000000 T _stext",
			"ffffffff82000000 D some_data",
			"ffffffff81e60000 t consume_skb [mod]",
			"0000000000000000 T hidden",
			"bad line",
		}, "\n")))
	})
	for addr, want := range map[uint64]string{
		0xffffffff81e65000: "kfree_skb_reason",
		0xffffffff81e65010: "kfree_skb_reason+0x10",
		0xffffffff81e60001: "consume_skb+0x1",
		0xffffffff81000002: "_stext+0x2",
		0xffffffff80000000: "",
		0xffffffff82000004: "kfree_skb_reason+0x19b004", // data symbols are not text
	} {
		if got := s.Lookup(addr); got != want {
			t.Errorf("Lookup(%#x) = %q, want %q", addr, got, want)
		}
	}
}

// TestFactsWithoutAddresses: symbols keep their names, types and sizes, lose
// their addresses; the facts themselves are not changed.
func TestFactsWithoutAddresses(t *testing.T) {
	f := &Facts{Release: "6.18", Symbols: map[string]Symbol{
		"packet_sendmsg": {Name: "packet_sendmsg", Addr: 0xffffffff82150cc0, End: 0xffffffff82152450, Type: "t"}}}
	c := f.WithoutAddresses()
	s := c.Symbols["packet_sendmsg"]
	if s != (Symbol{Name: "packet_sendmsg", Type: "t", Len: 0x1790}) || s.Size() != 0x1790 || c.Release != "6.18" {
		t.Errorf("without addresses: %+v (size %#x)", s, s.Size())
	}
	if f.Symbols["packet_sendmsg"].Addr == 0 {
		t.Error("the facts lost their addresses")
	}
	if (*Facts)(nil).WithoutAddresses() != nil {
		t.Error("nil facts")
	}
}
