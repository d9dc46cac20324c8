package matrix

import (
	"bytes"
	"errors"
	"regexp"
	"strings"
	"sync"
)

// errWedged is the cause given when the console shows the guest is wedged
// or oopsed: the guest is stopped instead of waiting for the timeout.
var errWedged = errors.New("the guest's kernel is wedged or oopsed")

// fatalConsole matches console lines after which a guest's results cannot be
// trusted: oopses, BUGs, panics, and the stall reports of a wedged kernel.
var fatalConsole = regexp.MustCompile(`Oops: |BUG: |Kernel panic|general protection fault|detected stalls on CPUs|soft lockup|hard LOCKUP|blocked for more than`)

// consoleTimestamp is the kernel's "[   21.661408] " line prefix.
var consoleTimestamp = regexp.MustCompile(`^\[\s*\d+\.\d+\]\s*`)

// deathCause picks the telling lines out of a dead guest's console: the first
// fatal line, the faulting instruction (RIP) and process (Comm) after it, and
// the panic message.
func deathCause(console string) string {
	var out []string
	seen := map[string]bool{}
	add := func(s string) {
		if s != "" && !seen[s] && len(out) < 5 {
			seen[s] = true
			out = append(out, s)
		}
	}
	found := false
	for _, l := range strings.Split(console, "\n") {
		l = strings.TrimSpace(consoleTimestamp.ReplaceAllString(strings.TrimRight(l, "\r"), ""))
		switch {
		case !found && fatalConsole.MatchString(l):
			found = true
			add(l)
		case found && strings.HasPrefix(l, "RIP: 0010:") && !seen["rip"]:
			seen["rip"] = true
			add(l)
		case found && strings.Contains(l, " Comm: ") && !seen["comm"]:
			seen["comm"] = true
			if _, rest, ok := strings.Cut(l, " Comm: "); ok {
				add("Comm: " + strings.Fields(rest)[0])
			}
		case strings.HasPrefix(l, "Kernel panic"):
			add(l)
		}
	}
	return strings.Join(out, "; ")
}

// consoleWatch receives a guest's kernel console: it keeps everything for
// the console file and calls onFatal once at the first fatal line.
type consoleWatch struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	line    []byte
	fired   bool
	onFatal func()
}

func (c *consoleWatch) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf.Write(p)
	for _, b := range p {
		if b != '\n' {
			if len(c.line) < 4096 {
				c.line = append(c.line, b)
			}
			continue
		}
		if !c.fired && fatalConsole.Match(c.line) {
			c.fired = true
			if c.onFatal != nil {
				c.onFatal()
			}
		}
		c.line = c.line[:0]
	}
	return len(p), nil
}

// String is the console so far.
func (c *consoleWatch) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}
