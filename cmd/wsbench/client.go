package main

// The load generator's side of the protocol, kept minimal so that it costs
// far less than any server it measures: a hand-written handshake, frames
// masked once in advance and written many to a syscall, and a reader that
// parses headers in place in a bufio.Reader and skips payloads without
// allocating.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/gobwas/ws"
)

// WebSocket opcodes the client uses.
const (
	opText   = 0x1
	opBinary = 0x2
	opClose  = 0x8
	opPing   = 0x9
	opPong   = 0xA
)

// The handshake uses RFC 6455's sample key, whose answer is known: servers
// cannot tell a fixed key from a random one, and checking the answer still
// proves a real upgrade happened.
const (
	handshakeKey    = "dGhlIHNhbXBsZSBub25jZQ=="
	handshakeAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
)

// mask is the masking key of every client frame. Any key is valid; a fixed
// one lets frames be built once and written many times.
var mask = [4]byte{0x37, 0xfa, 0x21, 0x3d}

var (
	errServerClosed = errors.New("server sent a close frame")
	errMaskedFrame  = errors.New("server sent a masked frame")
	errBadReply     = errors.New("reply differs from the message sent")
)

// wsClient is one client connection. Its reader is used by one goroutine
// at a time; writes of prebuilt frames may come from another.
type wsClient struct {
	conn *net.TCPConn
	br   *bufio.Reader
}

// dial connects to addr and upgrades the connection to WebSocket within
// timeout. readBuf sizes the reader: 64 KiB for streaming, less where
// many connections are held.
func dial(addr string, timeout time.Duration, readBuf int) (*wsClient, error) {
	deadline := time.Now().Add(timeout)
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	conn := c.(*net.TCPConn)
	_ = conn.SetDeadline(deadline)
	cl := &wsClient{conn: conn, br: bufio.NewReaderSize(conn, readBuf)}
	if err := cl.handshake(addr); err != nil {
		conn.Close()
		return nil, fmt.Errorf("handshake with %s: %w", addr, err)
	}
	_ = conn.SetDeadline(time.Time{})
	return cl, nil
}

func (c *wsClient) handshake(host string) error {
	req := "GET / HTTP/1.1\r\nHost: " + host +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + handshakeKey +
		"\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := c.conn.Write([]byte(req)); err != nil {
		return err
	}
	status, err := c.br.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(status, []byte("HTTP/1.1 101 ")) {
		return fmt.Errorf("status %q", bytes.TrimSpace(status))
	}
	accepted := false
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, _ := bytes.Cut(line, []byte(":"))
		if bytes.EqualFold(name, []byte("Sec-WebSocket-Accept")) &&
			string(bytes.TrimSpace(value)) == handshakeAccept {
			accepted = true
		}
	}
	if !accepted {
		return errors.New("missing or wrong Sec-WebSocket-Accept")
	}
	return nil
}

// appendFrame appends one final, masked frame carrying payload.
func appendFrame(dst []byte, op byte, payload []byte) []byte {
	n := len(payload)
	switch {
	case n < 126:
		dst = append(dst, 0x80|op, 0x80|byte(n))
	case n <= 0xFFFF:
		dst = append(dst, 0x80|op, 0x80|126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, 0x80|op, 0x80|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	dst = append(dst, mask[:]...)
	start := len(dst)
	dst = append(dst, payload...)
	ws.Cipher(dst[start:], mask, 0)
	return dst
}

// frames is a run of identical masked frames built once: writing the
// first k of them is one slice and one syscall.
type frames struct {
	buf  []byte
	size int // bytes per frame
}

func newFrames(op byte, payload []byte, count int) frames {
	one := appendFrame(nil, op, payload)
	return frames{buf: bytes.Repeat(one, count), size: len(one)}
}

// first returns the bytes of the first k frames.
func (f frames) first(k int) []byte { return f.buf[:k*f.size] }

// closeFrame is a masked close frame with status 1000.
var closeFrame = appendFrame(nil, opClose, []byte{0x03, 0xE8})

// header reads one frame header from the buffer without allocating.
func (c *wsClient) header() (fin bool, op byte, length int64, err error) {
	h, err := c.br.Peek(2)
	if err != nil {
		return false, 0, 0, err
	}
	fin, op = h[0]&0x80 != 0, h[0]&0x0F
	if h[1]&0x80 != 0 {
		return false, 0, 0, errMaskedFrame
	}
	length = int64(h[1] & 0x7F)
	size := 2
	switch length {
	case 126:
		size = 4
	case 127:
		size = 10
	}
	if size > 2 {
		if h, err = c.br.Peek(size); err != nil {
			return false, 0, 0, err
		}
		if size == 4 {
			length = int64(binary.BigEndian.Uint16(h[2:]))
		} else {
			length = int64(binary.BigEndian.Uint64(h[2:]))
		}
	}
	_, err = c.br.Discard(size)
	return fin, op, length, err
}

// readMessage reads one data message, which may come in fragments, and
// returns its payload length. Payloads are skipped, except that when want
// is given and the message is a single frame the buffer can hold, its
// bytes are compared with want. Pings and pongs are skipped (the servers
// measured never ping); a close frame ends with errServerClosed.
func (c *wsClient) readMessage(want []byte) (int64, error) {
	var total int64
	for {
		fin, op, n, err := c.header()
		if err != nil {
			return total, err
		}
		switch op {
		case opClose:
			return total, errServerClosed
		case opPing, opPong:
			if _, err := c.br.Discard(int(n)); err != nil {
				return total, err
			}
			continue
		}
		if want != nil && fin && total == 0 && n <= int64(c.br.Size()) {
			p, err := c.br.Peek(int(n))
			if err != nil {
				return total, err
			}
			if !bytes.Equal(p, want) {
				return total, errBadReply
			}
		}
		if _, err := c.br.Discard(int(n)); err != nil {
			return total, err
		}
		total += n
		if fin {
			return total, nil
		}
	}
}

// close runs the closing handshake: it sends a close frame, waits for the
// server's, then for the server to end the TCP connection (so TIME_WAIT
// lands on the server's side, as RFC 6455 intends), all by deadline.
func (c *wsClient) close(deadline time.Time) error {
	defer c.conn.Close()
	_ = c.conn.SetDeadline(deadline)
	if _, err := c.conn.Write(closeFrame); err != nil {
		return err
	}
	for {
		_, err := c.readMessage(nil)
		if errors.Is(err, errServerClosed) {
			break
		}
		if err != nil {
			return fmt.Errorf("waiting for the close frame: %w", err)
		}
	}
	// Payload of the close frame, then EOF.
	for {
		if _, err := c.br.Discard(c.br.Buffered() + 1); err != nil {
			break
		}
	}
	return nil
}

// echo sends one prebuilt message and checks the reply is the same.
func (c *wsClient) echo(frame, payload []byte) error {
	if _, err := c.conn.Write(frame); err != nil {
		return err
	}
	n, err := c.readMessage(payload)
	if err == nil && n != int64(len(payload)) {
		err = fmt.Errorf("%w: %d bytes, want %d", errBadReply, n, len(payload))
	}
	return err
}

// printable returns n bytes of printable ASCII with no newline: a line
// every server echoes unchanged, valid as text.
func printable(n int) []byte {
	const chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
	b := make([]byte, n)
	for i := range b {
		b[i] = chars[i%len(chars)]
	}
	return b
}
