package matrix

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ringtrace/ringtrace/scenarios/vm"
	"github.com/ringtrace/ringtrace/tracer/inputerr"
)

// TestForeignGuests: an @arm64 kernel runs the arm64 build (its binary and
// test binaries) under the reduced or the given classes; the host's
// kernels keep the host's build and every class; an arm64 kernel without an
// arm64 binary is bad input.
func TestForeignGuests(t *testing.T) {
	dir := t.TempDir()
	bin := func(sub string) string {
		p := filepath.Join(dir, sub, "ringtrace")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	host, arm := bin("host"), bin("arm64")
	armTests := []TestRun{{Package: "tracer/session", Binary: "/t/arm64/tracer/session/session.test"}}
	o := Options{Kernels: []string{"6.1", "7.2@arm64"}, Binary: host, Out: filepath.Join(dir, "out"),
		Tests:   []TestRun{{Package: "tracer/session", Binary: "/t/amd64/tracer/session/session.test"}},
		Foreign: map[vm.Arch]Build{vm.ArchARM64: {Binary: arm, Tests: armTests, TestDir: "/t/arm64"}}}
	if vm.HostArch() != vm.ArchAMD64 {
		t.Skip("written for an amd64 host")
	}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	if s := guestSpec(o, "6.1"); !slices.Equal(s.Hooks, Hooks()) || s.Tests[0].Binary != o.Tests[0].Binary {
		t.Errorf("6.1 spec %+v: want every class and the host's tests", s)
	}
	s := guestSpec(o, "7.2@arm64")
	if !slices.Equal(s.Hooks, ForeignHooks()) || len(s.Tests) != 1 || s.Tests[0].Binary != armTests[0].Binary {
		t.Errorf("7.2@arm64 spec %+v: want %v and the arm64 tests", s, ForeignHooks())
	}
	if b := o.build("7.2@arm64"); b.Binary != arm || b.TestDir != "/t/arm64" {
		t.Errorf("7.2@arm64 build %+v", b)
	}
	o.ForeignHooks = []string{"auto", "kprobe", "tracepoint"}
	if s := guestSpec(o, "7.2@arm64"); !slices.Equal(s.Hooks, o.ForeignHooks) {
		t.Errorf("7.2@arm64 hooks %v, want %v", s.Hooks, o.ForeignHooks)
	}
	bad := Options{Kernels: []string{"7.2@arm64"}, Binary: host, Out: filepath.Join(dir, "out")}
	if err := bad.Validate(); !inputerr.Is(err) {
		t.Errorf("an arm64 kernel without an arm64 binary: %v, want an input error", err)
	}
}
