package vm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/ringtrace/ringtrace/tracer/inputerr"
)

// Cache holds downloaded kernels and the private apt state, outside the
// repository: Dir/kernels/<release>/{kernel.json,root/}, Dir/apt/ (the
// host's architecture) and Dir/apt-<arch>/ (another one's), and the guest
// busybox of an architecture the host has none of, Dir/busybox/<arch>/.
type Cache struct {
	Dir            string
	Mirror         string        // "" = DefaultMirror
	SecurityMirror string        // "" = DefaultSecurityMirror
	MaxListsAge    time.Duration // refresh apt lists older than this; 0 = 24h
	Log            io.Writer     // progress messages; nil = discard
}

// fetchTries bounds how many builds of a series are tried when the newest
// ones listed cannot be downloaded (a security suite's index may name
// packages its pool no longer has). A build the archive answered 404 for is
// skipped for MaxListsAge (see recentlyMissing).
const fetchTries = 6

// retryListsAge: lists younger than this are not refreshed again when
// nothing matches the selector.
const retryListsAge = time.Hour

// DefaultCacheDir is $RINGTRACE_CACHE, or ringtrace/ under the user's cache
// directory ($XDG_CACHE_HOME or ~/.cache).
func DefaultCacheDir() (string, error) {
	if d := os.Getenv("RINGTRACE_CACHE"); d != "" {
		return filepath.Abs(d)
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("cache directory: %w (set RINGTRACE_CACHE)", err)
	}
	return filepath.Join(d, "ringtrace"), nil
}

func (c *Cache) log() io.Writer {
	if c.Log == nil {
		return io.Discard
	}
	return c.Log
}

func (c *Cache) apt(arch Arch) *aptEnv {
	dir := filepath.Join(c.Dir, "apt")
	if arch != HostArch() {
		dir += "-" + string(arch)
	}
	a := &aptEnv{dir: dir, arch: arch, mirror: c.Mirror, security: c.SecurityMirror, log: c.log()}
	if a.mirror == "" {
		a.mirror = DefaultMirror
	}
	if a.security == "" {
		a.security = DefaultSecurityMirror
	}
	return a
}

func (c *Cache) kernelsDir() string { return filepath.Join(c.Dir, "kernels") }

// Kernel resolves sel to the newest build apt offers and returns it from the
// cache, downloading and extracting it first if needed. Without apt (no
// network), the newest cached build that matches is used.
func (c *Cache) Kernel(ctx context.Context, sel Selector) (*Kernel, error) {
	if c.Dir == "" {
		return nil, errors.New("kernel cache: no directory")
	}
	a := c.apt(sel.Arch)
	if err := os.MkdirAll(a.dir, 0o755); err != nil {
		return nil, fmt.Errorf("kernel cache: %w", err)
	}
	unlock, err := a.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()

	cands, aptErr := c.resolve(ctx, a, sel)
	if len(cands) == 0 {
		if k := c.newestCached(sel); k != nil {
			fmt.Fprintf(c.log(), "ringvm: apt offers no kernel for %s (%v); using cached %s\n", sel.Raw, aptErr, k.Release)
			return k, nil
		}
		if aptErr != nil {
			return nil, fmt.Errorf("resolving kernel %s: %w", sel.Raw, aptErr)
		}
		return nil, inputerr.New("no Debian cloud kernel matches %q", sel.Raw)
	}
	var errs []string
	for i, cand := range cands {
		if i == fetchTries {
			break
		}
		if k, err := loadKernel(filepath.Join(c.kernelsDir(), cand.Release)); err == nil && !c.newerBuild(ctx, a, cand, k) {
			return k, nil
		}
		if c.recentlyMissing(a, cand.Release) {
			errs = append(errs, cand.Release+" (failed recently)")
			continue
		}
		k, err := c.fetch(ctx, a, cand)
		if err == nil {
			return k, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("fetching %s: %w", cand.Release, ctx.Err())
		}
		fmt.Fprintf(c.log(), "ringvm: %s: %v\n", cand.Release, err)
		if strings.Contains(err.Error(), "404") {
			c.markMissing(a, cand.Release)
		}
		errs = append(errs, cand.Release)
	}
	if k := c.newestCached(sel); k != nil {
		fmt.Fprintf(c.log(), "ringvm: using cached %s instead\n", k.Release)
		return k, nil
	}
	return nil, fmt.Errorf("kernel %s: could not download %s", sel.Raw, strings.Join(errs, ", "))
}

// newerBuild reports whether apt offers another build of a cached release
// candidate than the cache holds: a release candidate's release name stays
// (7.3-cloud-amd64) while its package version moves (7.3~rc7-1~exp1, then
// ~rc8). Other releases are one build each. Without an answer from apt the
// cached build is kept.
func (c *Cache) newerBuild(ctx context.Context, a *aptEnv, cand Candidate, cached *Kernel) bool {
	if !cand.rc || len(cand.Packages) == 0 {
		return false
	}
	v, err := a.version(ctx, cand.Packages[0])
	if err != nil {
		fmt.Fprintf(c.log(), "ringvm: %s: keeping the cached build %s: %v\n", cand.Release, cached.Version, err)
		return false
	}
	if v == cached.Version {
		return false
	}
	fmt.Fprintf(c.log(), "ringvm: %s: the cache holds %s, apt offers %s: fetching it\n", cand.Release, cached.Version, v)
	return true
}

// recentlyMissing reports whether the archive answered 404 for release
// within MaxListsAge.
func (c *Cache) recentlyMissing(a *aptEnv, release string) bool {
	fi, err := os.Stat(filepath.Join(a.dir, "missing", release))
	return err == nil && time.Since(fi.ModTime()) < c.maxListsAge()
}

// markMissing records that the archive answered 404 for release.
func (c *Cache) markMissing(a *aptEnv, release string) {
	p := filepath.Join(a.dir, "missing", release)
	_ = os.MkdirAll(filepath.Dir(p), 0o755)
	_ = os.WriteFile(p, nil, 0o644)
}

func (c *Cache) maxListsAge() time.Duration {
	if c.MaxListsAge == 0 {
		return 24 * time.Hour
	}
	return c.MaxListsAge
}

// resolve lists the builds sel names, newest first, refreshing stale lists
// (and once more if nothing matches).
func (c *Cache) resolve(ctx context.Context, a *aptEnv, sel Selector) ([]Candidate, error) {
	if err := a.prepare(); err != nil {
		return nil, err
	}
	var updateErr error
	updated := false
	if age, ok := a.listsAge(); !ok || age > c.maxListsAge() {
		updateErr, updated = a.update(ctx), true
	}
	for {
		names, err := a.pkgNames(ctx)
		if err != nil {
			return nil, err
		}
		cands := sel.Select(ParseCandidates(names, sel.Arch))
		if age, ok := a.listsAge(); len(cands) == 0 && ok && age < retryListsAge {
			updated = true // fresh lists: do not update again for a typo
		}
		if len(cands) > 0 || updated {
			if len(cands) == 0 && updateErr != nil {
				return nil, updateErr
			}
			if updateErr != nil {
				fmt.Fprintf(c.log(), "ringvm: warning: %v\n", updateErr)
			}
			return cands, nil
		}
		updateErr, updated = a.update(ctx), true
	}
}

// fetch downloads and extracts one build into the cache.
func (c *Cache) fetch(ctx context.Context, a *aptEnv, cand Candidate) (*Kernel, error) {
	if err := os.MkdirAll(c.kernelsDir(), 0o755); err != nil {
		return nil, fmt.Errorf("kernel cache: %w", err)
	}
	tmp, err := os.MkdirTemp(c.kernelsDir(), ".fetch-")
	if err != nil {
		return nil, fmt.Errorf("kernel cache: %w", err)
	}
	defer os.RemoveAll(tmp)
	debs := filepath.Join(tmp, "debs")
	if err := os.Mkdir(debs, 0o755); err != nil {
		return nil, fmt.Errorf("kernel cache: %w", err)
	}
	fmt.Fprintf(c.log(), "ringvm: downloading %s\n", strings.Join(cand.Packages, " "))
	if err := a.download(ctx, debs, cand.Packages); err != nil {
		return nil, err
	}
	k := &Kernel{Release: cand.Release, Packages: cand.Packages, Dir: tmp}
	for i, p := range cand.Packages {
		deb, err := findDeb(debs, p)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			if k.Version, err = debField(ctx, deb, "Version"); err != nil {
				return nil, err
			}
		}
		if err := extractDeb(ctx, deb, filepath.Join(tmp, "root")); err != nil {
			return nil, err
		}
	}
	if err := os.RemoveAll(debs); err != nil {
		return nil, fmt.Errorf("kernel cache: %w", err)
	}
	if err := k.locate(); err != nil {
		return nil, err
	}
	if err := storeKernel(tmp, k); err != nil {
		return nil, err
	}
	dst := filepath.Join(c.kernelsDir(), cand.Release)
	if err := replaceDir(tmp, dst); err != nil {
		return nil, fmt.Errorf("kernel cache: %w", err)
	}
	if err := os.Chmod(dst, 0o755); err != nil {
		return nil, fmt.Errorf("kernel cache: %w", err)
	}
	return loadKernel(dst)
}

// replaceDir renames src to dst, first moving aside (then removing) a dst
// that exists: an older build of a release candidate.
func replaceDir(src, dst string) error {
	old := src + ".old"
	if err := os.Rename(dst, old); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.Rename(src, dst); err != nil {
		_ = os.Rename(old, dst)
		return err
	}
	_ = os.RemoveAll(old) // a leftover .fetch-*.old is never read as a kernel
	return nil
}

// newestCached is the newest cached kernel sel names, or nil.
func (c *Cache) newestCached(sel Selector) *Kernel {
	entries, _ := os.ReadDir(c.kernelsDir())
	var cands []Candidate
	for _, e := range entries {
		if cand, ok := candidateFromRelease(e.Name()); ok && e.IsDir() {
			cands = append(cands, cand)
		}
	}
	SortCandidates(cands)
	for _, cand := range sel.Select(cands) {
		if k, err := loadKernel(filepath.Join(c.kernelsDir(), cand.Release)); err == nil {
			return k
		}
	}
	return nil
}

// findDeb finds the downloaded file of package pkg ("pkg_version_arch.deb").
func findDeb(dir, pkg string) (string, error) {
	m, err := filepath.Glob(filepath.Join(dir, pkg+"_*.deb"))
	if err != nil || len(m) != 1 {
		return "", fmt.Errorf("downloaded %s not found in %s", pkg, dir)
	}
	return m[0], nil
}

// extractDeb unpacks a package's files under dir.
func extractDeb(ctx context.Context, deb, dir string) error {
	if out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", deb, dir).CombinedOutput(); err != nil {
		return fmt.Errorf("dpkg-deb -x %s: %w: %s", filepath.Base(deb), err, lastLines(out, 2))
	}
	return nil
}

func debField(ctx context.Context, deb, field string) (string, error) {
	out, err := exec.CommandContext(ctx, "dpkg-deb", "-f", deb, field).Output()
	if err != nil {
		return "", fmt.Errorf("dpkg-deb -f %s %s: %w", filepath.Base(deb), field, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// Busybox returns a static busybox for a guest of architecture arch that
// the host cannot run: Debian's busybox-static of that architecture,
// downloaded once through its private apt lists into Dir/busybox/<arch>.
func (c *Cache) Busybox(ctx context.Context, arch Arch) (string, error) {
	dst := filepath.Join(c.Dir, "busybox", string(arch), "busybox")
	if _, err := os.Stat(dst); err == nil {
		return dst, nil
	}
	a := c.apt(arch)
	if err := os.MkdirAll(a.dir, 0o755); err != nil {
		return "", fmt.Errorf("busybox cache: %w", err)
	}
	unlock, err := a.lock()
	if err != nil {
		return "", err
	}
	defer unlock()
	if err := a.prepare(); err != nil {
		return "", err
	}
	if _, ok := a.listsAge(); !ok {
		if err := a.update(ctx); err != nil {
			return "", err
		}
	}
	tmp, err := os.MkdirTemp(c.Dir, ".busybox-")
	if err != nil {
		return "", fmt.Errorf("busybox cache: %w", err)
	}
	defer os.RemoveAll(tmp)
	fmt.Fprintf(c.log(), "ringvm: downloading busybox-static for %s\n", arch)
	if err := a.download(ctx, tmp, []string{"busybox-static"}); err != nil {
		return "", err
	}
	deb, err := findDeb(tmp, "busybox-static")
	if err != nil {
		return "", err
	}
	root := filepath.Join(tmp, "root")
	if err := extractDeb(ctx, deb, root); err != nil {
		return "", err
	}
	bin := firstExisting(filepath.Join(root, "usr/bin/busybox"), filepath.Join(root, "bin/busybox"))
	if bin == "" {
		return "", fmt.Errorf("%s has no busybox", filepath.Base(deb))
	}
	if err := checkMachine(bin, arch); err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", fmt.Errorf("busybox cache: %w", err)
	}
	if err := os.Rename(bin, dst); err != nil {
		return "", fmt.Errorf("busybox cache: %w", err)
	}
	return dst, nil
}
