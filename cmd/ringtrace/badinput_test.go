package main

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/ringtrace/ringtrace/scenarios/lab"
	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/record"
)

// badRecordings writes broken recordings into dir and returns their paths
// by name.
func badRecordings(t *testing.T, dir string) map[string]string {
	t.Helper()
	good, err := os.ReadFile(statusRecording)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := record.NewWriter(&buf, record.Header{Tool: "test"}, record.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(event.Encode(event.Event{Kind: event.FrameState, TS: 1000, Sk: 1, Frame: 0, Old: event.SendRequest, New: event.Sending}))
	if err := w.CloseWithTrailer(record.Trailer{}); err != nil {
		t.Fatal(err)
	}
	damaged := buf.Bytes()
	hlen := int(damaged[12]) | int(damaged[13])<<8
	damaged[16+hlen+4] ^= 0x01 // the event's timestamp: still decodes
	future := append([]byte(nil), good...)
	future[8] = record.Version + 1
	files := map[string][]byte{
		"truncated.rtrec":  good[:len(good)/2],
		"damaged.rtrec":    damaged,
		"future.rtrec":     future,
		"text.rtrec":       []byte("this is not a recording\n"),
		"unreadable.rtrec": good,
		"file":             []byte("x"),
	}
	paths := map[string]string{}
	for name, b := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		paths[name] = p
	}
	return paths
}

// TestBadInputEveryCommand: bad input to any command is one line on stderr
// and exit status 2, never a panic or a stack trace.
func TestBadInputEveryCommand(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: send, probe, trace and run check the kernel and interfaces")
	}
	bin := buildBinary(t)
	dir, err := os.MkdirTemp("", "ringtrace-badinput") // not t.TempDir(): nobody must reach it
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	rec := badRecordings(t, dir)
	l, err := lab.New(lab.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	nobody := &syscall.Credential{Uid: 65534, Gid: 65534}
	for _, tc := range []struct {
		name string
		args []string
		want string
		as   *syscall.Credential
	}{
		{"send/interface-in-other-netns", []string{"send", "-i", l.SenderIf, "--count", "1"}, "add --netns", nil},
		{"send/smaller-than-header", []string{"send", "-i", "lo", "--size", "10"}, "Ethernet header", nil},
		{"send/stray-argument", []string{"send", "-i", "lo", "eth0"}, "no arguments", nil},
		{"probe/stray-argument", []string{"probe", "fentry"}, "no arguments", nil},
		{"probe/garbage-btf", []string{"probe", "--btf", rec["file"]}, "BTF", nil},
		{"trace/no-such-pid", []string{"trace", "--pid", "4000000"}, "no such process", nil},
		{"trace/negative-duration", []string{"trace", "--duration", "-1s"}, "positive", nil},
		{"trace/not-root", []string{"trace", "--duration", "1s"}, "root", nobody},
		{"trace/zero-stuck-after", []string{"trace", "--stuck-after", "0s"}, "--stuck-after must be positive", nil},
		{"trace/bad-stuck-after", []string{"trace", "--stuck-after", "soon"}, "stuck-after", nil},
		{"trace/bad-cpus", []string{"trace", "--cpus", "one"}, "--cpus \"one\" is not a CPU list", nil},
		{"trace/bad-detail", []string{"trace", "--detail", "packets"}, "--detail \"packets\": want frames or calls", nil},
		{"report/no-file", []string{"report"}, "exactly one", nil},
		{"report/missing", []string{"report", filepath.Join(dir, "nosuch.rtrec")}, "no such file", nil},
		{"report/unreadable", []string{"report", rec["unreadable.rtrec"]}, "permission denied", nobody},
		{"report/directory", []string{"report", dir}, "is a directory", nil},
		{"report/truncated", []string{"report", rec["truncated.rtrec"]}, "truncated", nil},
		{"report/damaged-records", []string{"report", rec["damaged.rtrec"]}, "damaged", nil},
		{"report/future-version", []string{"report", rec["future.rtrec"]}, "upgrade ringtrace", nil},
		{"report/not-a-recording", []string{"report", rec["text.rtrec"]}, "not a valid ringtrace recording", nil},
		{"report/negative-stuck-after", []string{"report", "--stuck-after", "-1s", statusRecording}, "--stuck-after must be positive", nil},
		{"report/quiet-alone", []string{"report", "--quiet", statusRecording}, "would do nothing", nil},
		{"report/quiet-and-json", []string{"report", "--quiet", "--json", "--html", filepath.Join(dir, "x.html"), statusRecording}, "conflict", nil},
		{"run/unknown-scenario", []string{"run", "nosuch"}, "unknown scenario", nil},
		{"run/names-and-all", []string{"run", "--all", "status"}, "not both", nil},
		{"run/bad-rate", []string{"run", "status", "--rate", "fast"}, "--rate", nil},
		{"run/out-is-a-file", []string{"run", "status", "--out", rec["file"]}, "--out", nil},
		{"scenarios/stray-argument", []string{"scenarios", "status"}, "no arguments", nil},
		{"unknown-command", []string{"tracee"}, "unknown command", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkOneLineError(t, runBin(t, bin, tc.as, tc.args...), tc.want)
		})
	}
}
