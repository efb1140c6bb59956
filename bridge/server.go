package bridge

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	"github.com/wsbridge/wsbridge/framing"
	"github.com/wsbridge/wsbridge/procs"
)

// Server accepts connections on its listeners, upgrades WebSocket requests
// on the raw connection with gobwas/ws and runs a session for each, and
// hands every other request to a net/http server on the same port.
type Server struct {
	opts   Options
	log    *slog.Logger
	eps    []*endpoint
	routes routes
	origin originPolicy
	hosts  hostPolicy

	hdrAll, hdrWS, hdrHTTP ws.HandshakeHeader // nil when empty

	plain  plainHTTP // answers what is not a WebSocket upgrade
	poller *poller   // parks idle readers; nil where epoll is unavailable

	liveMu   sync.Mutex
	live     map[clientCloser]struct{} // running sessions and CGI connections, closed at shutdown
	heads    map[net.Conn]struct{}     // connections whose request head is being read
	stopping bool                      // Serve's context has ended
	conns    atomic.Int64              // open connections, for MaxConns
	forks    atomic.Int64              // running children, for MaxForks
	nextID   atomic.Uint64
	uidBase  string
	sessions sync.WaitGroup
}

// New checks opts and returns a Server ready to Serve.
func New(opts Options) (*Server, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("bridge: %w", err)
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	s := &Server{
		opts:    opts,
		log:     opts.Logger,
		origin:  newOriginPolicy(opts.Origins, opts.SameOrigin),
		hdrAll:  handshakeHeader(opts.Header),
		hdrWS:   handshakeHeader(opts.HeaderWS),
		hdrHTTP: handshakeHeader(opts.HeaderHTTP),
		uidBase: hex.EncodeToString(rnd[:]),
		live:    map[clientCloser]struct{}{},
		heads:   map[net.Conn]struct{}{},
	}
	s.hosts, _ = newHostPolicy(opts.AllowedHosts) // checked by withDefaults
	for _, e := range opts.Endpoints {
		s.eps = append(s.eps, s.newEndpoint(e))
	}
	if s.routes, err = newRoutes(s.eps); err != nil {
		return nil, fmt.Errorf("bridge: %w", err)
	}
	s.plain = s.newPlainHTTP()
	return s, nil
}

// newEndpoint returns the run-time state of e, a checked Endpoint. A script
// directory makes one for each script it finds, the same way.
func (s *Server) newEndpoint(e Endpoint) *endpoint {
	ep := &endpoint{Endpoint: e, wscfg: wsConfig{
		MaxMessage:   e.MaxMessage,
		ReadBuffer:   s.opts.ReadBuffer,
		PingInterval: s.opts.PingInterval,
		PingTimeout:  s.opts.PingTimeout,
		CloseTimeout: s.opts.CloseTimeout,
	}}
	switch {
	case e.ScriptDir != "":
		ep.scripts = newScriptDir(ep, s.newEndpoint) // each script has its own hub
	case e.Mode == ModeShared:
		ep.hub = newHub(s, ep)
	}
	if e.Mode == ModeCGI {
		ep.cgiSlots = make(chan struct{}, e.CGI.Total) // a directory's scripts share it
	}
	if e.Mode != ModeProcess {
		ep.assembly = &assemblyBudget{limit: e.AssemblyBudget} // a directory's scripts share it
	}
	return ep
}

func handshakeHeader(h http.Header) ws.HandshakeHeader {
	if len(h) == 0 {
		return nil
	}
	return ws.HandshakeHeaderHTTP(h)
}

// Serve accepts connections on every listener until ctx ends, then stops
// accepting, closes every session with 1001 and ends its child, and
// returns once all are gone. It returns nil after a clean shutdown, or the
// error that stopped a listener.
func (s *Server) Serve(ctx context.Context, listeners ...net.Listener) error {
	if len(listeners) == 0 {
		return errors.New("bridge: no listener")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The poller lives as long as Serve: a Server never served holds no
	// goroutine or descriptor.
	if p, err := newPoller(); err == nil {
		s.poller = p
	} else {
		s.log.Warn("idle connections will each keep a goroutine", "err", err)
	}
	for _, ep := range s.eps {
		if ep.hub != nil && !ep.Shared.Lazy {
			ep.hub.ensureRunning()
		}
	}

	var (
		accepting sync.WaitGroup
		errMu     sync.Mutex
		firstErr  error
	)
	for _, l := range listeners {
		accepting.Add(1)
		go func() {
			defer accepting.Done()
			if err := s.accept(ctx, l); err != nil {
				errMu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				errMu.Unlock()
				cancel()
			}
		}()
	}
	<-ctx.Done()
	for _, l := range listeners {
		_ = l.Close()
	}
	accepting.Wait()
	s.closeAll()
	s.sessions.Wait()
	if s.poller != nil {
		s.poller.close()
	}
	return firstErr
}

// accept runs one listener's accept loop. A transient error (such as
// running out of file descriptors) is logged and retried with backoff.
func (s *Server) accept(ctx context.Context, l net.Listener) error {
	var delay time.Duration
	for {
		conn, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && !errors.Is(err, net.ErrClosed) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.log.Error("accept", "err", err, "retry", delay)
				select {
				case <-time.After(delay):
					continue
				case <-ctx.Done():
					return nil
				}
			}
			return fmt.Errorf("bridge: accept on %s: %w", l.Addr(), err)
		}
		delay = 0
		s.sessions.Add(1)
		go s.handle(conn) // calls s.sessions.Done when conn is finished
	}
}

// handle reads a connection's request head and routes it: a WebSocket
// upgrade stays here, anything else goes to the HTTP server.
func (s *Server) handle(conn net.Conn) {
	if n := s.conns.Add(1); s.opts.MaxConns > 0 && n > int64(s.opts.MaxConns) {
		s.conns.Add(-1)
		s.log.Info("refused: --max-conns reached", "remote", conn.RemoteAddr(), "max", s.opts.MaxConns)
		s.reject(conn, http.StatusServiceUnavailable, "too many connections; try again later", true)
		s.sessions.Done()
		return
	}
	done := s.connDone
	buf := getBuffer(s.opts.MaxHeaderBytes)
	defer func() { putBuffer(buf) }() // the session outlives this call; the head buffer does not
	if !s.handshaking(conn, true) {
		// Shutdown has begun: no new request is read.
		_ = conn.Close()
		done()
		return
	}
	// A connection carries plain requests, kept alive, until one is an
	// upgrade; n bytes of the next request may be read already. Between
	// requests it may idle for idleTimeout; every head, the first or a
	// later one, must then arrive whole within HandshakeTimeout of its
	// first byte, or a slowloris client could hold a connection for the
	// idle timeout at each request.
	n, keptAlive := 0, false
	for {
		var err error
		if keptAlive && n == 0 {
			_ = conn.SetDeadline(time.Now().Add(idleTimeout))
			if s.isStopping() {
				// Shutdown began as the last answer went out: its
				// deadline may be the one just replaced.
				lingerClose(conn)
				break
			}
			if n, err = awaitRequest(conn, buf); err != nil {
				s.log.Debug("no request head", "remote", conn.RemoteAddr(), "err", err)
				_ = conn.Close()
				break
			}
		}
		_ = conn.SetDeadline(time.Now().Add(s.opts.HandshakeTimeout))
		if s.isStopping() {
			lingerClose(conn) // as above: no new request once shutdown began
			break
		}
		hl, m, err := readHead(conn, buf, n)
		var (
			head    requestHead
			hostErr error
		)
		if err == nil {
			head, err = parseHead(buf[:hl])
		}
		if err == nil {
			hostErr = s.hosts.check(head.host)
		}
		switch {
		case errors.Is(err, errHeadTooLarge):
			s.reject(conn, http.StatusRequestHeaderFieldsTooLarge, "request head larger than "+strconv.Itoa(s.opts.MaxHeaderBytes)+" bytes", false)
		case errors.Is(err, errHeadBad):
			s.reject(conn, http.StatusBadRequest, "malformed request", false)
		case errors.Is(hostErr, errHostBad):
			s.reject(conn, http.StatusBadRequest, hostErr.Error(), false)
		case hostErr != nil:
			// Plain requests too: a rebinding page could read them.
			s.log.Info("refused: host", "remote", conn.RemoteAddr(), "host", head.host, "why", hostErr)
			s.reject(conn, http.StatusMisdirectedRequest, "421 Misdirected Request: "+hostErr.Error(), false)
		case err != nil:
			// Timed out, dropped, or cut by shutdown before a whole
			// head arrived (a kept-alive connection idles here).
			s.log.Debug("no request head", "remote", conn.RemoteAddr(), "err", err)
			_ = conn.Close()
		case !head.upgrade:
			_ = conn.SetDeadline(time.Time{})
			if s.plain.answer(s, conn, buf[:hl], head) && !s.isStopping() {
				n, keptAlive = copy(buf, buf[hl:m]), true
				continue
			}
			lingerClose(conn)
		default:
			s.handshaking(conn, false)
			var extra []byte
			if m > hl {
				extra = bytes.Clone(buf[hl:m])
			}
			s.serveWS(conn, buf[:hl], extra, done)
			return
		}
		break
	}
	s.handshaking(conn, false)
	done()
}

// idleTimeout is how long a kept-alive connection may wait for the first
// byte of its next request.
const idleTimeout = time.Minute

// awaitRequest reads into buf the first bytes of a kept-alive connection's
// next request, under the deadline the caller set, and returns how many.
// Line ends before a request line are skipped (RFC 9112 2.2): they do not
// start the head's timeout.
func awaitRequest(conn net.Conn, buf []byte) (int, error) {
	for {
		m, err := conn.Read(buf)
		i := 0
		for i < m && (buf[i] == '\r' || buf[i] == '\n') {
			i++
		}
		if i < m {
			return copy(buf, buf[i:m]), nil
		}
		if err != nil {
			return 0, err
		}
	}
}

// isStopping reports whether Serve's context has ended.
func (s *Server) isStopping() bool {
	s.liveMu.Lock()
	defer s.liveMu.Unlock()
	return s.stopping
}

// connDone is called once a connection the server kept is finished.
func (s *Server) connDone() {
	s.conns.Add(-1)
	s.sessions.Done()
}

// clientCloser is what shutdown closes: a session, or a per-message CGI
// connection.
type clientCloser interface {
	closeClient(code CloseCode, reason string)
}

// track registers a running session, so shutdown can close it.
func (s *Server) track(sess clientCloser) {
	s.liveMu.Lock()
	s.live[sess] = struct{}{}
	stopping := s.stopping
	s.liveMu.Unlock()
	if stopping {
		sess.closeClient(CloseGoingAway, "server shutting down")
	}
}

func (s *Server) untrack(sess clientCloser) {
	s.liveMu.Lock()
	delete(s.live, sess)
	s.liveMu.Unlock()
}

// handshaking registers conn (in) or forgets it (!in) as waiting for its
// request head, so shutdown can cut the wait short. Registering fails
// once shutdown has begun.
func (s *Server) handshaking(conn net.Conn, in bool) bool {
	s.liveMu.Lock()
	defer s.liveMu.Unlock()
	if !in {
		delete(s.heads, conn)
		return true
	}
	if s.stopping {
		return false
	}
	s.heads[conn] = struct{}{}
	return true
}

// closeAll closes every session with 1001, once Serve's context ends; a
// session that starts later is closed as it registers.
func (s *Server) closeAll() {
	s.liveMu.Lock()
	s.stopping = true
	all := make([]clientCloser, 0, len(s.live))
	for sess := range s.live {
		all = append(all, sess)
	}
	// A connection that has not sent its request yet (a browser's
	// preconnect, say, or a kept-alive one between requests) would hold
	// shutdown for the handshake timeout; one being answered gets
	// CloseTimeout to finish.
	for conn := range s.heads {
		_ = conn.SetReadDeadline(time.Now())
		_ = conn.SetWriteDeadline(time.Now().Add(s.opts.CloseTimeout))
	}
	s.liveMu.Unlock()
	for _, sess := range all {
		sess.closeClient(CloseGoingAway, "server shutting down")
	}
	for _, ep := range s.eps {
		if ep.hub != nil {
			ep.hub.shutdown()
		}
		if ep.scripts != nil {
			ep.scripts.shutdown()
		}
	}
}

// reject answers a request the server will not serve with a short text
// and closes the connection.
func (s *Server) reject(conn net.Conn, code int, reason string, retry bool) {
	s.respond(conn, code, reason, retry)
	lingerClose(conn)
}

// respond writes a short text answer that closes the connection, without
// closing it.
func (s *Server) respond(conn net.Conn, code int, reason string, retry bool) {
	_ = conn.SetDeadline(time.Now().Add(s.opts.CloseTimeout))
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\n", code, http.StatusText(code))
	if retry {
		b.WriteString("Retry-After: 1\r\n")
	}
	for _, h := range []ws.HandshakeHeader{s.hdrAll, s.hdrHTTP} {
		if h != nil {
			_, _ = h.WriteTo(&b)
		}
	}
	body := reason + "\n"
	fmt.Fprintf(&b, "Content-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
	_, _ = conn.Write(b.Bytes())
}

// lingerClose half-closes conn and reads what the peer still sends for a
// moment, so the kernel ends with FIN rather than a reset that could
// destroy the response on its way.
func lingerClose(conn net.Conn) {
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		_ = conn.SetReadDeadline(time.Now().Add(time.Second))
		_, _ = io.Copy(io.Discard, io.LimitReader(conn, 1<<20))
	}
	_ = conn.Close()
}

// serveWS upgrades conn with the request head already read into head, and
// starts the session. extra holds bytes that arrived after the head. done
// runs once the connection is finished, after the session if there is one.
// head is not used after serveWS returns.
func (s *Server) serveWS(conn net.Conn, head, extra []byte, done func()) {
	id := s.nextID.Add(1)
	cgi := procs.CGI{
		Method:         "GET",
		ServerSoftware: s.opts.ServerSoftware,
		UniqueID:       fmt.Sprintf("%s%08x", s.uidBase, id),
	}
	cgi.Headers = headFields(head)
	var origin, host string
	for _, f := range cgi.Headers {
		switch {
		case origin == "" && strings.EqualFold(f[0], "Origin"):
			origin = f[1]
		case host == "" && strings.EqualFold(f[0], "Host"):
			host = f[1]
		}
	}
	var (
		ep          *endpoint
		forked, bad bool
	)
	u := ws.Upgrader{
		Header: s.hdrAll,
		OnRequest: func(uri []byte) error {
			cgi.URI = string(uri)
			raw, query, _ := strings.Cut(cgi.URI, "?")
			p, err := url.PathUnescape(raw)
			if err != nil || !strings.HasPrefix(p, "/") {
				bad = true
				return ws.RejectConnectionError(ws.RejectionStatus(http.StatusBadRequest),
					ws.RejectionReason("400 Bad Request: malformed path\n"), ws.RejectionHeader(s.hdrHTTP))
			}
			cgi.Query = query
			var why error
			if ep, cgi.ScriptName, cgi.PathInfo, why = s.routes.lookup(raw, p); ep == nil {
				s.log.Info("refused: no endpoint", "id", id, "remote", conn.RemoteAddr(), "path", p, "why", why)
				return ws.RejectConnectionError(ws.RejectionStatus(http.StatusNotFound),
					ws.RejectionReason("404 Not Found: no WebSocket endpoint at "+p+"\n"), ws.RejectionHeader(s.hdrHTTP))
			}
			return nil
		},
		OnBeforeUpgrade: func() (ws.HandshakeHeader, error) {
			if err := s.origin.check(origin, host, false); err != nil {
				s.log.Info("refused: origin", "id", id, "remote", conn.RemoteAddr(), "why", err)
				return nil, ws.RejectConnectionError(ws.RejectionStatus(http.StatusForbidden),
					ws.RejectionReason("403 Forbidden: "+err.Error()+"\n"), ws.RejectionHeader(s.hdrHTTP))
			}
			if ep.Mode != ModeProcess {
				return s.hdrWS, nil // forks are counted as they happen
			}
			if n := s.forks.Add(1); s.opts.MaxForks > 0 && n > int64(s.opts.MaxForks) {
				s.forks.Add(-1)
				s.log.Info("refused: --maxforks reached", "id", id, "remote", conn.RemoteAddr(), "max", s.opts.MaxForks)
				return nil, ws.RejectConnectionError(ws.RejectionStatus(http.StatusTooManyRequests),
					ws.RejectionReason("429 Too Many Requests: too many programs running; try again later\n"),
					ws.RejectionHeader(retryAfter{s.hdrHTTP}))
			}
			forked = true
			return s.hdrWS, nil
		},
	}
	_, err := u.Upgrade(struct {
		io.Reader
		io.Writer
	}{bytes.NewReader(head), conn})
	if err != nil {
		if forked {
			s.forks.Add(-1)
		}
		s.log.Debug("handshake failed", "id", id, "remote", conn.RemoteAddr(), "err", err, "bad", bad)
		lingerClose(conn)
		done()
		return
	}
	_ = conn.SetDeadline(time.Time{})
	began := time.Now()

	cgi.RemoteAddr, cgi.RemotePort = splitHostPort(conn.RemoteAddr().String(), "")
	_, cgi.ServerPort = splitHostPort(conn.LocalAddr().String(), "")
	cgi.ServerName, _ = splitHostPort(host, "")
	if cgi.ServerName == "" {
		cgi.ServerName, _ = splitHostPort(conn.LocalAddr().String(), "")
	}
	cgi.Protocol = "HTTP/1.1"

	wc := newWSConn(conn, &ep.wscfg, extra)
	// finish ends the connection once its mode is done with it: pid and
	// exit describe the child it had, if one of its own.
	finish := func(pid int, exit string) {
		if forked {
			// The program is gone: its slot is free now, not once
			// the client has let go of the TCP connection too.
			s.forks.Add(-1)
		}
		wc.finish()
		s.accessLine(id, conn.RemoteAddr().String(), began, wc, pid, exit)
		done()
	}
	if ep.Mode == ModeCGI {
		s.serveCGI(ep, wc, id, cgi, finish)
		return
	}
	if ep.Mode == ModeShared {
		m := &member{h: ep.hub, wc: wc, sid: id, finish: finish, asm: ep.assembler()}
		if ep.hub.mux {
			m.env = cgi.Environ(nil) // the child has the daemon's variables already
		}
		ep.hub.join(m)
		return
	}
	end := func(sess *session) {
		pid, exit := 0, ""
		if sess.proc != nil {
			pid, exit = sess.proc.PID, sess.status.String()
		}
		finish(pid, exit)
	}
	sess := &session{id: id, srv: s, client: wc, ep: ep, began: began, onEnd: end}
	if !sess.start(cgi.Environ(ep.PassEnv)) {
		// The client has its close frame; wait briefly for the answer.
		_ = wc.Receive(func([]framing.Piece) error { return nil })
		end(sess)
	}
}

// accessLine logs one line for a finished connection: who closed it, with
// which code and why, and the child it had of its own, if any.
func (s *Server) accessLine(id uint64, remote string, began time.Time, wc *wsConn, pid int, exit string) {
	closed := wc.closeInfo()
	by := "server"
	if closed.Remote {
		by = "client"
	}
	attrs := []any{
		"id", id, "remote", remote,
		"duration", time.Since(began).Round(time.Millisecond),
		"in", wc.bytesIn.Load(), "out", wc.bytesOut.Load(),
		"close", closed.Code, "close_by", by,
	}
	if closed.Reason != "" {
		attrs = append(attrs, "reason", closed.Reason)
	}
	if pid != 0 {
		attrs = append(attrs, "pid", pid, "exit", exit)
	}
	s.log.Log(context.Background(), LevelAccess, "session", attrs...)
}

// retryAfter adds Retry-After to a rejection's headers.
type retryAfter struct{ more ws.HandshakeHeader }

func (r retryAfter) WriteTo(w io.Writer) (int64, error) {
	n, err := io.WriteString(w, "Retry-After: 1\r\n")
	if err == nil && r.more != nil {
		var m int64
		m, err = r.more.WriteTo(w)
		return int64(n) + m, err
	}
	return int64(n), err
}
