package bridge

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
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

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	client, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

// hijackRecorder is a ResponseWriter that hands out conn when hijacked.
type hijackRecorder struct {
	*httptest.ResponseRecorder
	conn     net.Conn
	hijacked bool
}

func (h *hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h.hijacked = true
	return h.conn, bufio.NewReadWriter(bufio.NewReader(h.conn), bufio.NewWriter(h.conn)), nil
}

// TestHijackedUpgradeAfterShutdown: net/http runs its handlers on its own
// goroutines, so an upgrade on a kept-alive connection that it read before
// the shutdown can reach the server after Serve has waited for its
// sessions. It must be refused: a session started then would outlive
// Serve, with its child and a poller that is closed.
func TestHijackedUpgradeAfterShutdown(t *testing.T) {
	srv := newTestServer(t, Options{CloseTimeout: 100 * time.Millisecond})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := srv.Serve(ctx, l); err != nil {
		t.Fatal(err)
	}

	conn, _ := tcpPair(t)
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	req.Header.Set("Sec-WebSocket-Version", "13")
	w := &hijackRecorder{ResponseRecorder: httptest.NewRecorder(), conn: conn}
	srv.serveHTTP(w, req)
	if w.hijacked {
		t.Errorf("the upgrade was served after Serve returned")
	}
	if w.Code != http.StatusServiceUnavailable {
		t.Errorf("status %d, want 503", w.Code)
	}
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
	if _, err := io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234"); err != nil {
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
