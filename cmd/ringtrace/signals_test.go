package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
)

// bpfObjects lists the IDs of every loaded BPF program and map.
func bpfObjects(t *testing.T) (progs, maps map[uint32]bool) {
	t.Helper()
	progs, maps = map[uint32]bool{}, map[uint32]bool{}
	for id := ebpf.ProgramID(0); ; {
		next, err := ebpf.ProgramGetNextID(id)
		if err != nil {
			break
		}
		progs[uint32(next)], id = true, next
	}
	for id := ebpf.MapID(0); ; {
		next, err := ebpf.MapGetNextID(id)
		if err != nil {
			break
		}
		maps[uint32(next)], id = true, next
	}
	return progs, maps
}

// pinned lists what is pinned under the BPF filesystem, if it is mounted.
func pinned() []string {
	var out []string
	filepath.Walk("/sys/fs/bpf", func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// TestTraceReleasesEverything: however `ringtrace trace` ends — SIGINT,
// SIGTERM or SIGKILL — every BPF program and map it loaded is gone
// afterwards (links die with their programs) and nothing is pinned.
func TestTraceReleasesEverything(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	bin := buildBinary(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			beforeProgs, beforeMaps := bpfObjects(t)
			beforePins := pinned()
			ready := filepath.Join(t.TempDir(), "ready")
			cmd := exec.Command(bin, "trace", "--duration", "2m", "--ready-file", ready, "--summary")
			var errb bytes.Buffer
			cmd.Stderr = &errb
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			waitReady(t, ready, &errb)
			progs, maps := bpfObjects(t)
			var mine []uint32
			for id := range progs {
				if !beforeProgs[id] {
					mine = append(mine, id)
				}
			}
			var myMaps []uint32
			for id := range maps {
				if !beforeMaps[id] {
					myMaps = append(myMaps, id)
				}
			}
			if len(mine) == 0 || len(myMaps) == 0 {
				t.Fatalf("the tracer loaded %d programs and %d maps: nothing to check", len(mine), len(myMaps))
			}
			cmd.Process.Signal(sig)
			err := cmd.Wait()
			if sig != syscall.SIGKILL && err != nil {
				t.Errorf("%v: %v, stderr %q", sig, err, errb.String())
			}
			if s := errb.String(); strings.Contains(s, "panic") || strings.Contains(s, "goroutine ") {
				t.Errorf("stderr: %s", s)
			}
			// The kernel frees programs once their last reference goes,
			// after an RCU grace period: give it a moment.
			var left []uint32
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
				progs, maps := bpfObjects(t)
				left = left[:0]
				for _, id := range mine {
					if progs[id] {
						left = append(left, id)
					}
				}
				for _, id := range myMaps {
					if maps[id] {
						left = append(left, id)
					}
				}
				if len(left) == 0 || time.Now().After(deadline) {
					break
				}
			}
			if len(left) > 0 {
				t.Errorf("after %v, %d of its %d programs and %d maps are still loaded: %v", sig, len(left), len(mine), len(myMaps), left)
			}
			if got := pinned(); len(got) != len(beforePins) {
				t.Errorf("pinned objects before %v, after %v", beforePins, got)
			}
		})
	}
}

// TestLostEventsShown: with a 4 KiB ring buffer a burst of frames overflows
// it; the loss is reported on stderr while tracing and in the summary line
// and is never silent. (tracer/session counts it exactly.)
func TestLostEventsShown(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	bin := buildBinary(t)
	// A second of settling: the loss watcher reports about once a second.
	out, errs := traceWhileSending(t, bin, []string{"--ringbuf-size", "4k", "--json", "--duration", "2m"},
		[]string{"--frames", "1024", "--count", "8192", "--size", "60"}, time.Second)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var sum struct {
		Event string `json:"event"`
		Lost  uint64 `json:"lost"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil || sum.Event != "summary" {
		t.Fatalf("last line %q: %v", lines[len(lines)-1], err)
	}
	if sum.Lost == 0 {
		t.Fatalf("no events lost with a 4 KiB ring buffer and %d lines out", len(lines))
	}
	if !strings.Contains(errs, "LOST") {
		t.Errorf("stderr does not report the loss: %q", errs)
	}
	t.Logf("lost %d events, %d lines streamed", sum.Lost, len(lines))
}
