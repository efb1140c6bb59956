package bridge

import (
	"bufio"
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// newTestServer returns a server whose child cannot start: enough for
// what happens around sessions.
func newTestServer(t *testing.T, opts Options) *Server {
	t.Helper()
	opts.Command = []string{"/nonexistent/child"}
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
