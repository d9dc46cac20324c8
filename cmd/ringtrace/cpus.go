package main

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// pinProcess keeps every thread of this process on cpus: each thread that
// exists is pinned, and a thread inherits the affinity of the one that
// creates it. A thread created while the list is read may have been
// cloned from one not yet pinned: the pass repeats until it pins none.
// (sched_setaffinity on the pid alone pins only the first thread; the Go
// runtime's reader and sweep may run on any other.)
func pinProcess(cpus []int) error {
	var set unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	for pass := 0; pass < 10; pass++ {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return fmt.Errorf("list this process's threads: %w", err)
		}
		pinned := 0
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			var cur unix.CPUSet
			if unix.SchedGetaffinity(tid, &cur) == nil && cur == set {
				continue
			}
			if err := unix.SchedSetaffinity(tid, &set); err != nil && err != unix.ESRCH {
				return fmt.Errorf("pin thread %d to CPUs %v: %w", tid, cpus, err)
			}
			pinned++
		}
		if pinned == 0 {
			return nil
		}
	}
	return fmt.Errorf("pin to CPUs %v: threads kept appearing unpinned", cpus)
}
