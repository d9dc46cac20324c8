package vm

import (
	"debug/elf"
	"fmt"
	"runtime"
	"strings"

	"github.com/ringtrace/ringtrace/tracer/inputerr"
)

// Arch is a guest architecture: Debian's name for it, which is also Go's.
type Arch string

const (
	ArchAMD64 Arch = "amd64"
	ArchARM64 Arch = "arm64"
)

// Arches are the architectures the runner boots.
var Arches = []Arch{ArchAMD64, ArchARM64}

// HostArch is the host's architecture, or amd64 on a host the runner has no
// guests for.
func HostArch() Arch {
	if a := Arch(runtime.GOARCH); a == ArchARM64 {
		return a
	}
	return ArchAMD64
}

// ParseArch validates an ARCH value; "" is the host's.
func ParseArch(s string) (Arch, error) {
	switch a := Arch(strings.ToLower(strings.TrimSpace(s))); a {
	case "":
		return HostArch(), nil
	case ArchAMD64, ArchARM64:
		return a, nil
	case "x86_64":
		return ArchAMD64, nil
	case "aarch64":
		return ArchARM64, nil
	}
	return "", inputerr.New("unknown architecture %q: want amd64 or arm64", s)
}

// flavour is the Debian kernel flavour booted on a: small, with BTF, and
// every driver qemu's machine needs built in or in the package.
func (a Arch) flavour() string { return "-cloud-" + string(a) }

// archProfile is what differs between guests of two architectures.
type archProfile struct {
	qemu, qemuPkg string // qemu-system-* and its Debian package
	machine       string // -machine
	cpuTCG        string // -cpu under TCG
	console       string // the kernel console's tty (the board's UART)
	// channel is the guest device /init reports on: a second UART where
	// the board has one (ttyS1 on pc), else a virtio console (hvc0 on
	// virt, which has one UART), whose drivers channelModules load first.
	channel        string
	channelUART    bool
	channelModules []string
	elfMachine     elf.Machine
}

// profile is a's archProfile.
func (a Arch) profile() archProfile {
	if a == ArchARM64 {
		// pauth-impdef: qemu's default (architected) pointer
		// authentication is slow to emulate: boots took 1.5-3x longer.
		return archProfile{
			qemu: "qemu-system-aarch64", qemuPkg: "qemu-system-arm", machine: "virt",
			cpuTCG: "max,pauth-impdef=on", console: "ttyAMA0",
			channel: "/dev/hvc0", channelModules: []string{"virtio_pci", "virtio_console"},
			elfMachine: elf.EM_AARCH64,
		}
	}
	return archProfile{
		qemu: "qemu-system-x86_64", qemuPkg: "qemu-system-x86", machine: "pc",
		cpuTCG: "max,-cx16", console: "ttyS0", channel: "/dev/ttyS1", channelUART: true, elfMachine: elf.EM_X86_64,
	}
}

// checkMachine rejects an executable built for another architecture than
// the guest's.
func checkMachine(path string, a Arch) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer f.Close()
	if want := a.profile().elfMachine; f.Machine != want {
		return fmt.Errorf("%s is built for %s, the guest is %s (build it with GOARCH=%s)", path, f.Machine, a, a)
	}
	return nil
}
