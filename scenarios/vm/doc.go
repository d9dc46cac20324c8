// Package vm boots another Linux kernel under qemu and runs one shell command
// in it as root, so that ringtrace can be checked on several kernels from one
// host (`make vm`, later `make vmtest`).
//
// It owns the whole path and nothing else:
//   - resolving a kernel selector ("5.10", "6.1", "6.12.95", "6.12.117",
//     "7.2", "7.3", "next", or an exact release; "7.2@arm64" for an arm64
//     guest, Arch) to the newest Debian cloud kernel apt offers for that
//     architecture (experimental's release candidates included),
//     through a private apt sources list (the system's sources are never
//     touched), and caching the extracted kernel outside the repository
//     (ParseSelector, Cache);
//   - building a busybox initramfs that carries the kernel's modules the lab
//     needs, the binaries and directories the caller shares, and an /init that
//     mounts proc, sys, devtmpfs, tracefs, debugfs and bpffs (Initramfs,
//     initScript);
//   - launching qemu (amd64: TCG with -cpu max,-cx16, or KVM when a cached
//     probe shows it works; arm64: qemu-system-aarch64 -M virt under TCG with
//     -cpu max,pauth-impdef=on, and Debian's arm64 busybox-static) through
//     github.com/hugelgupf/vmtest/qemu, without 9p;
//   - reading the command's output and exit status back from a second serial
//     port (arm64's board has one UART: a virtio console) framed with per-run
//     markers (Channel), separate from the kernel console.
//
// Run is the entry point. docs/vm.md records why it is built this way and what
// it measured.
package vm
