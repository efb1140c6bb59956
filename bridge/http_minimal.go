//go:build wsbridge_minimal

package bridge

import (
	"errors"
	"net"
	"net/http"
	"net/url"
)

// The wsbridge_minimal build leaves out the plain-HTTP handlers: the demo
// page, the console and http.FileServer are 0.46 MB of a 5.8 MB
// linux-mipsle binary. A request that is not a WebSocket upgrade gets a
// fixed answer on the connection it came on, which is then closed: 404
// where no endpoint is, 426 where one is. The demo page, the console and
// the static directory are left out, and asking for them is an error.

// plainHTTP holds nothing in this build.
type plainHTTP struct{}

func (s *Server) newPlainHTTP() plainHTTP { return plainHTTP{} }

// answer answers head on conn with a fixed text, and reports false: the
// connection closes after it.
func (plainHTTP) answer(s *Server, conn net.Conn, _ []byte, head requestHead) bool {
	u, err := url.ParseRequestURI(head.target)
	switch {
	case err != nil:
		s.respond(conn, http.StatusBadRequest, "malformed request target", false)
	case func() bool { ep, _, _, _ := s.routes.lookup(u.EscapedPath(), u.Path); return ep == nil }():
		s.respond(conn, http.StatusNotFound, "404 Not Found: no WebSocket endpoint at "+u.Path, false)
	default:
		s.respond(conn, http.StatusUpgradeRequired, "426 Upgrade Required: this is a WebSocket endpoint; connect with a WebSocket client", false)
	}
	return false
}

// errMinimal says which options this build leaves out.
var errMinimal = errors.New("this wsbridge is a minimal build (tag wsbridge_minimal): it serves WebSocket endpoints only, without the demo page, the dev console or a static directory")

// checkPlainHTTP refuses the options that need the plain-HTTP handlers.
func checkPlainHTTP(opts Options) error {
	if opts.Demo || opts.DevConsole || opts.StaticDir != "" {
		return errMinimal
	}
	return nil
}
