package wstest

import (
	"errors"
	"fmt"
	"io"
	"syscall"
	"time"
)

// maxFrame bounds the payload ReadFrame allocates for.
const maxFrame = 1 << 30

var (
	// ErrClosed is ReadMessage's answer to a close frame.
	ErrClosed = errors.New("close frame received")
	// ErrMismatch is SkipMessage's answer to a message other than the
	// one wanted.
	ErrMismatch = errors.New("message differs from the one wanted")
	// ErrMasked is the answer to a server frame with a mask, which RFC
	// 6455 forbids, where the frame is not returned to look at.
	ErrMasked = errors.New("server sent a masked frame")
)

// ReadFrame reads one frame exactly as the server sent it, unmasking its
// payload if it came masked, waiting up to timeout.
func (c *Conn) ReadFrame(timeout time.Duration) (Frame, error) {
	_ = c.Conn.SetReadDeadline(time.Now().Add(timeout))
	defer c.Conn.SetReadDeadline(time.Time{})
	return c.readFrame()
}

func (c *Conn) readFrame() (Frame, error) {
	h, err := c.ReadHeader()
	if err != nil {
		return Frame{}, err
	}
	f := Frame{Fin: h.Fin, RSV: h.RSV, Op: h.Op, Unmasked: !h.Masked}
	if h.Length > maxFrame {
		return f, fmt.Errorf("frame of %d bytes: too large for a test", h.Length)
	}
	f.Payload = make([]byte, h.Length)
	if _, err := io.ReadFull(c.R, f.Payload); err != nil {
		return f, err
	}
	if h.Masked {
		maskBytes(f.Payload, h.Mask)
	}
	return f, nil
}

// ReadMessage reads frames until a whole data message has arrived,
// answering pings and skipping pongs on the way, all within timeout, and
// returns its opcode and payload. A close frame ends it with ErrClosed and
// the frame. A frame no server may send (masked, with RSV bits, out of
// sequence) is an error.
func (c *Conn) ReadMessage(timeout time.Duration) (op byte, data []byte, closed Frame, err error) {
	deadline := time.Now().Add(timeout)
	for {
		f, err := c.ReadFrame(time.Until(deadline))
		switch {
		case err != nil:
			return 0, nil, Frame{}, err
		case !f.Unmasked:
			return 0, nil, Frame{}, ErrMasked
		case f.RSV != 0:
			return 0, nil, Frame{}, fmt.Errorf("server frame with RSV bits %03b", f.RSV)
		}
		switch f.Op {
		case OpPing:
			if err := c.WriteFrame(true, OpPong, f.Payload); err != nil {
				return 0, nil, Frame{}, err
			}
			continue
		case OpPong:
			continue
		case OpClose:
			return 0, nil, f, ErrClosed
		case OpText, OpBinary:
			if op != 0 {
				return 0, nil, Frame{}, fmt.Errorf("data frame (opcode %#x) inside a fragmented message", f.Op)
			}
			op = f.Op
		case OpContinuation:
			if op == 0 {
				return 0, nil, Frame{}, errors.New("continuation frame with no message open")
			}
		default:
			return 0, nil, Frame{}, fmt.Errorf("server frame with reserved opcode %#x", f.Op)
		}
		data = append(data, f.Payload...)
		if f.Fin {
			return op, data, Frame{}, nil
		}
	}
}

// ReadEOF waits up to timeout for the server to end the TCP connection,
// discarding and counting what arrives first. It returns a nil error for
// an orderly end (FIN), and otherwise the error that ended the wait: a
// reset (syscall.ECONNRESET) or the deadline.
func (c *Conn) ReadEOF(timeout time.Duration) (n int64, err error) {
	_ = c.Conn.SetReadDeadline(time.Now().Add(timeout))
	defer c.Conn.SetReadDeadline(time.Time{})
	return io.Copy(io.Discard, c.R)
}

// ExpectEnd waits up to timeout for the server to end the TCP connection
// with nothing more sent, the last step of a closing handshake, which
// RFC 6455 leaves to the server.
func (c *Conn) ExpectEnd(timeout time.Duration) error {
	n, err := c.ReadEOF(timeout)
	switch {
	case n > 0:
		return fmt.Errorf("after the close frame: %d bytes more, want the connection closed", n)
	case err != nil:
		return fmt.Errorf("after the close frame: %w, want the connection closed", err)
	}
	return nil
}

// CloseHandshake runs a closing handshake from the client's side: it sends
// a close frame with code, waits for the server's (data messages still in
// flight are skipped), then for the server to end the TCP connection, and
// closes it, all within timeout. It returns the server's close frame,
// which the caller may look at even with an error about the end.
func (c *Conn) CloseHandshake(code int, timeout time.Duration) (Frame, error) {
	defer c.Conn.Close()
	deadline := time.Now().Add(timeout)
	if err := c.WriteClose(code, ""); err != nil {
		return Frame{}, err
	}
	for {
		_, _, closed, err := c.ReadMessage(time.Until(deadline))
		if errors.Is(err, ErrClosed) {
			return closed, c.ExpectEnd(time.Until(deadline))
		}
		if err != nil {
			return Frame{}, fmt.Errorf("waiting for the close frame: %w", err)
		}
	}
}

// AnswerClose expects the server to close: the next message must be its
// close frame. It answers with a close frame echoing the code, as most
// clients do, waits for the server to end the TCP connection and closes
// it, all within timeout. It returns the server's close frame.
func (c *Conn) AnswerClose(timeout time.Duration) (Frame, error) {
	defer c.Conn.Close()
	deadline := time.Now().Add(timeout)
	op, data, closed, err := c.ReadMessage(timeout)
	if err == nil {
		return Frame{}, fmt.Errorf("got message op %#x %.40q, want the server's close frame", op, data)
	}
	if !errors.Is(err, ErrClosed) {
		return Frame{}, fmt.Errorf("waiting for the close frame: %w", err)
	}
	// The server may end the connection without waiting for the answer
	// (RFC 6455 allows it): a failed write is no error, nor is a reset
	// from a server that closed with the answer unread.
	_ = c.WriteFrame(true, OpClose, closed.Payload[:min(2, len(closed.Payload))])
	if err := c.ExpectEnd(time.Until(deadline)); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		return closed, err
	}
	return closed, nil
}
