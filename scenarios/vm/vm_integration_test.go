package vm

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestRunBootsKernel boots a real kernel under qemu. It downloads the kernel
// (into the user's cache) on first use, so it only runs with
// RINGTRACE_VM_TEST=1; RINGTRACE_VM_KERNEL picks the kernel (default 6.1).
func TestRunBootsKernel(t *testing.T) {
	if os.Getenv("RINGTRACE_VM_TEST") != "1" {
		t.Skip("set RINGTRACE_VM_TEST=1 to boot a kernel under qemu (downloads it on first use)")
	}
	kernel := os.Getenv("RINGTRACE_VM_KERNEL")
	if kernel == "" {
		kernel = "6.1"
	}
	share := t.TempDir()
	script := filepath.Join(share, "check.sh")
	must(t, os.WriteFile(script, []byte("#!/bin/sh\necho \"share ok in $(pwd)\"\n"), 0o755))

	cmd := strings.Join([]string{
		"uname -r",
		"echo to-stderr >&2",
		script,
		"grep -q ' /sys/kernel/tracing tracefs ' /proc/mounts && echo tracefs",
		"grep -q ' /sys/fs/bpf bpf ' /proc/mounts && echo bpffs",
		"grep -q '^veth ' /proc/modules && echo veth",
		"grep -q '^sch_tbf ' /proc/modules && echo sch_tbf",
		"ip link show lo | grep -q UP && echo lo-up",
		"id -u",
		"exit 7",
	}, "; ")
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	res, err := Run(ctx, Options{
		Kernel: kernel, Command: cmd, Shares: []string{share}, Workdir: share,
		Timeout: 5 * time.Minute, Stdout: &out, Log: logWriter{t},
	})
	if err != nil {
		t.Fatalf("Run: %v\nconsole:\n%s", err, consoleOf(res))
	}
	t.Logf("%s, %s: boot %s, command %s, total %s", res.Kernel, res.Accel, res.Boot, res.Command, res.Total)
	want := res.Kernel.Release + "\nto-stderr\nshare ok in " + share + "\ntracefs\nbpffs\nveth\nsch_tbf\nlo-up\n0\n"
	if out.String() != want {
		t.Errorf("output:\n%s\nwant:\n%s", out.String(), want)
	}
	if res.ExitCode != 7 {
		t.Errorf("exit status %d, want 7", res.ExitCode)
	}
	if res.Boot <= 0 || res.Total < res.Boot || res.Kernel.Version == "" {
		t.Errorf("result %+v", res)
	}
}

func consoleOf(r *Result) string {
	if r == nil {
		return ""
	}
	return r.Console
}
