package vm

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ringtrace/ringtrace/tracer/inputerr"
)

func TestArmSelectors(t *testing.T) {
	sel, err := ParseSelector("7.2@arm64")
	if err != nil || sel.Arch != ArchARM64 || sel.Label() != "7.2@arm64" {
		t.Fatalf("ParseSelector(7.2@arm64) = %+v, %v", sel, err)
	}
	if sel, err := ParseSelector("6.1.0-57-cloud-arm64@arm64"); err != nil || sel.release != "6.1.0-57-cloud-arm64" {
		t.Errorf("exact arm64 release: %+v, %v", sel, err)
	}
	plain, _ := ParseSelector("7.2")
	if plain.Arch != HostArch() {
		t.Errorf("7.2 is for %s, want the host's %s", plain.Arch, HostArch())
	}
	moved, err := plain.WithArch(ArchARM64)
	if err != nil || moved.Arch != ArchARM64 || moved.Label() != "7.2@arm64" {
		t.Errorf("WithArch(arm64) = %+v, %v", moved, err)
	}
	if _, err := sel.WithArch(ArchAMD64); !inputerr.Is(err) {
		t.Errorf("7.2@arm64 moved to amd64: %v, want an input error", err)
	}
	for _, bad := range []string{"7.2@sparc", "7.2@", "@arm64"} {
		if _, err := ParseSelector(bad); !inputerr.Is(err) {
			t.Errorf("ParseSelector(%q) = %v, want an input error", bad, err)
		}
	}
	if _, err := ParseArch("aarch64"); err != nil {
		t.Errorf("ParseArch(aarch64): %v", err)
	}
	if _, err := ParseArch("mips"); !inputerr.Is(err) {
		t.Errorf("ParseArch(mips) = %v, want an input error", err)
	}
}

// TestArmCandidates: the arm64 archive's names (from its pkgnames, December
// 2026): unsigned images, the split 7.2 packages, and neither the signed
// images nor 7.2's image metapackage nor other flavours.
func TestArmCandidates(t *testing.T) {
	names := []string{
		"linux-image-6.1.0-57-cloud-arm64", "linux-image-6.1.0-57-cloud-arm64-unsigned", "linux-image-6.1.0-57-cloud-arm64-dbg",
		"linux-image-6.1.0-57-arm64-unsigned", "linux-image-6.12.117+deb13-cloud-arm64-unsigned",
		"linux-image-6.12.117+deb13-cloud-arm64", "linux-image-6.12.117+deb13-rt-arm64-unsigned",
		"linux-image-7.2.13+deb14-cloud-arm64", "linux-binary-7.2.13+deb14-cloud-arm64",
		"linux-modules-7.2.13+deb14-cloud-arm64", "linux-base-7.2.13+deb14-cloud-arm64",
		"linux-binary-unsigned-7.2.13+deb14-cloud-arm64", "linux-image-6.1.0-57-cloud-amd64-unsigned",
	}
	cs := ParseCandidates(names, ArchARM64)
	var got []string
	for _, c := range cs {
		got = append(got, c.Release+" "+strings.Join(c.Packages, ","))
	}
	want := []string{
		"7.2.13+deb14-cloud-arm64 linux-binary-7.2.13+deb14-cloud-arm64,linux-modules-7.2.13+deb14-cloud-arm64,linux-base-7.2.13+deb14-cloud-arm64",
		"6.12.117+deb13-cloud-arm64 linux-image-6.12.117+deb13-cloud-arm64-unsigned",
		"6.1.0-57-cloud-arm64 linux-image-6.1.0-57-cloud-arm64-unsigned",
	}
	if !slices.Equal(got, want) {
		t.Errorf("candidates:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	sel, _ := ParseSelector("6.1@arm64")
	if s := sel.Select(cs); len(s) != 1 || s[0].Release != "6.1.0-57-cloud-arm64" {
		t.Errorf("6.1@arm64 selects %v", s)
	}
	amd, _ := ParseSelector("6.1")
	if s := amd.Select(cs); len(s) != 0 && HostArch() == ArchAMD64 {
		t.Errorf("6.1 (amd64) selects arm64 builds: %v", s)
	}
	if c, ok := candidateFromRelease("7.2.13+deb14-cloud-arm64"); !ok || c.Arch != ArchARM64 {
		t.Errorf("candidateFromRelease(arm64) = %+v, %v", c, ok)
	}
	if got := MatrixKernels(ArchARM64); !slices.Equal(got, []string{"6.1@arm64", "6.12.117@arm64", "7.2@arm64"}) {
		t.Errorf("arm64 matrix %v", got)
	}
}

// TestGuestBinaryArch: a binary for another architecture than the guest's
// is refused with a hint, before anything boots.
func TestGuestBinaryArch(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	other := ArchARM64
	if HostArch() == ArchARM64 {
		other = ArchAMD64
	}
	if err := checkMachine(self, HostArch()); err != nil {
		t.Errorf("the test binary refused for its own architecture: %v", err)
	}
	err = checkMachine(self, other)
	if err == nil || !strings.Contains(err.Error(), "GOARCH="+string(other)) {
		t.Errorf("checkMachine(%s) = %v, want a refusal naming GOARCH=%s", other, err, other)
	}
	if err := checkMachine(filepath.Join(t.TempDir(), "none"), other); err == nil {
		t.Error("a missing file accepted")
	}
}

func TestArmProfile(t *testing.T) {
	p := ArchARM64.profile()
	if p.qemu != "qemu-system-aarch64" || p.machine != "virt" || !strings.Contains(p.cpuTCG, "pauth-impdef=on") || p.channelUART {
		t.Errorf("arm64 profile %+v", p)
	}
	m := machine{Arch: ArchARM64, Accel: AccelTCG, CPUs: 1, MemoryMiB: 1024}
	if a := strings.Join(m.args(), " "); !strings.Contains(a, "-machine virt") || !strings.Contains(a, "-cpu max,pauth-impdef=on") {
		t.Errorf("arm64 qemu args: %s", a)
	}
	if c := kernelCmdline(ArchARM64, false); !strings.Contains(c, "console=ttyAMA0") {
		t.Errorf("arm64 command line %q", c)
	}
	if c := kernelCmdline(ArchAMD64, false); !strings.Contains(c, "console=ttyS0") {
		t.Errorf("amd64 command line %q", c)
	}
}
