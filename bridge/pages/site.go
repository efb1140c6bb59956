package pages

import (
	"log/slog"
	"net"
	"net/http"
)

// Site is what a server answers plain requests with. The zero value of
// each field leaves its page out.
type Site struct {
	Demo      bool   // the demo page at "/"
	Console   bool   // an endpoint's console page at its path
	StaticDir string // files served to GET and HEAD; "": none

	// Header holds the header fields of every answer (the daemon's
	// --header and --header-http), in order.
	Header []http.Header
	// Respond writes a short text answer that closes the connection,
	// without closing it (the server's own, with its headers and its
	// timeout).
	Respond func(conn net.Conn, status int, reason string)

	// Endpoint reports whether an endpoint serves the path (the raw path
	// as the request spelled it, and decoded), whether it was put there
	// (own: its Path and below, a script of its directory, or "/" for
	// one at every path), and, when none serves it, why.
	Endpoint func(rawPath, path string) (found, own bool, why error)

	Log *slog.Logger
}
