package wstest

import (
	"errors"
	"io"
	"os"
	"testing"
	"time"
)

// MustDialTCP is DialTCP for a test: it fails the test on an error, and the
// connection is closed when the test ends.
func MustDialTCP(t testing.TB, addr string, o Options) *Conn {
	t.Helper()
	c, err := DialTCP(addr, o)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Conn.Close() })
	return c
}

// MustDial is Dial for a test: it fails the test on an error, and the
// connection is closed when the test ends.
func MustDial(t testing.TB, addr string, o Options) *Conn {
	t.Helper()
	c, err := Dial(addr, o)
	if err != nil {
		t.Fatalf("ws://%s%s: %v", addr, o.Path, err)
	}
	t.Cleanup(func() { c.Conn.Close() })
	return c
}

// ExpectMessage reads the next message within Timeout and fails the test
// unless it is of type op and carries want.
func (c *Conn) ExpectMessage(t testing.TB, op byte, want string) {
	t.Helper()
	gotOp, data, closed, err := c.ReadMessage(c.Timeout)
	if errors.Is(err, ErrClosed) {
		t.Fatalf("waiting for %.40q: closed with %d %q", want, closed.CloseCode(), closed.CloseReason())
	}
	if err != nil {
		t.Fatalf("waiting for %.40q: %v", want, err)
	}
	if gotOp != op || string(data) != want {
		t.Fatalf("got message op %#x %.40q (%d bytes), want op %#x %.40q (%d bytes)", gotOp, data, len(data), op, want, len(want))
	}
}

// ExpectClose expects the server to close with code next, answers it (see
// AnswerClose) and returns its close frame, within Timeout.
func (c *Conn) ExpectClose(t testing.TB, code int) Frame {
	t.Helper()
	f, err := c.AnswerClose(c.Timeout)
	if err != nil {
		t.Fatal(err)
	}
	if f.CloseCode() != code {
		t.Fatalf("closed with %d %q, want %d", f.CloseCode(), f.CloseReason(), code)
	}
	return f
}

// ExpectEOF reads until the server closes the TCP connection, discarding
// what arrives, and fails the test if it does not within timeout. It then
// closes the client's side too, as a client does after the server's FIN.
func (c *Conn) ExpectEOF(t testing.TB, timeout time.Duration) {
	t.Helper()
	_ = c.Conn.SetReadDeadline(time.Now().Add(timeout))
	_, err := io.Copy(io.Discard, c.R)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection not closed by the server within %v", timeout)
	}
	c.Conn.Close()
}
