package vm

import (
	"io"
	"regexp"
	"strings"
	"sync"
)

// tailBuffer keeps the last max bytes written to it (the kernel console, for
// error reports) and copies everything to an optional live writer.
type tailBuffer struct {
	mu   sync.Mutex
	max  int
	buf  []byte
	live io.Writer
}

func newTailBuffer(max int, live io.Writer) *tailBuffer {
	return &tailBuffer{max: max, live: live}
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	if t.live != nil {
		_, _ = t.live.Write(p)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// ansiEscape matches the terminal sequences SeaBIOS and qemu print.
var ansiEscape = regexp.MustCompile(`\x1b(\[[0-9;?]*[A-Za-z]|[A-Za-z])`)

// lastLinesOf returns the last n non-empty lines of s, with terminal
// escape sequences, control characters and carriage returns removed.
func lastLinesOf(s string, n int) []string {
	var lines []string
	for _, l := range strings.Split(ansiEscape.ReplaceAllString(s, ""), "\n") {
		l = strings.Map(func(r rune) rune {
			if r < 0x20 && r != '\t' {
				return -1
			}
			return r
		}, l)
		if strings.TrimSpace(l) != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}
