package kaddr

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/record"
)

// FindRecording returns the kernel addresses a recording holds: numbers in
// its header and trailer JSON, 8-byte words of its records.
func FindRecording(b []byte) ([]Hit, error) {
	r, err := record.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	hits := FindText(r.HeaderJSON, "header")
	for n := 1; ; n++ {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return hits, err
		}
		what := fmt.Sprintf("record %d", n)
		if e, err := event.Decode(rec); err == nil {
			what += " (" + e.Kind.String() + ")"
		}
		hits = append(hits, FindWords(rec, what)...)
	}
	return append(hits, FindText(r.TrailerJSON, "trailer")...), nil
}
