package probe

import (
	"bufio"
	"compress/gzip"
	"io"
	"os"
	"strings"
)

// readConfig returns the kernel's build configuration from /proc/config.gz
// or /boot/config-<release>, or nil when neither is readable.
func readConfig(release string) map[string]string {
	var r io.Reader
	if f, err := os.Open("/proc/config.gz"); err == nil {
		defer f.Close()
		if z, err := gzip.NewReader(f); err == nil {
			r = z
		}
	}
	if r == nil {
		f, err := os.Open("/boot/config-" + release)
		if err != nil {
			return nil
		}
		defer f.Close()
		r = f
	}
	cfg := map[string]string{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "CONFIG_"):
			k, v, _ := strings.Cut(line, "=")
			cfg[k] = v
		case strings.HasPrefix(line, "# CONFIG_") && strings.HasSuffix(line, " is not set"):
			cfg[strings.TrimSuffix(strings.TrimPrefix(line, "# "), " is not set")] = "n"
		}
	}
	return cfg
}
