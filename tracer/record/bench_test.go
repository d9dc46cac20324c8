package record_test

import (
	"errors"
	"io"
	"path/filepath"
	"testing"

	"github.com/ringtrace/ringtrace/tracer/record"
)

// BenchmarkWrite measures the writer's work per record, with the kernel's
// pointers kept and replaced by pseudonyms, over the records of every
// testdata recording.
func BenchmarkWrite(b *testing.B) {
	files, _ := filepath.Glob(filepath.Join(recordingsDir, "*.rtrec"))
	var recs [][]byte
	for _, f := range files {
		r, err := record.Open(f)
		if err != nil {
			b.Fatal(err)
		}
		for {
			rec, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			recs = append(recs, append([]byte(nil), rec...))
		}
		r.Close()
	}
	for _, keep := range []bool{true, false} {
		name := "pseudonyms"
		if keep {
			name = "kernel-addresses"
		}
		b.Run(name, func(b *testing.B) {
			w, err := record.NewWriter(io.Discard, record.Header{Tool: "bench", KernelAddresses: keep}, record.Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if err := w.Write(recs[i%len(recs)]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
