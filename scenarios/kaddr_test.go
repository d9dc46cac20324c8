package scenarios_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringtrace/ringtrace/tracer/kaddr"
)

// leaks are the kernel addresses an output file holds: for a recording the
// numbers of its header and trailer and the words of its records
// (kaddr.FindRecording), and typical pointers at any byte offset of the
// whole file; for the others the numbers of their text.
func leaks(t *testing.T, path string) []kaddr.Hit {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Base(path)
	if !strings.HasSuffix(path, ".rtrec") {
		return kaddr.FindText(b, name)
	}
	hits, err := kaddr.FindRecording(b)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return append(hits, kaddr.FindBytes(b, name)...)
}

// TestOutHoldsNoKernelAddresses runs `ringtrace run status --out DIR` as
// `make demo` does: the recording, text report, Perfetto trace and HTML
// page it writes are private (0600) and none of them, nor what it prints,
// holds a kernel address; `ringtrace report` of the recording is the text
// report the run wrote from the live trace. With --kernel-addresses the
// recording keeps them, which shows the check finds them in a live
// recording.
func TestOutHoldsNoKernelAddresses(t *testing.T) {
	needRoot(t)
	bin := ringtraceBinary(t)
	for _, keep := range []bool{false, true} {
		dir := t.TempDir()
		args := []string{"run", "status", "--out", dir}
		if keep {
			args = append(args, "--kernel-addresses")
		}
		out, err := exec.Command(bin, args...).CombinedOutput()
		// Exit status 1 is a scenario expectation that failed (under
		// emulation, without --rate-scale, the link outruns the CPU):
		// the files it wrote are what this test checks.
		var ee *exec.ExitError
		if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		files, _ := filepath.Glob(filepath.Join(dir, "*"))
		if len(files) != 4 {
			t.Fatalf("%v wrote %v, want status.{rtrec,txt,perfetto.json,html}", args, files)
		}
		checkViews(t, files)
		found := map[string]int{}
		for _, f := range files {
			hits := leaks(t, f)
			found[filepath.Base(f)] = len(hits)
			for _, h := range hits {
				if !keep {
					t.Errorf("kernel address in %s", h)
				}
			}
		}
		for _, h := range kaddr.FindText(out, "output") {
			t.Errorf("kernel address in what %v printed: %s", args, h)
		}
		replayed, err := exec.Command(bin, "report", filepath.Join(dir, "status.rtrec"), "--frames", "--calls").Output()
		if err != nil {
			t.Fatalf("report: %v", err)
		}
		if live, _ := os.ReadFile(filepath.Join(dir, "status.txt")); !bytes.Equal(replayed, live) {
			t.Errorf("%v: the report of the recording differs from the live one:\n%s\nlive:\n%s", args[3:], replayed, live)
		}
		t.Logf("%v: kernel addresses found per file: %v", args[3:], found)
		if keep && found["status.rtrec"] == 0 {
			t.Error("--kernel-addresses: the recording holds no kernel address, or the check misses them")
		}
	}
}
