package scenarios

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringtrace/ringtrace/tracer/txring"
)

// openRing opens the scenario's TX ring on the lab's sender veth.
func (e *Env) openRing(frames int) (*txring.Ring, error) {
	p := e.Params
	cfg := txring.SocketConfig{Ifname: e.Lab.SenderIf, NetNS: e.Lab.SenderNS, QdiscBypass: p.Bypass}
	if p.SndBuf > 0 {
		cfg.SndBuf, cfg.ForceSndBuf = p.SndBuf, true
	}
	geo := txring.Geometry{Version: txring.V2, Frames: frames, FrameSize: 2048, BlockSize: 4096}
	if frames%2 != 0 {
		geo.Frames++
	}
	r, err := txring.Open(cfg, geo)
	if err != nil {
		return nil, fmt.Errorf("open TX ring: %w", err)
	}
	pkt := frame(p.Size).Build()
	for i := 0; i < r.Frames(); i++ {
		r.Fill(i, pkt)
	}
	return r, nil
}

// request marks frames [from, from+n) SEND_REQUEST.
func request(r *txring.Ring, from, n int) {
	for i := 0; i < n; i++ {
		r.SetStatus((from+i)%r.Frames(), txring.SendRequest)
	}
}

// call is one sendto() as the sender saw it.
type call struct {
	ret   int
	errno unix.Errno
	took  time.Duration
}

func (c call) String() string {
	if c.errno != 0 {
		return "-" + unix.ErrnoName(c.errno)
	}
	return fmt.Sprint(c.ret)
}

func send(r *txring.Ring, flags int) call {
	t0 := time.Now()
	n, err := r.Send(flags)
	c := call{ret: n, took: time.Since(t0)}
	if err != nil {
		c.errno = err.(unix.Errno)
	}
	return c
}
