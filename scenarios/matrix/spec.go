package matrix

import (
	"path"
	"path/filepath"
	"strconv"

	"github.com/ringtrace/ringtrace/scenarios/vm"
)

// Spec is what one target (a guest, or the host) runs.
type Spec struct {
	// Ringtrace is the ringtrace executable in the target.
	Ringtrace string
	// Hooks are the --hooks values, each run in turn; the first is the
	// reference the others' plans are compared with. A forced class the
	// kernel lacks, or one that resolves to the reference's class, is
	// probed but its scenarios are not run.
	Hooks []string
	// Runs are the `ringtrace run` invocations made for every class.
	Runs []ScenarioRun
	// Tests are the test binaries run once, under the kernel's default class.
	Tests []TestRun
	// TestEnv are NAME=VALUE settings exported for the tests.
	TestEnv []string
}

// ScenarioRun is one `ringtrace run` invocation.
type ScenarioRun struct {
	Scenarios []string // names; empty means --all
	Args      []string // further flags, e.g. --rate-scale 0.02
}

// TestRun is one test binary.
type TestRun struct {
	Package string // module-relative package directory, e.g. "tracer/session"
	Binary  string // the binary's path in the target, in a copy of the package directory
	Skip    string // -test.skip pattern ("" runs everything)
	Why     string // why Skip
}

// Part keys name the pieces of a run in frames and in Script's done set.
func probeKey(hooks string) string      { return "probe/" + hooks }
func verifyKey(hooks string) string     { return "verify/" + hooks }
func runKey(hooks string, i int) string { return "run/" + hooks + "/" + strconv.Itoa(i) }
func testKey(pkg string) string         { return "test/" + pkg }

// Hooks are the --hooks values tried on every kernel: the kernel's own
// choice (class A where fentry works), then the two forced ones.
func Hooks() []string { return []string{"auto", "kprobe", "tracepoint"} }

// NextHooks are the --hooks values tried on the next kernel (vm.Next, the
// newest series Debian offers, today experimental's release candidate): its
// own choice only, and no guest tests, to keep CI time down. Its failures
// fail the matrix like any other kernel's.
func NextHooks() []string { return []string{"auto"} }

// guestSpec is what a guest booted from selector sel runs.
func guestSpec(o Options, sel string) Spec {
	b := o.build(sel)
	s := Spec{Ringtrace: path.Join("/usr/local/bin", filepath.Base(b.Binary)), Hooks: Hooks(), Runs: GuestRuns(),
		Tests: b.Tests, TestEnv: GuestTestEnv()}
	if sel == vm.Next {
		s.Hooks, s.Tests = NextHooks(), nil
	}
	if p, err := vm.ParseSelector(sel); err == nil && p.Arch != vm.HostArch() {
		s.Hooks = o.ForeignHooks
		if len(s.Hooks) == 0 {
			s.Hooks = ForeignHooks()
		}
	}
	return s
}

// ForeignHooks are the --hooks values tried by default on a guest of
// another architecture (arm64 on this amd64 host): emulated instruction by
// instruction, it runs about 1.6 times slower, so the kernel's own choice
// and the tracepoint-only class (this project's host's) are run;
// Options.ForeignHooks (the per-kernel CI jobs: every class) overrides it.
func ForeignHooks() []string { return []string{"auto", "tracepoint"} }

// GuestRuns are the scenario runs in a TCG guest: the emulated links are
// slowed so that they stay slower than the emulated CPU. call-return needs
// more: its claim is that a blocking call lasts the wire time of the frames
// it sent, so the link must be slower than the guest can fill it, kprobes
// included (each is an emulated int3 trap: at 5 Mbit/s 7.2's class B sender
// fell behind the wire by 45%). 1024 x 1500 B at 2.5 Mbit/s is 4.9 s.
func GuestRuns() []ScenarioRun {
	return []ScenarioRun{
		{Scenarios: []string{"status", "sndbuf", "sndbuf-blocking", "bypass", "rx", "self-loop"}, Args: []string{"--rate-scale", "0.02"}},
		{Scenarios: []string{"call-return"}, Args: []string{"--frames", "1024", "--rate-scale", "0.0025"}},
	}
}

// GuestTestEnv lets the tests wait for a TCG guest: `ringtrace trace` takes
// up to ~20 s there to attach (about 0.4 s on the host).
func GuestTestEnv() []string { return []string{"RINGTRACE_TEST_READY_TIMEOUT=90s"} }

// HostRuns are the scenario runs on the host: every scenario at its own rate.
func HostRuns() []ScenarioRun { return []ScenarioRun{{}} }
