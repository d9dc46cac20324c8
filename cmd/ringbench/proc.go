package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/ringtrace/ringtrace/scenarios/lab"
	"github.com/ringtrace/ringtrace/tracer/inputerr"
)

// awaitReady waits until the file at path exists (a tracer's --ready-file)
// or, when attached is not nil, until it says the tracer is attached. It
// fails when p exits first (seen as a zombie in /proc, so its owner can
// still Wait for it) or after timeout. The caller adds the tracer's output
// once it has waited for it (its stderr is being copied until then).
func awaitReady(p *os.Process, path string, attached func() bool, timeout time.Duration) error {
	for deadline := time.Now().Add(timeout); ; time.Sleep(5 * time.Millisecond) {
		if attached != nil && attached() {
			return nil
		}
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if exited(p.Pid) {
			return fmt.Errorf("tracer exited before it was ready")
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("tracer not ready after %v", timeout)
		}
	}
}

// exited reports whether pid has ended (a zombie, or gone).
func exited(pid int) bool {
	f := statFields(strconv.Itoa(pid))
	return len(f) == 0 || f[0] == "Z" || f[0] == "X"
}

// statFields returns the fields of /proc/PID/stat after the parenthesised
// comm (state, ppid, …, utime at 11, stime at 12), nil if it is gone.
func statFields(pid string) []string {
	b, err := os.ReadFile(filepath.Join("/proc", pid, "stat"))
	if err != nil {
		return nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(s[i+1:])
}

// benchLab makes a fresh lab (after removing stale ones) and a scratch
// directory; done removes both.
func benchLab(prefix string) (l *lab.Lab, dir string, done func(), err error) {
	if _, err := lab.CleanStale(); err != nil {
		return nil, "", nil, err
	}
	if l, err = lab.New(lab.Config{}); err != nil {
		return nil, "", nil, err
	}
	if dir, err = os.MkdirTemp("", prefix); err != nil {
		l.Close()
		return nil, "", nil, err
	}
	return l, dir, func() { os.RemoveAll(dir); l.Close() }, nil
}

// clockTicks is USER_HZ, the unit of utime/stime in /proc/PID/stat (100 on
// every Linux architecture Go supports).
const clockTicks = 100

// treeCPU returns the user and system CPU seconds used so far by pid and all
// its live descendants (trafgen forks its workers), from /proc/*/stat.
func treeCPU(root int) (user, sys float64) {
	type proc struct{ ppid, ut, st int }
	procs := map[int]proc{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f := statFields(e.Name())
		if len(f) < 13 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		ut, _ := strconv.Atoi(f[11])
		st, _ := strconv.Atoi(f[12])
		procs[pid] = proc{ppid, ut, st}
	}
	in := map[int]bool{root: true}
	for changed := true; changed; {
		changed = false
		for pid, p := range procs {
			if !in[pid] && in[p.ppid] {
				in[pid], changed = true, true
			}
		}
	}
	var ut, st int
	for pid := range in {
		ut += procs[pid].ut
		st += procs[pid].st
	}
	return float64(ut) / clockTicks, float64(st) / clockTicks
}

// procStatusBytes reads a kB field of /proc/PID/status ("VmRSS:") in bytes,
// 0 if the process or the field is gone.
func procStatusBytes(pid int, field string) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, field) {
			if f := strings.Fields(l); len(f) >= 2 {
				kb, _ := strconv.ParseUint(f[1], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// rootAndRingtrace checks that a benchmark runs as root and finds the
// ringtrace binary it measures (--ringtrace).
func rootAndRingtrace(c *cli.Context, what string) (string, error) {
	if os.Geteuid() != 0 {
		return "", inputerr.New("the %s benchmark needs root", what)
	}
	rt, err := exec.LookPath(c.String("ringtrace"))
	if err != nil {
		return "", inputerr.New("ringtrace binary %q not found (run make build)", c.String("ringtrace"))
	}
	return rt, nil
}

// otherCPUs are the CPUs tracers run on: all but the sender's (or the
// sender's, on a machine of one).
func otherCPUs(sender int) []int {
	var others []int
	for i := 0; i < numCPU(); i++ {
		if i != sender {
			others = append(others, i)
		}
	}
	if len(others) == 0 {
		others = []int{sender}
	}
	return others
}

// startPinned starts cmd with every one of its threads on cpus. It is
// forked from a thread pinned there, and a thread inherits the affinity of
// the one that creates it. (Pinning the child's pid after it started pins
// its first thread only: the Go runtime's other threads, and those they
// create, ran on the sender's CPU too.)
func startPinned(cmd *exec.Cmd, cpus []int) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var old, set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		return err
	}
	for _, c := range cpus {
		set.Set(c)
	}
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("pin to CPUs %v: %w", cpus, err)
	}
	defer unix.SchedSetaffinity(0, &old)
	return cmd.Start()
}
