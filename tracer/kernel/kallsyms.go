package kernel

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Symbol is a kallsyms entry with its extent: up to the next symbol's address.
type Symbol struct {
	Name string `json:"name"`
	Addr uint64 `json:"addr"`
	End  uint64 `json:"end"`
	Type string `json:"type"` // t/T text, d/D/r/R/b/B data
}

// Size is End - Addr (0 if unknown).
func (s Symbol) Size() uint64 {
	if s.End > s.Addr {
		return s.End - s.Addr
	}
	return 0
}

// ReadKallsyms finds the named symbols in a kallsyms listing. Symbols may
// appear with a ".isra.0"/".constprop.0"/".part.0" suffix (GCC clones):
// those match too, under the plain name, unless the plain name exists.
// Missing names are absent from the result. All addresses zero means
// kptr_restrict hides them.
func ReadKallsyms(r io.Reader, names []string) (map[string]Symbol, error) {
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	found := map[string]Symbol{}
	exact := map[string]bool{}
	var all []uint64 // text symbol addresses seen after each found symbol
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	// Kallsyms is sorted by address except for modules; we compute ends in
	// a second pass over the addresses collected here.
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) < 3 || len(f) > 4 && !strings.HasPrefix(f[3], "[") {
			continue
		}
		addr, err := strconv.ParseUint(f[0], 16, 64)
		if err != nil {
			continue
		}
		all = append(all, addr)
		name := f[2]
		base := name
		if i := strings.IndexByte(name, '.'); i > 0 {
			base = name[:i]
		}
		if !want[base] || (base != name && exact[base]) {
			continue
		}
		if base == name {
			exact[base] = true
		}
		found[base] = Symbol{Name: name, Addr: addr, Type: f[1]}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read kallsyms: %w", err)
	}
	for n, s := range found {
		var next uint64
		for _, a := range all {
			if a > s.Addr && (next == 0 || a < next) {
				next = a
			}
		}
		s.End = next
		found[n] = s
	}
	return found, nil
}

// LoadKallsyms reads /proc/kallsyms.
func LoadKallsyms(names []string) (map[string]Symbol, error) {
	f, err := os.Open("/proc/kallsyms")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadKallsyms(f, names)
}
