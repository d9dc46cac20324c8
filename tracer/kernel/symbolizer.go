package kernel

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"sync"
)

// Symbolizer names kernel text addresses ("__dev_queue_xmit+0xd01"). It
// reads /proc/kallsyms once, on first use, and keeps only the text symbols,
// their names in one buffer: a tracer holds it for the whole session, and
// one string per symbol would be several MB of its heap.
type Symbolizer struct {
	once  sync.Once
	addrs []uint64
	ends  []uint32 // names[ends[i-1]:ends[i]] is addrs[i]'s symbol
	names []byte
}

func (s *Symbolizer) load() {
	f, err := os.Open("/proc/kallsyms")
	if err != nil {
		return
	}
	defer f.Close()
	s.read(f)
}

// read parses kallsyms lines ("addr type name [module]").
func (s *Symbolizer) read(r io.Reader) {
	type sym struct {
		a          uint64
		start, end uint32
	}
	var syms []sym
	var names []byte
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		fl := bytes.Fields(sc.Bytes())
		if len(fl) < 3 || len(fl[1]) != 1 || (fl[1][0] != 't' && fl[1][0] != 'T') {
			continue
		}
		a, err := strconv.ParseUint(string(fl[0]), 16, 64)
		if err != nil || a == 0 {
			continue
		}
		start := uint32(len(names))
		names = append(names, fl[2]...)
		syms = append(syms, sym{a, start, uint32(len(names))})
	}
	sort.Slice(syms, func(i, j int) bool { return syms[i].a < syms[j].a })
	s.addrs = make([]uint64, len(syms))
	s.ends = make([]uint32, len(syms))
	s.names = make([]byte, 0, len(names))
	for i, x := range syms {
		s.addrs[i] = x.a
		s.names = append(s.names, names[x.start:x.end]...)
		s.ends[i] = uint32(len(s.names))
	}
}

func (s *Symbolizer) name(i int) string {
	start := uint32(0)
	if i > 0 {
		start = s.ends[i-1]
	}
	return string(s.names[start:s.ends[i]])
}

// Lookup returns "symbol+0xoff", or "" when unknown.
func (s *Symbolizer) Lookup(addr uint64) string {
	s.once.Do(s.load)
	i := sort.Search(len(s.addrs), func(i int) bool { return s.addrs[i] > addr }) - 1
	if i < 0 {
		return ""
	}
	if off := addr - s.addrs[i]; off != 0 {
		return fmt.Sprintf("%s+%#x", s.name(i), off)
	}
	return s.name(i)
}
