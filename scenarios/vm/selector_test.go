package vm

import (
	"os"
	"strings"
	"testing"

	"github.com/ringtrace/ringtrace/tracer/inputerr"
)

// testdata/pkgnames.txt is `apt-cache pkgnames linux-` on the private lists
// (cloud kernels only; experimental's 7.3 release candidate at the end), plus
// a split kernel without its modules package and a few packages of other
// flavours.
func testCandidates(t *testing.T) []Candidate {
	t.Helper()
	b, err := os.ReadFile("testdata/pkgnames.txt")
	if err != nil {
		t.Fatal(err)
	}
	return ParseCandidates(strings.Fields(string(b)), ArchAMD64)
}

func TestResolveMatrix(t *testing.T) {
	cs := testCandidates(t)
	cases := map[string]struct {
		release  string
		packages []string
	}{
		"5.10":     {"5.10.0-46-cloud-amd64", []string{"linux-image-5.10.0-46-cloud-amd64-unsigned"}},
		"6.1":      {"6.1.0-56-cloud-amd64", []string{"linux-image-6.1.0-56-cloud-amd64-unsigned"}},
		"6.12.95":  {"6.12.95+deb12-cloud-amd64", []string{"linux-image-6.12.95+deb12-cloud-amd64-unsigned"}},
		"6.12.117": {"6.12.117+deb13-cloud-amd64", []string{"linux-image-6.12.117+deb13-cloud-amd64-unsigned"}},
		"6.12.115": {"6.12.115+deb13.1-cloud-amd64", []string{"linux-image-6.12.115+deb13.1-cloud-amd64-unsigned"}},
		"6.12":     {"6.12.117+deb13-cloud-amd64", nil},
		"7.2": {"7.2.13+deb14-cloud-amd64", []string{
			"linux-binary-7.2.13+deb14-cloud-amd64", "linux-modules-7.2.13+deb14-cloud-amd64", "linux-base-7.2.13+deb14-cloud-amd64"}},
		// experimental's release candidate, named by its series alone
		"7.3": {"7.3-cloud-amd64", []string{
			"linux-binary-7.3-cloud-amd64", "linux-modules-7.3-cloud-amd64", "linux-base-7.3-cloud-amd64"}},
		"next":                  {"7.3-cloud-amd64", nil},
		"7.3-cloud-amd64":       {"7.3-cloud-amd64", nil},
		"6.1.0-50":              {"6.1.0-50-cloud-amd64", nil},
		"6.12.117+deb12":        {"6.12.117+deb12-cloud-amd64", nil},
		"5.10.0-32-cloud-amd64": {"5.10.0-32-cloud-amd64", nil},
	}
	for in, want := range cases {
		sel, err := ParseSelector(in)
		if err != nil {
			t.Errorf("ParseSelector(%q): %v", in, err)
			continue
		}
		got := sel.Select(cs)
		if len(got) == 0 {
			t.Errorf("%s: no candidate", in)
			continue
		}
		if got[0].Release != want.release {
			t.Errorf("%s resolves to %s, want %s", in, got[0].Release, want.release)
		}
		if want.packages != nil && strings.Join(got[0].Packages, " ") != strings.Join(want.packages, " ") {
			t.Errorf("%s packages %v, want %v", in, got[0].Packages, want.packages)
		}
	}
}

func TestResolveOrderAndExclusions(t *testing.T) {
	cs := testCandidates(t)
	sel, _ := ParseSelector("6.1")
	var rels []string
	for _, c := range sel.Select(cs) {
		rels = append(rels, strings.TrimSuffix(c.Release, ArchAMD64.flavour()))
	}
	// Newest first; the bullseye backports (6.1.0-0.deb11.N) and 6.12 are
	// not 6.1 builds; names without an -unsigned image are not candidates.
	if got, want := strings.Join(rels, " "), "6.1.0-56 6.1.0-55 6.1.0-54 6.1.0-53 6.1.0-50 6.1.0-47"; got != want {
		t.Errorf("6.1 candidates: %s, want %s", got, want)
	}
	sel, _ = ParseSelector("7.3.1")
	if got := sel.Select(cs); len(got) != 0 {
		t.Errorf("7.3.1 (no modules package) resolved to %v", got)
	}
	for _, c := range cs {
		if strings.Contains(c.Release, "deb11") || !strings.HasSuffix(c.Release, ArchAMD64.flavour()) {
			t.Errorf("unexpected candidate %s", c.Release)
		}
	}
}

// TestReleaseCandidateOrder: a release candidate (7.3) is newer than every
// build of the series before and older than every stable build of its own;
// Next stays within the newest series, and the rc's unsigned twin, meta
// packages and image stub are not candidates.
func TestReleaseCandidateOrder(t *testing.T) {
	split := func(rel string) []string {
		return []string{"linux-binary-" + rel + ArchAMD64.flavour(), "linux-modules-" + rel + ArchAMD64.flavour(), "linux-base-" + rel + ArchAMD64.flavour()}
	}
	var names []string
	for _, rel := range []string{"7.2.13+deb14", "7.3", "7.3.1+deb14", "7.4"} {
		names = append(names, split(rel)...)
	}
	names = append(names, "linux-binary-unsigned-7.4"+ArchAMD64.flavour(), "linux-image-7.4"+ArchAMD64.flavour(), "linux-image"+ArchAMD64.flavour(),
		"linux-binary-7.5"+ArchAMD64.flavour()) // no modules package: not a candidate
	cs := ParseCandidates(names, ArchAMD64)
	var rels []string
	for _, c := range cs {
		rels = append(rels, strings.TrimSuffix(c.Release, ArchAMD64.flavour()))
	}
	if got, want := strings.Join(rels, " "), "7.4 7.3.1+deb14 7.3 7.2.13+deb14"; got != want {
		t.Errorf("order %s, want %s", got, want)
	}
	for sel, want := range map[string]string{"7.3": "7.3.1+deb14 7.3", "next": "7.4"} {
		s, err := ParseSelector(sel)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, c := range s.Select(cs) {
			got = append(got, strings.TrimSuffix(c.Release, ArchAMD64.flavour()))
		}
		if strings.Join(got, " ") != want {
			t.Errorf("%s selects %v, want %s", sel, got, want)
		}
	}
	// Next falls back within its series: 7.3.1 before the 7.3 rc, never 7.2.
	s, _ := ParseSelector(Next)
	if got := s.Select(cs[1:]); len(got) != 2 || got[1].Release != "7.3"+ArchAMD64.flavour() {
		t.Errorf("next without 7.4 selects %v", got)
	}
	if got := s.Select(nil); len(got) != 0 {
		t.Errorf("next among nothing selects %v", got)
	}
	if !cs[0].rc || cs[1].rc {
		t.Errorf("rc flags: %+v", cs[:2])
	}
}

func TestParseSelectorRejects(t *testing.T) {
	for _, bad := range []string{"", "banana", "6", "6.1.x", "6.1.0-56-amd64", "../6.1", "6.1 ; rm", "v6.1", "Next", "next-1", "7.3-amd64", "7.3~rc7"} {
		_, err := ParseSelector(bad)
		if err == nil || !inputerr.Is(err) {
			t.Errorf("ParseSelector(%q) = %v, want an input error", bad, err)
		}
	}
}

func TestCandidateFromRelease(t *testing.T) {
	c, ok := candidateFromRelease("6.12.117+deb13-cloud-amd64")
	if !ok || c.Release != "6.12.117+deb13-cloud-amd64" {
		t.Errorf("candidateFromRelease: %v %v", c, ok)
	}
	if c, ok := candidateFromRelease("7.3-cloud-amd64"); !ok || !c.rc || c.Release != "7.3-cloud-amd64" {
		t.Errorf("candidateFromRelease(rc): %v %v", c, ok)
	}
	for _, junk := range []string{".fetch-123", ".fetch-123.old", "7.3"} {
		if _, ok := candidateFromRelease(junk); ok {
			t.Errorf("%s parsed as a release", junk)
		}
	}
	if _, ok := candidateFromRelease(".fetch-123"); ok {
		t.Error("temp dir parsed as a release")
	}
}
