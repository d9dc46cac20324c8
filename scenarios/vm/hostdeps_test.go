package vm

import (
	"context"
	"os/exec"
	"strings"
	"testing"
)

func TestCheckStatic(t *testing.T) {
	if err := checkStatic("/bin/sh"); err == nil {
		t.Log("/bin/sh is static here")
	} else if !strings.Contains(err.Error(), "dynamically linked") {
		t.Errorf("checkStatic(/bin/sh) = %v", err)
	}
	if bb, err := exec.LookPath("busybox"); err == nil {
		t.Logf("busybox %s static: %v", bb, checkStatic(bb))
	}
}

func TestMissingToolsMessage(t *testing.T) {
	_, err := ensureTools(context.Background(), []hostTool{{"no-such-tool-ringvm", "no-such-pkg", nil}}, false, nil)
	if err == nil || !strings.Contains(err.Error(), "apt-get install -y --no-install-recommends no-such-pkg") {
		t.Errorf("ensureTools = %v", err)
	}
}
