package vm

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// Initramfs collects the guest's root file system: generated files, copies of
// host files and directory trees, symlinks and device nodes. It is written as
// one uncompressed newc cpio archive (the kernel unpacks that fastest under
// TCG). Parent directories are added on demand; paths are guest paths.
type Initramfs struct {
	entries map[string]*rootEntry
	size    int64
}

type rootEntry struct {
	hdr    cpioHeader
	data   []byte // generated content or symlink target
	host   string // copy this host file instead of data
	parent bool   // directory created implicitly, not by the caller
}

// NewInitramfs returns an empty archive containing only "/".
func NewInitramfs() *Initramfs {
	r := &Initramfs{entries: map[string]*rootEntry{}}
	r.entries["/"] = &rootEntry{hdr: cpioHeader{Mode: sIFDIR | 0o755}}
	return r
}

// Size is the number of file bytes added so far.
func (r *Initramfs) Size() int64 { return r.size }

// Dir adds a directory (and its parents).
func (r *Initramfs) Dir(p string, perm fs.FileMode) error {
	p, err := guestPath(p)
	if err != nil {
		return err
	}
	if e, ok := r.entries[p]; ok {
		if e.hdr.Mode&sIFMT != sIFDIR {
			return fmt.Errorf("initramfs: %s exists and is not a directory", p)
		}
		if e.parent {
			e.hdr.Mode, e.parent = sIFDIR|modeBits(perm), false
		}
		return nil
	}
	if err := r.parents(p); err != nil {
		return err
	}
	r.entries[p] = &rootEntry{hdr: cpioHeader{Mode: sIFDIR | modeBits(perm)}}
	return nil
}

// Bytes adds a regular file with the given content.
func (r *Initramfs) Bytes(p string, data []byte, perm fs.FileMode) error {
	return r.add(p, &rootEntry{hdr: cpioHeader{Mode: sIFREG | modeBits(perm), Size: int64(len(data))}, data: data})
}

// File adds a copy of the host file host at guest path p, keeping its mode.
func (r *Initramfs) File(p, host string) error {
	fi, err := os.Stat(host)
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("initramfs: %s is not a regular file", host)
	}
	return r.add(p, &rootEntry{host: host, hdr: cpioHeader{
		Mode: sIFREG | modeBits(fi.Mode()), Size: fi.Size(), Mtime: fi.ModTime().Unix()}})
}

// Symlink adds a symbolic link p -> target.
func (r *Initramfs) Symlink(p, target string) error {
	return r.add(p, &rootEntry{hdr: cpioHeader{Mode: sIFLNK | 0o777, Size: int64(len(target))}, data: []byte(target)})
}

// CharDev adds a character device node.
func (r *Initramfs) CharDev(p string, major, minor uint32, perm fs.FileMode) error {
	return r.add(p, &rootEntry{hdr: cpioHeader{Mode: sIFCHR | modeBits(perm), Rdev: [2]uint32{major, minor}}})
}

// Tree copies the host directory dir, recursively, to the same absolute path
// in the guest. Regular files, directories and symlinks are copied; sockets,
// pipes and device nodes are skipped.
func (r *Initramfs) Tree(dir string) error {
	root, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("initramfs: %w", err)
		}
		fi, err := d.Info()
		if err != nil {
			return fmt.Errorf("initramfs: %w", err)
		}
		switch {
		case fi.IsDir():
			if err := r.Dir(p, fi.Mode()); err != nil {
				return err
			}
			r.entries[path.Clean(p)].hdr.Mtime = fi.ModTime().Unix()
			return nil
		case fi.Mode()&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return fmt.Errorf("initramfs: %w", err)
			}
			return r.Symlink(p, t)
		case fi.Mode().IsRegular():
			return r.File(p, p)
		}
		return nil
	})
}

// WriteFile writes the archive to a new file at dst.
func (r *Initramfs) WriteFile(dst string) error {
	f, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	err = r.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("initramfs: %w", cerr)
	}
	return err
}

// Write writes the archive, parents before children.
func (r *Initramfs) Write(w io.Writer) error {
	paths := make([]string, 0, len(r.entries))
	for p := range r.entries {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	cw := newCPIOWriter(w)
	for _, p := range paths {
		if err := r.writeEntry(cw, p, r.entries[p]); err != nil {
			return err
		}
	}
	return cw.Close()
}

func (r *Initramfs) writeEntry(cw *cpioWriter, p string, e *rootEntry) error {
	if e.host == "" {
		return cw.WriteEntry(p, e.hdr, bytes.NewReader(e.data))
	}
	f, err := os.Open(e.host)
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	defer f.Close()
	if err := cw.WriteEntry(p, e.hdr, f); err != nil {
		return fmt.Errorf("initramfs: %s changed while it was copied: %w", e.host, err)
	}
	return nil
}

func (r *Initramfs) add(p string, e *rootEntry) error {
	p, err := guestPath(p)
	if err != nil {
		return err
	}
	if _, ok := r.entries[p]; ok {
		return fmt.Errorf("initramfs: %s added twice", p)
	}
	if err := r.parents(p); err != nil {
		return err
	}
	r.entries[p] = e
	r.size += e.hdr.Size
	return nil
}

// parents adds the missing parent directories of p.
func (r *Initramfs) parents(p string) error {
	for dir := path.Dir(p); ; dir = path.Dir(dir) {
		e, ok := r.entries[dir]
		if ok {
			if e.hdr.Mode&sIFMT != sIFDIR {
				return fmt.Errorf("initramfs: %s is not a directory (needed for %s)", dir, p)
			}
			return nil
		}
		r.entries[dir] = &rootEntry{hdr: cpioHeader{Mode: sIFDIR | 0o755}, parent: true}
	}
}

// guestPath cleans an absolute guest path.
func guestPath(p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("initramfs: guest path %q is not absolute", p)
	}
	return path.Clean(p), nil
}

// modeBits converts permissions (with setuid, setgid, sticky) to the
// st_mode bits cpio stores.
func modeBits(m fs.FileMode) uint32 {
	b := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		b |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		b |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		b |= 0o1000
	}
	return b
}

// fileMode is the inverse of modeBits.
func fileMode(b uint32) fs.FileMode {
	m := fs.FileMode(b & 0o777)
	if b&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if b&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if b&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}
