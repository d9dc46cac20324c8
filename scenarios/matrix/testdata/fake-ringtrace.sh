#!/bin/sh
# A stand-in for ringtrace in script_test.go: `probe --json --hooks H` and
# `run NAMES… --hooks H --json` with canned answers. auto resolves to fentry,
# kprobe is missing, tracepoint works; under tracepoint "sndbuf" fails and
# "bypass" makes ringtrace fail without JSON.
cmd=$1; shift
hooks=auto names=""
while [ $# -gt 0 ]; do
	case $1 in
	--hooks) hooks=$2; shift ;;
	--json|--all) ;;
	--rate-scale|--frames) shift ;;
	*) names="$names $1" ;;
	esac
	shift
done
case $cmd/$hooks in
probe/kprobe)
	echo "ringtrace: --hooks=kprobe: kprobes: CONFIG_KPROBES is not set" >&2; exit 2 ;;
probe/*)
	class=fentry; [ "$hooks" = tracepoint ] && class=tracepoint
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
  }
}
JSON
	;;
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
