//go:build wsbridge_minimal

package bridge

import (
	"errors"
	"net"

	"github.com/wsbridge/wsbridge/bridge/http1"
)

// The wsbridge_minimal build leaves TLS out: crypto/tls's server, x509
// and the key code are 1.8 MB of a linux-mipsle binary. Options.TLS is
// refused by New (see errMinimal); TLS is a proxy's to terminate then.

// tlsBuilt says whether this build can serve TLS.
const tlsBuilt = false

func (s *Server) startTLS(conn net.Conn, _ *http1.Peer) (net.Conn, error) {
	if s.opts.TLS != nil {
		return nil, errors.New("TLS is not built into wsbridge-minimal")
	}
	return conn, nil
}
