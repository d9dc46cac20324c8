package vm

import (
	"strings"
	"testing"
)

func TestSourcesListIsPrivate(t *testing.T) {
	a := &aptEnv{dir: "/cache/apt", mirror: DefaultMirror, security: DefaultSecurityMirror}
	src := a.sourcesList()
	for _, want := range []string{
		"deb [signed-by=" + debianKeyring + "] http://deb.debian.org/debian bullseye main\n",
		"http://deb.debian.org/debian-security bookworm-security main\n",
		"http://deb.debian.org/debian bookworm-backports main\n",
		"http://deb.debian.org/debian trixie main\n",
		"http://deb.debian.org/debian sid main\n",
	} {
		if !strings.Contains(src, want) {
			t.Errorf("sources.list lacks %q:\n%s", want, src)
		}
	}
	opts := strings.Join(a.options(), " ")
	for _, want := range []string{
		"Dir::Etc::SourceList=/cache/apt/sources.list", "Dir::Etc::SourceParts=/dev/null",
		"Dir::State::Lists=/cache/apt/lists", "Dir::Cache=/cache/apt/cache", "Dir::State::status=/dev/null",
	} {
		if !strings.Contains(opts, want) {
			t.Errorf("apt options lack %q: %s", want, opts)
		}
	}
	if strings.Contains(opts, "/etc/apt/sources.list") {
		t.Error("apt options mention the system's sources")
	}
}

func TestLastLines(t *testing.T) {
	if got := lastLines([]byte("a\n\nb\nc\n"), 2); got != "b; c" {
		t.Errorf("lastLines = %q", got)
	}
}

func TestSourcesListHasExperimental(t *testing.T) {
	a := &aptEnv{dir: "/cache/apt", mirror: DefaultMirror, security: DefaultSecurityMirror}
	if !strings.HasSuffix(a.sourcesList(), "http://deb.debian.org/debian experimental main\n") {
		t.Errorf("sources.list lacks experimental (for %s):\n%s", Next, a.sourcesList())
	}
}

// TestControlField reads the Version of an `apt-cache show --no-all-versions`
// record of experimental's release candidate (trimmed).
func TestControlField(t *testing.T) {
	rec := []byte("Package: linux-binary-7.3-cloud-amd64\n" +
		"Source: linux-signed-amd64 (7.3~rc7+1~exp1)\n" +
		"Version: 7.3~rc7-1~exp1\n" +
		"Depends: linux-base-7.3-cloud-amd64 (= 7.3~rc7-1~exp1)\n" +
		"Description: Linux 7.3-rc7 for x86-64 cloud (kernel image)\n")
	if got := controlField(rec, "Version"); got != "7.3~rc7-1~exp1" {
		t.Errorf("Version = %q", got)
	}
	if got := controlField(rec, "Size"); got != "" {
		t.Errorf("absent field = %q", got)
	}
}
