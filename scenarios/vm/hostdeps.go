package vm

import (
	"context"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
)

// hostTool is a program the runner needs and the Debian package it is in.
type hostTool struct {
	Name string
	Pkg  string
	// Check, if set, rejects an unsuitable program (e.g. a dynamic busybox).
	Check func(path string) error
}

var (
	toolsFetch = []hostTool{{"apt-get", "apt", nil}, {"apt-cache", "apt", nil}, {"dpkg-deb", "dpkg", nil}}
)

// bootTools are what booting a guest of a needs: its qemu, and the host's
// static busybox (the guest's own for a foreign architecture comes from the
// cache; the host's lists the applets to link).
func bootTools(a Arch) []hostTool {
	p := a.profile()
	return []hostTool{
		{p.qemu, p.qemuPkg, nil},
		{"busybox", "busybox-static", checkStatic},
		{"xz", "xz-utils", nil},
	}
}

// ensureTools finds the tools, installing the missing ones with apt-get when
// install is set, or returns an error that says exactly what to install.
func ensureTools(ctx context.Context, tools []hostTool, install bool, log io.Writer) (map[string]string, error) {
	paths, missing := findTools(tools)
	if len(missing) == 0 {
		return paths, nil
	}
	cmdline := "apt-get install -y --no-install-recommends " + strings.Join(missing, " ")
	if !install {
		return nil, fmt.Errorf("missing host packages: run `%s` (or pass --install-deps)", cmdline)
	}
	fmt.Fprintf(log, "ringvm: installing %s\n", strings.Join(missing, " "))
	for _, args := range [][]string{{"update", "-q"}, append([]string{"install", "-y", "-q", "--no-install-recommends"}, missing...)} {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("%s: %w: %s", cmdline, err, lastLines(out, 3))
		}
	}
	paths, missing = findTools(tools)
	if len(missing) > 0 {
		return nil, fmt.Errorf("still missing after install: %s", strings.Join(missing, " "))
	}
	return paths, nil
}

// findTools returns the paths found and the packages of those missing.
func findTools(tools []hostTool) (map[string]string, []string) {
	paths := map[string]string{}
	var missing []string
	for _, t := range tools {
		p, err := exec.LookPath(t.Name)
		if err == nil && t.Check != nil {
			err = t.Check(p)
		}
		if err != nil {
			if !slices.Contains(missing, t.Pkg) {
				missing = append(missing, t.Pkg)
			}
			continue
		}
		paths[t.Name] = p
	}
	return paths, missing
}

// checkStatic rejects dynamically linked executables: the guest has no
// libc. ringtrace itself must be built with CGO_ENABLED=0 for the same
// reason.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked; the guest has no libc (build it static, e.g. CGO_ENABLED=0)", path)
		}
	}
	return nil
}

// busyboxApplets lists the applets of a busybox binary.
func busyboxApplets(ctx context.Context, busybox string) ([]string, error) {
	out, err := exec.CommandContext(ctx, busybox, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list: %w", busybox, err)
	}
	return strings.Fields(string(out)), nil
}
