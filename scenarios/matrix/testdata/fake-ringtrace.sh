#!/bin/sh
# A stand-in for ringtrace in script_test.go: `probe [--verify] --json --hooks H`
# and `run NAMES… --hooks H --json` with canned answers. auto resolves to
# fentry and every promise holds, kprobe is missing, tracepoint works but
# breaks a promise (probe --verify exits 1 with its report); under tracepoint
# "sndbuf" fails and "bypass" makes ringtrace fail without JSON. With
# FAKE_OLD_RINGTRACE set it knows no --verify, like a ringtrace before it.
cmd=$1; shift
hooks=auto names="" verify=""
while [ $# -gt 0 ]; do
	case $1 in
	--hooks) hooks=$2; shift ;;
	--verify) verify=yes ;;
	--json|--all) ;;
	--rate-scale|--frames) shift ;;
	*) names="$names $1" ;;
	esac
	shift
done
if [ -n "$verify" ] && [ -n "$FAKE_OLD_RINGTRACE" ]; then
	echo "ringtrace: flag provided but not defined: -verify (see --help)" >&2; exit 2
fi
case $cmd/$hooks in
probe/kprobe)
	echo "ringtrace: --hooks=kprobe: kprobes: CONFIG_KPROBES is not set" >&2; exit 2 ;;
probe/*)
	class=fentry; [ "$hooks" = tracepoint ] && class=tracepoint
	held=true ok=true broken="" status=0
	if [ $class = tracepoint ]; then
		held=false ok=false
		[ -n "$verify" ] && status=1
		broken='"frame -> AVAILABLE: promised exact, observed 0 exact, 8 bounded (status-read) in veth-blocking"'
	fi
	report=""
	[ -n "$verify" ] && report=$(cat <<JSON
,
  "verify": {"ok": $ok, "seconds": 0.41,
    "cases": [{"name": "veth-blocking", "frames": 8, "error": ""}],
    "promises": [{"event": "frame -> AVAILABLE", "hook": "h", "promised": "exact", "exact": 8, "bounded": 0, "not_seen": 0, "held": $held, "detail": ""}],
    "broken": [$broken]}
JSON
)
	cat <<JSON
{
  "kernel": {"release": "9.9.0-test", "version": {"Major": 9, "Minor": 9, "Patch": 0}},
  "plan": {
    "class": "$class",
    "completion": "uarg",
    "rows": [
      {"event": "sendmsg", "hook": "$class packet_sendmsg", "precision": "exact"},
      {"event": "picked", "hook": "x", "precision": "$([ $class = fentry ] && echo exact || echo bounded)"}
    ]
  }$report
}
JSON
	exit $status ;;
run/*)
	echo "progress on stderr for $hooks" >&2
	case "$hooks $names" in *tracepoint*bypass*) echo "ringtrace: loading BPF: verifier says no" >&2; exit 1 ;; esac
	sep="["
	for n in $names; do
		pass=true; [ "$hooks/$n" = tracepoint/sndbuf ] && pass=false
		printf '%s{"scenario": "%s", "pass": %s, "expectations": [{"what": "w", "pass": %s, "measured": "m", "want": "x"}], "hook_class": "%s", "duration_ns": 1000}\n' "$sep" "$n" "$pass" "$pass" "$hooks"
		sep=","
	done
	echo "]"
	[ "$hooks" = tracepoint ] && exit 1
	exit 0 ;;
esac
