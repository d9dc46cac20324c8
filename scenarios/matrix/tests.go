package matrix

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/ringtrace/ringtrace/scenarios/vm"
)

// testPackage is a package whose tests need root, run in every guest.
type testPackage struct {
	dir  string // module-relative
	skip string // -test.skip pattern
	why  string
}

// rootTestPackages are the packages with root integration tests. What is not
// run in the guests, and why, is part of the list.
var rootTestPackages = []testPackage{
	{dir: "tracer/session"},
	{dir: "tracer/txring"},
	{dir: "tracer/kernel/probe"},
	{dir: "cmd/ringtrace", skip: "^TestTraceBadInput$/^forced-",
		why: "these subtests assert that the host's kernel refuses fentry and lacks kprobes; the guests' kernels have both"},
	{dir: "scenarios", skip: "^TestAllScenarios$",
		why: "the scenarios run separately, under every class"},
	{dir: "scenarios/verify"},
}

// TestPackages lists the module-relative directories of the packages whose
// tests run in the guests.
func TestPackages() []string {
	var out []string
	for _, p := range rootTestPackages {
		out = append(out, p.dir)
	}
	return out
}

// BuildTests compiles the root test packages of the module at repo into
// static test binaries under dir, each in dir/<package directory> next to a
// copy of the package's testdata, with the module's top-level testdata at
// dir/testdata (tests read it by relative path). It returns the runs with the
// binaries' paths, which are the same in a guest that shares dir.
func BuildTests(ctx context.Context, goTool, repo, dir string, arch vm.Arch, log io.Writer) ([]TestRun, error) {
	staging := filepath.Join(dir, ".build")
	args := []string{"test", "-c", "-ldflags=-s -w", "-o", staging + "/"}
	for _, p := range rootTestPackages {
		args = append(args, "./"+p.dir)
	}
	cmd := exec.CommandContext(ctx, goTool, args...)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+string(arch))
	fmt.Fprintf(log, "vmtest: building %s test binaries: %s %s\n", arch, goTool, strings.Join(args, " "))
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building the test binaries: %w\n%s", err, out)
	}
	if err := copyTree(filepath.Join(repo, "testdata"), filepath.Join(dir, "testdata")); err != nil {
		return nil, err
	}
	var runs []TestRun
	for _, p := range rootTestPackages {
		pkgDir := filepath.Join(dir, filepath.FromSlash(p.dir))
		if err := os.MkdirAll(pkgDir, 0o755); err != nil {
			return nil, fmt.Errorf("test directory: %w", err)
		}
		name := filepath.Base(p.dir) + ".test"
		bin := filepath.Join(pkgDir, name)
		if err := os.Rename(filepath.Join(staging, name), bin); err != nil {
			return nil, fmt.Errorf("test binary for %s: %w", p.dir, err)
		}
		if err := copyTree(filepath.Join(repo, filepath.FromSlash(p.dir), "testdata"), filepath.Join(pkgDir, "testdata")); err != nil {
			return nil, err
		}
		runs = append(runs, TestRun{Package: p.dir, Binary: filepath.ToSlash(bin), Skip: p.skip, Why: p.why})
	}
	if err := os.RemoveAll(staging); err != nil {
		return nil, fmt.Errorf("test build directory: %w", err)
	}
	return runs, nil
}

// copyTree copies the regular files and directories under src to dst; a
// missing src copies nothing.
func copyTree(src, dst string) error {
	if _, err := os.Stat(src); os.IsNotExist(err) {
		return nil
	}
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(target, b, 0o644)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("copying %s: %w", src, err)
	}
	return nil
}
