package matrix

import (
	"os"
	"testing"
)

func TestDeathCause(t *testing.T) {
	for file, want := range map[string]string{
		"testdata/oops-int3.console": "Oops: int3: 0000 [#1] PREEMPT SMP NOPTI; Comm: ringtrace; RIP: 0010:__schedule+0x34e/0xc00; " +
			"Kernel panic - not syncing: Fatal exception in interrupt",
		"testdata/stall.console": "rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:; Comm: ringtrace; RIP: 0010:asm_exc_int3+0x3/0x40",
	} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if got := deathCause(string(b)); got != want {
			t.Errorf("%s:\n got %q\nwant %q", file, got, want)
		}
	}
	if got := deathCause("[    1.0] all fine\n"); got != "" {
		t.Errorf("a clean console gave %q", got)
	}
}

func TestConsoleWatchFiresOnce(t *testing.T) {
	n := 0
	w := &consoleWatch{onFatal: func() { n++ }}
	for _, chunk := range []string{"[ 1.0] booting\n[ 2.0] Oo", "ps: int3: 0000 [#1]\n", "[ 3.0] Kernel panic - not syncing\n"} {
		w.Write([]byte(chunk))
	}
	if n != 1 {
		t.Errorf("onFatal called %d times, want once", n)
	}
	if w.String() == "" {
		t.Error("console not kept")
	}
}
