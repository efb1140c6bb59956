package bridge

import (
	"errors"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/wsbridge/wsbridge/bridge/backend"
	"github.com/wsbridge/wsbridge/bridge/handover"
	"github.com/wsbridge/wsbridge/bridge/http1"
)

// outcome is what became of a connection once a request was dispatched.
type outcome int

const (
	closeConn outcome = iota // answered: close the connection
	keepConn                 // answered: it may carry another request
	takenConn                // a client owns it now, and ends it
)

// dispatch answers one request, the chain a reader follows top to
// bottom: the health check (--health, whatever the Host), the Host check,
// the metrics (--metrics), the redirect to https (--redirport, whose
// port answers nothing else), then a WebSocket upgrade, then (next: the
// fallback transports, Server-Sent Events and long polling) the web
// server behind (--http-backend) or the pages (demo, static files,
// console) and the 426 or 404 they end with. An upgrade to a path no
// endpoint serves gets the upgrade's 404 either way.
func (s *Server) dispatch(conn net.Conn, req *http1.Request, extra []byte) outcome {
	hostErr := s.hosts.check(req.Host)
	if s.answerOwn(conn, req, hostErr == nil) {
		return closeConn
	}
	if err := hostErr; err != nil {
		if req.Upgrade {
			s.stats.refuse(http.StatusMisdirectedRequest)
		}
		if errors.Is(err, errHostBad) {
			s.respond(conn, http.StatusBadRequest, err.Error(), false)
			return closeConn
		}
		// Plain requests too: a rebinding page could read them.
		s.log.Info("refused: host", "remote", conn.RemoteAddr(), "host", req.Host, "why", err)
		s.respond(conn, http.StatusMisdirectedRequest, "421 Misdirected Request: "+err.Error(), false)
		return closeConn
	}
	if rc, ok := conn.(*redirectConn); ok {
		s.redirect(rc, req)
		return closeConn
	}
	switch {
	case req.Upgrade:
		s.handshaking(conn, false)
		s.upgrade(conn, req, extra)
		return takenConn
	case s.backend != nil && !isHandedOver(conn):
		// (A request a web server handed over came from the backend:
		// sent back there it would be handed over again.)
		_ = conn.SetDeadline(time.Time{})
		if s.backend.Forward(conn, req, extra) {
			return keepConn
		}
		return closeConn
	default:
		_ = conn.SetDeadline(time.Time{})
		if s.site.Answer(conn, req) {
			return keepConn
		}
		return closeConn
	}
}

func isHandedOver(conn net.Conn) bool {
	_, ok := conn.(*handover.Conn)
	return ok
}

// newBackend returns the forwarder to opts.HTTPBackend, nil when none is
// set. The pages are not served then; it says so when some were asked for.
func (s *Server) newBackend() (*backend.Forwarder, error) {
	opts := s.opts
	if opts.HTTPBackend == "" {
		return nil, nil
	}
	if opts.Demo || opts.DevConsole || opts.StaticDir != "" {
		s.log.Warn("--http-backend is set: the demo page, the console and the static directory are not served; the backend answers every plain request",
			"backend", opts.HTTPBackend)
	}
	return backend.New(backend.Options{
		Addr: opts.HTTPBackend, Timeout: opts.HTTPBackendTimeout, MaxBody: opts.HTTPBackendMaxBody,
		Header: append(slices.Clone(s.hdrAll), s.hdrHTTP...), Log: s.log,
	})
}
