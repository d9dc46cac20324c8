package vm

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/hugelgupf/vmtest/qemu"
)

// machine is one qemu invocation. The kernel console (ttyS0) is qemu's
// stdio, which vmtest's launcher relays to Console; the channel (ttyS1) is a
// pipe qemu inherits.
type machine struct {
	Arch      Arch
	QEMU      string
	Accel     Accel
	Kernel    string
	Initramfs string
	Append    string
	MemoryMiB int
	CPUs      int
	Console   io.Writer // kernel console and qemu's own messages
}

// kernelCmdline is the guest kernel's command line: console on ttyS0 and
// quiet (every printk on a TCG serial console costs boot time); a panic
// reboots, which -no-reboot turns into qemu exiting. When the caller watches
// the console, the kernel says everything.
func kernelCmdline(a Arch, verbose bool) string {
	console := "console=" + a.profile().console
	if verbose {
		return console + " panic=-1 loglevel=7"
	}
	return console + " panic=-1 quiet loglevel=4"
}

// args are qemu's arguments besides the kernel, initramfs and channel.
func (m machine) args() []string {
	p := m.Arch.profile()
	cpu := cpuFlags(m.Accel)
	if m.Accel == AccelTCG {
		cpu = p.cpuTCG
	}
	return []string{
		"-nodefaults", "-no-user-config", "-no-reboot",
		"-machine", p.machine, "-accel", string(m.Accel), "-cpu", cpu,
		"-smp", strconv.Itoa(m.CPUs), "-m", strconv.Itoa(m.MemoryMiB),
		"-serial", "stdio",
	}
}

// start launches qemu through vmtest's launcher. The channel's bytes go to
// channel until qemu exits; done is closed after the last of them.
// Cancelling ctx kills qemu.
func (m machine) start(ctx context.Context, channel io.Writer) (vm *qemu.VM, done <-chan error, err error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, nil, fmt.Errorf("channel pipe: %w", err)
	}
	withChannel := func(_ *qemu.IDAllocator, o *qemu.Options) error {
		fd := o.AddFile(pw)
		if m.Arch.profile().channelUART {
			o.AppendQEMU("-serial", fmt.Sprintf("file:/dev/fd/%d", fd))
			return nil
		}
		// One UART on the board: the channel is a virtio console.
		o.AppendQEMU("-chardev", fmt.Sprintf("file,id=ringvm,path=/dev/fd/%d", fd),
			"-device", "virtio-serial-pci", "-device", "virtconsole,chardev=ringvm")
		return nil
	}
	vm, err = qemu.StartContext(ctx, qemu.Arch(m.Arch),
		qemu.WithQEMUCommand(m.QEMU),
		qemu.WithKernel(m.Kernel),
		qemu.WithInitramfs(m.Initramfs),
		qemu.WithAppendKernel(m.Append),
		qemu.WithSerialOutput(nopCloser{m.Console}),
		qemu.ArbitraryArgs(m.args()...),
		withChannel,
	)
	pw.Close() // qemu holds its own copy; EOF comes when qemu exits
	if err != nil {
		pr.Close()
		return nil, nil, fmt.Errorf("starting qemu: %w", err)
	}
	ch := make(chan error, 1)
	go func() {
		_, err := io.Copy(channel, pr)
		pr.Close()
		ch <- err
		close(ch)
	}()
	return vm, ch, nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
