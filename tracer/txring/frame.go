package txring

import (
	"encoding/binary"
	"net"
)

// EtherTypeLocalExp1 is IEEE 802 Local Experimental Ethertype 1, the default:
// no protocol handler consumes it, so receivers drop it as unhandled.
const EtherTypeLocalExp1 = 0x88b5

// BroadcastMAC is ff:ff:ff:ff:ff:ff.
var BroadcastMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// FrameSpec describes the Ethernet frames the sender writes.
type FrameSpec struct {
	Dst, Src  net.HardwareAddr
	EtherType uint16
	Size      int // tp_len: Ethernet header + payload, no FCS
}

// Build returns one frame: Ethernet header then a payload whose byte i is
// byte(i), so a capture shows the offset of every byte.
func (f FrameSpec) Build() []byte {
	n := f.Size
	if n < ethHdrLen {
		n = ethHdrLen
	}
	b := make([]byte, n)
	copy(b[0:6], f.Dst)
	copy(b[6:12], f.Src)
	binary.BigEndian.PutUint16(b[12:14], f.EtherType)
	for i := ethHdrLen; i < n; i++ {
		b[i] = byte(i - ethHdrLen)
	}
	return b
}
