package wsconn

import (
	"net"
	"time"

	"github.com/gobwas/ws"

	"github.com/wsbridge/wsbridge/bridge/poll"
	"github.com/wsbridge/wsbridge/bridge/transport"
	"github.com/wsbridge/wsbridge/framing"
)

// Send writes pieces as frames, all of them in one writev where the
// connection allows. Their data is only borrowed for the call.
func (c *Conn) Send(pieces []framing.Piece) error {
	if err := framing.WriteVectors(pieces, Wire{}, c.write); err != nil {
		return err
	}
	c.bytesOut.Add(framing.DataLen(pieces))
	return nil
}

// Wire frames pieces as unmasked server frames: a piece that opens a
// message gets the text or binary opcode, the others continue it, and the
// final piece sets FIN. It is a framing.Encoder (the header is the
// prefix) and a transport.Wire.
type Wire struct{}

func (Wire) AppendPrefix(dst []byte, p framing.Piece) []byte {
	op := ws.OpContinuation
	if p.First {
		op = ws.OpBinary
		if p.Kind == framing.Text {
			op = ws.OpText
		}
	}
	return appendHeader(dst, op, p.Final, len(p.Data))
}

func (Wire) Suffix(framing.Piece) []byte { return nil }

// AppendFrame appends p as a whole frame to dst.
func (w Wire) AppendFrame(dst []byte, p framing.Piece) []byte {
	return append(w.AppendPrefix(dst, p), p.Data...)
}

// MaxOverhead is the longest header of an unmasked server frame.
func (Wire) MaxOverhead() int { return maxHeader }

// FrameLen returns the length of the unmasked server frame at the start
// of b, header included.
func (Wire) FrameLen(b []byte) int { return frameLen(b) }

// Wire returns how the connection frames pieces.
func (c *Conn) Wire() transport.Wire { return Wire{} }

// write puts whole frames on the wire under the write lock, then sends a
// pong or ping that waited for the lock.
func (c *Conn) write(iov [][]byte) error {
	c.wmu.Lock()
	err := c.writeLocked(iov)
	c.flushControlLocked()
	c.wmu.Unlock()
	c.controlAfterUnlock()
	return err
}

func (c *Conn) writeLocked(iov [][]byte) error {
	if c.closeSent.Load() || c.wbroken {
		return transport.ErrClosed
	}
	var err error
	switch {
	case c.wrc != nil && !c.ownWritev:
		err = c.writevAll(iov)
	case c.ownWritev:
		bufs := net.Buffers(iov)
		_, err = bufs.WriteTo(c.conn)
	default:
		err = c.writeJoined(iov)
	}
	if err != nil {
		c.wbroken = true
		return err
	}
	return nil
}

// maxIOV is what one writev(2) takes at most (IOV_MAX).
const maxIOV = 1024

// writevAll writes all of iov with writev(2) on the write descriptor,
// waiting for room under the write deadline: for a connection whose
// net.Buffers would go out a write(2) per buffer (one handed over, which
// wraps the socket, or a web server's pipe).
func (c *Conn) writevAll(iov [][]byte) error {
	for len(iov) > 0 {
		n, err := poll.Writev(c.wrc, iov[:min(len(iov), maxIOV)], true, nil)
		if err != nil {
			return err
		}
		iov = poll.Advance(iov, n)
	}
	return nil
}

// joinSize is what writeJoined gathers for one Write: a TLS record's
// most plaintext, so that each Write seals whole records.
const joinSize = 16 << 10

// writeJoined writes iov to a connection that must be written through
// (TLS: the records go through crypto/tls) in Writes of up to joinSize
// gathered in a pooled buffer: crypto/tls seals a record and makes a
// system call per Write, and net.Buffers would give it one per buffer,
// a frame's header apart from its payload. A buffer of joinSize or more
// goes out alone, as it is.
func (c *Conn) writeJoined(iov [][]byte) error {
	_, err := c.writeJoinedN(iov)
	return err
}

// writeJoinedN is writeJoined, also returning how many bytes of iov the
// connection took.
func (c *Conn) writeJoinedN(iov [][]byte) (int, error) {
	buf := poll.GetCap(joinSize)
	defer func() { poll.Put(buf) }()
	done := 0
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		n, err := c.conn.Write(buf)
		done += n
		buf = buf[:0]
		return err
	}
	for _, b := range iov {
		if len(buf)+len(b) > joinSize {
			if err := flush(); err != nil {
				return done, err
			}
		}
		if len(b) >= joinSize {
			n, err := c.conn.Write(b)
			done += n
			if err != nil {
				return done, err
			}
			continue
		}
		buf = append(buf, b...) // fits: cap is joinSize
	}
	return done, flush()
}

// The shared mode's writer (transport.Framed): frames framed once for
// every member, written under the write lock.

func (c *Conn) TryLockWrite() bool { return c.wmu.TryLock() }
func (c *Conn) LockWrite()         { c.wmu.Lock() }
func (c *Conn) UnlockWrite()       { c.wmu.Unlock() }

// WritableLocked reports whether frames may still be written.
func (c *Conn) WritableLocked() bool { return !c.closeSent.Load() && !c.wbroken }

// BreakLocked says no more frames fit: a write failed, or the close
// timeout passed, part-way.
func (c *Conn) BreakLocked() { c.wbroken = true }

// ControlWanted reports whether a pong or ping waits for the write lock.
func (c *Conn) ControlWanted() bool { return c.pongWant.Load() || c.pingWant.Load() }

// FlushControlLocked writes a pong or ping that waits; SendControl does
// so if the write lock is free.
func (c *Conn) FlushControlLocked() { c.flushControlLocked() }
func (c *Conn) SendControl()        { c.controlAfterUnlock() }

func (c *Conn) SetWriteDeadline(t time.Time) error { return c.conn.SetWriteDeadline(t) }
func (c *Conn) CloseTimeout() time.Duration        { return c.cfg.CloseTimeout }
func (c *Conn) CountOut(n int64)                   { c.bytesOut.Add(n) }

// WriteLocked writes iov with writev(2), the write lock held. With wait it
// waits for room as often as needed until part is written (the write
// deadline applies) and returns what was; without, it never waits and
// returns poll.ErrWouldBlock, with what the socket took, unless it took
// all.
//
// Only a connection with a descriptor to write to (TCP, a web server's
// pipe) is written with writev(2). Through a layered one (TLS) a write
// that the socket cuts short would break the records, so it is never
// tried without wait: the member's drain writes it through the
// connection.
func (c *Conn) WriteLocked(iov [][]byte, wait bool) (int, error) {
	rc := c.wrc
	if rc == nil {
		if !wait {
			return 0, poll.ErrWouldBlock // the drain writes it
		}
		// Gathered, as Send's frames: a TLS record and a system call
		// per Write, not per header and per payload.
		return c.writeJoinedN(iov)
	}
	return poll.Writev(rc, iov, wait, nil)
}
