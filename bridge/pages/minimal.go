//go:build wsbridge_minimal

package pages

import (
	"net"
	"net/http"

	"github.com/wsbridge/wsbridge/bridge/http1"
)

// The wsbridge_minimal build leaves out the plain-HTTP handlers: the demo
// page, the console and http.FileServer are 0.46 MB of a 5.8 MB
// linux-mipsle binary. A request that is not a WebSocket upgrade gets a
// fixed answer on the connection it came on, which is then closed: 404
// where no endpoint is, 426 where one is. Asking for the demo page, the
// console or a static directory is an error (see Minimal).

// Minimal says this build serves no pages.
const Minimal = true

// Answer answers req on conn with a fixed text, and reports false: the
// connection closes after it.
func (s *Site) Answer(conn net.Conn, req *http1.Request) bool {
	found := false
	if req.PathErr == nil {
		found, _, _ = s.Endpoint(req.RawPath, req.Path)
	}
	switch {
	case req.PathErr != nil:
		s.Respond(conn, http.StatusBadRequest, "malformed request target")
	case !found:
		s.Respond(conn, http.StatusNotFound, "404 Not Found: no WebSocket endpoint at "+req.Path)
	default:
		s.Respond(conn, http.StatusUpgradeRequired, "426 Upgrade Required: this is a WebSocket endpoint; connect with a WebSocket client")
	}
	return false
}
