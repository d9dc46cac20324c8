package vm

import (
	"fmt"
	"io"
	"strings"
)

// cpioWriter writes the "newc" (SVR4, no CRC) cpio format, the one the
// kernel's initramfs unpacker reads. Entries are written in the order given:
// a directory must come before what it contains.
type cpioWriter struct {
	w   io.Writer
	ino uint32
	n   int64 // bytes written so far, for padding
}

// cpioHeader is what one entry needs besides its name and data.
type cpioHeader struct {
	Mode  uint32 // file type bits | permissions (S_IFREG|0755 …)
	Size  int64  // data length (a symlink's data is its target)
	Mtime int64
	Rdev  [2]uint32 // major, minor of a device node
}

const (
	sIFMT  = 0o170000
	sIFDIR = 0o040000
	sIFREG = 0o100000
	sIFLNK = 0o120000
	sIFCHR = 0o020000
)

func newCPIOWriter(w io.Writer) *cpioWriter { return &cpioWriter{w: w} }

// WriteEntry writes one header and copies exactly h.Size bytes from data
// (nil for directories and device nodes).
func (c *cpioWriter) WriteEntry(name string, h cpioHeader, data io.Reader) error {
	name = strings.TrimPrefix(name, "/")
	if name == "" {
		name = "."
	}
	if h.Size > 0xffffffff {
		return fmt.Errorf("cpio: %s: %d bytes is too large for newc", name, h.Size)
	}
	c.ino++
	nlink := 1
	if h.Mode&sIFMT == sIFDIR {
		nlink = 2
	}
	hdr := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		c.ino, h.Mode, 0, 0, nlink, uint32(h.Mtime), uint32(h.Size),
		0, 0, h.Rdev[0], h.Rdev[1], len(name)+1, 0)
	if err := c.write([]byte(hdr + name + "\x00")); err != nil {
		return err
	}
	if err := c.pad(); err != nil {
		return err
	}
	if h.Size > 0 {
		n, err := io.CopyN(c.w, data, h.Size)
		c.n += n
		if err != nil {
			return fmt.Errorf("cpio: %s: %w", name, err)
		}
	}
	return c.pad()
}

// Close writes the trailer. It does not close the underlying writer.
func (c *cpioWriter) Close() error {
	return c.WriteEntry("TRAILER!!!", cpioHeader{}, nil)
}

func (c *cpioWriter) write(b []byte) error {
	n, err := c.w.Write(b)
	c.n += int64(n)
	if err != nil {
		return fmt.Errorf("cpio: %w", err)
	}
	return nil
}

func (c *cpioWriter) pad() error {
	if r := c.n % 4; r != 0 {
		return c.write(make([]byte, 4-r))
	}
	return nil
}
