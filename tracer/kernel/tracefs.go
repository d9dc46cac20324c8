package kernel

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/ringtrace/ringtrace/tracer/inputerr"
)

// DefaultTracefs is where tracefs lives on current kernels.
const DefaultTracefs = "/sys/kernel/tracing"

const tracefsMagic = 0x74726163

// Tracefs describes the tracefs mount ringtrace uses.
type Tracefs struct {
	Path    string `json:"path"`
	Mounted bool   `json:"mounted_by_ringtrace"` // we mounted it (and leave it: other tools use it too)
}

// EnsureTracefs returns a usable tracefs at path, mounting it there when
// nothing is mounted yet (`mount -t tracefs nodev <path>`). The old debugfs
// location is accepted as a fallback for the default path.
func EnsureTracefs(path string) (Tracefs, error) {
	if path == "" {
		path = DefaultTracefs
	}
	if isTracefs(path) {
		return Tracefs{Path: path}, nil
	}
	if path == DefaultTracefs && isTracefs("/sys/kernel/debug/tracing") {
		return Tracefs{Path: "/sys/kernel/debug/tracing"}, nil
	}
	st, err := os.Stat(path)
	if err != nil || !st.IsDir() {
		return Tracefs{}, inputerr.New("tracefs is not mounted and %s is not a directory to mount it on: mount it with `mount -t tracefs nodev /sys/kernel/tracing` (kernel needs CONFIG_TRACING)", path)
	}
	if err := unix.Mount("nodev", path, "tracefs", 0, ""); err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			return Tracefs{}, inputerr.Wrap(inputerr.ErrNotPermitted, "tracefs is not mounted and mounting it at %s needs root: run `sudo mount -t tracefs nodev %s` or run ringtrace as root", path, path)
		}
		return Tracefs{}, inputerr.New("tracefs is not mounted and `mount -t tracefs nodev %s` failed: %v (kernel without CONFIG_TRACING?)", path, err)
	}
	if !isTracefs(path) {
		return Tracefs{}, fmt.Errorf("mounted tracefs at %s but it does not look like tracefs", path)
	}
	return Tracefs{Path: path, Mounted: true}, nil
}

func isTracefs(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Type == tracefsMagic
}
