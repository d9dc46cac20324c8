package outfile_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/ringtrace/ringtrace/tracer/outfile"
)

// mode is path's permission bits.
func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestCreate(t *testing.T) {
	old := syscall.Umask(0) // the mode must not depend on a permissive umask
	defer syscall.Umask(old)
	dir := t.TempDir()
	fresh, existing := filepath.Join(dir, "new"), filepath.Join(dir, "old")
	if err := os.WriteFile(existing, []byte("public"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{fresh, existing} {
		f, err := outfile.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString("secret")
		f.Close()
		if m := mode(t, p); m != 0o600 {
			t.Errorf("%s: mode %o, want 600", filepath.Base(p), m)
		}
		if b, _ := os.ReadFile(p); string(b) != "secret" {
			t.Errorf("%s holds %q", filepath.Base(p), b)
		}
	}
}

// TestOpenThenPrivate: Open creates private files and leaves an existing
// one as it was until Private.
func TestOpenThenPrivate(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := t.TempDir()
	fresh, existing := filepath.Join(dir, "new"), filepath.Join(dir, "old")
	os.WriteFile(existing, []byte("keep"), 0o644)
	f, err := outfile.Open(fresh)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if m := mode(t, fresh); m != 0o600 {
		t.Errorf("new file: mode %o, want 600", m)
	}
	f, err = outfile.Open(existing)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if b, _ := os.ReadFile(existing); mode(t, existing) != 0o644 || string(b) != "keep" {
		t.Errorf("Open changed an existing file: mode %o, %q", mode(t, existing), b)
	}
	if err := outfile.Private(f); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, existing); m != 0o600 {
		t.Errorf("after Private: mode %o, want 600", m)
	}
}

// TestPrivateLeavesDevices: writing a recording to /dev/null or a
// terminal must not change the device's mode.
func TestPrivateLeavesDevices(t *testing.T) {
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	before := mode(t, os.DevNull)
	if err := outfile.Private(f); err != nil {
		t.Fatal(err)
	}
	if after := mode(t, os.DevNull); after != before {
		t.Errorf("%s: mode %o -> %o", os.DevNull, before, after)
	}
}
