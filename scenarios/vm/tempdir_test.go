package vm

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func TestStaleTempDirs(t *testing.T) {
	tmp := t.TempDir()
	dead := filepath.Join(tmp, "ringvm-999999999-123")
	alive := filepath.Join(tmp, fmt.Sprintf("ringvm-%d-456", os.Getpid()))
	other := filepath.Join(tmp, "ringvm-notapid")
	for _, d := range []string{dead, alive, other} {
		must(t, os.Mkdir(d, 0o700))
	}
	removeStaleTempDirs(tmp)
	for d, want := range map[string]bool{dead: false, alive: true, other: true} {
		if _, err := os.Stat(d); (err == nil) != want {
			t.Errorf("%s exists: %v, want %v", d, err == nil, want)
		}
	}
}
