package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildBinary returns the ringtrace binary under test: $RINGTRACE_BIN when it
// is set (a prebuilt static binary, e.g. in a VM without Go; it must be
// executable by nobody), else one compiled for this test.
func buildBinary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("RINGTRACE_BIN"); bin != "" {
		return bin
	}
	// Not t.TempDir(): its parent is 0700, and one test runs the binary
	// as nobody.
	dir, err := os.MkdirTemp("", "ringtrace-test-bin")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "ringtrace")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// readyTimeout is how long a test waits for `ringtrace trace` to create its
// --ready-file: 10 s, or $RINGTRACE_TEST_READY_TIMEOUT (a duration) where
// attaching is slow: make vmtest sets it, a TCG guest takes up to ~20 s.
func readyTimeout(t *testing.T) time.Duration {
	t.Helper()
	s := os.Getenv("RINGTRACE_TEST_READY_TIMEOUT")
	if s == "" {
		return 10 * time.Second
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		t.Fatalf("RINGTRACE_TEST_READY_TIMEOUT=%q: want a duration such as 60s", s)
	}
	return d
}

// waitReady waits readyTimeout for `ringtrace trace` to create its
// --ready-file, and fails the test with the tracer's stderr if it does not.
func waitReady(t *testing.T, ready string, stderr fmt.Stringer) {
	t.Helper()
	wait := readyTimeout(t)
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(ready); err == nil {
			return
		}
		if time.Since(start) > wait {
			t.Fatalf("no ready file after %v: %s", wait, stderr.String())
		}
	}
}

// startTrace starts `ringtrace trace` with args and a --ready-file, and
// returns once it is attached; its stderr is collected. It is killed at
// the test's end if the test has not stopped it.
func startTrace(t *testing.T, bin string, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	return startAttached(t, bin, "trace", args...)
}

// startAttached is startTrace for any subcommand that attaches (trace, top).
func startAttached(t *testing.T, bin, sub string, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready")
	cmd := exec.Command(bin, append([]string{sub, "--ready-file", ready}, args...)...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	waitReady(t, ready, &errb)
	return cmd, &errb
}

// traceWhileSending runs `ringtrace trace` with args until settle after the
// same binary has sent on lo with `ringtrace send` and sendArgs, and
// returns what the trace printed. The sender runs under a name of its own,
// which the trace follows (--comm): other tests' ringtrace senders on the
// machine are not traced.
func traceWhileSending(t *testing.T, bin string, args, sendArgs []string, settle time.Duration) (stdout, stderr string) {
	t.Helper()
	comm := fmt.Sprintf("rts%d", os.Getpid())
	sender := filepath.Join(t.TempDir(), comm)
	if err := os.Symlink(bin, sender); err != nil {
		t.Fatal(err)
	}
	ready := filepath.Join(t.TempDir(), "ready")
	cmd := exec.Command(bin, append([]string{"trace", "--ready-file", ready, "--comm", comm}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	waitReady(t, ready, &errb) // (not startTrace: stdout is kept too)
	if r := runBin(t, sender, nil, append([]string{"send", "-i", "lo", "-q"}, sendArgs...)...); r.code != 0 {
		t.Fatalf("send: %s", r.stderr)
	}
	time.Sleep(settle)
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("trace %v: %v: %s", args, err, errb.String())
	}
	return out.String(), errb.String()
}

type result struct {
	code           int
	stdout, stderr string
}

func runBin(t *testing.T, bin string, cred *syscall.Credential, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return result{code, out.String(), errb.String()}
}

// checkOneLineError asserts the bad-input contract: exit status 2, exactly
// one line on stderr starting with "ringtrace:", no panic or stack trace.
func checkOneLineError(t *testing.T, r result, want string) {
	t.Helper()
	if r.code != 2 {
		t.Errorf("exit status %d, want 2 (stderr %q)", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "ringtrace: ") {
		t.Errorf("stderr is not one 'ringtrace: ...' line: %q", r.stderr)
	}
	for _, bad := range []string{"panic", "goroutine ", ".go:"} {
		if strings.Contains(r.stderr+r.stdout, bad) {
			t.Errorf("output contains %q: %q", bad, r.stderr)
		}
	}
	if want != "" && !strings.Contains(r.stderr, want) {
		t.Errorf("stderr %q does not mention %q", r.stderr, want)
	}
}

func TestSendBadInput(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the interface checks open packet sockets")
	}
	bin := buildBinary(t)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no-ifname", []string{"send"}, "ifname"},
		{"unknown-interface", []string{"send", "-i", "nosuch0"}, "no such interface"},
		{"unknown-flag", []string{"send", "-i", "lo", "--bogus"}, "bogus"},
		{"bad-version", []string{"send", "-i", "lo", "--tpacket-version", "4"}, "TPACKET version"},
		{"bad-mode", []string{"send", "-i", "lo", "--mode", "burst"}, "--mode"},
		{"bad-block", []string{"send", "-i", "lo", "--block-size", "1000"}, "page size"},
		{"frames-not-fitting", []string{"send", "-i", "lo", "--frames", "3"}, "multiple of 2"},
		{"size-over-frame", []string{"send", "-i", "lo", "--size", "4000"}, "does not fit"},
		{"negative-count", []string{"send", "-i", "lo", "--count", "-5"}, "negative"},
		{"negative-frames", []string{"send", "-i", "lo", "--frames", "-2"}, "negative"},
		{"bad-mac", []string{"send", "-i", "lo", "--dst-mac", "zz"}, "MAC"},
		{"bad-ethertype", []string{"send", "-i", "lo", "--ethertype", "0x123456"}, "16-bit"},
		{"bad-cpu", []string{"send", "-i", "lo", "--cpu", "4096"}, "--cpu"},
		{"zero-threads", []string{"send", "-i", "lo", "--threads", "0"}, "threads"},
		{"force-without-sndbuf", []string{"send", "-i", "lo", "--force-sndbuf"}, "--sndbuf"},
		{"loop-per-packet", []string{"send", "-i", "lo", "--mode", "per-packet", "--loop"}, "--loop"},
		{"linear-per-packet", []string{"send", "-i", "lo", "--mode", "per-packet", "--linear"}, "--linear"},
		{"unknown-netns", []string{"send", "-i", "lo", "--netns", "ringtrace-nonexistent"}, "namespace"},
		{"unknown-command", []string{"frobnicate"}, "frobnicate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkOneLineError(t, runBin(t, bin, nil, tc.args...), tc.want)
		})
	}
	t.Run("not-root", func(t *testing.T) {
		r := runBin(t, bin, &syscall.Credential{Uid: 65534, Gid: 65534}, "send", "-i", "lo", "--count", "1")
		checkOneLineError(t, r, "root")
	})
}

func TestSendJSONSummary(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	bin := buildBinary(t)
	r := runBin(t, bin, nil, "send", "-i", "lo", "--count", "512", "--size", "100", "--json", "-q")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, key := range []string{`"frames":512`, `"bytes":51200`, `"pps":`, `"ENOBUFS":0`, `"EAGAIN":0`} {
		if !strings.Contains(r.stdout, key) {
			t.Errorf("JSON summary lacks %s: %s", key, r.stdout)
		}
	}
	if n := strings.Count(strings.TrimSpace(r.stdout), "\n"); n != 0 {
		t.Errorf("stdout should be one JSON line, got %d lines", n+1)
	}
}

func TestTraceBadInput(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	bin := buildBinary(t)
	notDir := filepath.Join(t.TempDir(), "file")
	os.WriteFile(notDir, []byte("x"), 0o644)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no-btf", []string{"trace", "--btf", "/nonexistent/vmlinux"}, "BTF"},
		{"garbage-btf", []string{"trace", "--btf", notDir}, "BTF"},
		{"tracefs-missing", []string{"trace", "--tracefs", notDir}, "tracefs"},
		{"bad-hooks", []string{"trace", "--hooks", "ebpf"}, "--hooks"},
		{"forced-fentry-refused", []string{"probe", "--hooks", "fentry"}, "fentry"},
		{"forced-kprobe-missing", []string{"probe", "--hooks", "kprobe"}, "kprobe"},
		{"bad-events", []string{"trace", "--events", "frames,bogus"}, "--events"},
		{"bad-ringbuf", []string{"trace", "--ringbuf-size", "3"}, "--ringbuf-size"},
		{"long-comm", []string{"trace", "--comm", "a-very-long-process-name"}, "15"},
		{"record-unwritable", []string{"trace", "--duration", "1ms", "--record", "/nonexistent/dir/x.rtrec"}, "--record"},
		{"ready-file-unwritable", []string{"trace", "--duration", "1ms", "--ready-file", "/nonexistent/dir/ready"}, "--ready-file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkOneLineError(t, runBin(t, bin, nil, tc.args...), tc.want)
		})
	}
	t.Run("not-root", func(t *testing.T) {
		checkOneLineError(t, runBin(t, bin, &syscall.Credential{Uid: 65534, Gid: 65534}, "trace"), "root")
	})
}

// TestTraceReadyFileAndSummary runs `ringtrace trace --json` as a user
// would: waits for --ready-file, sends 4 frames on lo with `ringtrace send`,
// and checks the frame_state contract and the final summary line.
func TestTraceReadyFileAndSummary(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	bin := buildBinary(t)
	out, _ := traceWhileSending(t, bin, []string{"--json", "--duration", "10s"}, []string{"--frames", "4", "--count", "4", "--size", "64"}, 200*time.Millisecond)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var states []string
	for _, l := range lines[:len(lines)-1] {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("bad JSON line %q: %v", l, err)
		}
		if m["event"] == "frame_state" {
			for _, k := range []string{"frame", "state", "ts_ns", "pid", "sock", "sock_ino"} {
				if _, ok := m[k]; !ok {
					t.Errorf("frame_state lacks %q: %s", k, l)
				}
			}
			if _, ok := m["socket"]; ok {
				t.Errorf("frame_state names its socket's kernel address: %s", l)
			}
			states = append(states, fmt.Sprintf("%v:%v", m["frame"], m["state"]))
		}
	}
	if len(states) != 12 {
		t.Errorf("%d frame_state events, want 4 frames x 3 states: %v", len(states), states)
	}
	var sum map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil || sum["event"] != "summary" {
		t.Fatalf("last line is not the summary: %q", lines[len(lines)-1])
	}
	if sum["lost"] != 0.0 {
		t.Errorf("summary lost = %v", sum["lost"])
	}
}
