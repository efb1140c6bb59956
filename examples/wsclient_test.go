package examples

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
	"syscall"
	"time"
)

// A minimal RFC 6455 client, standard library only, so the examples are
// tested against wsbridge by code that shares nothing with it.

// WebSocket opcodes.
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

type wsClient struct {
	conn net.Conn
	br   *bufio.Reader
}

// dialWS opens a WebSocket to ws://addr/target (target "/" or, say,
// "/?nick=ann") with no Origin header, as a program (not a browser) does.
// Every later read and write must end within timeout of the dial.
func dialWS(addr, target string, timeout time.Duration) (*wsClient, error) {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Now().Add(timeout))
	var nonce [16]byte
	rand.Read(nonce[:])
	key := base64.StdEncoding.EncodeToString(nonce[:])
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+target, nil)
	if err != nil {
		conn.Close()
		return nil, err
	}
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Sec-WebSocket-Key", key)
	req.Header.Set("Sec-WebSocket-Version", "13")
	if err := req.Write(conn); err != nil {
		conn.Close()
		return nil, err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("reading the handshake response: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		conn.Close()
		return nil, fmt.Errorf("handshake: %s: %q", resp.Status, body)
	}
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), base64.StdEncoding.EncodeToString(sum[:]); got != want {
		conn.Close()
		return nil, fmt.Errorf("Sec-WebSocket-Accept %q, want %q", got, want)
	}
	return &wsClient{conn: conn, br: br}, nil
}

// writeFrame sends one final, masked frame, as every client frame must be.
func (c *wsClient) writeFrame(op byte, payload []byte) error {
	hdr := []byte{0x80 | op}
	switch n := len(payload); {
	case n < 126:
		hdr = append(hdr, 0x80|byte(n))
	case n <= 0xFFFF:
		hdr = binary.BigEndian.AppendUint16(append(hdr, 0x80|126), uint16(n))
	default:
		hdr = binary.BigEndian.AppendUint64(append(hdr, 0x80|127), uint64(n))
	}
	var mask [4]byte
	rand.Read(mask[:])
	hdr = append(hdr, mask[:]...)
	masked := make([]byte, len(payload))
	for i, b := range payload {
		masked[i] = b ^ mask[i%4]
	}
	_, err := c.conn.Write(append(hdr, masked...))
	return err
}

// readFrame reads one server frame, which must not be masked.
func (c *wsClient) readFrame() (fin bool, op byte, payload []byte, err error) {
	var h [2]byte
	if _, err = io.ReadFull(c.br, h[:]); err != nil {
		return
	}
	fin, op = h[0]&0x80 != 0, h[0]&0x0F
	if h[0]&0x70 != 0 {
		return fin, op, nil, fmt.Errorf("reserved bits set in %#x", h[0])
	}
	if h[1]&0x80 != 0 {
		return fin, op, nil, errors.New("server frame is masked")
	}
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var b [2]byte
		_, err = io.ReadFull(c.br, b[:])
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		_, err = io.ReadFull(c.br, b[:])
		n = binary.BigEndian.Uint64(b[:])
	}
	if err != nil {
		return
	}
	if n > 64<<20 {
		return fin, op, nil, fmt.Errorf("frame of %d bytes: more than this test ever expects", n)
	}
	payload = make([]byte, n)
	_, err = io.ReadFull(c.br, payload)
	return
}

// readMessage returns the next data message, its fragments joined. Pings
// are answered; a close frame is returned as opClose with its payload.
func (c *wsClient) readMessage() (op byte, msg []byte, err error) {
	for {
		fin, fop, payload, err := c.readFrame()
		if err != nil {
			return 0, nil, err
		}
		switch {
		case fop == opPing:
			if err := c.writeFrame(opPong, payload); err != nil {
				return 0, nil, err
			}
			continue
		case fop == opPong:
			continue
		case fop == opClose:
			return opClose, payload, nil
		case fop == opContinuation && op == 0, fop != opContinuation && op != 0:
			return 0, nil, fmt.Errorf("frame opcode %#x out of sequence", fop)
		case fop != opContinuation:
			op = fop
		}
		msg = append(msg, payload...)
		if fin {
			return op, msg, nil
		}
	}
}

// close sends a normal close and waits for the server's close frame, then
// for the server to end the TCP connection, which the RFC leaves to it.
// Data messages still in flight are skipped. It returns the server's close
// code (1005 when its frame carries none).
func (c *wsClient) close() (code int, err error) {
	defer c.conn.Close()
	if err := c.writeFrame(opClose, binary.BigEndian.AppendUint16(nil, 1000)); err != nil {
		return 0, err
	}
	for {
		op, payload, err := c.readMessage()
		if err != nil {
			return 0, fmt.Errorf("waiting for the close frame: %w", err)
		}
		if op != opClose {
			continue
		}
		code, _ = closePayload(payload)
		break
	}
	return code, c.waitEnd()
}

// closedByServer reads the next message, which must be the server's close
// frame, answers it with a close frame as RFC 6455 asks, and waits for the
// server to end the TCP connection. It returns the server's code (1005
// when its frame carries none) and reason.
func (c *wsClient) closedByServer() (code int, reason string, err error) {
	defer c.conn.Close()
	op, payload, err := c.readMessage()
	if err != nil {
		return 0, "", fmt.Errorf("waiting for the close frame: %w", err)
	}
	if op != opClose {
		return 0, "", fmt.Errorf("got message op %#x %q, want the server's close frame", op, payload)
	}
	code, reason = closePayload(payload)
	// The answer echoes the code, as most clients do. The server may end
	// the connection without waiting for it (RFC 6455 allows it): a failed
	// write is no error, nor is a reset from a server that closed with the
	// answer unread.
	c.writeFrame(opClose, payload[:min(2, len(payload))])
	if err := c.waitEnd(); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		return code, reason, err
	}
	return code, reason, nil
}

func closePayload(p []byte) (code int, reason string) {
	if len(p) < 2 {
		return 1005, ""
	}
	return int(binary.BigEndian.Uint16(p)), string(p[2:])
}

// waitEnd expects the server to end the TCP connection, the last step of
// a close, which the RFC leaves to the server.
func (c *wsClient) waitEnd() error {
	b, err := c.br.ReadByte()
	switch {
	case err == nil:
		return fmt.Errorf("after the close frame: got byte %#x, want the connection closed", b)
	case err == io.EOF:
		return nil
	}
	return fmt.Errorf("after the close frame: %w, want the connection closed", err)
}
