package report

import (
	"os/exec"
	"strings"
	"testing"
)

// purePackages rebuild, decode and explain traces from data: no kernel, no
// root, so none of them may depend on the BPF library (issue 17).
var purePackages = []string{
	"github.com/ringtrace/ringtrace/tracer/report",
	"github.com/ringtrace/ringtrace/tracer/event",
	"github.com/ringtrace/ringtrace/tracer/record",
	"github.com/ringtrace/ringtrace/tracer/plan",
	"github.com/ringtrace/ringtrace/tracer/promise",
	"github.com/ringtrace/ringtrace/tracer/holders",
	"github.com/ringtrace/ringtrace/tracer/kernel",
	"github.com/ringtrace/ringtrace/tracer/bpfobj/bpftypes",
}

// TestNoBPFLibrary: the pure packages build without cilium/ebpf, directly
// or through another package; a failure names the packages that import it.
func TestNoBPFLibrary(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool to list dependencies with (a test binary in a VM guest)")
	}
	for _, pkg := range purePackages {
		out, err := exec.Command(goTool, "list", "-deps", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", pkg).Output()
		if err != nil {
			msg := err.Error()
			if ee, ok := err.(*exec.ExitError); ok {
				msg += ": " + string(ee.Stderr)
			}
			t.Fatalf("go list -deps %s: %s", pkg, msg)
		}
		var bpf, via []string
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			f := strings.Fields(line)
			if len(f) == 0 {
				continue
			}
			if isBPFLibrary(f[0]) {
				bpf = append(bpf, f[0])
				continue
			}
			for _, imp := range f[1:] {
				if isBPFLibrary(imp) {
					via = append(via, f[0]+" imports "+imp)
					break
				}
			}
		}
		if len(bpf) > 0 {
			t.Errorf("%s depends on %d packages of the BPF library: %s", pkg, len(bpf), strings.Join(via, "; "))
		}
	}
}

func isBPFLibrary(path string) bool {
	return path == "github.com/cilium/ebpf" || strings.HasPrefix(path, "github.com/cilium/ebpf/")
}
