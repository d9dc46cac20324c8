package vm

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ringtrace/ringtrace/tracer/inputerr"
)

// Options describe one run. Kernel and Command are required.
type Options struct {
	// Kernel selects the kernel: "5.10", "6.1", "6.12.95", "6.12.117", "7.2",
	// or an exact release, optionally with "@arm64" (see ParseSelector).
	Kernel string
	// Arch is the guest's architecture: "" is the selector's (by default
	// the host's); a foreign one runs under TCG.
	Arch Arch
	// Command is run by busybox sh as root in the guest, stdin /dev/null.
	Command string
	// Shares are host directories copied into the guest at the same absolute
	// path. Writes in the guest are not copied back.
	Shares []string
	// Binaries are host executables (static: the guest has no libc) put in
	// /usr/local/bin, which is on PATH.
	Binaries []string
	// Modules are loaded besides labModules (names, e.g. "sch_netem").
	Modules []string
	// Timeout kills a guest that has not finished; 0 means DefaultTimeout.
	Timeout time.Duration
	// Accel is "" or AccelAuto, AccelTCG or AccelKVM.
	Accel Accel
	// MemoryMiB is the guest's memory; 0 sizes it for the initramfs.
	MemoryMiB int
	// CPUs is the guest's CPU count; 0 means 1. With two, qemu 7.2's
	// multi-threaded TCG kills guests while probes are switched on and off
	// (stale translated code after cross-CPU text patching: an "Oops: int3"
	// or a kernel panic), which is what ringtrace does.
	CPUs int
	// Workdir is the command's working directory in the guest; "" means the
	// host's working directory if it is inside a share, else "/".
	Workdir string

	// Stdout receives the command's stdout and stderr as they arrive.
	Stdout io.Writer
	// Log receives progress messages (resolving, downloading, booting).
	Log io.Writer
	// Console, if set, receives the kernel console live.
	Console io.Writer

	// Cache holds kernels; nil means DefaultCacheDir().
	Cache *Cache
	// InstallMissing lets the runner apt-get install missing host packages.
	InstallMissing bool
}

// minMemoryMiB: Debian cloud kernels with this initramfs do not boot in less.
const minMemoryMiB = 256

// DefaultTimeout is the guest time limit when Options.Timeout is 0.
const DefaultTimeout = 600 * time.Second

// forbiddenShares are guest paths that /init mounts over or owns.
var forbiddenShares = []string{"/", "/proc", "/sys", "/dev", "/ringvm", "/bin", "/init"}

// validate checks the caller's input and fills in defaults. Problems are
// input errors.
func (o *Options) validate() (Selector, error) {
	sel, err := ParseSelector(o.Kernel)
	if err != nil {
		return sel, err
	}
	if o.Arch != "" {
		a, err := ParseArch(string(o.Arch))
		if err != nil {
			return sel, err
		}
		if sel, err = sel.WithArch(a); err != nil {
			return sel, err
		}
	}
	o.Arch = sel.Arch
	if strings.TrimSpace(o.Command) == "" {
		return sel, inputerr.New("no command given (CMD='…')")
	}
	if o.Timeout < 0 {
		return sel, inputerr.New("timeout %s is negative", o.Timeout)
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Accel, err = ParseAccel(string(o.Accel)); err != nil {
		return sel, err
	}
	if o.Accel == AccelKVM && sel.Arch != HostArch() {
		return sel, inputerr.New("KVM cannot run an %s guest on this %s host: use tcg or auto", sel.Arch, HostArch())
	}
	if o.CPUs < 0 || o.MemoryMiB < 0 {
		return sel, inputerr.New("CPUs and memory must not be negative")
	}
	if o.MemoryMiB != 0 && o.MemoryMiB < minMemoryMiB {
		return sel, inputerr.New("guest memory %d MiB is too small: give at least %d", o.MemoryMiB, minMemoryMiB)
	}
	if o.CPUs == 0 {
		o.CPUs = 1
	}
	for i, s := range o.Shares {
		if o.Shares[i], err = validShare(s); err != nil {
			return sel, err
		}
	}
	for i, b := range o.Binaries {
		if o.Binaries[i], err = validBinary(b, sel.Arch); err != nil {
			return sel, err
		}
	}
	if o.Workdir == "" {
		o.Workdir = defaultWorkdir(o.Shares)
	}
	if !filepath.IsAbs(o.Workdir) {
		return sel, inputerr.New("guest working directory %q is not absolute", o.Workdir)
	}
	return sel, nil
}

func validShare(s string) (string, error) {
	abs, err := filepath.Abs(s)
	if err != nil {
		return "", inputerr.Wrap(err, "share %q: %v", s, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return "", inputerr.Wrap(err, "share %s: %v", abs, err)
	}
	if !fi.IsDir() {
		return "", inputerr.New("share %s is not a directory", abs)
	}
	for _, f := range forbiddenShares {
		if abs == f || (f != "/" && strings.HasPrefix(abs, f+"/")) {
			return "", inputerr.New("share %s: the guest mounts or owns %s; share a directory elsewhere", abs, f)
		}
	}
	return abs, nil
}

func validBinary(b string, a Arch) (string, error) {
	abs, err := filepath.Abs(b)
	if err != nil {
		return "", inputerr.Wrap(err, "binary %q: %v", b, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return "", inputerr.Wrap(err, "binary %s: %v (build it first, e.g. make build)", abs, err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return "", inputerr.New("binary %s is not an executable file", abs)
	}
	if err := checkStatic(abs); err != nil {
		return "", inputerr.Wrap(err, "%v", err)
	}
	if err := checkMachine(abs, a); err != nil {
		return "", inputerr.Wrap(err, "%v", err)
	}
	return abs, nil
}

// defaultWorkdir is the host's working directory when a share contains it.
func defaultWorkdir(shares []string) string {
	wd, err := os.Getwd()
	if err != nil {
		return "/"
	}
	for _, s := range shares {
		if wd == s || strings.HasPrefix(wd, s+"/") {
			return wd
		}
	}
	return "/"
}
