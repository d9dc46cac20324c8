package vm

import (
	"os"
	"strings"
	"testing"

	"github.com/ringtrace/ringtrace/tracer/inputerr"
)

// testdata/pkgnames.txt is `apt-cache pkgnames linux-` on the private lists
// (cloud kernels only), plus a split kernel without its modules package and
// a few packages of other flavours.
func testCandidates(t *testing.T) []Candidate {
	t.Helper()
	b, err := os.ReadFile("testdata/pkgnames.txt")
	if err != nil {
		t.Fatal(err)
	}
	return ParseCandidates(strings.Fields(string(b)))
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
		rels = append(rels, strings.TrimSuffix(c.Release, flavour))
	}
	// Newest first; the bullseye backports (6.1.0-0.deb11.N) and 6.12 are
	// not 6.1 builds; names without an -unsigned image are not candidates.
	if got, want := strings.Join(rels, " "), "6.1.0-56 6.1.0-55 6.1.0-54 6.1.0-53 6.1.0-50 6.1.0-47"; got != want {
		t.Errorf("6.1 candidates: %s, want %s", got, want)
	}
	sel, _ = ParseSelector("7.3")
	if got := sel.Select(cs); len(got) != 0 {
		t.Errorf("7.3 (no modules package) resolved to %v", got)
	}
	for _, c := range cs {
		if strings.Contains(c.Release, "deb11") || !strings.HasSuffix(c.Release, flavour) {
			t.Errorf("unexpected candidate %s", c.Release)
		}
	}
}

func TestParseSelectorRejects(t *testing.T) {
	for _, bad := range []string{"", "banana", "6", "6.1.x", "6.1.0-56-amd64", "../6.1", "6.1 ; rm", "v6.1"} {
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
	if _, ok := candidateFromRelease(".fetch-123"); ok {
		t.Error("temp dir parsed as a release")
	}
}
