package vm

import (
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
	a := c.apt()
	if c.recentlyMissing(a, "x") {
		t.Error("missing before marked")
	}
	c.markMissing(a, "x")
	if !c.recentlyMissing(a, "x") {
		t.Error("not missing after marked")
	}
}
