//go:build !wsbridge_minimal

package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/wsbridge/wsbridge/bridge/http1"
	"github.com/wsbridge/wsbridge/bridge/tlsconn"
)

// tlsBuilt says whether this build can serve TLS (see tls_minimal.go).
const tlsBuilt = true

// plainOnTLS is the answer to a plain HTTP request on a TLS port. It is
// sent in the clear: the client speaks no TLS to read an alert in.
const plainOnTLS = "This port speaks TLS: use https:// or wss://"

// startTLS runs the TLS handshake of a connection to a TLS listener
// (Options.TLS) and returns the connection requests are read from then:
// a tlsconn.Conn, which parks when idle as a plain connection does. A
// client that opens with anything but a TLS record (plain HTTP, say)
// gets a plain 400 saying so; one that sends nothing, or stops half way,
// is cut at HandshakeTimeout. Each is logged, and counted in the
// metrics by reason.
func (s *Server) startTLS(conn net.Conn, peer *http1.Peer) (net.Conn, error) {
	if s.opts.TLS == nil {
		return conn, nil
	}
	// One bound for the whole handshake, the wait for its first byte
	// included, set once: shutdown cuts a connection in its handshake
	// by a deadline of now on the socket, which nothing here may put
	// back. It is set before stopping is checked, as closeAll sets
	// stopping before it cuts.
	deadline := time.Now().Add(s.opts.HandshakeTimeout)
	_ = conn.SetDeadline(deadline)
	if s.isStopping() {
		return nil, errors.New("shutting down")
	}
	b := peek(conn)
	if len(b) > 0 && !tlsconn.IsRecord(b) {
		s.stats.failed(failPlainOnTLS)
		s.stats.refuse(http.StatusBadRequest)
		s.log.Info("refused: plain HTTP on a TLS port (--ssl)", "remote", peer.RemoteString())
		s.reject(conn, http.StatusBadRequest, plainOnTLS, false)
		return nil, errors.New("plain HTTP on a TLS port")
	}
	tc := tlsconn.Server(conn, s.opts.TLS)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	err := tc.Handshake(ctx)
	cancel()
	switch {
	case err == nil:
		// The request head's deadline comes next (handle); a shutdown
		// begun meanwhile finds the connection as it re-registers.
		_ = conn.SetDeadline(time.Time{})
		peer.Secure = true
		return tc, nil
	case s.isStopping():
		s.log.Debug("TLS handshake cut by shutdown", "remote", peer.RemoteString())
	case errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded):
		s.stats.failed(failTLSTimeout)
		s.log.Info("TLS handshake not finished in time: closed", "remote", peer.RemoteString(), "timeout", s.opts.HandshakeTimeout)
	case len(b) == 0 && errors.Is(err, io.EOF):
		// A client that connects and closes (a port scan, a load
		// balancer's TCP check) is no failure worth a line at Info,
		// nor a count.
		s.log.Debug("TLS connection closed before its hello", "remote", peer.RemoteString())
	default:
		s.stats.failed(failTLSHandshake)
		s.log.Info("TLS handshake failed", "remote", peer.RemoteString(), "err", err)
	}
	_ = conn.Close()
	return nil, fmt.Errorf("TLS handshake: %w", err)
}
