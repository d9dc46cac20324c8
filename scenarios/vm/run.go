package vm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/ringtrace/ringtrace/tracer/inputerr"
)

// Result is what one run did.
type Result struct {
	Kernel   *Kernel       // the exact build that ran
	Accel    Accel         // tcg or kvm
	ExitCode int           // the command's exit status
	Boot     time.Duration // qemu start to command start
	Command  time.Duration // command start to its exit status
	Total    time.Duration // qemu start to qemu gone
	Console  string        // the last 16 KiB of the kernel console
}

// ErrTimeout is wrapped by the error of a run killed after Options.Timeout.
var ErrTimeout = errors.New("guest timed out")

// guestGrace is how long after the host's timeout the guest powers itself
// off: a backstop for a runner killed outright (SIGKILL), which cannot kill
// its qemu.
const guestGrace = 30 * time.Second

// maxInitramfs bounds what the guest's RAM-backed root can hold.
const maxInitramfs = 2 << 30

// Run boots the selected kernel and runs o.Command in it. It returns the
// command's exit status in Result (a non-zero status is not an error). Errors
// are input errors (inputerr), ErrTimeout, ctx's error, or failures of the
// host tools, the download or the guest. A Result is returned with a
// timeout or guest failure too, for its Kernel and Console.
func Run(ctx context.Context, o Options) (*Result, error) {
	sel, err := o.validate()
	if err != nil {
		return nil, err
	}
	log := o.Log
	if log == nil {
		log = io.Discard
	}
	cache := o.Cache
	if cache == nil {
		dir, err := DefaultCacheDir()
		if err != nil {
			return nil, err
		}
		cache = &Cache{Dir: dir, Log: log}
	}
	tools, err := ensureTools(ctx, append(append([]hostTool{}, toolsFetch...), bootTools(sel.Arch)...), o.InstallMissing, log)
	if err != nil {
		return nil, err
	}
	k, err := cache.Kernel(ctx, sel)
	if err != nil {
		return nil, err
	}
	busybox := tools["busybox"]
	if sel.Arch != HostArch() {
		if busybox, err = cache.Busybox(ctx, sel.Arch); err != nil {
			return &Result{Kernel: k}, err
		}
	}
	tmp, err := makeTempDir()
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	initrd := filepath.Join(tmp, "initramfs.cpio")
	nonce, size, err := writeInitramfs(ctx, o, k, busybox, tools["busybox"], initrd)
	if err != nil {
		return &Result{Kernel: k}, err
	}
	m := machine{
		Arch: sel.Arch, QEMU: tools[sel.Arch.profile().qemu], Kernel: k.Image, Initramfs: initrd,
		Append: kernelCmdline(sel.Arch, o.Console != nil), MemoryMiB: o.MemoryMiB, CPUs: o.CPUs,
	}
	if m.MemoryMiB == 0 {
		m.MemoryMiB = 1024 + int(2*size>>20)
	}
	var why string
	if sel.Arch != HostArch() {
		m.Accel, why = AccelTCG, fmt.Sprintf("an %s guest on an %s host", sel.Arch, HostArch())
	} else {
		m.Accel, why = chooseAccel(ctx, o.Accel, m.QEMU, cache.Dir)
	}
	fmt.Fprintf(log, "ringvm: booting %s (%s: %s)\n", k, m.Accel, why)
	res, err := boot(ctx, m, nonce, o)
	if errors.Is(err, errNoStart) && retryBoot(ctx, &m, o.Accel, cache.Dir, err, log) {
		res, err = boot(ctx, m, nonce, o)
	}
	res.Kernel = k
	return res, err
}

// retryBoot decides whether a guest that died before the command started
// is booted once more: under TCG (a rare emulator crash during boot), or
// under TCG instead of KVM when auto chose KVM (which is then marked
// broken). A forced KVM is not retried.
func retryBoot(ctx context.Context, m *machine, want Accel, cacheDir string, err error, log io.Writer) bool {
	switch {
	case m.Accel == AccelKVM && want == AccelAuto:
		fmt.Fprintf(log, "ringvm: %v\nringvm: KVM does not work here; booting again under TCG\n", err)
		forgetKVM(ctx, m.QEMU, cacheDir, err.Error())
		m.Accel = AccelTCG
		return true
	case m.Accel == AccelTCG:
		fmt.Fprintf(log, "ringvm: %v\nringvm: booting once more\n", err)
		return true
	}
	return false
}

// writeInitramfs builds the guest's root file system into dst and returns
// the run's nonce and the archive's file bytes. busybox is the guest's;
// hostBusybox, the same build for the host, lists its applets.
func writeInitramfs(ctx context.Context, o Options, k *Kernel, busybox, hostBusybox, dst string) (string, int64, error) {
	p := o.Arch.profile()
	mods, err := kernelModules(ctx, k, p.channelModules, o.Modules)
	if err != nil {
		return "", 0, err
	}
	applets, err := busyboxApplets(ctx, hostBusybox)
	if err != nil {
		return "", 0, err
	}
	nonce, err := newNonce()
	if err != nil {
		return "", 0, err
	}
	g := guestRoot{
		Busybox: busybox, Applets: applets, Command: o.Command, Modules: mods,
		Binaries: o.Binaries, Shares: o.Shares,
		Init: initParams{Marker: markerTag + nonce + ":", Release: k.Release, Workdir: o.Workdir, Channel: p.channel,
			Deadline: int((o.Timeout + guestGrace).Seconds())},
	}
	r, err := g.build()
	if err != nil {
		return "", 0, err
	}
	if r.Size() > maxInitramfs {
		return "", 0, inputerr.New("the guest's files come to %d MiB, more than the %d MiB a RAM root can hold: share less", r.Size()>>20, maxInitramfs>>20)
	}
	if err := r.WriteFile(dst); err != nil {
		return "", 0, err
	}
	return nonce, r.Size(), nil
}
