package main

// A minimal raw WebSocket client for tests that need to do what a
// well-behaved library will not: send any frame, leave pings unanswered,
// send a half request or odd headers, read frames exactly as the server
// wrote them. Shared by the integration and conformance tests.

import (
	"bufio"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// WebSocket opcodes.
const (
	opContinuation byte = 0x0
	opText         byte = 0x1
	opBinary       byte = 0x2
	opClose        byte = 0x8
	opPing         byte = 0x9
	opPong         byte = 0xA
)

// rawConn is a TCP connection to the bridge, read through R. Conn is
// exposed for tests that write raw bytes.
type rawConn struct {
	t    testing.TB
	Conn net.Conn
	R    *bufio.Reader
}

// rawDial opens a TCP connection to addr; it is closed when the test ends.
func rawDial(t testing.TB, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, Conn: c, R: bufio.NewReader(c)}
}

// upgradeRequest returns a valid WebSocket handshake request for path with
// extra header lines ("Name: value", written as given, so they may be
// malformed on purpose), and the key it uses.
func upgradeRequest(addr, path string, extra ...string) (req, key string) {
	var k [16]byte
	_, _ = rand.Read(k[:])
	key = base64.StdEncoding.EncodeToString(k[:])
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n", path, addr)
	fmt.Fprintf(&b, "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n", key)
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String(), key
}

// acceptKey is the Sec-WebSocket-Accept value for key (RFC 6455 4.2.2).
func acceptKey(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// Handshake sends a WebSocket upgrade for path with extra header lines and
// reads the response head. For any status but 101 it reads the body too
// (into the response's Body); for 101 it checks Sec-WebSocket-Accept.
func (c *rawConn) Handshake(path string, extra ...string) (*http.Response, error) {
	req, key := upgradeRequest(c.Conn.RemoteAddr().String(), path, extra...)
	return c.Request(req, key)
}

// Request writes a raw request and reads the response. key, when not
// empty, is the Sec-WebSocket-Key whose accept value a 101 must carry.
func (c *rawConn) Request(req, key string) (*http.Response, error) {
	_ = c.Conn.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.Conn.SetDeadline(time.Time{})
	if _, err := io.WriteString(c.Conn, req); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(c.R, nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(resp.Body)
		resp.Body = io.NopCloser(strings.NewReader(string(body)))
		return resp, nil
	}
	if key != "" && resp.Header.Get("Sec-WebSocket-Accept") != acceptKey(key) {
		return resp, fmt.Errorf("Sec-WebSocket-Accept %q, want %q", resp.Header.Get("Sec-WebSocket-Accept"), acceptKey(key))
	}
	return resp, nil
}

// mustUpgrade dials addr and completes a handshake for path, failing the
// test unless the answer is 101.
func mustUpgrade(t testing.TB, addr, path string, extra ...string) *rawConn {
	t.Helper()
	c := rawDial(t, addr)
	resp, err := c.Handshake(path, extra...)
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("handshake: %s %q, want 101", resp.Status, body)
	}
	return c
}

// WriteFrame writes one masked frame.
func (c *rawConn) WriteFrame(fin bool, op byte, payload []byte) error {
	var mask [4]byte
	_, _ = rand.Read(mask[:])
	return c.WriteFrameMask(fin, op, payload, mask)
}

// WriteFrameMask writes one frame masked with mask.
func (c *rawConn) WriteFrameMask(fin bool, op byte, payload []byte, mask [4]byte) error {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	hdr := []byte{b0, 0}
	switch n := len(payload); {
	case n < 126:
		hdr[1] = byte(n)
	case n <= 0xFFFF:
		hdr[1] = 126
		hdr = binary.BigEndian.AppendUint16(hdr, uint16(n))
	default:
		hdr[1] = 127
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
	}
	hdr[1] |= 0x80
	hdr = append(hdr, mask[:]...)
	masked := make([]byte, len(payload))
	for i, b := range payload {
		masked[i] = b ^ mask[i%4]
	}
	_ = c.Conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := c.Conn.Write(append(hdr, masked...))
	return err
}

// WriteClose sends a close frame with code and reason.
func (c *rawConn) WriteClose(code uint16, reason string) error {
	return c.WriteFrame(true, opClose, append(binary.BigEndian.AppendUint16(nil, code), reason...))
}

// rawFrame is a frame as the server sent it.
type rawFrame struct {
	Fin     bool
	RSV     byte // the three RSV bits, in the low bits
	Op      byte
	Masked  bool
	Payload []byte
}

// CloseCode returns a close frame's code, or 1005 for none.
func (f rawFrame) CloseCode() int {
	if len(f.Payload) < 2 {
		return 1005
	}
	return int(binary.BigEndian.Uint16(f.Payload))
}

// CloseReason returns a close frame's reason.
func (f rawFrame) CloseReason() string {
	if len(f.Payload) < 2 {
		return ""
	}
	return string(f.Payload[2:])
}

// ReadFrame reads one frame, waiting up to timeout.
func (c *rawConn) ReadFrame(timeout time.Duration) (rawFrame, error) {
	_ = c.Conn.SetReadDeadline(time.Now().Add(timeout))
	defer c.Conn.SetReadDeadline(time.Time{})
	var f rawFrame
	var h [2]byte
	if _, err := io.ReadFull(c.R, h[:]); err != nil {
		return f, err
	}
	f.Fin, f.RSV, f.Op, f.Masked = h[0]&0x80 != 0, h[0]>>4&7, h[0]&0xF, h[1]&0x80 != 0
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var ext [2]byte
		if _, err := io.ReadFull(c.R, ext[:]); err != nil {
			return f, err
		}
		n = uint64(binary.BigEndian.Uint16(ext[:]))
	case 127:
		var ext [8]byte
		if _, err := io.ReadFull(c.R, ext[:]); err != nil {
			return f, err
		}
		n = binary.BigEndian.Uint64(ext[:])
	}
	if n > 1<<30 {
		return f, fmt.Errorf("frame of %d bytes: too large for a test", n)
	}
	var mask [4]byte
	if f.Masked {
		if _, err := io.ReadFull(c.R, mask[:]); err != nil {
			return f, err
		}
	}
	f.Payload = make([]byte, n)
	if _, err := io.ReadFull(c.R, f.Payload); err != nil {
		return f, err
	}
	if f.Masked {
		for i := range f.Payload {
			f.Payload[i] ^= mask[i%4]
		}
	}
	return f, nil
}

// ReadMessage reads frames until a whole data message has arrived,
// answering pings on the way, and returns its opcode and payload. A close
// frame ends it with errRawClosed and the frame.
func (c *rawConn) ReadMessage(timeout time.Duration) (op byte, data []byte, closeFrame rawFrame, err error) {
	deadline := time.Now().Add(timeout)
	for {
		f, err := c.ReadFrame(time.Until(deadline))
		if err != nil {
			return 0, nil, f, err
		}
		switch f.Op {
		case opPing:
			if err := c.WriteFrame(true, opPong, f.Payload); err != nil {
				return 0, nil, f, err
			}
			continue
		case opPong:
			continue
		case opClose:
			return 0, nil, f, errRawClosed
		case opText, opBinary:
			op = f.Op
		}
		data = append(data, f.Payload...)
		if f.Fin {
			return op, data, rawFrame{}, nil
		}
	}
}

var errRawClosed = errors.New("close frame received")

// ExpectEOF reads until the server closes the TCP connection, discarding
// what arrives, and fails the test if it does not within timeout. It then
// closes the client's side too, as a client does after the server's FIN.
func (c *rawConn) ExpectEOF(timeout time.Duration) {
	c.t.Helper()
	_ = c.Conn.SetReadDeadline(time.Now().Add(timeout))
	_, err := io.Copy(io.Discard, c.R)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		c.t.Fatalf("connection not closed by the server within %v", timeout)
	}
	c.Conn.Close()
}

// What the conformance tests add: frames with any header bits, sent in
// chunks of any size, and telling an orderly TCP close from a reset.

// frameSpec is a client frame as a test wants it on the wire, well formed
// or broken on purpose.
type frameSpec struct {
	Fin      bool
	RSV      byte // the three RSV bits, in the low bits
	Op       byte // any 4-bit opcode, reserved ones included
	Unmasked bool // send without a mask, which a client must not do
	Payload  []byte
	Length   int64 // payload length the header announces; 0: len(Payload). Only Payload is sent.
}

// specMask is the masking key of every frameSpec: fixed, so a failing test
// replays byte for byte, and with no zero byte, so a server that forgot to
// unmask would see garbage.
var specMask = [4]byte{0x37, 0xFA, 0x21, 0x3D}

// appendFrame appends the bytes of f to dst.
func appendFrame(dst []byte, f frameSpec) []byte {
	b0 := f.Op&0x0F | (f.RSV&7)<<4
	if f.Fin {
		b0 |= 0x80
	}
	var b1 byte
	if !f.Unmasked {
		b1 = 0x80
	}
	n := f.Length
	if n == 0 {
		n = int64(len(f.Payload))
	}
	switch {
	case n < 126:
		dst = append(dst, b0, b1|byte(n))
	case n <= 0xFFFF:
		dst = binary.BigEndian.AppendUint16(append(dst, b0, b1|126), uint16(n))
	default:
		dst = binary.BigEndian.AppendUint64(append(dst, b0, b1|127), uint64(n))
	}
	if f.Unmasked {
		return append(dst, f.Payload...)
	}
	dst = append(dst, specMask[:]...)
	start := len(dst)
	dst = append(dst, f.Payload...)
	maskBytes(dst[start:], specMask)
	return dst
}

// maskBytes XORs b with key in place, key[0] on b[0]. It works a word at a
// time: the tests mask messages of many megabytes under the race detector.
func maskBytes(b []byte, key [4]byte) {
	k := uint64(binary.LittleEndian.Uint32(key[:]))
	k |= k << 32
	for len(b) >= 8 {
		binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k)
		b = b[8:]
	}
	for i := range b {
		b[i] ^= key[i%4]
	}
}

// WriteChunks writes b in writes of at most chunk bytes (one write when
// chunk <= 0), sleeping pause between them. TCP_NODELAY is on (Go's
// default), so each write leaves as its own segment.
func (c *rawConn) WriteChunks(b []byte, chunk int, pause time.Duration) error {
	if chunk <= 0 {
		chunk = len(b)
	}
	for i := 0; len(b) > 0; i++ {
		if i > 0 && pause > 0 {
			time.Sleep(pause)
		}
		n := min(chunk, len(b))
		_ = c.Conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if _, err := c.Conn.Write(b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// ReadEOF waits up to timeout for the server to end the TCP connection,
// discarding and counting what arrives first. It returns a nil error for
// an orderly end (FIN), and otherwise the error that ended the wait: a
// reset (syscall.ECONNRESET) or the deadline.
func (c *rawConn) ReadEOF(timeout time.Duration) (n int64, err error) {
	_ = c.Conn.SetReadDeadline(time.Now().Add(timeout))
	defer c.Conn.SetReadDeadline(time.Time{})
	return io.Copy(io.Discard, c.R)
}
