package bridge

import (
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"

	"github.com/wsbridge/wsbridge/framing"
)

// wsConfig holds the limits every WebSocket connection of a server shares.
type wsConfig struct {
	MaxMessage   int64         // largest message accepted from a client, in bytes
	ReadBuffer   int           // size of the pooled buffer frames are read into
	PingInterval time.Duration // 0: never ping
	PingTimeout  time.Duration // how long a ping may go unanswered
	CloseTimeout time.Duration // how long to wait for the client's close frame
}

// wsConn is the server side of one WebSocket connection: the Client a
// session talks to. Receive is called by one goroutine (the input pump);
// Send by one other (the output pump); Close by either, or by the server
// at shutdown.
type wsConn struct {
	conn    net.Conn
	cfg     *wsConfig
	pr      pollReader
	pending []byte // bytes that arrived with the handshake, read first

	wmu       sync.Mutex // serialises frames on the wire
	wbroken   bool       // a write failed part-way: no more frames fit
	closeSent atomic.Bool

	pongMu   sync.Mutex
	pongWant atomic.Bool
	pongLen  int
	pongBuf  *[125]byte  // the latest ping's payload; allocated at the first ping
	pingWant atomic.Bool // the ping timer's ping, sent like a pong

	bytesIn, bytesOut atomic.Int64 // message payload bytes, for the access log

	first atomic.Pointer[CloseError] // the close that ended the connection, for the access log

	rs       recvState    // the reader's state, kept across parks
	parkable bool         // Receive returns errParked rather than wait
	lastIn   atomic.Int64 // when bytes last arrived (UnixNano), for the pings
	pingLate atomic.Bool  // a ping went unanswered for PingTimeout
	pinger   *time.Timer  // nil without PingInterval
	wake     func()       // runs a parked reader now; nil: never parked
	closeBy  atomic.Int64 // when the client's close must have come (UnixNano), once closeSent
}

// noteClose records the close that ends the connection, if none is yet.
func (c *wsConn) noteClose(code CloseCode, reason string, remote bool) {
	c.first.CompareAndSwap(nil, &CloseError{Code: code, Reason: reason, Remote: remote})
}

// closeInfo returns the close that ended the connection: the first sent
// or received, or an abnormal closure when there was none.
func (c *wsConn) closeInfo() CloseError {
	if ce := c.first.Load(); ce != nil {
		return *ce
	}
	return CloseError{Code: CloseAbnormal, Remote: true}
}

func newWSConn(conn net.Conn, cfg *wsConfig, pending []byte) *wsConn {
	return &wsConn{conn: conn, cfg: cfg, pr: newPollReader(conn, cfg.ReadBuffer), pending: pending}
}

// recvState is the input side's frame and message state. It lives in the
// wsConn, not on a stack, so a reader can park between frames and a new
// goroutine pick up where it left off.
type recvState struct {
	hdr       ws.Header
	inFrame   bool  // inside a data frame's payload
	frameLeft int64 // payload bytes of the current frame not yet read
	maskOff   int   // offset into the mask for the next payload byte
	msgOpen   bool  // a fragmented message awaits continuation frames
	msgFirst  bool  // the next piece opens the message
	msgKind   framing.Kind
	msgLen    int64
	utf       framing.UTF8
}

// errParked is Receive's answer when it has read everything there was and
// the connection may park (see wsConn.parkable): it holds no buffer, and a
// later Receive call continues the stream.
var errParked = errors.New("nothing to read: parked")

// Receive reads frames until the client closes, the connection fails or a
// protocol rule is broken, and hands the data to deliver in batches of
// pieces. Pieces alias a pooled buffer: they are valid until deliver
// returns. Control frames are answered here. Frames are unmasked in place;
// no message is ever assembled.
//
// When parkable is set and nothing is left to read between frames,
// Receive returns errParked instead of waiting; call it again once the
// connection is readable. Otherwise it returns a *CloseError saying how
// the connection ended; when the client sent the close, its code is echoed
// back before Receive returns. One goroutine at a time may call it.
func (c *wsConn) Receive(deliver func([]framing.Piece) error) error {
	var (
		buf    []byte // pooled while data is there, nil while waiting
		r, w   int
		pieces []framing.Piece // pooled while frames are parsed
		st     = &c.rs
	)
	defer func() {
		putBuffer(buf)
		putPieces(pieces)
	}()
	// failAfter ends the connection for a broken rule, after handing the
	// child what arrived whole before it: nothing valid is lost because
	// TCP happened to bring it in the same read as the error.
	failAfter := func(code CloseCode, err error) error {
		if len(pieces) > 0 {
			_ = c.deliver(deliver, pieces)
		}
		return c.fail(code, err)
	}
	if len(c.pending) > 0 {
		buf = getBuffer(max(c.cfg.ReadBuffer, len(c.pending)))
		w = copy(buf, c.pending)
		c.pending = nil
	}
	for {
		// Parse everything the buffer holds.
		pieces = getPieces()
		for r < w || (st.inFrame && st.frameLeft == 0) {
			if !st.inFrame {
				h, n, err := parseHeader(buf[r:w])
				if err == errIncomplete {
					break
				}
				if err != nil {
					return failAfter(CloseProtocolError, err)
				}
				if err := checkHeader(h, st.msgOpen); err != nil {
					return failAfter(CloseProtocolError, err)
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
					return failAfter(CloseMessageTooBig, errTooBig)
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
				return failAfter(CloseInvalidPayload, errBadUTF8)
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
		putPieces(pieces)
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
			return c.fail(CloseInternalError, errors.New("read buffer too small"))
		}
		closing := c.closeSent.Load()
		if c.pingLate.Load() && !closing {
			return c.fail(CloseGoingAway, errPingTimeout)
		}
		if closing {
			// Wait for the client's close no longer than CloseTimeout,
			// whoever cleared or moved the deadline meanwhile.
			_ = c.conn.SetReadDeadline(time.Unix(0, c.closeBy.Load()))
		}
		park := c.parkable && w == 0 && !closing
		n, err := c.pr.readAt(&buf, w, park)
		switch {
		case errors.Is(err, errWouldBlock):
			return errParked
		case err == nil:
			if c.pinger != nil {
				c.lastIn.Store(time.Now().UnixNano())
			}
			w += n
			continue
		case c.pingLate.Load() && !c.closeSent.Load():
			return c.fail(CloseGoingAway, errPingTimeout)
		case c.closeSent.Load():
			// We closed and the client did not answer in time, or
			// dropped the connection instead of answering.
			return &CloseError{Code: CloseAbnormal, Err: err}
		}
		c.noteClose(CloseAbnormal, "", true)
		return &CloseError{Code: CloseAbnormal, Remote: true, Err: err}
	}
}

// startPings pings the client once it has been silent for PingInterval,
// and again every PingInterval while it stays silent but for its pongs,
// and marks it late when a ping goes unanswered for PingTimeout; wake then
// gets the reader to notice, wherever it is waiting. A timer, not a read
// deadline, so a parked reader is watched too. Bytes left unread while
// the reader waits on a child that does not read its stdin keep a client
// from being late, but not from being pinged.
func (c *wsConn) startPings(wake func()) {
	d := c.cfg.PingInterval
	if d <= 0 {
		return
	}
	c.lastIn.Store(time.Now().UnixNano())
	// Owned by tick: the timer runs one tick at a time, since each
	// tick's last act is the Reset that schedules the next.
	var lastPing, unanswered int64 // UnixNano; 0: none
	tick := func() {
		if c.closeSent.Load() {
			return
		}
		now := time.Now().UnixNano()
		heard := c.lastIn.Load()
		if unanswered != 0 && heard >= unanswered {
			unanswered = 0 // something came after the ping
		}
		if unanswered != 0 && now-unanswered >= int64(c.cfg.PingTimeout) {
			if c.pollNow(unix.POLLIN)&unix.POLLIN == 0 {
				c.pingLate.Store(true)
				_ = c.conn.SetReadDeadline(time.Now()) // a blocked reader
				wake()                                 // a parked one
				return
			}
			// Bytes wait unread, behind a child that does not read
			// its stdin, and the answer may be among them: not late.
			// The pings go on all the same, and one that reaches a
			// client that has closed its socket gets the connection
			// reset, which Gone sees.
			unanswered = 0
		}
		due := max(heard, lastPing) + int64(d) // D of silence, ours included
		if now >= due {
			// Never wait for the write lock: a writer stuck on a
			// client that reads nothing holds it, and that client
			// must be found late too.
			c.pingWant.Store(true)
			c.controlAfterUnlock()
			lastPing = now
			if unanswered == 0 {
				unanswered = now
			}
			due = now + int64(d)
		}
		next := due
		if unanswered != 0 {
			next = min(next, unanswered+int64(c.cfg.PingTimeout))
		}
		c.pinger.Reset(time.Duration(max(next-now, int64(time.Millisecond))))
	}
	c.pinger = time.AfterFunc(d, tick)
}

var (
	errTooBig      = errors.New("message exceeds --max-message")
	errBadUTF8     = errors.New("text message is not valid UTF-8")
	errPingTimeout = errors.New("no answer to ping")
)

// deliver hands pieces to the session unless the connection is closing:
// after a close frame went out, data is read only to find the client's
// close, and dropped.
func (c *wsConn) deliver(deliver func([]framing.Piece) error, pieces []framing.Piece) error {
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
func (c *wsConn) closeReceived(p []byte) error {
	code, reason := CloseNoStatus, ""
	switch {
	case len(p) == 1:
		return c.fail(CloseProtocolError, errors.New("close frame with a 1-byte payload"))
	case len(p) >= 2:
		code = CloseCode(binary.BigEndian.Uint16(p))
		reason = string(p[2:])
		if !code.validOnWire() {
			return c.fail(CloseProtocolError, errors.New("close frame with an invalid code"))
		}
		if !utf8.ValidString(reason) {
			return c.fail(CloseInvalidPayload, errors.New("close reason is not valid UTF-8"))
		}
	}
	c.noteClose(code, reason, true)
	reply := code
	if code == CloseNoStatus {
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
	return &CloseError{Code: code, Reason: reason, Remote: true}
}

// fail sends a close frame for a broken rule and reports it.
func (c *wsConn) fail(code CloseCode, err error) error {
	reason := err.Error()
	_ = c.sendClose(code, reason)
	return &CloseError{Code: code, Reason: reason, Err: err}
}

// Send writes pieces as frames, all of them in one writev where the
// connection allows. Their data is only borrowed for the call.
func (c *wsConn) Send(pieces []framing.Piece) error {
	var total int64
	for _, p := range pieces {
		total += int64(len(p.Data))
	}
	if err := writeFramed(pieces, wsFrames{}, c.write); err != nil {
		return err
	}
	c.bytesOut.Add(total)
	return nil
}

// wsFrames frames pieces as unmasked server frames: a piece that opens a
// message gets the text or binary opcode, the others continue it, and the
// final piece sets FIN.
type wsFrames struct{}

func (wsFrames) AppendPrefix(dst []byte, p framing.Piece) []byte {
	op := ws.OpContinuation
	if p.First {
		op = ws.OpBinary
		if p.Kind == framing.Text {
			op = ws.OpText
		}
	}
	return appendHeader(dst, op, p.Final, len(p.Data))
}

func (wsFrames) Suffix(framing.Piece) []byte { return nil }

// write puts whole frames on the wire under the write lock, then sends a
// pong or ping that waited for the lock.
func (c *wsConn) write(iov [][]byte) error {
	c.wmu.Lock()
	err := c.writeLocked(iov)
	c.flushControlLocked()
	c.wmu.Unlock()
	c.controlAfterUnlock()
	return err
}

func (c *wsConn) writeLocked(iov [][]byte) error {
	if c.closeSent.Load() || c.wbroken {
		return errClosed
	}
	bufs := net.Buffers(iov)
	if _, err := bufs.WriteTo(c.conn); err != nil {
		c.wbroken = true
		return err
	}
	return nil
}

// pong answers a ping without ever waiting for the write lock: the input
// pump must keep feeding the child while the output pump is blocked on a
// slow client. RFC 6455 5.5.3 allows answering only the latest ping.
func (c *wsConn) pong(p []byte) {
	c.pongMu.Lock()
	if c.pongBuf == nil {
		c.pongBuf = new([125]byte) // most connections are never pinged
	}
	c.pongLen = copy(c.pongBuf[:], p)
	c.pongMu.Unlock()
	c.pongWant.Store(true)
	c.controlAfterUnlock()
}

// controlAfterUnlock sends a wanted pong or ping if the write lock is
// free. Whoever holds the lock when one is wanted sends it before or
// right after unlocking, so none is forgotten.
func (c *wsConn) controlAfterUnlock() {
	if (c.pongWant.Load() || c.pingWant.Load()) && c.wmu.TryLock() {
		c.flushControlLocked()
		c.wmu.Unlock()
	}
}

func (c *wsConn) flushControlLocked() {
	if c.pongWant.Swap(false) {
		var p [125]byte
		c.pongMu.Lock()
		n := copy(p[:], c.pongBuf[:c.pongLen])
		c.pongMu.Unlock()
		hdr := appendHeader(make([]byte, 0, 2), ws.OpPong, true, n)
		_ = c.writeLocked([][]byte{hdr, p[:n]})
	}
	if c.pingWant.Swap(false) {
		_ = c.writeLocked([][]byte{appendHeader(make([]byte, 0, 2), ws.OpPing, true, 0)})
	}
}

// Close starts the closing handshake: it sends a close frame with code and
// reason (once; later calls do nothing) and bounds how long Receive waits
// for the client's answer. It does not wait for a writer stuck on a client
// that does not read: the write deadline unblocks it.
func (c *wsConn) Close(code CloseCode, reason string) error {
	return c.sendClose(code, reason)
}

func (c *wsConn) sendClose(code CloseCode, reason string) error {
	if c.closeSent.Load() {
		return nil
	}
	deadline := time.Now().Add(c.cfg.CloseTimeout)
	_ = c.conn.SetWriteDeadline(deadline)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent.Load() {
		return nil
	}
	c.noteClose(code, reason, false)
	var body []byte
	if code != 0 {
		body = ws.NewCloseFrameBody(ws.StatusCode(code), truncReason(reason))
	}
	hdr := appendHeader(make([]byte, 0, 2), ws.OpClose, true, len(body))
	err := c.writeLocked([][]byte{hdr, body})
	c.closeBy.Store(deadline.UnixNano())
	c.closeSent.Store(true)
	_ = c.conn.SetReadDeadline(deadline)
	if c.wake != nil {
		c.wake() // a parked reader must wait for the answer, with the deadline
	}
	return err
}

// rawConn returns the descriptor a parked reader waits on, or nil.
func (c *wsConn) rawConn() syscall.RawConn { return c.pr.rc }

// setParking lets Receive return errParked when idle (if park), and gives
// the connection the way to wake its parked reader for a close or a late
// ping. It starts the pings.
func (c *wsConn) setParking(park bool, wake func()) {
	c.parkable = park
	c.wake = wake
	c.startPings(wake)
}

// Gone reports whether the client hung up (its FIN or a reset arrived,
// seen with a zero-timeout poll that leaves unread data alone), left a
// ping unanswered, or a close frame has gone out.
func (c *wsConn) Gone() bool {
	if c.closeSent.Load() || c.pingLate.Load() {
		return true
	}
	return c.pollNow(unix.POLLRDHUP)&(unix.POLLRDHUP|unix.POLLHUP|unix.POLLERR) != 0
}

// pollNow returns the socket's poll(2) events of interest (errors and
// hang-ups always), without waiting and without reading: 0 when the
// connection has no descriptor.
func (c *wsConn) pollNow(events int16) int16 {
	if c.pr.rc == nil {
		return 0
	}
	var revents int16
	_ = c.pr.rc.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: events}}
		if n, err := unix.Poll(fds, 0); err == nil && n > 0 {
			revents = fds[0].Revents
		}
	})
	return revents
}

// finish ends the TCP connection after the closing handshake, the server
// closing first as RFC 6455 7.1.1 asks. Unread bytes are drained for a
// moment so the kernel sends FIN, not a reset that could destroy the close
// frame on its way.
func (c *wsConn) finish() {
	if c.pinger != nil {
		c.pinger.Stop()
	}
	if cw, ok := c.conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		_ = c.conn.SetReadDeadline(time.Now().Add(c.cfg.CloseTimeout))
		var sink [512]byte
		for {
			if _, err := c.conn.Read(sink[:]); err != nil {
				break
			}
		}
	}
	_ = c.conn.Close()
}
