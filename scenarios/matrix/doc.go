// Package matrix runs ringtrace's kernel matrix (`make vmtest`): the
// self-checking scenarios under every hook class, and the root integration
// tests, on each kernel of vm.MatrixKernels() booted under qemu through
// scenarios/vm (the entry point `make vm` uses), plus the scenarios natively
// on the host's own kernel. The next kernel (vm.Next, today experimental's
// release candidate) runs only its own class (NextHooks) and no tests.
//
// One boot per kernel runs one generated busybox sh script (Script): for each
// --hooks value it checks the plan's promises and records the plan
// (`ringtrace probe --verify --json`: VerifyReport, judged per class as
// verified, BROKEN or ERROR) and runs the scenarios (`ringtrace run --json`);
// it also runs the prebuilt static test binaries (BuildTests) from copies of
// their package directories. Each result
// is printed between marker lines carrying a per-run nonce (Parser), so the
// host rebuilds everything from the guest's stdout alone.
//
// A guest that dies (kernel panic, wedged and killed, qemu gone) is booted
// once more for the parts that had not reported yet; results whose
// expectations failed are never re-run. The outcome is a Matrix: a
// kernel × class × scenario table with the TX completion form, the
// verification and the plan's differences between classes (WriteTable), and
// the same as JSON.
//
// Pure parts (script, parsing, plan comparison, table) are tested without
// VMs; Run does the booting.
package matrix
