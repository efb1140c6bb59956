package bridge

import (
	"net"

	"github.com/wsbridge/wsbridge/bridge/http1"
)

// prepare readies a connection the server accepted for its first request:
// first the PROXY protocol header a trusted proxy in front sends before
// anything else (proxied.go), then the TLS handshake (tls.go), which a
// --redirport connection (redirect.go) skips. peer is
// who the client is, as far as the connection says. On an error the
// connection is done: whatever answer it gets (a TLS alert, a 400) is
// written here, and the caller logs the error and closes it.
// It runs on the connection's own goroutine, never in the accept loop:
// a client that sends nothing holds up no one else.
func (s *Server) prepare(conn net.Conn) (net.Conn, http1.Peer, error) {
	peer := http1.Peer{Remote: conn.RemoteAddr(), Local: conn.LocalAddr()}
	conn, err := s.proxyHeader(conn, &peer)
	if err != nil {
		return nil, peer, err
	}
	if _, plain := conn.(*redirectConn); plain {
		return conn, peer, nil // --redirport speaks plain HTTP only
	}
	if conn, err = s.startTLS(conn, &peer); err != nil {
		return nil, peer, err
	}
	return conn, peer, nil
}
