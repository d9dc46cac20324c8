package kernel

import (
	"fmt"
	"strconv"
	"strings"
)

// Version is a kernel version triple.
type Version struct {
	Major, Minor, Patch int
}

func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// AtLeast reports whether v >= major.minor.patch.
func (v Version) AtLeast(major, minor, patch int) bool {
	if v.Major != major {
		return v.Major > major
	}
	if v.Minor != minor {
		return v.Minor > minor
	}
	return v.Patch >= patch
}

// ParseRelease extracts the version from a release string such as
// "6.18.44-fc-v669" or "6.1.0-56-cloud-amd64" (Debian's ABI number is not a
// patch level: the real one is in /proc/version, see DebianVersion).
func ParseRelease(rel string) (Version, error) {
	var v Version
	num := rel
	if i := strings.IndexAny(num, "-+~_ "); i >= 0 {
		num = num[:i]
	}
	parts := strings.Split(num, ".")
	if len(parts) < 2 {
		return v, fmt.Errorf("kernel release %q: no major.minor", rel)
	}
	vals := []*int{&v.Major, &v.Minor, &v.Patch}
	for i := 0; i < len(parts) && i < 3; i++ {
		n, err := strconv.Atoi(parts[i])
		if err != nil {
			return v, fmt.Errorf("kernel release %q: %w", rel, err)
		}
		*vals[i] = n
	}
	return v, nil
}

// DebianVersion finds the upstream version in a Debian /proc/version line:
// "... #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-1 (2025-...)".
func DebianVersion(procVersion string) (Version, bool) {
	i := strings.Index(procVersion, " Debian ")
	if i < 0 {
		return Version{}, false
	}
	f := strings.Fields(procVersion[i+len(" Debian "):])
	if len(f) == 0 {
		return Version{}, false
	}
	v, err := ParseRelease(f[0])
	return v, err == nil
}
