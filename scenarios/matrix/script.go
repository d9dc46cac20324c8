package matrix

import (
	"fmt"
	"path"
	"strings"
)

// markerTag starts every frame line, followed by the run's nonce and ":".
const markerTag = "@@VMTEST:"

// testTimeout bounds one test binary in the target.
const testTimeout = "10m"

// Script renders the sh script (busybox ash in a guest, /bin/sh on the host)
// that runs s and prints every result between marker lines:
//
//	@@VMTEST:<nonce>:begin <key>
//	…payload…
//	@@VMTEST:<nonce>:end <key> <exit status> <seconds since the previous frame>
//
// Probes print the `ringtrace probe --verify --json` report (or, when it gave
// none, a verify frame with its output, then `ringtrace probe --json`'s), runs
// the `ringtrace run --json` results (either, when it printed nothing, the
// tail of its stderr), tests their result lines; the progress of runs and tests also goes out
// unframed, as it happens, for the log. Runs and tests whose keys are
// in done are left out (a retry after a guest died); probes are always made.
func Script(s Spec, nonce string, done map[string]bool) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("# ringtrace kernel matrix (scenarios/matrix): results framed by marker lines")
	w("M=%s", shq(markerTag+nonce+":"))
	w("RT=%s", shq(s.Ringtrace))
	w(`export RINGTRACE_BIN="$RT"`)
	w(`T=$(mktemp -d) || exit 125`)
	w(`mark() { printf '\n%%s%%s\n' "$M" "$*"; }`)
	w(`t0=$(date +%%s)`)
	// keep runs a pipeline's reader deaf to INT and TERM: stopped as a
	// group, ringtrace removes its lab and reports it on stderr, which must
	// stay open (a dead reader would kill it with SIGPIPE half way).
	w(`keep() { ( trap '' INT TERM; exec "$@" ); }`)
	w(`frame() { mark begin "$1"; cat "$3"; mark end "$1" "$2" $(($(date +%%s) - t0)); t0=$(date +%%s); }`)
	for i, h := range s.Hooks {
		// The verify report carries the plan, whatever promise it found
		// broken (exit 1). Without a report (an older ringtrace, a class
		// the kernel lacks, a failure) its output goes out as the verify
		// frame, and the plain probe gives the plan. ok_N: a plan came.
		w(`"$RT" probe --verify --json --hooks %s >"$T/p" 2>"$T/e"; st=$?; ok_%d=0`, shq(h), i)
		w(`if ! grep -q '"verify" *:' "$T/p"; then`)
		w(`  cat "$T/e" >>"$T/p"; frame %s $st "$T/p"`, shq(verifyKey(h)))
		w(`  "$RT" probe --json --hooks %s >"$T/p" 2>"$T/e"; st=$?; ok_%d=$st`, shq(h), i)
		w(`  [ $st = 0 ] || cat "$T/e" >"$T/p"`)
		w(`fi`)
		w(`frame %s $st "$T/p"`, shq(probeKey(h)))
		w(`c_%d=$(sed -n 's/.*"class": *"\([a-z]*\)".*/\1/p' "$T/p" | head -n 1)`, i)
	}
	for _, kv := range s.TestEnv {
		name, value, _ := strings.Cut(kv, "=")
		w("export %s=%s", name, shq(value))
	}
	for _, t := range s.Tests {
		if done[testKey(t.Package)] {
			continue
		}
		args := ""
		if t.Skip != "" {
			args = " -test.skip " + shq(t.Skip)
		}
		w(`echo 127 >"$T/rc"`)
		w(`( cd %s && ./%s -test.v -test.count=1 -test.timeout=%s%s; echo $? >"$T/rc" ) 2>&1 | tee "$T/t"`,
			shq(path.Dir(t.Binary)), shq(path.Base(t.Binary)), testTimeout, args)
		w(`awk %s "$T/t" >"$T/s"`, shq(testSummary))
		w(`frame %s "$(cat "$T/rc")" "$T/s"`, shq(testKey(t.Package)))
	}
	for i, h := range s.Hooks {
		var runs []string
		for j, r := range s.Runs {
			if !done[runKey(h, j)] {
				runs = append(runs,
					fmt.Sprintf(`  { "$RT" run %s --hooks %s --json >"$T/r"; echo $? >"$T/rc"; } 2>&1 | keep tee "$T/e"`, runArgs(r), shq(h)),
					`  [ -s "$T/r" ] || tail -n 20 "$T/e" >"$T/r"`,
					fmt.Sprintf(`  frame %s "$(cat "$T/rc")" "$T/r"`, shq(runKey(h, j))))
			}
		}
		if len(runs) == 0 {
			continue
		}
		// A forced class the kernel lacks, or the reference's class again, is not run.
		cond := fmt.Sprintf(`[ $ok_%d = 0 ]`, i)
		if i > 0 {
			cond += fmt.Sprintf(` && [ "$c_%d" != "$c_0" ]`, i)
		}
		w("if %s; then", cond)
		w("%s", strings.Join(runs, "\n"))
		w("fi")
	}
	w(`rm -rf "$T"`)
	w("exit 0")
	return b.String()
}

func runArgs(r ScenarioRun) string {
	var a []string
	if len(r.Scenarios) == 0 {
		a = append(a, "--all")
	}
	for _, x := range append(append([]string{}, r.Scenarios...), r.Args...) {
		a = append(a, shq(x))
	}
	return strings.Join(a, " ")
}

// shq quotes s for sh as one word.
func shq(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// testSummary is the awk program that cuts a test binary's `-test.v` output
// down to what the collector reads (parseTestOutput): the result lines, a
// panic, and before each FAIL the test's last message and last other output
// line, so that FAILURES can say why without carrying every log line.
const testSummary = `/^=== RUN/ { m = ""; l = ""; next }
/^ *--- FAIL/ { if (m != "") print m; if (l != "") print l; print; m = ""; l = ""; next }
/^ *--- (PASS|SKIP)|^(ok|PASS|FAIL)( |$)|^panic: / { print; m = ""; l = ""; next }
/_test\.go:[0-9]+: / { m = $0; next }
/[^ ]/ { l = $0 }`
