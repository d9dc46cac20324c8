package kernel

// DefaultTracefs is where tracefs lives on current kernels.
const DefaultTracefs = "/sys/kernel/tracing"

// Tracefs describes the tracefs mount ringtrace uses.
type Tracefs struct {
	Path    string `json:"path"`
	Mounted bool   `json:"mounted_by_ringtrace"` // we mounted it (and leave it: other tools use it too)
}
