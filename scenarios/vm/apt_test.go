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
