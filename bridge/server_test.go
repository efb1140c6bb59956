package bridge

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"
)

// newTestServer returns a server whose child cannot start: enough for
// what happens around sessions.
func newTestServer(t *testing.T, opts Options) *Server {
	t.Helper()
	opts.Endpoints = []Endpoint{{Command: []string{"/nonexistent/child"}}}
	opts.Logger = slog.New(slog.DiscardHandler)
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// TestServeLeavesNoHTTPConnection: a request whose body never comes keeps
// its connection active, since net/http reads what the handler left of the
// body before it answers, with no timeout. Serve gives net/http
// CloseTimeout to finish; then it must close such a connection, not
// return and leave it and its goroutine behind.
func TestServeLeavesNoHTTPConnection(t *testing.T) {
	srv := newTestServer(t, Options{CloseTimeout: 100 * time.Millisecond})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, l) }()

	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\n01234"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // for net/http to take it
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve still running 5s after its context ended")
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.Copy(io.Discard, c); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Error("the connection is still open after Serve returned")
	}
}
