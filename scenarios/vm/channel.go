package vm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// The guest's /init and the command share one serial port (ttyS1), the
// channel. The command's stdout and stderr go there raw; /init frames its own
// records as a line of their own:
//
//	"\n@@RINGVM:<nonce>:<kind> <args>\n"
//
// The leading newline belongs to the marker (so a record is recognised even
// after output that does not end in a newline) and is removed with it. The
// nonce is random per run, so output that merely looks like a record is
// passed through. Kinds: "start" (the command starts), "exit N" (it
// finished with status N), "error TEXT" (/init failed before the command
// ran). A later "file NAME BASE64" kind can carry result files back without
// touching the framing.

// markerTag starts every record after the newline.
const markerTag = "@@RINGVM:"

// maxRecord bounds one record line.
const maxRecord = 1 << 20

// Record is one framed message from the guest's /init.
type Record struct {
	Kind string // "start", "exit", "error", …
	Args string // the rest of the line
}

// Channel splits the channel's byte stream into the command's output, written
// to Out as it arrives, and records, passed to OnRecord in order. Write never
// fails because of the stream's content; Close flushes held-back bytes.
type Channel struct {
	Out      io.Writer
	OnRecord func(Record)

	marker  []byte // "\n@@RINGVM:<nonce>:"
	pending []byte // output that may be the start of a marker
	record  []byte // inside a record: bytes after the marker
	inRec   bool
	err     error
}

// NewChannel returns a parser for the given nonce.
func NewChannel(nonce string, out io.Writer, onRecord func(Record)) *Channel {
	return &Channel{Out: out, OnRecord: onRecord, marker: []byte("\n" + markerTag + nonce + ":")}
}

// Write consumes stream bytes.
func (c *Channel) Write(p []byte) (int, error) {
	var out []byte
	for i := 0; i < len(p); i++ {
		b := p[i]
		if c.inRec {
			if b == '\n' {
				c.emit()
				continue
			}
			if len(c.record) < maxRecord {
				c.record = append(c.record, b)
			}
			continue
		}
		if len(c.pending) == 0 {
			// Fast path: copy up to the next newline, which is the only
			// byte a marker can start with.
			j := bytes.IndexByte(p[i:], '\n')
			if j < 0 {
				out = append(out, p[i:]...)
				break
			}
			out = append(out, p[i:i+j]...)
			i += j
			c.pending = append(c.pending, '\n')
			continue
		}
		c.pending = append(c.pending, b)
		if bytes.HasPrefix(c.marker, c.pending) {
			if len(c.pending) == len(c.marker) {
				c.pending, c.inRec, c.record = c.pending[:0], true, c.record[:0]
			}
			continue
		}
		// Not a marker. The marker holds no newline after its first byte,
		// so only a trailing newline can start a new candidate.
		if b == '\n' {
			out = append(out, c.pending[:len(c.pending)-1]...)
			c.pending = append(c.pending[:0], '\n')
		} else {
			out = append(out, c.pending...)
			c.pending = c.pending[:0]
		}
	}
	c.write(out)
	return len(p), nil
}

// Close flushes output held back as a possible marker start. A record cut
// off by the end of the stream is dropped and reported.
func (c *Channel) Close() error {
	c.write(c.pending)
	c.pending = nil
	if c.inRec {
		c.inRec = false
		return fmt.Errorf("channel: stream ended inside a record (%q)", truncate(string(c.record), 80))
	}
	return c.err
}

// Err reports the first error writing to Out.
func (c *Channel) Err() error { return c.err }

func (c *Channel) emit() {
	c.inRec = false
	kind, args, _ := strings.Cut(string(c.record), " ")
	if c.OnRecord != nil {
		c.OnRecord(Record{Kind: kind, Args: strings.TrimRight(args, "\r")})
	}
}

func (c *Channel) write(b []byte) {
	if len(b) == 0 || c.err != nil || c.Out == nil {
		return
	}
	if _, err := c.Out.Write(b); err != nil {
		c.err = fmt.Errorf("channel: writing command output: %w", err)
	}
}

// ExitStatus parses the argument of an "exit" record.
func ExitStatus(r Record) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(r.Args))
	if err != nil || n < 0 || n > 255 {
		return 0, errors.New("channel: bad exit record " + truncate(r.Args, 40))
	}
	return n, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
