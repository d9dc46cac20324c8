package record

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"fmt"

	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/holders"
)

// pseudonyms stand in for the kernel pointers of one recording written
// without kernel addresses. Each is stable within the recording, so the
// same pointer always gets the same pseudonym and different ones
// different pseudonyms: per-socket grouping, a socket address reused by a
// new socket (told apart by its inode), the skb a holder walk found, all
// read as they did. Nothing in the file maps a pseudonym back:
//
//   - sockets and napi structs get small ids, 1, 2, ... in order of
//     appearance (a recording has few of each);
//   - locations (drop and free sites, kernel text) get their index, from
//     1, in the trailer's table of names (Trailer.Locations), named on the
//     traced machine when the recording is closed;
//   - skbs and the ring's frame and block addresses, of which a long trace
//     sees many, get a 47-bit keyed pseudonym (AES under a random key the
//     writer forgets), in [2^47, 2^48): no table grows with them, and no
//     value can be mistaken for a kernel address.
type pseudonyms struct {
	socks, napis ids
	locs         *locations
	key          cipher.Block
	in, out      [aes.BlockSize]byte // key's buffers: no allocation per pointer
	mapper       func(event.Pointer, uint64) uint64
}

func newPseudonyms(locs *locations) (*pseudonyms, error) {
	var k [16]byte
	if _, err := rand.Read(k[:]); err != nil {
		return nil, fmt.Errorf("pseudonym key: %w", err)
	}
	key, err := aes.NewCipher(k[:])
	if err != nil {
		return nil, fmt.Errorf("pseudonym key: %w", err)
	}
	p := &pseudonyms{socks: newIDs(), napis: newIDs(), locs: locs, key: key}
	p.mapper = p.of
	return p, nil
}

// of is the pseudonym of pointer v of kind k.
func (p *pseudonyms) of(k event.Pointer, v uint64) uint64 {
	switch k {
	case event.PointerSocket:
		return p.socks.of(v)
	case event.PointerNapi:
		return p.napis.of(v)
	case event.PointerLocation:
		return p.locs.index(v)
	}
	return p.keyed(v)
}

// keyed is v's 47-bit keyed pseudonym.
func (p *pseudonyms) keyed(v uint64) uint64 {
	binary.LittleEndian.PutUint64(p.in[:], v)
	p.key.Encrypt(p.out[:], p.in[:])
	return binary.LittleEndian.Uint64(p.out[:])&(1<<47-1) | 1<<47
}

// snapshot is a copy of s with the same pseudonyms as the records.
func (p *pseudonyms) snapshot(s *holders.Snapshot) *holders.Snapshot {
	return s.MapPointers(p.socks.of, p.keyed)
}

// ids numbers values in order of first appearance, from 1.
type ids struct {
	m            map[uint64]uint64
	last, lastID uint64 // consecutive records mostly name one socket
}

func newIDs() ids { return ids{m: map[uint64]uint64{}} }

func (s *ids) of(v uint64) uint64 {
	if v == s.last && s.lastID != 0 {
		return s.lastID
	}
	id, ok := s.m[v]
	if !ok {
		id = uint64(len(s.m)) + 1
		s.m[v] = id
	}
	s.last, s.lastID = v, id
	return id
}

// maxLocations bounds the locations a recording names (a trace sees a few
// drop and free sites); locations past it share one last, unnamed entry.
const maxLocations = 4096

// locations are the drop and free sites the records name, in order of
// first appearance: named in the trailer, by address (Trailer.Symbols) or,
// without kernel addresses, by index (Trailer.Locations).
type locations struct {
	idx      ids
	addrs    []uint64
	overflow bool // more than maxLocations: the rest share index maxLocations+1
}

func newLocations() *locations { return &locations{idx: newIDs()} }

// index is location a's index in the table, from 1.
func (l *locations) index(a uint64) uint64 {
	if len(l.addrs) >= maxLocations {
		if id, ok := l.idx.m[a]; ok {
			return id
		}
		l.overflow = true
		return maxLocations + 1
	}
	id := l.idx.of(a)
	if id > uint64(len(l.addrs)) {
		l.addrs = append(l.addrs, a)
	}
	return id
}

// names are the table's names, by index (Trailer.Locations), with an
// unnamed last entry when the table overflowed.
func (l *locations) names(symbol func(uint64) string) []string {
	out := make([]string, 0, len(l.addrs)+1)
	for _, a := range l.addrs {
		out = append(out, name(symbol, a))
	}
	if l.overflow {
		out = append(out, "")
	}
	return out
}

// byAddress are the table's names by address (Trailer.Symbols), named ones
// only.
func (l *locations) byAddress(symbol func(uint64) string, into map[uint64]string) map[uint64]string {
	for _, a := range l.addrs {
		if n := name(symbol, a); n != "" {
			if into == nil {
				into = map[uint64]string{}
			}
			into[a] = n
		}
	}
	return into
}

func name(symbol func(uint64) string, a uint64) string {
	if symbol == nil {
		return ""
	}
	return symbol(a)
}
