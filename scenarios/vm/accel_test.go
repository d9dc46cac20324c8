package vm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringtrace/ringtrace/tracer/inputerr"
)

func TestAccel(t *testing.T) {
	for in, want := range map[string]Accel{"": AccelAuto, "auto": AccelAuto, "TCG": AccelTCG, " kvm ": AccelKVM} {
		if got, err := ParseAccel(in); err != nil || got != want {
			t.Errorf("ParseAccel(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseAccel("hvf"); !inputerr.Is(err) {
		t.Errorf("ParseAccel(hvf) = %v", err)
	}
	if cpuFlags(AccelTCG) != "max,-cx16" || cpuFlags(AccelKVM) != "host" {
		t.Error("cpu flags")
	}
	if a, why := chooseAccel(context.Background(), AccelTCG, "/nonexistent/qemu", t.TempDir()); a != AccelTCG || why != "requested" {
		t.Errorf("forced tcg: %v %s", a, why)
	}
	b := probeBootSector()
	if len(b) != 512 || b[510] != 0x55 || b[511] != 0xaa || b[1] != probeByte || probeExitCode != 67 {
		t.Errorf("boot sector % x…", b[:8])
	}
	out := []byte("qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69\nqemu-system-x86_64: kvm.c:3183: Assertion failed.\n")
	if got := probeMessage(out, errors.New("x")); got != "error: failed to set MSR 0x10a to 0x69" {
		t.Errorf("probeMessage = %q", got)
	}
}

func TestCachedKVMVerdict(t *testing.T) {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		t.Skip("no usable /dev/kvm: auto picks TCG without probing")
	}
	f.Close()
	dir := t.TempDir()
	qemu := filepath.Join(dir, "qemu")
	must(t, os.WriteFile(qemu, []byte("#!/bin/sh\necho 'QEMU emulator version 0.fake'\n"), 0o755))
	forgetKVM(context.Background(), qemu, dir, "test verdict")
	if a, why := chooseAccel(context.Background(), AccelAuto, qemu, dir); a != AccelTCG || !strings.Contains(why, "test verdict") {
		t.Errorf("auto with a cached failure: %v (%s)", a, why)
	}
}
