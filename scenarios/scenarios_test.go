package scenarios_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringtrace/ringtrace/scenarios"
	"github.com/ringtrace/ringtrace/scenarios/lab"
	"github.com/ringtrace/ringtrace/tracer/plan"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: run `sudo make test`")
	}
}

// ringtraceBinary returns $RINGTRACE_BIN when it is set (a prebuilt binary,
// e.g. in a VM without Go), else builds ringtrace for this test.
func ringtraceBinary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("RINGTRACE_BIN"); bin != "" {
		return bin
	}
	bin := filepath.Join(t.TempDir(), "ringtrace")
	if b, err := exec.Command("go", "build", "-o", bin, "../cmd/ringtrace").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, b)
	}
	return bin
}

// TestAllScenarios runs every reference scenario on this kernel and
// checks each passes and leaves no lab behind; and again, with --detail
// calls, those whose checks hold without frame timelines.
func TestAllScenarios(t *testing.T) {
	needRoot(t)
	out := t.TempDir()
	r, err := scenarios.NewRunner(scenarios.Options{Out: out})
	if err != nil {
		t.Fatal(err)
	}
	runAll(t, r, scenarios.All())
	rc, err := scenarios.NewRunner(scenarios.Options{Out: out, Detail: plan.DetailCalls})
	if err != nil {
		t.Logf("not run with --detail calls on this kernel: %v", err)
		return
	}
	var calls []*scenarios.Scenario
	for _, s := range scenarios.All() {
		if s.Calls {
			calls = append(calls, s)
		}
	}
	t.Run("detail-calls", func(t *testing.T) { runAll(t, rc, calls) })
}

func runAll(t *testing.T, r *scenarios.Runner, list []*scenarios.Scenario) {
	for _, s := range list {
		t.Run(s.Name, func(t *testing.T) {
			res := r.Run(context.Background(), s)
			for _, e := range res.Expectations {
				if !e.Pass {
					t.Errorf("FAIL %s: measured %s, want %s", e.What, e.Measured, e.Want)
				}
			}
			if res.Error != "" {
				t.Errorf("error: %s", res.Error)
			}
			if !res.Pass {
				t.Errorf("%s failed", s.Name)
			}
			if len(res.Files) == 0 {
				t.Error("no files written with --out")
			}
			checkViews(t, res.Files)
			if ns := namespacesOf(os.Getpid()); len(ns) != 0 {
				t.Errorf("lab left behind: %v", ns)
			}
		})
	}
}

// TestInterruptCleansUp sends SIGINT to `ringtrace run` in the middle of a
// scenario: it must exit, and no namespace may remain.
func TestInterruptCleansUp(t *testing.T) {
	needRoot(t)
	bin := ringtraceBinary(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		cmd := exec.Command(bin, "run", "call-return", "--rate", "20mbit")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1500 * time.Millisecond) // lab up, tracer attached, sending
		cmd.Process.Signal(sig)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("%v: ringtrace run did not exit", sig)
		}
		if ns := namespacesOf(cmd.Process.Pid); len(ns) != 0 {
			t.Errorf("%v left %v", sig, ns)
		}
	}
}

// TestStaleLabCleaned: a run killed with SIGKILL leaves its lab; the next
// run removes it.
func TestStaleLabCleaned(t *testing.T) {
	needRoot(t)
	bin := ringtraceBinary(t)
	cmd := exec.Command(bin, "run", "call-return", "--rate", "20mbit")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	cmd.Process.Kill()
	cmd.Wait()
	if ns := namespacesOf(cmd.Process.Pid); len(ns) == 0 {
		t.Skip("the killed run had not created its lab yet")
	}
	removed, err := lab.CleanStale()
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) == 0 || len(namespacesOf(cmd.Process.Pid)) != 0 {
		t.Errorf("stale lab of pid %d not removed: %v", cmd.Process.Pid, namespacesOf(cmd.Process.Pid))
	}
}

// namespacesOf lists the lab namespaces a process created.
func namespacesOf(pid int) []string {
	ents, _ := os.ReadDir("/run/netns")
	var out []string
	prefix := lab.Prefix + strconv.Itoa(pid) + "-"
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	return out
}

// checkViews: --out holds the recording and its three views, each readable.
func checkViews(t *testing.T, files []string) {
	t.Helper()
	seen := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil || len(b) == 0 {
			t.Errorf("output %s: %v (%d bytes)", f, err, len(b))
			continue
		}
		if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("output %s: mode %v (%v), want -rw------- like perf.data", f, fi.Mode(), err)
		}
		for _, ext := range []string{".rtrec", ".txt", ".perfetto.json", ".html"} {
			if strings.HasSuffix(f, ext) {
				seen[ext] = true
			}
		}
		switch {
		case strings.HasSuffix(f, ".json") && !json.Valid(b):
			t.Errorf("%s is not valid JSON", f)
		case strings.HasSuffix(f, ".html") && !bytes.Contains(b, []byte("</html>")):
			t.Errorf("%s is not a whole HTML page", f)
		}
	}
	if len(seen) != 4 {
		t.Errorf("views written: %v, want .rtrec .txt .perfetto.json .html", seen)
	}
}
