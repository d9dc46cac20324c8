package vm

import (
	"bytes"
	"compress/gzip"
	"context"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

// readModule returns the uncompressed bytes of a .ko, .ko.xz, .ko.zst or
// .ko.gz file (busybox insmod in the guest wants them uncompressed). xz and
// zstd are the host's tools.
func readModule(ctx context.Context, p string) ([]byte, error) {
	var tool string
	switch {
	case strings.HasSuffix(p, ".ko"):
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("reading module: %w", err)
		}
		return b, nil
	case strings.HasSuffix(p, ".gz"):
		return gunzipFile(p)
	case strings.HasSuffix(p, ".xz"):
		tool = "xz"
	case strings.HasSuffix(p, ".zst"):
		tool = "zstd"
	default:
		return nil, fmt.Errorf("module %s: unknown compression", p)
	}
	var out, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, tool, "-dc", p)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("decompressing %s with %s: %w: %s", p, tool, err, strings.TrimSpace(stderr.String()))
	}
	return out.Bytes(), nil
}

func gunzipFile(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("reading module: %w", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("decompressing %s: %w", p, err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("decompressing %s: %w", p, err)
	}
	return b, nil
}

// modinfo returns the key=value pairs of a module's .modinfo section.
func modinfo(ko []byte) (map[string]string, error) {
	f, err := elf.NewFile(bytes.NewReader(ko))
	if err != nil {
		return nil, fmt.Errorf("module is not ELF: %w", err)
	}
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("module has no .modinfo section")
	}
	data, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("reading .modinfo: %w", err)
	}
	return parseModinfo(data), nil
}

// parseModinfo splits NUL-separated key=value strings. A key seen twice
// (alias, parm) keeps its first value: only depends and vermagic matter here.
func parseModinfo(data []byte) map[string]string {
	info := map[string]string{}
	for _, kv := range bytes.Split(data, []byte{0}) {
		k, v, ok := strings.Cut(string(kv), "=")
		if !ok {
			continue
		}
		if _, seen := info[k]; !seen {
			info[k] = v
		}
	}
	return info
}

// modDepends parses a "depends=" value.
func modDepends(v string) []string {
	var ds []string
	for _, d := range strings.Split(v, ",") {
		if d = strings.TrimSpace(d); d != "" {
			ds = append(ds, normModule(d))
		}
	}
	return ds
}
