package vm

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// Kernel is an extracted Debian kernel in the cache.
type Kernel struct {
	Release  string   `json:"release"`  // `uname -r` in the guest, e.g. "6.1.0-56-cloud-amd64"
	Version  string   `json:"version"`  // Debian package version, e.g. "6.1.192-2"
	Packages []string `json:"packages"` // the packages it was extracted from

	Dir     string `json:"-"` // the cache entry
	Image   string `json:"-"` // bzImage to boot
	Modules string `json:"-"` // lib/modules/<release> (or usr/lib/…)
	Config  string `json:"-"` // kernel config, "" if the packages have none
}

// String is how the runner names the kernel that ran.
func (k *Kernel) String() string {
	return fmt.Sprintf("%s (Debian %s)", k.Release, k.Version)
}

const kernelMeta = "kernel.json"

// loadKernel reads a cache entry made by storeKernel.
func loadKernel(dir string) (*Kernel, error) {
	b, err := os.ReadFile(filepath.Join(dir, kernelMeta))
	if err != nil {
		return nil, err
	}
	k := &Kernel{}
	if err := json.Unmarshal(b, k); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, kernelMeta), err)
	}
	k.Dir = dir
	if err := k.locate(); err != nil {
		return nil, err
	}
	return k, nil
}

// storeKernel writes the metadata of a kernel extracted under dir/root.
func storeKernel(dir string, k *Kernel) error {
	b, err := json.MarshalIndent(k, "", "  ")
	if err != nil {
		return fmt.Errorf("kernel metadata: %w", err)
	}
	return os.WriteFile(filepath.Join(dir, kernelMeta), append(b, '\n'), 0o644)
}

// locate finds the image, modules and config in dir/root. Debian moved them
// from /boot and /lib/modules (≤ 6.12 +deb12) to /usr/lib/modules/<release>
// (6.12 +deb13, 7.x).
func (k *Kernel) locate() error {
	root := filepath.Join(k.Dir, "root")
	rel := k.Release
	k.Image = firstExisting(
		filepath.Join(root, "boot", "vmlinuz-"+rel),
		filepath.Join(root, "usr/lib/modules", rel, "vmlinuz"),
		filepath.Join(root, "lib/modules", rel, "vmlinuz"))
	k.Modules = firstExisting(
		filepath.Join(root, "lib/modules", rel),
		filepath.Join(root, "usr/lib/modules", rel))
	k.Config = firstExisting(
		filepath.Join(root, "boot", "config-"+rel),
		filepath.Join(root, "usr/lib/modules", rel, "config"),
		filepath.Join(root, "lib/modules", rel, "config"))
	switch {
	case k.Image == "":
		return fmt.Errorf("kernel %s: no vmlinuz in %s", rel, root)
	case k.Modules == "":
		return fmt.Errorf("kernel %s: no modules directory in %s", rel, root)
	}
	return nil
}

func firstExisting(paths ...string) string {
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}
