package bridge

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/wsbridge/wsbridge/bridge/http1"
	"github.com/wsbridge/wsbridge/bridge/modes/cgi"
	"github.com/wsbridge/wsbridge/bridge/modes/process"
	"github.com/wsbridge/wsbridge/bridge/transport"
	"github.com/wsbridge/wsbridge/procs"
)

// route is where a request goes: its endpoint (a script's, for a script
// directory), and the SCRIPT_NAME and PATH_INFO its program gets.
type route struct {
	ep                   *endpoint
	scriptName, pathInfo string
}

// route finds the endpoint of req, or says why none serves it.
func (s *Server) route(req *http1.Request) (route, error) {
	ep, script, info, err := s.routes.lookup(req.RawPath, req.Path)
	return route{ep: ep, scriptName: script, pathInfo: info}, err
}

// servesPath is the pages' view of the routes: whether an endpoint
// serves the path, and whether it was put there.
func (s *Server) servesPath(raw, path string) (found, own bool, why error) {
	ep, _, _, why := s.routes.lookup(raw, path)
	own = ep != nil && (ep.Path != "" && ep.Path != "/" || path == "/")
	return ep != nil, own, why
}

// admit counts the child a per-connection client of ep will have against
// MaxForks (the other modes count their children as they fork), or
// refuses it with 429.
func (s *Server) admit(ep *endpoint, id uint64, req *http1.Request) (forked bool, rej *http1.Rejection) {
	if ep.Mode != ModeProcess {
		return false, nil
	}
	if n := s.forks.Add(1); s.opts.MaxForks > 0 && n > int64(s.opts.MaxForks) {
		s.forks.Add(-1)
		s.log.Info("refused: --maxforks reached", "id", id, "remote", req.Peer.RemoteString(), "max", s.opts.MaxForks)
		return false, http1.Reject(http.StatusTooManyRequests, "429 Too Many Requests: too many programs running; try again later\n",
			[]byte("Retry-After: 1\r\n"), s.hdrHTTP)
	}
	return true, nil
}

// ServeClient serves c, a client of any transport whose handshake is done
// (the WebSocket upgrade does it itself), with the endpoint at req's path:
// its mode runs until c's side and the program are done, then c.Finish
// and the access line, then done. It fails, having started nothing, when
// no endpoint serves the path (ErrNoEndpoint), the fork limit is reached,
// or the shared mode meets a client it cannot fan out to. Call it while
// Serve runs: a client that comes once shutdown has begun is closed with
// 1001 at once, and Serve waits for every client before it returns.
func (s *Server) ServeClient(c transport.Client, req *http1.Request, done func()) error {
	rt, why := s.route(req)
	switch {
	case rt.ep == nil && errors.Is(why, ErrNoEndpoint):
		return fmt.Errorf("%s: %w", req.Path, why)
	case rt.ep == nil:
		return fmt.Errorf("%s: %w: %w", req.Path, ErrNoEndpoint, why)
	}
	if _, ok := c.(transport.Framed); rt.ep.Mode == ModeShared && !ok {
		return fmt.Errorf("the shared mode of %s needs a transport.Framed client", rt.ep.Path)
	}
	id := s.nextID.Add(1)
	forked, rej := s.admit(rt.ep, id, req)
	if rej != nil {
		return fmt.Errorf("%d: %s", rej.Status, rej.Body)
	}
	s.sessions.Add(1)
	s.serveClient(rt, c, req, id, forked, func() { s.sessions.Done(); done() })
	return nil
}

// serveClient hands c to its endpoint's mode. forked says a child was
// counted for it (see admit); done runs once the connection is finished.
func (s *Server) serveClient(rt route, c transport.Client, req *http1.Request, id uint64, forked bool, done func()) {
	ep := rt.ep
	env := s.request(req, id, rt)
	began := time.Now()
	stats := s.stats.begin(ep, c)
	// finish ends the connection once its mode is done with it: pid and
	// exit describe the child it had, if one of its own. It must not
	// hold req: an idle connection would keep its whole parsed head.
	remote := req.Peer.RemoteString()
	finish := func(pid int, exit string) {
		if forked {
			// The program is gone: its slot is free now, not once
			// the client has let go of the connection too.
			s.forks.Add(-1)
		}
		c.Finish()
		stats.end(c)
		s.accessLine(id, remote, began, c, pid, exit)
		done()
	}
	switch ep.Mode {
	case ModeCGI:
		cgi.Serve(s.host, &ep.prog, ep.CGI, ep.cgiSlots, ep.assembler(), c, env, id, func() { finish(0, "") })
	case ModeShared:
		var vars []string
		if ep.hub.Mux() {
			vars = env.Environ(nil) // the child has the daemon's variables already
		}
		ep.hub.Join(c.(transport.Framed), id, vars, func() { finish(0, "") })
	default:
		process.Serve(s.host, &ep.prog, c, env.Environ(ep.PassEnv), id, finish)
	}
}

// request is the CGI request a client's program (or its open record)
// sees of req.
func (s *Server) request(req *http1.Request, id uint64, rt route) procs.CGI {
	cgi := procs.CGI{
		Method:         "GET",
		ServerSoftware: s.opts.ServerSoftware,
		UniqueID:       fmt.Sprintf("%s%08x", s.uidBase, id),
		Headers:        req.Fields,
		URI:            req.Target,
		Query:          req.Query,
		ScriptName:     rt.scriptName,
		PathInfo:       rt.pathInfo,
		Protocol:       "HTTP/1.1",
		HTTPS:          req.Peer.Secure,
	}
	cgi.RemoteAddr, cgi.RemotePort = req.Peer.RemoteHostPort()
	if req.Peer.Local != nil {
		_, cgi.ServerPort = http1.SplitHostPort(req.Peer.Local.String(), "")
	}
	cgi.ServerName, _ = http1.SplitHostPort(req.Host, "")
	if cgi.ServerName == "" && req.Peer.Local != nil {
		cgi.ServerName, _ = http1.SplitHostPort(req.Peer.Local.String(), "")
	}
	return cgi
}
