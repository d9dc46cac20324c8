package vm

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestKernelLocate(t *testing.T) {
	for _, layout := range []struct {
		rel, image, modules, config string
	}{
		{"6.1.0-56-cloud-amd64", "boot/vmlinuz-6.1.0-56-cloud-amd64", "lib/modules/6.1.0-56-cloud-amd64", "boot/config-6.1.0-56-cloud-amd64"},
		{"7.2.13+deb14-cloud-amd64", "usr/lib/modules/7.2.13+deb14-cloud-amd64/vmlinuz", "usr/lib/modules/7.2.13+deb14-cloud-amd64", "usr/lib/modules/7.2.13+deb14-cloud-amd64/config"},
	} {
		dir := t.TempDir()
		root := filepath.Join(dir, "root")
		must(t, os.MkdirAll(filepath.Join(root, layout.modules), 0o755))
		for _, f := range []string{layout.image, layout.config} {
			must(t, os.MkdirAll(filepath.Dir(filepath.Join(root, f)), 0o755))
			must(t, os.WriteFile(filepath.Join(root, f), nil, 0o644))
		}
		must(t, storeKernel(dir, &Kernel{Release: layout.rel, Version: "1-1", Packages: []string{"p"}}))
		k, err := loadKernel(dir)
		if err != nil {
			t.Fatal(err)
		}
		if k.Image != filepath.Join(root, layout.image) || k.Modules != filepath.Join(root, layout.modules) ||
			k.Config != filepath.Join(root, layout.config) || k.Version != "1-1" {
			t.Errorf("%s: %+v", layout.rel, k)
		}
	}
	if _, err := loadKernel(t.TempDir()); err == nil {
		t.Error("empty dir loaded as a kernel")
	}
}

func TestCacheFallsBackToCachedKernel(t *testing.T) {
	c := &Cache{Dir: t.TempDir(), MaxListsAge: time.Hour}
	for _, rel := range []string{"6.1.0-50-cloud-amd64", "6.1.0-56-cloud-amd64", "6.12.95+deb12-cloud-amd64"} {
		dir := filepath.Join(c.kernelsDir(), rel)
		must(t, os.MkdirAll(filepath.Join(dir, "root/boot"), 0o755))
		must(t, os.MkdirAll(filepath.Join(dir, "root/lib/modules", rel), 0o755))
		must(t, os.WriteFile(filepath.Join(dir, "root/boot/vmlinuz-"+rel), nil, 0o644))
		must(t, storeKernel(dir, &Kernel{Release: rel}))
	}
	sel, _ := ParseSelector("6.1")
	if k := c.newestCached(sel); k == nil || k.Release != "6.1.0-56-cloud-amd64" {
		t.Errorf("newestCached(6.1) = %v", k)
	}
	a := c.apt(ArchAMD64)
	if c.recentlyMissing(a, "x") {
		t.Error("missing before marked")
	}
	c.markMissing(a, "x")
	if !c.recentlyMissing(a, "x") {
		t.Error("not missing after marked")
	}
}

// fakeAptCache puts an apt-cache on PATH that answers `show` with version
// (or fails when version is "").
func fakeAptCache(t *testing.T, version string) {
	t.Helper()
	dir := t.TempDir()
	script := "#!/bin/sh\necho 'E: No packages found' >&2\nexit 100\n"
	if version != "" {
		script = "#!/bin/sh\nprintf 'Package: x\\nVersion: %s\\n' '" + version + "'\n"
	}
	must(t, os.WriteFile(filepath.Join(dir, "apt-cache"), []byte(script), 0o755))
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
}

// TestNewerBuild: only a release candidate's cached build is compared with
// what apt offers; without an answer the cached build is kept.
func TestNewerBuild(t *testing.T) {
	c := &Cache{Dir: t.TempDir()}
	a := c.apt(ArchAMD64)
	rc, _ := candidateFromRelease("7.3-cloud-amd64")
	rc.Packages = []string{"linux-binary-7.3-cloud-amd64"}
	stable, _ := candidateFromRelease("7.2.13+deb14-cloud-amd64")
	stable.Packages = []string{"linux-binary-7.2.13+deb14-cloud-amd64"}
	cached := &Kernel{Version: "7.3~rc6-1~exp1"}
	ctx := context.Background()

	fakeAptCache(t, "7.3~rc7-1~exp1")
	if !c.newerBuild(ctx, a, rc, cached) {
		t.Error("rc6 cached, rc7 offered: not refetched")
	}
	if c.newerBuild(ctx, a, stable, &Kernel{Version: "7.2.12-1"}) {
		t.Error("a stable release was compared by version")
	}
	if c.newerBuild(ctx, a, rc, &Kernel{Version: "7.3~rc7-1~exp1"}) {
		t.Error("the same build refetched")
	}
	fakeAptCache(t, "")
	if c.newerBuild(ctx, a, rc, cached) {
		t.Error("refetched without an answer from apt")
	}
}

func TestReplaceDir(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, ".fetch-1"), filepath.Join(dir, "7.3-cloud-amd64")
	for _, d := range []string{src, dst} {
		must(t, os.MkdirAll(d, 0o755))
		must(t, os.WriteFile(filepath.Join(d, "kernel.json"), []byte(d), 0o644))
	}
	must(t, replaceDir(src, dst))
	if b, err := os.ReadFile(filepath.Join(dst, "kernel.json")); err != nil || string(b) != src {
		t.Errorf("dst holds %q, %v; want the new build", b, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("left behind: %v", entries)
	}
	// A first fetch: nothing to move aside.
	must(t, os.MkdirAll(src, 0o755))
	must(t, replaceDir(src, filepath.Join(dir, "6.1.0-57-cloud-amd64")))
}
