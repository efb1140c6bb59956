package bridge

import (
	"net"

	"github.com/wsbridge/wsbridge/bridge/http1"
)

// proxyHeader reads the PROXY protocol header of a connection from a
// trusted proxy and records the client it names in peer (issue 12: not
// yet; every connection is its own client).
func (s *Server) proxyHeader(conn net.Conn, _ *http1.Peer) (net.Conn, error) {
	return conn, nil
}
