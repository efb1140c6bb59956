package main

// The load generator's side of the protocol is bridge/wstest's fast path,
// so that it costs far less than any server it measures: frames masked
// once in advance and written many to a syscall, and a reader that parses
// headers in place and skips payloads without allocating.

import (
	"crypto/tls"
	"fmt"
	"time"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

// target is where a client connects: an address, the request path, and
// whether it is wss.
type target struct {
	addr string      // 127.0.0.1:PORT
	path string      // "" is "/"
	tls  *tls.Config // nil: ws; else wss, trusting the run's certificate (shared, read-only)
}

// dial connects to t and upgrades the connection to WebSocket within
// timeout, TLS first when t is wss. readBuf sizes the reader: 64 KiB for
// streaming, less where many connections are held.
func (t target) dial(timeout time.Duration, readBuf int) (*wstest.Conn, error) {
	return wstest.Dial(t.addr, wstest.Options{Path: t.path, Timeout: timeout, ReadBuffer: readBuf, TLS: t.tls})
}

// echo sends one prebuilt message and checks the reply is the same.
func echo(c *wstest.Conn, frame, payload []byte) error {
	if _, err := c.Conn.Write(frame); err != nil {
		return err
	}
	n, err := c.SkipMessage(payload)
	if err == nil && n != int64(len(payload)) {
		err = fmt.Errorf("%w: %d bytes, want %d", wstest.ErrMismatch, n, len(payload))
	}
	return err
}

// closeConn runs the closing handshake by deadline and waits for the
// server to end the TCP connection, so that TIME_WAIT lands on the
// server's side, as RFC 6455 intends. Once the server's close frame has
// come, how it ends the connection is not the generator's concern.
func closeConn(c *wstest.Conn, deadline time.Time) error {
	f, err := c.CloseHandshake(wstest.CloseNormal, time.Until(deadline))
	if f.Op == wstest.OpClose {
		return nil
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
