package probe

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// The atomics probe must load a real cmpxchg: an immediate of 0 would be an
// atomic add, which kernels without cmpxchg (5.10) accept.
func TestCmpXchgEncoding(t *testing.T) {
	var b bytes.Buffer
	ins := cmpxchg(1, 2)
	if _, err := ins.Marshal(&b, binary.LittleEndian); err != nil {
		t.Fatal(err)
	}
	want := []byte{0xdb, 0x21, 0, 0, 0xf1, 0, 0, 0}
	if !bytes.Equal(b.Bytes(), want) {
		t.Fatalf("cmpxchg encodes as % x, want % x", b.Bytes(), want)
	}
}
