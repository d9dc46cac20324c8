package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
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

// TestProbeHoldsNoKernelAddresses: `probe --json` names the symbols it
// resolved with their types and sizes but no address; --kernel-addresses
// prints them.
func TestProbeHoldsNoKernelAddresses(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: kallsyms shows addresses to root only")
	}
	bin := buildBinary(t)
	for _, keep := range []bool{false, true} {
		args := []string{"probe", "--json"}
		if keep {
			args = append(args, "--kernel-addresses")
		}
		out, err := exec.Command(bin, args...).Output()
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		var got struct {
			Kernel struct {
				Symbols map[string]struct {
					Addr uint64 `json:"addr"`
					Size uint64 `json:"size"`
				} `json:"symbols"`
			} `json:"kernel"`
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		s, ok := got.Kernel.Symbols["packet_sendmsg"]
		hits := kaddr.FindText(out, "stdout")
		t.Logf("--kernel-addresses %v: %d symbols, %d kernel addresses", keep, len(got.Kernel.Symbols), len(hits))
		switch {
		case !ok:
			t.Errorf("%v: packet_sendmsg is not among the symbols", args)
		case !keep && (len(hits) > 0 || s.Addr != 0 || s.Size == 0):
			t.Errorf("%v: packet_sendmsg %+v, kernel addresses %v", args, s, hits)
		case keep && (len(hits) == 0 || !kaddr.Kernel(s.Addr)):
			t.Errorf("%v: packet_sendmsg %+v, %d kernel addresses", args, s, len(hits))
		}
	}
}
