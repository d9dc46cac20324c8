package vm

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// cpioEntry is one parsed newc entry.
type cpioEntry struct {
	Name  string
	Mode  uint32
	Rdev  [2]uint32
	Data  string
	Mtime int64
}

// readNewc parses a newc archive up to its trailer, checking the 4-byte
// alignment the kernel relies on.
func readNewc(t *testing.T, b []byte) []cpioEntry {
	t.Helper()
	var out []cpioEntry
	off := 0
	field := func(i int) uint32 {
		v, err := strconv.ParseUint(string(b[off+6+8*i:off+14+8*i]), 16, 32)
		if err != nil {
			t.Fatalf("bad header field %d at %d: %v", i, off, err)
		}
		return uint32(v)
	}
	align := func(n int) int { return (n + 3) &^ 3 }
	for {
		if off%4 != 0 {
			t.Fatalf("entry at %d is not 4-byte aligned", off)
		}
		if string(b[off:off+6]) != "070701" {
			t.Fatalf("bad magic at %d: %q", off, b[off:off+6])
		}
		e := cpioEntry{Mode: field(1), Mtime: int64(field(5)), Rdev: [2]uint32{field(9), field(10)}}
		size, nameSize := int(field(6)), int(field(11))
		name := b[off+110 : off+110+nameSize]
		if name[len(name)-1] != 0 {
			t.Fatalf("name at %d is not NUL-terminated", off)
		}
		e.Name = string(name[:len(name)-1])
		data := align(off + 110 + nameSize)
		e.Data = string(b[data : data+size])
		off = align(data + size)
		if e.Name == "TRAILER!!!" {
			return out
		}
		out = append(out, e)
	}
}

func TestInitramfsLayout(t *testing.T) {
	host := t.TempDir()
	share := filepath.Join(host, "share")
	must(t, os.MkdirAll(filepath.Join(share, "sub"), 0o750))
	must(t, os.WriteFile(filepath.Join(share, "run.sh"), []byte("#!/bin/sh\necho hi\n"), 0o755))
	must(t, os.WriteFile(filepath.Join(share, "sub", "data"), []byte("12345"), 0o600))
	must(t, os.Symlink("run.sh", filepath.Join(share, "link")))

	r := NewInitramfs()
	must(t, r.Dir("/tmp", fileMode(0o1777)))
	must(t, r.Bytes("/etc/passwd", []byte("root:x:0:0::/root:/bin/sh\n"), 0o644))
	must(t, r.Symlink("/bin/sh", "busybox"))
	must(t, r.CharDev("/dev/console", 5, 1, 0o600))
	must(t, r.Tree(share))
	if err := r.Bytes("/etc/passwd", nil, 0o644); err == nil {
		t.Error("adding a path twice did not fail")
	}
	if err := r.Bytes("/etc/passwd/x", nil, 0o644); err == nil {
		t.Error("adding below a file did not fail")
	}

	var buf bytes.Buffer
	must(t, r.Write(&buf))
	entries := readNewc(t, buf.Bytes())
	byName := map[string]cpioEntry{}
	seen := map[string]bool{}
	for _, e := range entries {
		if dir := filepath.Dir("/" + e.Name); dir != "/" && !seen[strings.TrimPrefix(dir, "/")] {
			t.Errorf("%s comes before its directory %s", e.Name, dir)
		}
		seen[e.Name] = true
		byName[e.Name] = e
	}
	rel := strings.TrimPrefix(share, "/")
	checks := []struct {
		name string
		mode uint32
		data string
	}{
		{".", sIFDIR | 0o755, ""},
		{"tmp", sIFDIR | 0o1777, ""},
		{"etc/passwd", sIFREG | 0o644, "root:x:0:0::/root:/bin/sh\n"},
		{"bin/sh", sIFLNK | 0o777, "busybox"},
		{"dev/console", sIFCHR | 0o600, ""},
		{rel + "/sub", sIFDIR | 0o750, ""},
		{rel + "/run.sh", sIFREG | 0o755, "#!/bin/sh\necho hi\n"},
		{rel + "/sub/data", sIFREG | 0o600, "12345"},
		{rel + "/link", sIFLNK | 0o777, "run.sh"},
	}
	for _, c := range checks {
		e, ok := byName[c.name]
		if !ok {
			t.Errorf("%s missing", c.name)
			continue
		}
		if e.Mode != c.mode || e.Data != c.data {
			t.Errorf("%s: mode %o data %q, want %o %q", c.name, e.Mode, e.Data, c.mode, c.data)
		}
	}
	if e := byName["dev/console"]; e.Rdev != [2]uint32{5, 1} {
		t.Errorf("dev/console rdev %v", e.Rdev)
	}
	if want := int64(len("root:x:0:0::/root:/bin/sh\n") + len("busybox") + 18 + 5 + len("run.sh")); r.Size() != want {
		t.Errorf("Size() = %d, want %d", r.Size(), want)
	}
}

// TestInitramfsBusyboxReadsIt cross-checks the archive with busybox cpio,
// when the host has busybox.
func TestInitramfsBusyboxReadsIt(t *testing.T) {
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("no busybox on this host")
	}
	r := NewInitramfs()
	must(t, r.Bytes("/a/b/c.txt", []byte("hello"), 0o644))
	must(t, r.Symlink("/a/l", "b/c.txt"))
	f := filepath.Join(t.TempDir(), "x.cpio")
	must(t, r.WriteFile(f))
	out, err := exec.Command(bb, "cpio", "-t", "-F", f).Output()
	if err != nil {
		t.Fatalf("busybox cpio -t: %v: %s", err, out)
	}
	if got, want := strings.Fields(string(out)), []string{".", "a", "a/b", "a/b/c.txt", "a/l"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("busybox lists %v, want %v", got, want)
	}
}

func TestGuestPathMustBeAbsolute(t *testing.T) {
	if err := NewInitramfs().Bytes("etc/x", nil, 0o644); err == nil {
		t.Error("relative guest path accepted")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
