package matrix

import (
	"bytes"
	"strconv"
	"strings"
)

// Frame is one framed result from a target's output.
type Frame struct {
	Key     string // "probe/auto", "run/kprobe/0", "test/tracer/session"
	Status  int    // the exit status of what produced the payload
	Seconds int    // how long it took (-1: not said)
	Payload []byte
}

// maxLine bounds one output line; longer lines are cut (a frame's payload
// lines are JSON from ringtrace, far shorter).
const maxLine = 1 << 20

// Parser picks the frames out of a target's output and passes each to
// OnFrame as it ends; other lines are ignored (the caller keeps the raw
// output as the log). Output that only looks like a marker (another nonce) is
// not one. A frame that never ends (the target died while printing it) is
// dropped.
type Parser struct {
	OnFrame func(Frame)

	marker  string
	partial []byte // the current line so far
	inFrame bool
	key     string
	payload bytes.Buffer
}

// NewParser returns a parser for a script rendered with nonce.
func NewParser(nonce string, onFrame func(Frame)) *Parser {
	return &Parser{OnFrame: onFrame, marker: markerTag + nonce + ":"}
}

// Write consumes output; it never fails.
func (p *Parser) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			p.appendPartial(b)
			break
		}
		p.appendPartial(b[:i])
		p.line(string(p.partial))
		p.partial = p.partial[:0]
		b = b[i+1:]
	}
	return n, nil
}

func (p *Parser) appendPartial(b []byte) {
	if room := maxLine - len(p.partial); room < len(b) {
		b = b[:max(room, 0)]
	}
	p.partial = append(p.partial, b...)
}

func (p *Parser) line(l string) {
	rest, isMark := strings.CutPrefix(l, p.marker)
	if !isMark {
		if p.inFrame {
			p.payload.WriteString(l)
			p.payload.WriteByte('\n')
		}
		return
	}
	f := strings.Fields(rest)
	switch {
	case len(f) == 2 && f[0] == "begin":
		p.inFrame, p.key = true, f[1]
		p.payload.Reset()
	case (len(f) == 3 || len(f) == 4) && f[0] == "end" && p.inFrame && f[1] == p.key:
		fr := Frame{Key: p.key, Status: atoiOr(f[2], -1), Seconds: -1,
			Payload: append([]byte(nil), bytes.TrimRight(p.payload.Bytes(), "\n")...)}
		if len(f) == 4 {
			fr.Seconds = atoiOr(f[3], -1)
		}
		p.inFrame = false
		if p.OnFrame != nil {
			p.OnFrame(fr)
		}
	}
}

func atoiOr(s string, or int) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return or
	}
	return n
}
