package vm

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// DefaultMirror and DefaultSecurityMirror are the Debian archives the private
// sources list points at.
const (
	DefaultMirror         = "http://deb.debian.org/debian"
	DefaultSecurityMirror = "http://deb.debian.org/debian-security"
	debianKeyring         = "/usr/share/keyrings/debian-archive-keyring.gpg"
)

// aptSuites are the suites kernels come from: bullseye (5.10), bookworm
// (6.1), bookworm-backports (6.12 +deb12), trixie (6.12 +deb13), sid (7.x),
// with their security and updates suites, where kernels move first, and
// experimental (the next series' release candidates, for Next). Nothing is
// installed from these lists, so experimental's NotAutomatic pin does not
// matter: its kernels have names no other suite uses.
var aptSuites = []struct {
	security bool
	suite    string
}{
	{false, "bullseye"}, {true, "bullseye-security"},
	{false, "bookworm"}, {false, "bookworm-updates"}, {true, "bookworm-security"}, {false, "bookworm-backports"},
	{false, "trixie"}, {false, "trixie-updates"}, {true, "trixie-security"},
	{false, "sid"}, {false, "experimental"},
}

// aptEnv runs apt-get and apt-cache on a private sources list, lists and
// package cache under dir. The system's apt sources and state are never read
// or written (its apt.conf, e.g. a proxy setting, still applies).
type aptEnv struct {
	dir      string
	arch     Arch // the packages' architecture
	mirror   string
	security string
	log      io.Writer
}

// foreign reports whether the packages are for another architecture than
// the host's (the lists then name it, and apt is told).
func (a *aptEnv) foreign() bool { return a.arch != "" && a.arch != HostArch() }

// sourcesList is the private sources.list.
func (a *aptEnv) sourcesList() string {
	var b strings.Builder
	for _, s := range aptSuites {
		m := a.mirror
		if s.security {
			m = a.security
		}
		opts := "signed-by=" + debianKeyring
		if a.foreign() {
			opts = "arch=" + string(a.arch) + " " + opts
		}
		fmt.Fprintf(&b, "deb [%s] %s %s main\n", opts, m, s.suite)
	}
	return b.String()
}

// options point apt at the private files.
func (a *aptEnv) options() []string {
	o := []string{
		"-o", "Dir::Etc::SourceList=" + filepath.Join(a.dir, "sources.list"),
		"-o", "Dir::Etc::SourceParts=/dev/null",
		"-o", "Dir::State=" + filepath.Join(a.dir, "state"),
		"-o", "Dir::State::Lists=" + filepath.Join(a.dir, "lists"),
		"-o", "Dir::State::status=/dev/null",
		"-o", "Dir::Cache=" + filepath.Join(a.dir, "cache"),
		"-o", "Acquire::Languages=none",
		"-o", "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false",
		"-o", "Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false",
		"-o", "Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false",
		"-o", "Acquire::IndexTargets::deb::CNF::DefaultEnabled=false",
	}
	if a.foreign() {
		o = append(o, "-o", "APT::Architecture="+string(a.arch), "-o", "APT::Architectures="+string(a.arch))
	}
	if os.Geteuid() == 0 {
		// The _apt sandbox user cannot write into a private cache under $HOME.
		o = append(o, "-o", "APT::Sandbox::User=root")
	}
	return o
}

// prepare creates the directories and (re)writes the sources list.
func (a *aptEnv) prepare() error {
	if _, err := os.Stat(debianKeyring); err != nil {
		return fmt.Errorf("apt: %s is missing (apt-get install debian-archive-keyring): %w", debianKeyring, err)
	}
	for _, d := range []string{"lists/partial", "cache/archives/partial", "state"} {
		if err := os.MkdirAll(filepath.Join(a.dir, d), 0o755); err != nil {
			return fmt.Errorf("apt: %w", err)
		}
	}
	src := filepath.Join(a.dir, "sources.list")
	want := a.sourcesList()
	if have, err := os.ReadFile(src); err == nil && string(have) == want {
		return nil
	}
	if err := os.WriteFile(src, []byte(want), 0o644); err != nil {
		return fmt.Errorf("apt: %w", err)
	}
	// New sources: the old lists no longer describe them.
	_ = os.Remove(a.stamp())
	return nil
}

func (a *aptEnv) stamp() string { return filepath.Join(a.dir, "updated") }

// listsAge is how long ago the lists were last updated successfully.
func (a *aptEnv) listsAge() (time.Duration, bool) {
	fi, err := os.Stat(a.stamp())
	if err != nil {
		return 0, false
	}
	return time.Since(fi.ModTime()), true
}

// update runs apt-get update. Some suites failing is not fatal as long as
// apt produced lists: the error is returned for the caller to log.
func (a *aptEnv) update(ctx context.Context) error {
	fmt.Fprintf(a.log, "ringvm: updating the private apt lists in %s\n", a.dir)
	out, err := a.run(ctx, "", "apt-get", append(a.options(), "-q", "update")...)
	if err != nil {
		return fmt.Errorf("apt-get update: %w: %s", err, lastLines(out, 3))
	}
	return os.WriteFile(a.stamp(), nil, 0o644)
}

// pkgNames lists the kernel package names the lists know. The answer is
// kept next to the lists until they change.
func (a *aptEnv) pkgNames(ctx context.Context) ([]string, error) {
	saved := filepath.Join(a.dir, "pkgnames")
	if fi, err := os.Stat(saved); err == nil {
		if st, err := os.Stat(a.stamp()); err == nil && !fi.ModTime().Before(st.ModTime()) {
			if b, err := os.ReadFile(saved); err == nil {
				return strings.Fields(string(b)), nil
			}
		}
	}
	var out, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "apt-cache", append(a.options(), "pkgnames", "linux-")...)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("apt-cache pkgnames: %w: %s", err, lastLines(stderr.Bytes(), 3))
	}
	_ = os.WriteFile(saved, out.Bytes(), 0o644)
	return strings.Fields(out.String()), nil
}

// version is the version of pkg that apt would download.
func (a *aptEnv) version(ctx context.Context, pkg string) (string, error) {
	var out, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "apt-cache", append(a.options(), "show", "--no-all-versions", pkg)...)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("apt-cache show %s: %w: %s", pkg, err, lastLines(stderr.Bytes(), 2))
	}
	v := controlField(out.Bytes(), "Version")
	if v == "" {
		return "", fmt.Errorf("apt-cache show %s: no Version field", pkg)
	}
	return v, nil
}

// controlField is the first value of a field in Debian control data (an
// `apt-cache show` record), or "".
func controlField(out []byte, field string) string {
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// download fetches packages into dir.
func (a *aptEnv) download(ctx context.Context, dir string, pkgs []string) error {
	args := append(a.options(), append([]string{"-q", "download"}, pkgs...)...)
	out, err := a.run(ctx, dir, "apt-get", args...)
	if err != nil {
		return fmt.Errorf("apt-get download %s: %w: %s", strings.Join(pkgs, " "), err, lastLines(out, 2))
	}
	return nil
}

func (a *aptEnv) run(ctx context.Context, dir, name string, args ...string) ([]byte, error) {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	err := cmd.Run()
	return out.Bytes(), err
}

// lock serialises apt runs on the private state between processes.
func (a *aptEnv) lock() (func(), error) {
	f, err := os.OpenFile(filepath.Join(a.dir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("apt lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("apt lock: %w", err)
	}
	return func() { f.Close() }, nil
}

// lastLines returns the last n non-empty lines of out, joined by "; ".
func lastLines(out []byte, n int) string {
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "; ")
}
