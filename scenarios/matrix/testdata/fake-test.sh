#!/bin/sh
# A stand-in for a test binary in script_test.go: prints `go test -v` lines.
echo "=== RUN   TestA"
echo "--- PASS: TestA (0.01s)"
echo "=== RUN   TestB"
echo "    --- FAIL: TestB/sub (0.00s)"
echo "--- FAIL: TestB (0.02s)"
echo "--- SKIP: TestC (0.00s)"
echo "FAIL"
[ -f fake-test.sh ] || exit 3  # run from its own directory
[ "$FAKE_ENV" = "it's set" ] || exit 4
exit 1
