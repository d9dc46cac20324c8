package scenarios

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/ringtrace/ringtrace/tracer/outfile"
	"github.com/ringtrace/ringtrace/tracer/report"
)

// writeViews writes the views of one trace next to its recording: the text
// report (every frame, every call), the Perfetto trace and the HTML page.
// It returns the files it wrote.
func writeViews(rep *report.Report, dir, base string) ([]string, error) {
	views := []struct {
		ext   string
		write func(io.Writer) error
	}{
		{".txt", func(w io.Writer) error {
			return rep.WriteText(w, report.TextOptions{Frames: true, AllCalls: true})
		}},
		{".perfetto.json", rep.WritePerfetto},
		{".html", rep.WriteHTML},
	}
	var files []string
	for _, v := range views {
		path := filepath.Join(dir, base+v.ext)
		if err := writeFile(path, v.write); err != nil {
			return files, err
		}
		files = append(files, path)
	}
	return files, nil
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := outfile.Create(path)
	if err != nil {
		return fmt.Errorf("write view: %w", err)
	}
	if err := errors.Join(write(f), f.Close()); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
