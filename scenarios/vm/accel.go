package vm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ringtrace/ringtrace/tracer/inputerr"
)

// Accel is the qemu accelerator choice: AccelAuto uses KVM when a probe shows
// it works and TCG otherwise; AccelTCG and AccelKVM force one.
type Accel string

const (
	AccelAuto Accel = "auto"
	AccelTCG  Accel = "tcg"
	AccelKVM  Accel = "kvm"
)

// ParseAccel validates a VM_ACCEL value ("" means auto).
func ParseAccel(s string) (Accel, error) {
	switch a := Accel(strings.ToLower(strings.TrimSpace(s))); a {
	case "", AccelAuto:
		return AccelAuto, nil
	case AccelTCG, AccelKVM:
		return a, nil
	}
	return "", inputerr.New("unknown accelerator %q: want auto, tcg or kvm", s)
}

// cpuFlags is qemu's -cpu for an accelerator. Under TCG, cx16 is masked:
// with it Debian 6.12 guests crash at cmpxchg16b in about 2 of 3 boots
// under qemu 7.2.
func cpuFlags(a Accel) string {
	if a == AccelKVM {
		return "host"
	}
	return "max,-cx16"
}

// kvmProbe is the cached verdict on KVM for one host kernel and qemu.
type kvmProbe struct {
	Host    string    `json:"host"`
	QEMU    string    `json:"qemu"`
	Works   bool      `json:"works"`
	Reason  string    `json:"reason"`
	Checked time.Time `json:"checked"`
}

// kvmProbeTTL is how long a verdict is trusted.
const kvmProbeTTL = 7 * 24 * time.Hour

// probeTimeout bounds the probe guest: with working KVM it exits in well
// under a second.
const probeTimeout = 10 * time.Second

// chooseAccel resolves AccelAuto: TCG without a usable /dev/kvm, otherwise
// the cached or freshly probed verdict. The probe boots a 512-byte boot
// sector that writes to isa-debug-exit; on this project's nested hosts qemu
// aborts at once with -cpu host (MSR 0x10a), so the probe costs well under a
// second and its verdict is cached in cacheDir.
func chooseAccel(ctx context.Context, want Accel, qemu, cacheDir string) (Accel, string) {
	if want != AccelAuto {
		return want, "requested"
	}
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return AccelTCG, "no usable /dev/kvm"
	}
	f.Close()
	host := hostRelease()
	ver := qemuVersion(ctx, qemu)
	path := filepath.Join(cacheDir, "kvm-probe.json")
	if p, ok := readProbe(path); ok && p.Host == host && p.QEMU == ver && time.Since(p.Checked) < kvmProbeTTL {
		return accelFor(p.Works), "cached probe: " + p.Reason
	}
	works, reason := probeKVM(ctx, qemu)
	p := kvmProbe{Host: host, QEMU: ver, Works: works, Reason: reason, Checked: time.Now()}
	if b, err := json.Marshal(p); err == nil {
		_ = os.MkdirAll(cacheDir, 0o755)
		_ = os.WriteFile(path, b, 0o644)
	}
	return accelFor(works), "probe: " + reason
}

// forgetKVM records that KVM failed a real boot, so auto stops choosing it.
func forgetKVM(ctx context.Context, qemu, cacheDir, reason string) {
	p := kvmProbe{Host: hostRelease(), QEMU: qemuVersion(ctx, qemu), Works: false, Reason: truncate(reason, 100), Checked: time.Now()}
	if b, err := json.Marshal(p); err == nil {
		_ = os.WriteFile(filepath.Join(cacheDir, "kvm-probe.json"), b, 0o644)
	}
}

func accelFor(kvm bool) Accel {
	if kvm {
		return AccelKVM
	}
	return AccelTCG
}

func readProbe(path string) (kvmProbe, bool) {
	var p kvmProbe
	b, err := os.ReadFile(path)
	if err != nil || json.Unmarshal(b, &p) != nil {
		return p, false
	}
	return p, true
}

// probeExitCode is what qemu exits with when the probe's boot sector writes
// probeByte to isa-debug-exit: (value << 1) | 1.
const (
	probeByte     = 0x21
	probeExitCode = probeByte<<1 | 1
)

// probeBootSector is: mov al, 0x21; out 0xf4, al; cli; hlt; jmp $-1, padded
// to 512 bytes with the 0x55 0xaa boot signature.
func probeBootSector() []byte {
	b := make([]byte, 512)
	copy(b, []byte{0xb0, probeByte, 0xe6, 0xf4, 0xfa, 0xf4, 0xeb, 0xfd})
	b[510], b[511] = 0x55, 0xaa
	return b
}

// probeKVM runs the boot sector under KVM with -cpu host.
func probeKVM(ctx context.Context, qemu string) (bool, string) {
	dir, err := os.MkdirTemp("", "ringvm-kvmprobe-")
	if err != nil {
		return false, err.Error()
	}
	defer os.RemoveAll(dir)
	img := filepath.Join(dir, "boot.img")
	if err := os.WriteFile(img, probeBootSector(), 0o644); err != nil {
		return false, err.Error()
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemu, "-accel", "kvm", "-cpu", cpuFlags(AccelKVM), "-m", "16",
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-device", "isa-debug-exit,iobase=0xf4,iosize=0x01",
		"-drive", "file="+img+",format=raw,if=ide")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return false, fmt.Sprintf("KVM guest did not finish within %s", probeTimeout)
	case errors.As(err, &ee) && ee.ExitCode() == probeExitCode:
		return true, "KVM boots a test guest"
	case err == nil:
		return false, "KVM probe ended without reaching the test code"
	}
	return false, "KVM fails: " + probeMessage(out, err)
}

// probeMessage picks qemu's first line, without the program name.
func probeMessage(out []byte, err error) string {
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			_, msg, ok := strings.Cut(l, ": ")
			if ok && strings.HasPrefix(l, "qemu") {
				return msg
			}
			return l
		}
	}
	return fmt.Sprint(err)
}

func hostRelease() string {
	var u syscall.Utsname
	if syscall.Uname(&u) != nil {
		return ""
	}
	var b []byte
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	return string(b)
}

func qemuVersion(ctx context.Context, qemu string) string {
	out, err := exec.CommandContext(ctx, qemu, "--version").Output()
	if err != nil {
		return ""
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line)
}
