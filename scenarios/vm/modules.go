package vm

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ringtrace/ringtrace/tracer/inputerr"
)

// labModule is a module ringtrace's lab needs, named by its config symbol:
// loaded when the kernel builds it as a module (=m), nothing to do when it is
// built in (=y). A required one must exist in one of the two forms.
type labModule struct {
	Symbol   string
	Module   string
	Required bool
}

// labModules are loaded in every guest: veth and tbf are modules in every
// Debian cloud kernel; af_packet and the fifo qdiscs are built in there, but
// are loaded if a kernel ever builds them as modules.
var labModules = []labModule{
	{"CONFIG_VETH", "veth", true},
	{"CONFIG_NET_SCH_TBF", "sch_tbf", true},
	{"CONFIG_PACKET", "af_packet", false},
	{"CONFIG_NET_SCH_FIFO", "sch_fifo", false},
}

// moduleSet describes the modules a kernel tree has.
type moduleSet struct {
	Files   map[string]string // module name -> .ko[.xz|.zst|.gz] path
	Builtin map[string]bool   // names from modules.builtin
	Config  map[string]string // CONFIG_X -> y, m, …; nil when the tree has no config
}

// normModule spells a module name the way the kernel does ('-' -> '_').
func normModule(name string) string { return strings.ReplaceAll(name, "-", "_") }

// moduleName is the module name of a module file path, "" if it is not one.
func moduleName(p string) string {
	base := filepath.Base(p)
	for _, ext := range []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"} {
		if strings.HasSuffix(base, ext) {
			return normModule(strings.TrimSuffix(base, ext))
		}
	}
	return ""
}

// readModuleSet indexes a modules directory (lib/modules/<release>) and reads
// the kernel config (configPath may be "").
func readModuleSet(dir, configPath string) (*moduleSet, error) {
	ms := &moduleSet{Files: map[string]string{}, Builtin: map[string]bool{}}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if name := moduleName(p); name != "" && !d.IsDir() {
			ms.Files[name] = p
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("indexing modules: %w", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "modules.builtin")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if name := moduleName(strings.TrimSpace(line)); name != "" {
				ms.Builtin[name] = true
			}
		}
	}
	if configPath != "" {
		b, err := os.ReadFile(configPath)
		if err != nil {
			return nil, fmt.Errorf("reading kernel config: %w", err)
		}
		ms.Config = parseConfig(b)
	}
	return ms, nil
}

// parseConfig reads a kernel .config: CONFIG_X=value lines; "# CONFIG_X is
// not set" and other comments are skipped. Quotes are kept.
func parseConfig(b []byte) map[string]string {
	cfg := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "CONFIG_") {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			cfg[k] = v
		}
	}
	return cfg
}

// wanted lists the module names to load, before dependencies: the lab's
// modules per the config (or per the files when there is no config), then
// the caller's extra names. Built-in modules are skipped.
func (ms *moduleSet) wanted(release string, extra []string) ([]string, error) {
	var want []string
	for _, m := range labModules {
		load, err := ms.labDecision(m)
		if err != nil {
			return nil, fmt.Errorf("kernel %s: %w", release, err)
		}
		if load {
			want = append(want, m.Module)
		}
	}
	named, err := ms.named(release, extra)
	return append(want, named...), err
}

// named lists the modules among names to load: built-in ones are skipped,
// and a name that is neither is an input error.
func (ms *moduleSet) named(release string, names []string) ([]string, error) {
	var want []string
	for _, name := range names {
		n := normModule(strings.TrimSuffix(strings.TrimSpace(name), ".ko"))
		switch {
		case n == "":
			continue
		case ms.Files[n] != "":
			want = append(want, n)
		case ms.Builtin[n]:
		default:
			return nil, inputerr.New("module %q is neither a module nor built into kernel %s", name, release)
		}
	}
	return want, nil
}

func (ms *moduleSet) labDecision(m labModule) (bool, error) {
	if ms.Config != nil {
		switch ms.Config[m.Symbol] {
		case "m":
			if ms.Files[m.Module] == "" {
				return false, fmt.Errorf("%s=m but %s.ko is missing", m.Symbol, m.Module)
			}
			return true, nil
		case "y":
			return false, nil
		}
		if m.Required {
			return false, fmt.Errorf("%s is not set: ringtrace's lab needs %s", m.Symbol, m.Module)
		}
		return false, nil
	}
	if ms.Files[m.Module] != "" {
		return true, nil
	}
	if m.Required && !ms.Builtin[m.Module] {
		return false, fmt.Errorf("no %s module and no kernel config to tell if it is built in", m.Module)
	}
	return false, nil
}

// loadOrder returns want and everything it depends on, dependencies first.
// deps returns a module's direct dependencies.
func loadOrder(want []string, deps func(string) ([]string, error)) ([]string, error) {
	const (
		visiting = 1
		done     = 2
	)
	state := map[string]int{}
	var order []string
	var visit func(name string, path []string) error
	visit = func(name string, path []string) error {
		switch state[name] {
		case done:
			return nil
		case visiting:
			return fmt.Errorf("module dependency cycle: %s", strings.Join(append(path, name), " -> "))
		}
		state[name] = visiting
		ds, err := deps(name)
		if err != nil {
			return err
		}
		sort.Strings(ds)
		for _, d := range ds {
			if err := visit(d, append(path, name)); err != nil {
				return err
			}
		}
		state[name] = done
		order = append(order, name)
		return nil
	}
	for _, w := range want {
		if err := visit(w, nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}
