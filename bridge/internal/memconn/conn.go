package memconn

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wsbridge/wsbridge/bridge/transport"
	"github.com/wsbridge/wsbridge/framing"
)

// Conn is the server side of an in-memory client: what a mode gets.
type Conn struct {
	out          *stream       // to the peer, framed with Wire
	in           chan inbound  // from the peer
	done         chan struct{} // closed by Finish: the peer's sends stop
	closing      chan struct{} // closed by the first Close
	closeTimeout time.Duration

	wmu       sync.Mutex
	broken    bool // a write failed: nothing more fits
	closeSent atomic.Bool
	closeOnce sync.Once
	closeBy   atomic.Int64 // UnixNano by which the peer's answer must come
	hungUp    atomic.Bool
	first     atomic.Pointer[transport.CloseError]
	bytesIn   atomic.Int64
	bytesOut  atomic.Int64
	finished  sync.Once
}

// inbound is what the peer sends: a batch of pieces, or its close.
type inbound struct {
	pieces []framing.Piece
	close  *transport.CloseError // nil: pieces
}

var (
	_ transport.Client = (*Conn)(nil)
	_ transport.Framed = (*Conn)(nil)
)

// Options size a pair. The zero value of each is a sound default.
type Options struct {
	OutLimit     int           // bytes the server may have written that the peer has not read; 0: 1 MiB
	CloseTimeout time.Duration // how long the server waits for the peer's close; 0: 2s
}

// Pair returns a connected server side and peer.
func Pair(o Options) (*Conn, *Peer) {
	if o.OutLimit == 0 {
		o.OutLimit = 1 << 20
	}
	if o.CloseTimeout == 0 {
		o.CloseTimeout = 2 * time.Second
	}
	c := &Conn{out: newStream(o.OutLimit), in: make(chan inbound, 16), done: make(chan struct{}),
		closing: make(chan struct{}), closeTimeout: o.CloseTimeout}
	return c, &Peer{c: c}
}

func (c *Conn) noteClose(code transport.CloseCode, reason string, remote bool) {
	c.first.CompareAndSwap(nil, &transport.CloseError{Code: code, Reason: reason, Remote: remote})
}

// Begin does nothing: a Conn has no descriptor, so it never parks, and
// no timers.
func (c *Conn) Begin(bool, func()) {}

// Descriptor is nil: nothing to poll.
func (c *Conn) Descriptor() syscall.RawConn { return nil }

// Receive delivers what the peer sends until it closes or hangs up, or,
// once a close went out, until the peer answers or the close timeout
// passes.
func (c *Conn) Receive(deliver func([]framing.Piece) error) error {
	for {
		var timeout <-chan time.Time
		closing := c.closing
		if c.closeSent.Load() {
			closing = nil
			t := time.NewTimer(time.Until(time.Unix(0, c.closeBy.Load())))
			defer t.Stop()
			timeout = t.C
		}
		select {
		case ev, ok := <-c.in:
			switch {
			case !ok:
				c.noteClose(transport.CloseAbnormal, "", true)
				return &transport.CloseError{Code: transport.CloseAbnormal, Remote: true, Err: errors.New("peer hung up")}
			case ev.close != nil:
				c.noteClose(ev.close.Code, ev.close.Reason, true)
				reply := ev.close.Code
				if reply == transport.CloseNoStatus {
					reply = 0
				}
				_ = c.Close(reply, "")
				return ev.close
			case c.closeSent.Load():
				continue // closing: data is dropped
			}
			for _, p := range ev.pieces {
				c.bytesIn.Add(int64(len(p.Data)))
			}
			if err := deliver(ev.pieces); err != nil {
				return err
			}
		case <-closing:
		case <-timeout:
			return &transport.CloseError{Code: transport.CloseAbnormal, Err: errors.New("no close from the peer in time")}
		}
	}
}

// Send writes pieces as frames of Wire, blocking while the peer does not
// read.
func (c *Conn) Send(pieces []framing.Piece) error {
	if err := framing.WriteVectors(pieces, Wire{}, c.write); err != nil {
		return err
	}
	c.bytesOut.Add(framing.DataLen(pieces))
	return nil
}

func (c *Conn) write(iov [][]byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.WriteLocked(iov, true)
	return err
}

// Close sends a close frame, once, and bounds the wait for the answer.
func (c *Conn) Close(code transport.CloseCode, reason string) error {
	var err error
	c.closeOnce.Do(func() {
		deadline := time.Now().Add(c.closeTimeout)
		c.out.setDeadline(deadline)
		c.wmu.Lock()
		c.noteClose(code, reason, false)
		if !c.broken {
			_, err = c.out.write(appendClose(nil, code, reason), true)
		}
		c.closeBy.Store(deadline.UnixNano())
		c.closeSent.Store(true)
		c.wmu.Unlock()
		close(c.closing)
	})
	return err
}

// Fail closes for a rule broken and returns the error that ends Receive.
func (c *Conn) Fail(err error) error {
	cl := transport.ForError(err)
	_ = c.Close(cl.Code, cl.Reason)
	return &transport.CloseError{Code: cl.Code, Reason: cl.Reason, Err: err}
}

func (c *Conn) Gone() bool    { return c.closeSent.Load() || c.hungUp.Load() }
func (c *Conn) Closing() bool { return c.closeSent.Load() }
func (c *Conn) Late() bool    { return false }

// Ended returns the first close sent or received.
func (c *Conn) Ended() transport.CloseError {
	if ce := c.first.Load(); ce != nil {
		return *ce
	}
	return transport.CloseError{Code: transport.CloseAbnormal, Remote: true}
}

// Finish ends the connection: the peer reads what is left, then the end.
func (c *Conn) Finish() {
	c.finished.Do(func() {
		c.out.end(false)
		close(c.done)
	})
}

func (c *Conn) Counts() (in, out int64) { return c.bytesIn.Load(), c.bytesOut.Load() }

// The transport.Framed side, for the shared mode.

func (c *Conn) Wire() transport.Wire { return Wire{} }
func (c *Conn) TryLockWrite() bool   { return c.wmu.TryLock() }
func (c *Conn) LockWrite()           { c.wmu.Lock() }
func (c *Conn) UnlockWrite()         { c.wmu.Unlock() }

// WriteLocked writes iov to the peer's stream (see transport.Framed).
func (c *Conn) WriteLocked(iov [][]byte, wait bool) (int, error) {
	if c.broken || c.closeSent.Load() {
		return 0, transport.ErrClosed
	}
	n := 0
	for _, b := range iov {
		k, err := c.out.write(b, wait)
		n += k
		if err != nil {
			if wait {
				c.broken = true
			}
			return n, err
		}
	}
	return n, nil
}

func (c *Conn) WritableLocked() bool { return !c.broken && !c.closeSent.Load() }
func (c *Conn) BreakLocked()         { c.broken = true }
func (c *Conn) ControlWanted() bool  { return false }
func (c *Conn) FlushControlLocked()  {}
func (c *Conn) SendControl()         {}

func (c *Conn) SetWriteDeadline(t time.Time) error { c.out.setDeadline(t); return nil }
func (c *Conn) CloseTimeout() time.Duration        { return c.closeTimeout }
func (c *Conn) LimitUnsent()                       {}
func (c *Conn) RoomForClose(int)                   {}
func (c *Conn) CountOut(n int64)                   { c.bytesOut.Add(n) }

// Wire is memconn's framing: a flags byte (first, final, text, close), a
// 32-bit big-endian length, the data. A close frame's data is its code
// and reason.
type Wire struct{}

const (
	flagFirst = 1 << iota
	flagFinal
	flagText
	flagClose
	headerLen = 5
)

func (Wire) AppendPrefix(dst []byte, p framing.Piece) []byte {
	var f byte
	if p.First {
		f |= flagFirst
	}
	if p.Final {
		f |= flagFinal
	}
	if p.Kind == framing.Text {
		f |= flagText
	}
	dst = append(dst, f)
	return binary.BigEndian.AppendUint32(dst, uint32(len(p.Data)))
}

func (Wire) Suffix(framing.Piece) []byte { return nil }

func (w Wire) AppendFrame(dst []byte, p framing.Piece) []byte {
	return append(w.AppendPrefix(dst, p), p.Data...)
}

func (Wire) MaxOverhead() int { return headerLen }

func (Wire) FrameLen(b []byte) int { return headerLen + int(binary.BigEndian.Uint32(b[1:])) }

func appendClose(dst []byte, code transport.CloseCode, reason string) []byte {
	dst = append(dst, flagFirst|flagFinal|flagClose)
	body := binary.BigEndian.AppendUint16(nil, uint16(code))
	body = append(body, reason...)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(body)))
	return append(dst, body...)
}

// String names the pair in test logs.
func (c *Conn) String() string { return fmt.Sprintf("memconn %p", c) }
