package kernel

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// Symbol is a kallsyms entry with its extent: up to the next symbol's address.
type Symbol struct {
	Name string `json:"name"`
	Addr uint64 `json:"addr,omitempty"`
	End  uint64 `json:"end,omitempty"`
	// Len is the extent's size where Addr and End are not kept (facts
	// without kernel addresses, Facts.WithoutAddresses).
	Len  uint64 `json:"size,omitempty"`
	Type string `json:"type"` // t/T text, d/D/r/R/b/B data
}

// Size is End - Addr, else Len (0 if unknown).
func (s Symbol) Size() uint64 {
	if s.End > s.Addr {
		return s.End - s.Addr
	}
	return s.Len
}

// ReadKallsyms finds the named symbols in a kallsyms listing. Symbols may
// appear with a ".isra.0"/".constprop.0"/".part.0" suffix (GCC clones):
// those match too, under the plain name, unless the plain name exists.
// Missing names are absent from the result. All addresses zero means
// kptr_restrict hides them. The listing has ~120k lines: it is parsed
// without allocating per line.
func ReadKallsyms(r io.Reader, names []string) (map[string]Symbol, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read kallsyms: %w", err)
	}
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	found := map[string]Symbol{}
	exact := map[string]bool{}
	addrs := make([]uint64, 0, bytes.Count(data, []byte{'\n'})+1)
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		// "ffffffff8214ce40 t tpacket_destruct_skb[\t[module]]"
		sp := bytes.IndexByte(line, ' ')
		if sp <= 0 || len(line) < sp+4 {
			continue
		}
		addr, ok := parseHex(line[:sp])
		if !ok {
			continue
		}
		addrs = append(addrs, addr)
		typ := line[sp+1]
		name := line[sp+3:]
		if i := bytes.IndexAny(name, " \t"); i >= 0 {
			name = name[:i]
		}
		base := name
		if i := bytes.IndexByte(name, '.'); i > 0 {
			base = name[:i]
		}
		if !want[string(base)] || (len(base) != len(name) && exact[string(base)]) {
			continue
		}
		b := string(base)
		if len(base) == len(name) {
			exact[b] = true
		}
		found[b] = Symbol{Name: string(name), Addr: addr, Type: string(typ)}
	}
	for n, s := range found {
		var next uint64
		for _, a := range addrs {
			if a > s.Addr && (next == 0 || a < next) {
				next = a
			}
		}
		s.End = next
		found[n] = s
	}
	return found, nil
}

func parseHex(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 16 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | uint64(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | uint64(c-'a'+10)
		case c >= 'A' && c <= 'F':
			v = v<<4 | uint64(c-'A'+10)
		default:
			return 0, false
		}
	}
	return v, true
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
