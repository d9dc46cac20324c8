package vm

import (
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/ringtrace/ringtrace/tracer/inputerr"
)

// Next is the symbolic selector of the newest series Debian offers in any
// suite: today experimental's release candidate (7.3-cloud-amd64, Debian
// version 7.3~rc7-1~exp1). Which build it is moves with the archive.
const Next = "next"

// MatrixKernels returns the selectors `make kernels` fetches for a: the
// kernels ringtrace is checked on. amd64: 5.10 and 6.1 LTS, 6.12 before and
// after the TX ring's uarg completion, the newest stable series, and Next.
// arm64 (emulated, several times slower): 6.1 (destructor), 6.12.117 and the
// newest stable series (uarg).
func MatrixKernels(a Arch) []string {
	if a == ArchARM64 {
		return []string{"6.1" + archSep + "arm64", "6.12.117" + archSep + "arm64", "7.2" + archSep + "arm64"}
	}
	return []string{"5.10", "6.1", "6.12.95", "6.12.117", "7.2", Next}
}

// archSep joins a selector and an architecture: "7.2@arm64".
const archSep = "@"

// Selector names the kernel to boot: a series or version ("6.1", "6.12.117",
// newest matching build), an exact Debian release ("6.1.0-56",
// "6.12.117+deb13", "7.3-cloud-amd64", with or without the flavour), or
// Next; optionally followed by "@arm64" or "@amd64" (default: the host's
// architecture).
type Selector struct {
	Raw     string
	Arch    Arch
	version []int  // prefix to match; nil for an exact release or Next
	release string // exact `uname -r`
	next    bool   // the newest series: decided among candidates (Select)
	// archGiven: the selector named its architecture.
	archGiven bool
}

// String is the selector as given.
func (s Selector) String() string { return s.Raw }

// Label names the selector's kernel in file names and tables: the raw
// selector, which carries "@arm64" for a foreign architecture.
func (s Selector) Label() string {
	if s.Arch != ArchAMD64 && !s.archGiven {
		return s.Raw + archSep + string(s.Arch)
	}
	return s.Raw
}

var (
	versionRe = regexp.MustCompile(`^[0-9]+\.[0-9]+(\.[0-9]+)?$`)
	releaseRe = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+(-[0-9]+|\+deb[0-9]+(\.[0-9]+)?)$`)
)

// ParseSelector validates a KERNEL value.
func ParseSelector(s string) (Selector, error) {
	raw := strings.TrimSpace(s)
	sel := Selector{Raw: raw, Arch: HostArch()}
	body := raw
	if b, a, ok := strings.Cut(raw, archSep); ok {
		arch, err := ParseArch(a)
		if err != nil || strings.TrimSpace(a) == "" {
			return Selector{}, inputerr.New("kernel %q: unknown architecture %q after %s: want amd64 or arm64", raw, a, archSep)
		}
		body, sel.Arch, sel.archGiven = b, arch, true
	}
	fl := sel.Arch.flavour()
	switch {
	case body == "":
		return Selector{}, inputerr.New("no kernel given (want e.g. %s)", strings.Join(MatrixKernels(ArchAMD64), ", "))
	case body == Next:
		sel.next = true
	case versionRe.MatchString(body):
		sel.version = splitInts(body, ".")
	case releaseRe.MatchString(strings.TrimSuffix(body, fl)):
		sel.release = strings.TrimSuffix(body, fl) + fl
	case rcReleaseRe.MatchString(strings.TrimSuffix(body, fl)) && strings.HasSuffix(body, fl):
		sel.release = body
	default:
		return Selector{}, inputerr.New("unknown kernel %q: want a version such as %s, or a Debian release such as 6.1.0-56, 6.12.117+deb13 or 7.3-cloud-amd64, optionally followed by @arm64",
			raw, strings.Join(MatrixKernels(ArchAMD64), ", "))
	}
	return sel, nil
}

// WithArch returns s for architecture a: an error if s named another one.
func (s Selector) WithArch(a Arch) (Selector, error) {
	if s.Arch == a {
		return s, nil
	}
	if s.archGiven {
		return s, inputerr.New("kernel %q names %s, but %s was asked for", s.Raw, s.Arch, a)
	}
	t, err := ParseSelector(s.Raw + archSep + string(a))
	if err != nil {
		return s, err
	}
	t.Raw, t.archGiven = s.Raw, false
	return t, nil
}

// rcReleaseRe is a release candidate's release without its flavour, which
// alone tells it from a series selector ("7.3" is every 7.3 build).
var rcReleaseRe = regexp.MustCompile(`^[0-9]+\.[0-9]+$`)

// matches reports whether c is a build a version or release selector names.
func (s Selector) matches(c Candidate) bool {
	if s.release != "" {
		return c.Release == s.release
	}
	return len(c.version) >= len(s.version) && slices.Equal(c.version[:len(s.version)], s.version)
}

// Candidate is one kernel build apt offers, or one in the cache.
type Candidate struct {
	Release  string   // `uname -r`, e.g. "6.1.0-56-cloud-amd64"
	Packages []string // what to download, the kernel image first
	Arch     Arch
	version  []int // 6,1,0 or 6,12,117; 7,3 for a release candidate
	abi      int   // 56 in 6.1.0-56; 0 for +debN names
	deb      []int // 13,1 in +deb13.1
	// rc: a release candidate, named by its series alone (experimental's
	// 7.3-cloud-amd64 is 7.3~rc7-1~exp1 today, ~rc8 next week), so one
	// release name stands for successive builds (see Cache.Kernel). It
	// sorts before every stable build of its series: 7.3 < 7.3.0 < 7.3.1.
	rc bool
}

// pkgRes match a flavour's kernel packages.
type pkgRes struct{ image, binary *regexp.Regexp }

// pkgRe: linux-image-6.1.0-56-cloud-amd64-unsigned,
// linux-image-6.12.117+deb13-cloud-arm64-unsigned (the signed image
// packages are EFI-signed copies; on 7.x a linux-image-* of the flavour is
// only a metapackage); linux-binary-7.2.13+deb14-cloud-amd64,
// linux-binary-7.3-cloud-amd64 (+ linux-modules-…, linux-base-…).
var pkgRe = func() map[Arch]pkgRes {
	m := map[Arch]pkgRes{}
	for _, a := range Arches {
		m[a] = pkgRes{
			image:  regexp.MustCompile(`^linux-image-([0-9.]+(?:-[0-9]+|\+deb[0-9.]+))` + a.flavour() + `-unsigned$`),
			binary: regexp.MustCompile(`^linux-binary-([0-9.]+\+deb[0-9.]+|[0-9]+\.[0-9]+)` + a.flavour() + `$`),
		}
	}
	return m
}()

// ParseCandidates picks the cloud kernel builds of a out of package names
// (the output of `apt-cache pkgnames linux-`), newest first. A split kernel
// (linux-binary-*) counts only when its linux-modules-* package exists; its
// small linux-base-* (config, modules.builtin) is added when present.
func ParseCandidates(names []string, a Arch) []Candidate {
	have := map[string]bool{}
	for _, n := range names {
		have[strings.TrimSpace(n)] = true
	}
	re, fl := pkgRe[a], a.flavour()
	var cs []Candidate
	for n := range have {
		if m := re.image.FindStringSubmatch(n); m != nil {
			if c, ok := newCandidate(m[1], []string{n}, a); ok {
				cs = append(cs, c)
			}
			continue
		}
		if m := re.binary.FindStringSubmatch(n); m != nil {
			mods := "linux-modules-" + m[1] + fl
			if !have[mods] {
				continue
			}
			pkgs := []string{n, mods}
			if base := "linux-base-" + m[1] + fl; have[base] {
				pkgs = append(pkgs, base)
			}
			if c, ok := newCandidate(m[1], pkgs, a); ok {
				cs = append(cs, c)
			}
		}
	}
	SortCandidates(cs)
	return dedupeReleases(cs)
}

// newCandidate parses "6.1.0-56", "6.12.117+deb13" or the release
// candidate "7.3" (no flavour).
func newCandidate(rel string, pkgs []string, a Arch) (Candidate, bool) {
	c := Candidate{Release: rel + a.flavour(), Packages: pkgs, Arch: a}
	if v := splitInts(rel, "."); len(v) == 2 {
		c.version, c.rc = v, true
		return c, true
	}
	ver, deb, isDeb := strings.Cut(rel, "+deb")
	if isDeb {
		c.deb = splitInts(deb, ".")
	} else {
		v, abi, ok := strings.Cut(rel, "-")
		if !ok {
			return c, false
		}
		n, err := strconv.Atoi(abi)
		if err != nil {
			return c, false
		}
		ver, c.abi = v, n
	}
	c.version = splitInts(ver, ".")
	return c, len(c.version) == 3 && (!isDeb || len(c.deb) > 0)
}

// SortCandidates orders newest first: version (a release candidate's, 7.3,
// before 7.3.x), then ABI, then Debian suffix.
func SortCandidates(cs []Candidate) {
	sort.SliceStable(cs, func(i, j int) bool {
		a, b := cs[i], cs[j]
		if c := slices.Compare(a.version, b.version); c != 0 {
			return c > 0
		}
		if a.abi != b.abi {
			return a.abi > b.abi
		}
		if c := slices.Compare(a.deb, b.deb); c != 0 {
			return c > 0
		}
		if len(a.Packages) != len(b.Packages) {
			return len(a.Packages) < len(b.Packages) // image package before split ones
		}
		return strings.Join(a.Packages, " ") < strings.Join(b.Packages, " ")
	})
}

// dedupeReleases keeps the first candidate of each release.
func dedupeReleases(cs []Candidate) []Candidate {
	seen := map[string]bool{}
	out := cs[:0]
	for _, c := range cs {
		if !seen[c.Release] {
			seen[c.Release] = true
			out = append(out, c)
		}
	}
	return out
}

// Select returns the candidates the selector names, newest first (cs is
// sorted newest first, as ParseCandidates returns it). Next names the builds
// of the newest candidate's major.minor series, so that a build the archive
// cannot deliver falls back within the series, never to an older one.
func (s Selector) Select(cs []Candidate) []Candidate {
	var out []Candidate
	for _, c := range cs {
		switch {
		case c.Arch != s.Arch:
		case s.next && len(out) == 0:
			out = append(out, c)
		case s.next:
			if slices.Equal(c.version[:2], out[0].version[:2]) {
				out = append(out, c)
			}
		case s.matches(c):
			out = append(out, c)
		}
	}
	return out
}

// candidateFromRelease parses a cached release name back into a Candidate.
func candidateFromRelease(release string) (Candidate, bool) {
	for _, a := range Arches {
		if rel, ok := strings.CutSuffix(release, a.flavour()); ok {
			return newCandidate(rel, nil, a)
		}
	}
	return Candidate{}, false
}

func splitInts(s, sep string) []int {
	var out []int
	for _, f := range strings.Split(s, sep) {
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil
		}
		out = append(out, n)
	}
	return out
}
