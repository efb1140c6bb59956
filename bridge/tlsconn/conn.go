package tlsconn

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/wsbridge/wsbridge/bridge/poll"
)

// Conn is a server-side TLS connection that a poll.Reader parks on the
// socket under it (see the package doc).
type Conn struct {
	*tls.Conn
	raw syscall.Conn // the socket under the records

	mu       sync.Mutex
	deadline time.Time // the read deadline the owner set; ReadNow puts it back
}

var _ poll.Layered = (*Conn)(nil)

// Server returns conn as the server side of a TLS connection configured
// by config; nothing is read until Handshake.
func Server(conn net.Conn, config *tls.Config) *Conn {
	c := &Conn{Conn: tls.Server(conn, config)}
	c.raw, _ = conn.(syscall.Conn)
	return c
}

// Handshake runs the TLS handshake, bounded by timeout, and clears the
// deadline it set. A client that sends nothing, or stops half way, gets
// an error once timeout has passed.
func (c *Conn) Handshake(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_ = c.Conn.SetDeadline(time.Now().Add(timeout))
	err := c.Conn.HandshakeContext(ctx)
	_ = c.Conn.SetDeadline(time.Time{})
	return err
}

// SetReadDeadline sets the read deadline, remembered for ReadNow.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	return c.Conn.SetReadDeadline(t)
}

// SetDeadline sets both deadlines, the read one remembered for ReadNow.
func (c *Conn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	return c.Conn.SetDeadline(t)
}

// Underlying returns the socket's descriptor, for the Poller to watch.
func (c *Conn) Underlying() (syscall.RawConn, error) {
	if c.raw == nil {
		return nil, errors.New("tlsconn: the connection under TLS has no descriptor")
	}
	return c.raw.SyscallConn()
}

// ReadNow reads what the connection holds already without waiting:
// poll.ErrWouldBlock when it holds nothing.
func (c *Conn) ReadNow(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.Conn.SetReadDeadline(time.Unix(1, 0))
	n, err := c.Conn.Read(p)
	_ = c.Conn.SetReadDeadline(c.deadline)
	if n == 0 && errors.Is(err, os.ErrDeadlineExceeded) {
		return 0, poll.ErrWouldBlock
	}
	return n, err
}

// IsRecord reports whether b, the first bytes a client sent, begin a TLS
// handshake record (content type 22, major version 3), as every client
// hello does; a plain HTTP request on a TLS port does not.
func IsRecord(b []byte) bool {
	return len(b) >= 1 && b[0] == 0x16 && (len(b) < 2 || b[1] == 3)
}
