//go:build !wsbridge_minimal

package bridge

import (
	"bytes"
	"context"
	_ "embed"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// plainHTTP is the net/http server that answers every request that is not
// a WebSocket upgrade on a fresh connection. The wsbridge_minimal build
// replaces it with fixed answers (http_minimal.go).
type plainHTTP struct {
	srv  *http.Server
	q    *connQueue
	done chan struct{} // closed when serve's goroutine has returned
}

func (s *Server) newPlainHTTP() plainHTTP {
	return plainHTTP{
		q: newConnQueue(),
		srv: &http.Server{
			Handler:           http.HandlerFunc(s.serveHTTP),
			ReadHeaderTimeout: s.opts.HandshakeTimeout,
			IdleTimeout:       time.Minute,
			MaxHeaderBytes:    s.opts.MaxHeaderBytes,
			ErrorLog:          slog.NewLogLogger(s.opts.Logger.Handler(), LevelDebug),
		},
	}
}

// serve starts the server's goroutine; shutdown stops it and waits.
func (p *plainHTTP) serve() {
	p.done = make(chan struct{})
	go func() {
		defer close(p.done)
		_ = p.srv.Serve(p.q)
	}()
}

// shutdown lets requests still running finish within timeout, then
// closes what is left, and returns once the server's goroutine has.
func (p *plainHTTP) shutdown(timeout time.Duration) {
	ctx, stop := context.WithTimeout(context.Background(), timeout)
	if p.srv.Shutdown(ctx) != nil {
		_ = p.srv.Close() // requests still running had their time
	}
	stop()
	_ = p.q.Close()
	<-p.done
}

// take hands conn, whose request head and what followed it are in read,
// to net/http, and reports true: net/http owns conn from now on (Shutdown
// waits for it), and read is copied, so the caller may reuse it.
func (p *plainHTTP) take(s *Server, conn net.Conn, read []byte, _ requestHead) bool {
	pc := &prefixConn{Conn: conn, prefix: bytes.Clone(read), onClose: s.releaseConn}
	_ = conn.SetDeadline(time.Time{})
	s.sessions.Done()
	p.q.push(pc)
	return true
}

// checkPlainHTTP reports an option this build cannot serve: none.
func checkPlainHTTP(Options) error { return nil }

//go:embed demo.html
var demoPage []byte

// serveHTTP answers every request that is not a WebSocket upgrade on a
// fresh connection: the demo page at "/", files of the static directory,
// the console for an endpoint's path, and otherwise a 426 that says what
// the path is for, or a 404 where no endpoint is.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	for _, h := range []http.Header{s.opts.Header, s.opts.HeaderHTTP} {
		for k, v := range h {
			w.Header()[k] = v
		}
	}
	if hasToken([]byte(r.Header.Get("Upgrade")), "websocket") {
		s.upgradeHijacked(w, r)
		return
	}
	get := r.Method == http.MethodGet || r.Method == http.MethodHead
	if s.opts.Demo && r.URL.Path == "/" && get {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(demoPage)
		return
	}
	ep, _, _, why := s.routes.lookup(r.URL.EscapedPath(), r.URL.Path)
	if get && s.opts.StaticDir != "" && s.serveStatic(w, r, ep != nil) {
		return
	}
	switch {
	case ep == nil:
		s.log.Debug("not found", "path", r.URL.Path, "why", why)
		http.Error(w, "404 Not Found: no WebSocket endpoint at "+r.URL.Path, http.StatusNotFound)
	case get && s.opts.DevConsole:
		serveConsole(w)
	default:
		w.Header().Set("Upgrade", "websocket")
		w.Header().Set("Connection", "Upgrade")
		http.Error(w, "426 Upgrade Required: this is a WebSocket endpoint; connect with a WebSocket client, e.g. ws://"+r.Host+r.URL.Path, http.StatusUpgradeRequired)
	}
}

// upgradeHijacked serves a WebSocket upgrade that arrived on a kept-alive
// HTTP connection (a proxy may reuse one): it takes the connection back
// from net/http and runs the same upgrade as a fresh connection.
func (s *Server) upgradeHijacked(w http.ResponseWriter, r *http.Request) {
	if !s.admit() {
		w.Header().Set("Connection", "close")
		http.Error(w, "503 Service Unavailable: the server is shutting down", http.StatusServiceUnavailable)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		s.sessions.Done()
		http.Error(w, "cannot upgrade this connection", http.StatusInternalServerError)
		return
	}
	nc, brw, err := hj.Hijack()
	if err != nil {
		s.sessions.Done()
		return
	}
	var head bytes.Buffer
	head.WriteString(r.Method + " " + r.RequestURI + " HTTP/1.1\r\nHost: " + r.Host + "\r\n")
	_ = r.Header.Write(&head)
	head.WriteString("\r\n")
	extra, _ := brw.Reader.Peek(brw.Reader.Buffered())
	extra = bytes.Clone(extra)
	conn := nc
	release := func() {}
	if pc, ok := nc.(*prefixConn); ok {
		// Back to the raw connection, so writev and polling work. What
		// net/http has not read of the prefix follows what it has.
		conn = pc.Conn
		extra = append(extra, pc.takePrefix()...)
		release = pc.onClose
	}
	s.serveWS(conn, head.Bytes(), extra, func() {
		release()
		s.sessions.Done()
	})
}

// connQueue is a net.Listener fed by the server's own accept loop with
// the connections that are plain HTTP.
type connQueue struct {
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newConnQueue() *connQueue {
	return &connQueue{ch: make(chan net.Conn), done: make(chan struct{})}
}

func (q *connQueue) push(c net.Conn) {
	select {
	case q.ch <- c:
	case <-q.done:
		_ = c.Close()
	}
}

func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.ch:
		return c, nil
	case <-q.done:
		return nil, net.ErrClosed
	}
}

func (q *connQueue) Close() error {
	q.once.Do(func() { close(q.done) })
	return nil
}

func (q *connQueue) Addr() net.Addr { return queueAddr{} }

type queueAddr struct{}

func (queueAddr) Network() string { return "wsbridge" }
func (queueAddr) String() string  { return "wsbridge" }

// prefixConn replays bytes the server read before it knew who the
// connection was for, then reads the connection itself.
type prefixConn struct {
	net.Conn
	mu      sync.Mutex
	prefix  []byte
	onClose func() // runs once, when the connection closes
	closed  atomic.Bool
}

func (c *prefixConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		c.mu.Unlock()
		return n, nil
	}
	c.mu.Unlock()
	return c.Conn.Read(p)
}

func (c *prefixConn) takePrefix() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.prefix
	c.prefix = nil
	return p
}

func (c *prefixConn) Close() error {
	if !c.closed.Swap(true) && c.onClose != nil {
		c.onClose()
	}
	return c.Conn.Close()
}
