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

// Handshake runs the TLS handshake, bounded by ctx. The caller sets the
// connection's deadline, so that a shutdown that cuts it (a deadline of
// now on the socket) is never put back.
func (c *Conn) Handshake(ctx context.Context) error {
	return c.Conn.HandshakeContext(ctx)
}

// Read reads through the records. Data read with an error (crypto/tls
// returns a record's data with the close_notify after it as io.EOF) is
// returned alone: the error is crypto/tls's to give again at the next
// Read, and a caller that keeps a read's data only without an error
// would lose the client's last frames.
func (c *Conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		return n, nil
	}
	return n, err
}

// SetReadDeadline sets the read deadline, remembered for ReadNow.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
	return c.Conn.SetReadDeadline(t)
}

// SetDeadline sets both deadlines, the read one remembered for ReadNow.
func (c *Conn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
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
	switch {
	case n > 0:
		return n, nil // as Read
	case errors.Is(err, os.ErrDeadlineExceeded):
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
