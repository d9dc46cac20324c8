package probe

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/ringtrace/ringtrace/tracer/inputerr"
	"github.com/ringtrace/ringtrace/tracer/kernel"
)

// tracefsMagic is TRACEFS_MAGIC, statfs's f_type of a tracefs mount.
const tracefsMagic = 0x74726163

// EnsureTracefs returns a usable tracefs at path, mounting it there when
// nothing is mounted yet (`mount -t tracefs nodev <path>`). The old debugfs
// location is accepted as a fallback for the default path.
func EnsureTracefs(path string) (kernel.Tracefs, error) {
	if path == "" {
		path = kernel.DefaultTracefs
	}
	if isTracefs(path) {
		return kernel.Tracefs{Path: path}, nil
	}
	if path == kernel.DefaultTracefs && isTracefs("/sys/kernel/debug/tracing") {
		return kernel.Tracefs{Path: "/sys/kernel/debug/tracing"}, nil
	}
	st, err := os.Stat(path)
	if err != nil || !st.IsDir() {
		return kernel.Tracefs{}, inputerr.New("tracefs is not mounted and %s is not a directory to mount it on: mount it with `mount -t tracefs nodev /sys/kernel/tracing` (kernel needs CONFIG_TRACING)", path)
	}
	if err := unix.Mount("nodev", path, "tracefs", 0, ""); err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			return kernel.Tracefs{}, inputerr.Wrap(inputerr.ErrNotPermitted, "tracefs is not mounted and mounting it at %s needs root: run `sudo mount -t tracefs nodev %s` or run ringtrace as root", path, path)
		}
		return kernel.Tracefs{}, inputerr.New("tracefs is not mounted and `mount -t tracefs nodev %s` failed: %v (kernel without CONFIG_TRACING?)", path, err)
	}
	if !isTracefs(path) {
		return kernel.Tracefs{}, fmt.Errorf("mounted tracefs at %s but it does not look like tracefs", path)
	}
	return kernel.Tracefs{Path: path, Mounted: true}, nil
}

func isTracefs(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Type == tracefsMagic
}
