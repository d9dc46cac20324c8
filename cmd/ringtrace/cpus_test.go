package main

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestTraceCPUs: with --cpus every thread of the tracer, the Go runtime's
// included, is allowed on those CPUs only, once it is attached.
func TestTraceCPUs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: run `sudo make test`")
	}
	if runtime.NumCPU() < 2 {
		t.Skip("needs 2 CPUs")
	}
	bin := buildBinary(t)
	cmd, errb := startTrace(t, bin, "--detail", "calls", "--summary", "--cpus", "1")
	dir := filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid), "task")
	tasks, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		b, err := os.ReadFile(filepath.Join(dir, task.Name(), "status"))
		if err != nil {
			continue // exited meanwhile
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "Cpus_allowed_list:"); ok && strings.TrimSpace(v) != "1" {
				t.Errorf("thread %s of %d may run on CPUs %s, want 1", task.Name(), len(tasks), strings.TrimSpace(v))
			}
		}
	}
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("trace: %v: %s", err, errb.String())
	}
}
