// Package kaddr recognises x86_64 and arm64 kernel addresses in what ringtrace writes.
//
// Recordings, reports and JSON lines are meant to be shared; a kernel
// address in them (a socket's, a symbol's) lets anyone defeat the kernel's
// address-space randomisation (KASLR). The tests of every output prove it
// holds none with Find, FindWords and FindText.
package kaddr

import (
	"encoding/binary"
	"fmt"
	"strconv"
)

// Kernel reports whether v lies where an x86_64 kernel maps something:
// its direct map, vmalloc and vmemmap areas (4- and 5-level paging:
// 0xffff888000000000.., 0xff11000000000000..), or its text and modules
// (0xffffffff80000000..); the first range also holds all of an arm64
// kernel's (linear map 0xffff000000000000.. or, 52-bit, 0xfff0000000000000..;
// text, modules and vmalloc 0xffff800000000000..). Sign-extended small
// negative numbers (errno values, -1) are not kernel addresses.
func Kernel(v uint64) bool {
	return (v >= 0xff10000000000000 && v < 0xffffff0000000000) ||
		(v >= 0xffffffff80000000 && v < 0xffffffffff000000)
}

// Hit is a kernel address found in some output.
type Hit struct {
	Where string // what held it: "header", "record 12 (drop) +24", "line 3", ...
	Value uint64
}

func (h Hit) String() string { return fmt.Sprintf("%s: %#x", h.Where, h.Value) }

// FindWords returns the 8-byte little-endian words of b, at offsets that
// are multiples of 8, that are kernel addresses: the pointer fields of a
// binary record. where names b in the hits.
func FindWords(b []byte, where string) []Hit {
	var hits []Hit
	for off := 0; off+8 <= len(b); off += 8 {
		if v := binary.LittleEndian.Uint64(b[off:]); Kernel(v) {
			hits = append(hits, Hit{Where: fmt.Sprintf("%s +%d", where, off), Value: v})
		}
	}
	return hits
}

// Typical reports whether v has the shape of the kernel addresses of an
// x86_64 machine with 4-level paging narrowly enough to look for them at
// every byte offset of binary data: 0xffff8xxxxxxxxxxx (the direct map,
// where sockets and skbs live) or 0xffffffff8xxxxxxx (kernel text). arm64
// has no such shape: its linear map (0xffff0000..., or 0xfff0... with
// 52-bit addresses) is what two little-endian 16-bit -1 and 0 fields look
// like, which the recordings hold at many offsets, and its text is
// randomised across the whole vmalloc area. On arm64 the byte scan finds
// x86_64 addresses only; Kernel, for whole words and printed numbers,
// covers both.
func Typical(v uint64) bool { return v>>44 == 0xffff8 || v>>28 == 0xffffffff8 }

// FindBytes returns the Typical 8-byte little-endian words of b at every
// byte offset: pointers wherever a binary file puts them.
func FindBytes(b []byte, where string) []Hit {
	var hits []Hit
	for off := 0; off+8 <= len(b); off++ {
		if v := binary.LittleEndian.Uint64(b[off:]); Typical(v) {
			hits = append(hits, Hit{Where: fmt.Sprintf("%s +%d", where, off), Value: v})
		}
	}
	return hits
}

// FindText returns the numbers written in text b that are kernel addresses:
// hexadecimal ones ("0xffff888105469000", or 16 bare hex digits as
// kallsyms writes them) and decimal ones (JSON's 18446612137057292288).
// Hits name the line they are on.
func FindText(b []byte, where string) []Hit {
	var hits []Hit
	line := 1
	for i := 0; i < len(b); {
		c := b[i]
		if c == '\n' {
			line++
		}
		if !isHex(c) || (i > 0 && isWord(b[i-1])) {
			i++
			continue
		}
		j := i
		for j < len(b) && isWord(b[j]) {
			j++
		}
		if v, ok := number(string(b[i:j])); ok && Kernel(v) {
			hits = append(hits, Hit{Where: fmt.Sprintf("%s line %d", where, line), Value: v})
		}
		i = j
	}
	return hits
}

// number reads a token as 0x-prefixed hex, 16 bare hex digits, or decimal.
func number(tok string) (uint64, bool) {
	var v uint64
	var err error
	switch {
	case len(tok) > 2 && tok[0] == '0' && (tok[1] == 'x' || tok[1] == 'X'):
		v, err = strconv.ParseUint(tok[2:], 16, 64)
	case len(tok) == 16:
		if v, err = strconv.ParseUint(tok, 16, 64); err != nil {
			v, err = strconv.ParseUint(tok, 10, 64)
		}
	default:
		v, err = strconv.ParseUint(tok, 10, 64)
	}
	return v, err == nil
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// isWord: the characters a number token runs over (letters stop it from
// matching inside identifiers such as "sk1" or "ff_name").
func isWord(c byte) bool {
	return isHex(c) || c == 'x' || c == 'X' || (c >= 'g' && c <= 'z') || (c >= 'G' && c <= 'Z') || c == '_'
}
