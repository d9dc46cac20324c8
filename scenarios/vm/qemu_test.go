package vm

import (
	"strings"
	"testing"
)

func TestTailBuffer(t *testing.T) {
	tb := newTailBuffer(8, nil)
	_, _ = tb.Write([]byte("0123456789"))
	_, _ = tb.Write([]byte("ab"))
	if tb.String() != "456789ab" {
		t.Errorf("tail = %q", tb.String())
	}
	if got := lastLinesOf("a\r\n\x1b[0mb\x1bc\x1b[?7l\n\nc\n", 2); strings.Join(got, "|") != "b|c" {
		t.Errorf("lastLinesOf = %q", got)
	}
}

func TestMachineArgs(t *testing.T) {
	args := strings.Join(machine{Accel: AccelTCG, CPUs: 2, MemoryMiB: 1024}.args(), " ")
	for _, want := range []string{"-accel tcg", "-cpu max,-cx16", "-smp 2", "-m 1024", "-nodefaults", "-no-reboot", "-serial stdio"} {
		if !strings.Contains(args, want) {
			t.Errorf("qemu args %q lack %q", args, want)
		}
	}
	if strings.Contains(args, "9p") || strings.Contains(args, "virtfs") {
		t.Errorf("qemu args use 9p: %s", args)
	}
}
