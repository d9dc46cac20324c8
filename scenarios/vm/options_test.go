package vm

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ringtrace/ringtrace/tracer/inputerr"
)

func TestOptionsValidate(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	must(t, os.WriteFile(file, nil, 0o755))
	bad := []Options{
		{Kernel: "", Command: "true"},
		{Kernel: "6.1", Command: "  "},
		{Kernel: "6.1", Command: "true", Shares: []string{file}},
		{Kernel: "6.1", Command: "true", Shares: []string{filepath.Join(dir, "missing")}},
		{Kernel: "6.1", Command: "true", Shares: []string{"/proc/sys"}},
		{Kernel: "6.1", Command: "true", Binaries: []string{filepath.Join(dir, "missing")}},
		{Kernel: "6.1", Command: "true", Binaries: []string{file}}, // not ELF
		{Kernel: "6.1", Command: "true", Accel: "xen"},
		{Kernel: "6.1", Command: "true", Timeout: -time.Second},
		{Kernel: "6.1", Command: "true", Workdir: "relative"},
		{Kernel: "6.1", Command: "true", MemoryMiB: 40},
	}
	for i, o := range bad {
		if _, err := o.validate(); !inputerr.Is(err) {
			t.Errorf("case %d (%+v): %v, want an input error", i, o, err)
		}
	}
	o := Options{Kernel: "6.1", Command: "true", Shares: []string{dir}}
	if _, err := o.validate(); err != nil {
		t.Fatal(err)
	}
	if o.Timeout != DefaultTimeout || o.CPUs != 1 || o.Accel != AccelAuto || o.Workdir != "/" {
		t.Errorf("defaults: %+v", o)
	}
}
