package vm

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestGuestRoot(t *testing.T) {
	dir := t.TempDir()
	bb := filepath.Join(dir, "busybox")
	must(t, os.WriteFile(bb, []byte("fake busybox"), 0o755))
	tool := filepath.Join(dir, "ringtrace")
	must(t, os.WriteFile(tool, []byte("fake ringtrace"), 0o755))
	share := filepath.Join(dir, "share")
	must(t, os.Mkdir(share, 0o755))
	must(t, os.WriteFile(filepath.Join(share, "s.sh"), []byte("echo s"), 0o755))

	g := guestRoot{
		Busybox:  bb,
		Applets:  []string{"sh", "env", "insmod", "busybox"},
		Command:  "uname -r; exit 3",
		Modules:  []guestModule{{Name: "virtio_console", Data: []byte("ko0"), Early: true}, {Name: "veth", Data: []byte("ko1")}, {Name: "sch_tbf", Data: []byte("ko2")}},
		Binaries: []string{tool},
		Shares:   []string{share},
		Init:     initParams{Marker: markerTag + "00ff:", Release: "6.1.0-56-cloud-amd64", Workdir: "/", Channel: "/dev/hvc0"},
	}
	r, err := g.build()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	must(t, r.Write(&buf))
	files := map[string]cpioEntry{}
	for _, e := range readNewc(t, buf.Bytes()) {
		files["/"+e.Name] = e
	}
	want := map[string]string{
		"/bin/busybox":             "fake busybox",
		"/bin/sh":                  "busybox",
		"/usr/bin/env":             "/bin/busybox",
		"/usr/local/bin/ringtrace": "fake ringtrace",
		"/lib/modules/6.1.0-56-cloud-amd64/veth.ko":    "ko1",
		"/lib/modules/6.1.0-56-cloud-amd64/sch_tbf.ko": "ko2",
		commandPath:     "uname -r; exit 3\n",
		share + "/s.sh": "echo s",
		"/var/run":      "../run",
	}
	for p, data := range want {
		if e, ok := files[p]; !ok || e.Data != data {
			t.Errorf("%s = %q (present %v), want %q", p, e.Data, ok, data)
		}
	}
	if _, ok := files["/bin/busybox/busybox"]; ok {
		t.Error("busybox linked to itself")
	}
	init := files["/init"].Data
	if files["/init"].Mode != sIFREG|0o755 {
		t.Errorf("/init mode %o", files["/init"].Mode)
	}
	// The channel's driver before the channel is opened, the rest after.
	early := strings.Index(init, "insmod '/lib/modules/6.1.0-56-cloud-amd64/virtio_console.ko'")
	open := strings.Index(init, "exec 3>'/dev/hvc0'")
	if early < 0 || open < 0 || early > open {
		t.Errorf("the channel's module is not loaded before /dev/hvc0 is opened:\n%s", init)
	}
	veth := strings.Index(init, "insmod '/lib/modules/6.1.0-56-cloud-amd64/veth.ko'")
	if veth < open {
		t.Errorf("veth loaded before the channel is opened (its failure could not be reported):\n%s", init)
	}
	tbf := strings.Index(init, "insmod '/lib/modules/6.1.0-56-cloud-amd64/sch_tbf.ko'")
	if veth < 0 || tbf < 0 || tbf < veth {
		t.Errorf("modules not loaded in order in /init:\n%s", init)
	}
	if !strings.Contains(init, "/bin/sh '"+commandPath+"' >/run/ringvm.out 2>&1 3>&-") {
		t.Errorf("/init does not run %s:\n%s", commandPath, init)
	}
}

func TestInitScriptIsValidShell(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh on this host")
	}
	script, err := initScript(initParams{
		Marker: markerTag + "abcd:", Release: "7.2.13+deb14-cloud-amd64", Workdir: "/tmp/it's here",
		Modules: []string{"/lib/modules/x/veth.ko"}, Command: commandPath, Deadline: 630,
	})
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "init")
	must(t, os.WriteFile(f, script, 0o755))
	if out, err := exec.Command(sh, "-n", f).CombinedOutput(); err != nil {
		t.Fatalf("sh -n: %v: %s\n%s", err, out, script)
	}
	for _, want := range []string{
		`printf '\n@@RINGVM:abcd:%s\n'`,
		"mount -t tracefs tracefs /sys/kernel/tracing",
		"mount -t bpf bpf /sys/fs/bpf",
		"mount -t debugfs debugfs /sys/kernel/debug",
		"must ip link set lo up",
		`cd '/tmp/it'\''s here'`,
		"stty -F '/dev/ttyS1' raw -echo",
		"( sleep 630; ",
	} {
		if !strings.Contains(string(script), want) {
			t.Errorf("/init lacks %q", want)
		}
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{"a": "'a'", "": "''", "it's": `'it'\''s'`, "$x `y`": "'$x `y`'"} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestNonce(t *testing.T) {
	a, err := newNonce()
	must(t, err)
	b, err := newNonce()
	must(t, err)
	if len(a) != 16 || a == b {
		t.Errorf("nonces %q %q", a, b)
	}
}
