// Package outfile opens the files ringtrace writes for the user:
// recordings, text reports, Perfetto traces, HTML pages. They hold what a
// trace saw of the machine (processes, sockets, kernel facts), so, like
// perf's perf.data, they are readable and writable by their owner only.
package outfile

import (
	"fmt"
	"io/fs"
	"os"
)

// Mode is the permission of every output file.
const Mode fs.FileMode = 0o600

// Create creates or truncates path for writing, like os.Create, with Mode;
// an existing file gets Mode too (Private).
func Create(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, Mode)
	if err != nil {
		return nil, err
	}
	if err := Private(f); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Open opens path for writing without truncating it, creating it with
// Mode: a file checked before any work is done, written (after Private)
// only when that work succeeded.
func Open(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE, Mode)
}

// Private narrows an existing regular file's permission to Mode, so that
// what is written into it now is as private as a new file's. Other files
// (a terminal, a pipe, /dev/null) are left as they are.
func Private(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&^Mode == 0 {
		return nil
	}
	if err := f.Chmod(Mode); err != nil {
		return fmt.Errorf("make %s private (mode %o): %w", f.Name(), Mode, err)
	}
	return nil
}
