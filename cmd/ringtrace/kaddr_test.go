package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringtrace/ringtrace/tracer/kaddr"
)

// TestTraceHoldsNoKernelAddresses: `trace --json` names sockets by label
// and inode, and neither what it prints nor its --record file (mode 0600)
// holds a kernel address; with --kernel-addresses its JSON names each
// socket's address and the recording keeps them.
func TestTraceHoldsNoKernelAddresses(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	bin := buildBinary(t)
	for _, keep := range []bool{false, true} {
		rec := filepath.Join(t.TempDir(), "t.rtrec")
		args := []string{"--json", "--events", "all", "--duration", "20s", "--record", rec}
		if keep {
			args = append(args, "--kernel-addresses")
		}
		out, errs := traceWhileSending(t, bin, args, []string{"--frames", "4", "--count", "8", "--size", "64"}, 200*time.Millisecond)
		stdout := []byte(out)
		printed := append(kaddr.FindText(stdout, "stdout"), kaddr.FindText([]byte(errs), "stderr")...)
		b, err := os.ReadFile(rec)
		if err != nil {
			t.Fatal(err)
		}
		recorded, err := kaddr.FindRecording(b)
		if err != nil {
			t.Fatal(err)
		}
		recorded = append(recorded, kaddr.FindBytes(b, "recording")...)
		checkPrivate(t, rec)
		frames, withSocket := 0, 0
		for _, l := range bytes.Split(bytes.TrimSpace(stdout), []byte("\n")) {
			var m map[string]any
			if err := json.Unmarshal(l, &m); err != nil {
				t.Fatalf("bad JSON line %q: %v", l, err)
			}
			if m["event"] != "frame_state" {
				continue
			}
			frames++
			if _, ok := m["sock_ino"]; !ok || !strings.HasPrefix(fmt.Sprint(m["sock"]), "sk") {
				t.Errorf("frame_state without sock and sock_ino: %s", l)
			}
			if _, ok := m["socket"]; ok {
				withSocket++
			}
		}
		t.Logf("--kernel-addresses %v: %d frame_state lines, %d with a socket address; kernel addresses printed %d, recorded %d",
			keep, frames, withSocket, len(printed), len(recorded))
		if frames < 24 {
			t.Errorf("%d frame_state lines, want 8 frames x 3 states at least", frames)
		}
		if !keep {
			for _, h := range append(printed, recorded...) {
				t.Errorf("kernel address in %s", h)
			}
			if withSocket > 0 {
				t.Errorf("%d frame_state lines name their socket's address", withSocket)
			}
		} else if withSocket != frames || len(printed) == 0 || len(recorded) == 0 {
			t.Errorf("--kernel-addresses: %d of %d frame_state lines name their socket's address; %d addresses printed, %d recorded",
				withSocket, frames, len(printed), len(recorded))
		}
	}
}
