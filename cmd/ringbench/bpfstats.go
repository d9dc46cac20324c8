package main

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/cilium/ebpf"
)

// bpfStatsPath switches the kernel's per-program run time accounting. It
// costs two clock reads per program run, so the ratios are measured with
// it off and the breakdown in a run of its own.
const bpfStatsPath = "/proc/sys/kernel/bpf_stats_enabled"

// enableBPFStats turns the accounting on and returns what restores it.
func enableBPFStats() (restore func(), err error) {
	old, err := os.ReadFile(bpfStatsPath)
	if err != nil {
		return nil, fmt.Errorf("kernel.bpf_stats_enabled: %w", err)
	}
	if err := os.WriteFile(bpfStatsPath, []byte("1"), 0); err != nil {
		return nil, fmt.Errorf("enable kernel.bpf_stats_enabled: %w", err)
	}
	return func() { os.WriteFile(bpfStatsPath, old, 0) }, nil
}

// progStat is a BPF program's run count and run time so far.
type progStat struct {
	name string
	runs uint64
	ns   uint64
}

// highestProgID is the newest loaded program's id: programs loaded later
// (a tracer's) have higher ids.
func highestProgID() ebpf.ProgramID {
	var id, last ebpf.ProgramID
	for {
		next, err := ebpf.ProgramGetNextID(id)
		if err != nil {
			return last
		}
		id, last = next, next
	}
}

// progStats reads the run counts of the programs with ids above after.
func progStats(after ebpf.ProgramID) (map[ebpf.ProgramID]progStat, error) {
	out := map[ebpf.ProgramID]progStat{}
	for id := after; ; {
		next, err := ebpf.ProgramGetNextID(id)
		if err != nil {
			return out, nil // no more
		}
		id = next
		p, err := ebpf.NewProgramFromID(id)
		if errors.Is(err, os.ErrNotExist) {
			continue // unloaded meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("program %d: %w", id, err)
		}
		info, err := p.Info()
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("program %d: %w", id, err)
		}
		st, err := p.Stats()
		p.Close()
		if err != nil {
			return nil, fmt.Errorf("program %d: %w", id, err)
		}
		name := info.Name
		if name == "" {
			name = fmt.Sprintf("program %d", id) // the null tracer's
		}
		out[id] = progStat{name: name, runs: st.RunCount, ns: uint64(st.Runtime)}
	}
}

// writeBreakdown prints where the tracer's BPF time went between two
// readings, per unit of the sender's work meanwhile (n frames sent, or n
// calls made): runs per unit, ns per run, ns per unit, busiest first.
func writeBreakdown(mode string, before, after map[ebpf.ProgramID]progStat, n uint64, unit string, d time.Duration) {
	var rows []progStat
	var total uint64
	for id, a := range after {
		b := before[id]
		if a.runs <= b.runs {
			continue
		}
		r := progStat{name: a.name, runs: a.runs - b.runs, ns: a.ns - b.ns}
		rows = append(rows, r)
		total += r.ns
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].ns > rows[j].ns })
	f := float64(max(n, 1))
	fmt.Printf("  %-12s %d %ss in %v: BPF %.0f ns per %s (%.1f%% of a CPU)\n", mode, n, unit, d.Round(time.Millisecond),
		float64(total)/f, unit, 100*float64(total)/float64(d))
	for _, r := range rows {
		if float64(r.ns)/f < 0.5 {
			continue
		}
		fmt.Printf("    %-22s %8.3f runs/%s %8.0f ns/run %8.1f ns/%s\n", strings.TrimSpace(r.name),
			float64(r.runs)/f, unit, float64(r.ns)/float64(r.runs), float64(r.ns)/f, unit)
	}
}
