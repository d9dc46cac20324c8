package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
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

// fdObjects adds to progs and maps the IDs of the BPF programs (held
// directly or through links) and maps that process pid has open, from
// /proc/PID/fdinfo.
func fdObjects(pid string, progs, maps map[uint32]bool) {
	dir := "/proc/" + pid + "/fdinfo/"
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		b, err := os.ReadFile(dir + e.Name())
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			k, v, _ := strings.Cut(line, ":")
			id, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
			switch {
			case err != nil:
			case k == "prog_id":
				progs[uint32(id)] = true
			case k == "map_id":
				maps[uint32(id)] = true
			}
		}
	}
}

// heldObjects are the BPF programs and maps some live process has open:
// other users of the machine may load programs while a test runs.
func heldObjects() (progs, maps map[uint32]bool) {
	progs, maps = map[uint32]bool{}, map[uint32]bool{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err == nil {
			fdObjects(e.Name(), progs, maps)
		}
	}
	return progs, maps
}

// programName is the name of BPF program id, "" once it is gone.
func programName(id uint32) string {
	p, err := ebpf.NewProgramFromID(ebpf.ProgramID(id))
	if err != nil {
		return ""
	}
	defer p.Close()
	info, err := p.Info()
	if err != nil {
		return ""
	}
	return info.Name
}

// holdersLoadBound is how soon after its ready file `ringtrace trace` must
// hold the stuck-frame iterator: the default --stuck-after, the earliest a
// stuck check can fire after a frame is sent; readyTimeout where attaching
// is slow (RINGTRACE_TEST_READY_TIMEOUT).
func holdersLoadBound(t *testing.T) time.Duration {
	t.Helper()
	if os.Getenv("RINGTRACE_TEST_READY_TIMEOUT") != "" {
		return readyTimeout(t)
	}
	return time.Second
}

// waitHolders waits for the trace process pid to hold the stuck-frame
// iterator, without any frame stuck, and returns its program ID.
func waitHolders(t *testing.T, pid int, stderr fmt.Stringer) uint32 {
	t.Helper()
	bound := holdersLoadBound(t)
	seen := map[uint32]bool{} // each program's name is read once: the poll must not steal a TCG guest's one CPU
	for start := time.Now(); ; time.Sleep(10 * time.Millisecond) {
		progs := map[uint32]bool{}
		fdObjects(strconv.Itoa(pid), progs, map[uint32]bool{})
		for id := range progs {
			if seen[id] {
				continue
			}
			seen[id] = true
			if name := programName(id); name == "holders" || name == "holders_bounded" {
				t.Logf("stuck-frame iterator (program %d) loaded %v after the ready file", id, time.Since(start).Round(time.Millisecond))
				return id
			}
		}
		if time.Since(start) > bound {
			t.Fatalf("no stuck-frame iterator loaded %v after the ready file: %s", bound, stderr.String())
		}
	}
}

// TestTraceReleasesEverything: `ringtrace trace` (and `top`, with its
// metrics endpoint) loads the stuck-frame iterator right after attaching,
// before any frame could be stuck; however it ends — SIGINT, SIGTERM or
// SIGKILL — every BPF program and map it loaded, that iterator included,
// is gone afterwards (links die with their programs) and nothing is pinned.
func TestTraceReleasesEverything(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	bin := buildBinary(t)
	for _, run := range [][]string{
		{"trace", "--duration", "2m", "--summary"},
		{"top", "-b", "--metrics-addr", "127.0.0.1:0"},
	} {
		for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGKILL} {
			t.Run(run[0]+"/"+sig.String(), func(t *testing.T) { releasesEverything(t, bin, run, sig) })
		}
	}
}

func releasesEverything(t *testing.T, bin string, run []string, sig syscall.Signal) {
	beforeProgs, beforeMaps := bpfObjects(t)
	beforePins := pinned()
	cmd, errb := startAttached(t, bin, run[0], run[1:]...)
	holders := waitHolders(t, cmd.Process.Pid, errb)
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
	if !slices.Contains(mine, holders) {
		t.Fatalf("the stuck-frame iterator %d is not among the programs the tracer loaded: %v", holders, mine)
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
	// after an RCU grace period: give it a moment. What another
	// live process holds was not the tracer's.
	var left []uint32
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		progs, maps := bpfObjects(t)
		heldProgs, heldMaps := heldObjects()
		left = left[:0]
		for _, id := range mine {
			if progs[id] && !heldProgs[id] {
				left = append(left, id)
			}
		}
		for _, id := range myMaps {
			if maps[id] && !heldMaps[id] {
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
