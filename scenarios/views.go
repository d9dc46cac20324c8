package scenarios

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/ringtrace/ringtrace/tracer/report"
)

// writeViews writes the report of one trace next to its recording.
func writeViews(rep *report.Report, dir, base string) ([]string, error) {
	path := filepath.Join(dir, base+".txt")
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("write report: %w", err)
	}
	defer f.Close()
	if err := rep.WriteText(f, report.TextOptions{Frames: true, AllCalls: true}); err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return []string{path}, nil
}
