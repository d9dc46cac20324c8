#!/bin/sh
# A stand-in for a test binary in script_test.go: prints `go test -v` lines.
echo "=== RUN   TestA"
echo "--- PASS: TestA (0.01s)"
echo "=== RUN   TestB"
echo "    b_test.go:12: a log line"
echo "    b_test.go:20: trace: exit status 1: it's broken"
echo "        the trace's stderr, line 1"
echo "    --- FAIL: TestB/sub (0.00s)"
echo "--- FAIL: TestB (0.02s)"
echo "--- SKIP: TestC (0.00s)"
echo "FAIL"
[ -f fake-test.sh ] || exit 3  # run from its own directory
[ "$FAKE_ENV" = "it's set" ] || exit 4
exit 1
