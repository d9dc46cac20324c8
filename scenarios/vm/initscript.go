package vm

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"text/template"
)

// The guest's /init runs under busybox sh as PID 1. Its own messages go to
// the kernel console (ttyS0, arm64: ttyAMA0); only records and the command's
// output go to the channel (ttyS1, arm64: the virtio console hvc0, whose
// drivers are loaded first and which appears asynchronously; put in raw
// mode so "\n" is not turned into "\r\n", while /init holds it open: hvc
// resets a tty's modes at its last close). The
// command writes into a pipe, as it would under CI, not into the serial tty
// (ls would print columns, programs would see a terminal); /init copies the
// pipe to the channel and waits for the copy to end before the exit record,
// at most 2 s longer when background processes keep the pipe open. After
// the exit record it waits: the host kills qemu as soon as it has read the
// record, so nothing written before it can be lost by a power-off; the sleep
// and power-off are only a fallback, like the deadline subshell.
const initTemplate = `#!/bin/sh
# /init written by ringtrace's scenarios/vm: run one command as root, report on {{.Channel}}.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
{{- range .EarlyModules}}
insmod {{shq .}} || echo "ringvm init: insmod {{.}} failed" >/dev/console
{{- end}}
n=0
while [ ! -c {{shq .Channel}} ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n+1)); done
if [ ! -c {{shq .Channel}} ]; then echo "ringvm init: no {{.Channel}}, cannot report" >/dev/console; poweroff -f; fi
exec 3>{{shq .Channel}} </dev/null >/dev/console 2>&1
stty -F {{shq .Channel}} raw -echo
mark() { printf '\n{{.Marker}}%s\n' "$*" >&3; }
fail() { mark error "$*"; sleep 30; poweroff -f; }
must() { out=$("$@" 2>&1) || fail "$*: $(echo $out)"; }
must mount -t debugfs debugfs /sys/kernel/debug
must mount -t tracefs tracefs /sys/kernel/tracing
must mount -t bpf bpf /sys/fs/bpf
mount -t cgroup2 cgroup2 /sys/fs/cgroup || echo "ringvm init: no cgroup2"
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
must ip link set lo up
{{- range .Modules}}
must insmod {{shq .}}
{{- end}}
[ "$(uname -r)" = {{shq .Release}} ] || fail "booted $(uname -r), expected {{.Release}}"
hostname ringvm
cd {{shq .Workdir}} || fail "cd {{.Workdir}} failed"
( sleep {{.Deadline}}; echo "ringvm init: deadline passed, powering off"; poweroff -f ) &
mkfifo /run/ringvm.out || fail "mkfifo failed"
cat /run/ringvm.out >&3 &
reader=$!
mark start
/bin/sh {{shq .Command}} >/run/ringvm.out 2>&1 3>&-
rc=$?
( sleep 2; kill $reader ) 2>/dev/null &
wait $reader
mark exit $rc
sleep 30
poweroff -f
`

// initParams fill initTemplate.
type initParams struct {
	Marker  string // "@@RINGVM:<nonce>:" (the newline is in the template)
	Release string // expected `uname -r`
	Channel string // the device records and output go to: /dev/ttyS1, /dev/hvc0
	// EarlyModules drive the channel (loaded before it is opened), Modules
	// the rest: guest paths of .ko files, in load order.
	EarlyModules []string
	Modules      []string
	Workdir      string // the command's working directory
	Command      string // guest path of the script holding the command
	// Deadline (seconds) powers the guest off from inside, in case the host
	// runner died without killing qemu.
	Deadline int
}

var initTmpl = template.Must(template.New("init").Funcs(template.FuncMap{"shq": shellQuote}).Parse(initTemplate))

// initScript renders /init.
func initScript(p initParams) ([]byte, error) {
	if p.Channel == "" {
		p.Channel = ArchAMD64.profile().channel
	}
	var b bytes.Buffer
	if err := initTmpl.Execute(&b, p); err != nil {
		return nil, fmt.Errorf("rendering /init: %w", err)
	}
	return b.Bytes(), nil
}

// shellQuote quotes s for sh as one word.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// newNonce returns 16 random hex digits.
func newNonce() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("nonce: %w", err)
	}
	return hex.EncodeToString(b), nil
}
