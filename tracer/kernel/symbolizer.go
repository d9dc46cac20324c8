package kernel

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Symbolizer names kernel text addresses ("__dev_queue_xmit+0xd01"). It
// reads /proc/kallsyms once, on first use.
type Symbolizer struct {
	once  sync.Once
	addrs []uint64
	names []string
}

func (s *Symbolizer) load() {
	f, err := os.Open("/proc/kallsyms")
	if err != nil {
		return
	}
	defer f.Close()
	type sym struct {
		a uint64
		n string
	}
	var syms []sym
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) < 3 || (fl[1] != "t" && fl[1] != "T") {
			continue
		}
		a, err := strconv.ParseUint(fl[0], 16, 64)
		if err != nil || a == 0 {
			continue
		}
		syms = append(syms, sym{a, fl[2]})
	}
	sort.Slice(syms, func(i, j int) bool { return syms[i].a < syms[j].a })
	s.addrs = make([]uint64, len(syms))
	s.names = make([]string, len(syms))
	for i, x := range syms {
		s.addrs[i], s.names[i] = x.a, x.n
	}
}

// Lookup returns "symbol+0xoff", or "" when unknown.
func (s *Symbolizer) Lookup(addr uint64) string {
	s.once.Do(s.load)
	i := sort.Search(len(s.addrs), func(i int) bool { return s.addrs[i] > addr }) - 1
	if i < 0 {
		return ""
	}
	if off := addr - s.addrs[i]; off != 0 {
		return fmt.Sprintf("%s+%#x", s.names[i], off)
	}
	return s.names[i]
}
