package wsconn

import (
	"encoding/binary"
	"errors"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"

	"github.com/wsbridge/wsbridge/bridge/poll"
	"github.com/wsbridge/wsbridge/bridge/transport"
	"github.com/wsbridge/wsbridge/framing"
)

// Receive reads frames until the client closes, the connection fails or a
// protocol rule is broken, and hands the data to deliver in batches of
// pieces. Pieces alias a pooled buffer: they are valid until deliver
// returns. Control frames are answered here. Frames are unmasked in place;
// no message is ever assembled.
//
// When parkable is set and nothing is left to read between frames,
// Receive returns transport.ErrParked instead of waiting; call it again once the
// connection is readable. Otherwise it returns a *transport.CloseError saying how
// the connection ended; when the client sent the close, its code is echoed
// back before Receive returns. One goroutine at a time may call it.
func (c *Conn) Receive(deliver func([]framing.Piece) error) error {
	var (
		buf    []byte // pooled while data is there, nil while waiting
		r, w   int
		pieces []framing.Piece // pooled while frames are parsed
		st     = &c.rs
	)
	defer func() {
		poll.Put(buf)
		framing.PutPieces(pieces)
	}()
	// failAfter ends the connection for a broken rule, after handing the
	// child what arrived whole before it: nothing valid is lost because
	// TCP happened to bring it in the same read as the error.
	failAfter := func(err error) error {
		if len(pieces) > 0 {
			_ = c.deliver(deliver, pieces)
		}
		return c.fail(err)
	}
	if len(c.pending) > 0 {
		buf = poll.Get(max(c.cfg.ReadBuffer, len(c.pending)))
		w = copy(buf, c.pending)
		c.pending = nil
	}
	for {
		// Parse everything the buffer holds.
		pieces = framing.GetPieces()
		for r < w || (st.inFrame && st.frameLeft == 0) {
			if !st.inFrame {
				h, n, err := parseHeader(buf[r:w])
				if err == errIncomplete {
					break
				}
				if err != nil {
					return failAfter(err)
				}
				if err := checkHeader(h, st.msgOpen); err != nil {
					return failAfter(err)
				}
				if h.OpCode.IsControl() {
					if int64(w-r-n) < h.Length {
						break // wait for the whole control payload
					}
					p := buf[r+n : r+n+int(h.Length)]
					ws.Cipher(p, h.Mask, 0)
					r += n + int(h.Length)
					if h.OpCode == ws.OpClose {
						// What came before the close still reaches the child.
						if len(pieces) > 0 {
							_ = c.deliver(deliver, pieces)
							pieces = pieces[:0]
						}
						return c.closeReceived(p)
					}
					if h.OpCode == ws.OpPing {
						c.pong(p)
					}
					continue
				}
				r += n
				if h.OpCode != ws.OpContinuation {
					st.msgOpen, st.msgFirst, st.msgLen = true, true, 0
					st.msgKind = framing.Binary
					if h.OpCode == ws.OpText {
						st.msgKind = framing.Text
						st.utf.Reset()
					}
				}
				st.msgLen += h.Length
				if c.cfg.MaxMessage > 0 && st.msgLen > c.cfg.MaxMessage {
					return failAfter(transport.ErrTooBig)
				}
				st.hdr, st.inFrame, st.frameLeft, st.maskOff = h, true, h.Length, 0
			}
			seg := int(min(st.frameLeft, int64(w-r)))
			p := buf[r : r+seg]
			ws.Cipher(p, st.hdr.Mask, st.maskOff)
			r += seg
			st.maskOff += seg
			st.frameLeft -= int64(seg)
			final := st.frameLeft == 0 && st.hdr.Fin
			if st.msgKind == framing.Text && (!st.utf.Write(p) || final && !st.utf.Done()) {
				return failAfter(transport.ErrBadUTF8)
			}
			pieces = append(pieces, framing.Piece{Data: p, Kind: st.msgKind, First: st.msgFirst, Final: final})
			st.msgFirst = false
			if st.frameLeft == 0 {
				st.inFrame = false
				if st.hdr.Fin {
					st.msgOpen = false
				}
			}
			c.bytesIn.Add(int64(seg))
			if len(pieces) == cap(pieces) {
				if err := c.deliver(deliver, pieces); err != nil {
					return err
				}
				pieces = pieces[:0]
			}
		}
		if len(pieces) > 0 {
			if err := c.deliver(deliver, pieces); err != nil {
				return err
			}
		}
		framing.PutPieces(pieces)
		pieces = nil

		// Make room, then read more.
		switch {
		case r == w:
			r, w = 0, 0
		case r > 0:
			w = copy(buf, buf[r:w])
			r = 0
		}
		if w == len(buf) && buf != nil {
			// Only a header or control frame can be left over, and a
			// buffer always holds one of those whole.
			return c.fail(transport.Internal("read buffer too small"))
		}
		closing := c.closeSent.Load()
		if c.pingLate.Load() && !closing {
			return c.fail(transport.ErrPingTimeout)
		}
		if closing {
			// Wait for the client's close no longer than CloseTimeout,
			// whoever cleared or moved the deadline meanwhile.
			_ = c.conn.SetReadDeadline(time.Unix(0, c.closeBy.Load()))
		}
		park := c.parkable && w == 0 && !closing
		n, err := c.pr.ReadAt(&buf, w, park)
		switch {
		case errors.Is(err, poll.ErrWouldBlock):
			return transport.ErrParked
		case err == nil:
			if c.pinger != nil {
				c.lastIn.Store(time.Now().UnixNano())
			}
			w += n
			continue
		case c.pingLate.Load() && !c.closeSent.Load():
			return c.fail(transport.ErrPingTimeout)
		case c.closeSent.Load():
			// We closed and the client did not answer in time, or
			// dropped the connection instead of answering.
			return &transport.CloseError{Code: transport.CloseAbnormal, Err: err}
		}
		c.noteClose(transport.CloseAbnormal, "", true)
		return &transport.CloseError{Code: transport.CloseAbnormal, Remote: true, Err: err}
	}
}

// deliver hands pieces to the session unless the connection is closing:
// after a close frame went out, data is read only to find the client's
// close, and dropped.
func (c *Conn) deliver(deliver func([]framing.Piece) error, pieces []framing.Piece) error {
	if c.closeSent.Load() {
		return nil
	}
	return deliver(pieces)
}

// checkHeader applies RFC 6455's rules for a client frame given whether a
// fragmented message is open.
func checkHeader(h ws.Header, fragmented bool) error {
	s := ws.StateServerSide
	if fragmented {
		s = s.Set(ws.StateFragmented)
	}
	return ws.CheckHeader(h, s)
}

// closeReceived answers the client's close frame with the same code (or an
// empty close for none) and reports it. A malformed close is a protocol
// error.
func (c *Conn) closeReceived(p []byte) error {
	code, reason := transport.CloseNoStatus, ""
	switch {
	case len(p) == 1:
		return c.fail(errors.New("close frame with a 1-byte payload"))
	case len(p) >= 2:
		code = transport.CloseCode(binary.BigEndian.Uint16(p))
		reason = string(p[2:])
		if !code.ValidOnWire() {
			return c.fail(errors.New("close frame with an invalid code"))
		}
		if !utf8.ValidString(reason) {
			return c.fail(transport.BadUTF8("close reason is not valid UTF-8"))
		}
	}
	c.noteClose(code, reason, true)
	reply := code
	if code == transport.CloseNoStatus {
		reply = 0
	}
	_ = c.sendClose(reply, "")
	// The closing handshake is complete: send our FIN now, as RFC 6455
	// 7.1.1 has the server close first, rather than after the child is
	// gone. The client can close its side at once.
	if cw, ok := c.conn.(interface{ CloseWrite() error }); ok {
		c.wmu.Lock()
		c.wbroken = true // nothing more may be written
		_ = cw.CloseWrite()
		c.wmu.Unlock()
	}
	return &transport.CloseError{Code: code, Reason: reason, Remote: true}
}

// Fail closes the connection for err (a broken rule, a refused message)
// with the close transport.ForError decides, and returns the
// *CloseError that ends Receive.
func (c *Conn) Fail(err error) error { return c.fail(err) }

func (c *Conn) fail(err error) error {
	cl := transport.ForError(err)
	_ = c.sendClose(cl.Code, cl.Reason)
	return &transport.CloseError{Code: cl.Code, Reason: cl.Reason, Err: err}
}
