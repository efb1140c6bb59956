package bridge

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/wsbridge/wsbridge/bridge/http1"
	"github.com/wsbridge/wsbridge/bridge/metrics"
	"github.com/wsbridge/wsbridge/bridge/modes/shared"
	"github.com/wsbridge/wsbridge/bridge/poll"
	"github.com/wsbridge/wsbridge/bridge/transport"
)

// The answers of a health check: a load balancer reads the status, a
// person the body.
const (
	healthOK       = "ok"
	healthDraining = "draining"
)

// DefaultMetricsPath is where ServeMetrics answers when given no path:
// where Prometheus scrapes by default.
const DefaultMetricsPath = "/metrics"

// answerOwn answers req when it asks for the health check or the metrics,
// and reports whether it did. Neither is ever an upgrade: an upgrade to
// the same path goes to its endpoint.
func (s *Server) answerOwn(conn net.Conn, req *http1.Request, hostOK bool) bool {
	var serve func(net.Conn, *http1.Request)
	switch {
	case req.Upgrade:
		return false
	case s.opts.HealthPath != "" && req.Path == s.opts.HealthPath:
		// Whatever the Host: the answer tells a page nothing, and a
		// load balancer may send none (HTTP/1.0) or its own.
		serve = s.serveHealth
	case hostOK && s.opts.MetricsPath != "" && req.Path == s.opts.MetricsPath:
		serve = s.serveMetrics
	default:
		return false
	}
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		s.respond(conn, http.StatusMethodNotAllowed, "405 Method Not Allowed: GET or HEAD only", false)
		return true
	}
	serve(conn, req)
	return true
}

// serveHealth answers a health check: 200 while serving, 503 once
// shutdown has begun, its drain included.
func (s *Server) serveHealth(conn net.Conn, req *http1.Request) {
	if s.draining.Load() || s.isStopping() {
		s.answer(conn, req, http.StatusServiceUnavailable, "text/plain; charset=utf-8", []byte(healthDraining+"\n"))
		return
	}
	s.answer(conn, req, http.StatusOK, "text/plain; charset=utf-8", []byte(healthOK+"\n"))
}

func (s *Server) serveMetrics(conn net.Conn, req *http1.Request) {
	s.answer(conn, req, http.StatusOK, metrics.ContentType, s.stats.write(s))
}

// answer writes a whole answer that closes the connection, with the
// --header and --header-http fields, and body unless req is a HEAD.
func (s *Server) answer(conn net.Conn, req *http1.Request, code int, ctype string, body []byte) {
	b := make([]byte, 0, 256+len(body))
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(code)...)
	b = append(b, "\r\n"...)
	b = append(b, s.hdrAll...)
	b = append(b, s.hdrHTTP...)
	b = append(b, "Content-Type: "...)
	b = append(b, ctype...)
	b = append(b, "\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	// A cache between must not answer for a server that began draining.
	b = append(b, "\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"...)
	if req.Method != http.MethodHead {
		b = append(b, body...)
	}
	_ = conn.SetDeadline(time.Now().Add(s.opts.CloseTimeout))
	_, _ = conn.Write(b)
}

// drain begins shutdown's first phase: health checks get 503 from now
// on, and for Options.Drain the server goes on serving, new sessions
// too, while a load balancer sees it and sends new clients elsewhere.
func (s *Server) drain() {
	s.draining.Store(true)
	if s.opts.Drain <= 0 {
		return
	}
	s.log.Info("draining: health checks get 503; serving on meanwhile", "for", s.opts.Drain, "health", s.opts.HealthPath)
	t := time.NewTimer(s.opts.Drain)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.drainCut: // a test's, which need not wait the whole drain
	}
}

// ServeMetrics answers GET requests for the metrics at path
// (DefaultMetricsPath when "") on l, a port of their own
// (--metrics-address), until ctx ends; it then closes l and returns once
// every answer is written. Each connection carries one request. Run it
// beside Serve, with a ctx that outlives Serve's drain: a scrape during
// the drain is when its numbers matter.
func (s *Server) ServeMetrics(ctx context.Context, l net.Listener, path string) error {
	if path == "" {
		path = DefaultMetricsPath
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { _ = l.Close() })
	defer stop()
	for {
		conn, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && !errors.Is(err, net.ErrClosed) {
				time.Sleep(50 * time.Millisecond) // out of descriptors: the scraper retries
				continue
			}
			return fmt.Errorf("bridge: metrics: accept on %s: %w", l.Addr(), err)
		}
		wg.Go(func() { s.metricsConn(conn, path) })
	}
}

// metricsConn answers the one request of a connection to the metrics
// port.
func (s *Server) metricsConn(conn net.Conn, path string) {
	defer http1.LingerClose(conn)
	buf := poll.Get(s.opts.MaxHeaderBytes)
	defer poll.Put(buf)
	_ = conn.SetDeadline(time.Now().Add(s.opts.HandshakeTimeout))
	hl, _, err := http1.ReadHead(conn, buf, 0)
	var req *http1.Request
	if err == nil {
		req, err = http1.Parse(buf[:hl], http1.Peer{Remote: conn.RemoteAddr(), Local: conn.LocalAddr()})
	}
	switch {
	case err != nil:
		s.respond(conn, http.StatusBadRequest, "malformed request", false)
	case s.hosts.check(req.Host) != nil:
		// As on the public port: a rebinding page could read them.
		s.respond(conn, http.StatusMisdirectedRequest, "421 Misdirected Request", false)
	case req.Path != path:
		s.respond(conn, http.StatusNotFound, "404 Not Found: the metrics are at "+path, false)
	case req.Method != http.MethodGet && req.Method != http.MethodHead:
		s.respond(conn, http.StatusMethodNotAllowed, "405 Method Not Allowed: GET or HEAD only", false)
	default:
		s.serveMetrics(conn, req)
	}
}

// closeCodes are the close codes counted each on its own (1000 to 1015,
// RFC 6455's and IANA's); any other, a client's own for one, counts as
// "other", so that no client can make new series.
const closeCodes = 16

// stats are the counters the metrics show. Counting is an atomic add on
// the hot paths, a map entry per session at its start and end.
type stats struct {
	mu      sync.Mutex
	eps     map[string]*endpointStats // by endpoint label
	refused [200]metrics.Counter      // handshakes refused, by status - 400
	fails   [len(failReasons)]metrics.Counter
}

// A connection that never got as far as a request fails for one of
// these reasons, counted by failed.
const (
	failPlainOnTLS   = iota // plain HTTP on a TLS port: answered 400
	failTLSTimeout          // TLS handshake not done in HandshakeTimeout
	failTLSHandshake        // TLS handshake failed (or the client left)
	failProxyHeader         // no sound PROXY header, or one not trusted
)

// failReasons are the reasons' labels in the metrics, by constant.
var failReasons = [...]string{"plain_http_on_tls", "tls_timeout", "tls_handshake", "proxy_header"}

// failed counts a connection that failed before its first request.
func (st *stats) failed(reason int) { st.fails[reason].Inc() }

// endpointStats are one endpoint's counters (a script's, for a script
// directory).
type endpointStats struct {
	label  string
	hub    *shared.Hub // the shared child's, for its slow clients
	total  metrics.Counter
	closed [closeCodes + 1]metrics.Counter // by code - 1000; the last: other

	mu   sync.Mutex
	open map[transport.Client]struct{} // sessions running, read at a scrape
	// Message bytes of the sessions ended; a scrape adds the open ones'.
	in, out uint64
}

// endpointLabel is how the metrics name ep: its path, "*" for the
// endpoint at every path.
func endpointLabel(ep *endpoint) string {
	if ep.Path == "" {
		return "*"
	}
	return ep.Path
}

// endpoint returns ep's counters, made at its first session (New makes
// those of the endpoints it knows, so that they show from the start).
func (st *stats) endpoint(ep *endpoint) *endpointStats {
	label := endpointLabel(ep)
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.eps == nil {
		st.eps = map[string]*endpointStats{}
	}
	es := st.eps[label]
	if es == nil {
		es = &endpointStats{label: label, hub: ep.hub, open: map[transport.Client]struct{}{}}
		st.eps[label] = es
	}
	return es
}

// begin counts a session of ep starting with c; end, once c is finished.
func (st *stats) begin(ep *endpoint, c transport.Client) *endpointStats {
	es := st.endpoint(ep)
	es.total.Inc()
	es.mu.Lock()
	es.open[c] = struct{}{}
	es.mu.Unlock()
	return es
}

func (es *endpointStats) end(c transport.Client) {
	code := int(c.Ended().Code) - 1000
	if code < 0 || code >= closeCodes {
		code = closeCodes
	}
	es.closed[code].Inc()
	in, out := c.Counts()
	es.mu.Lock()
	// Under the lock a scrape takes: the bytes move from the open
	// session to the ended ones at once, and the total never goes back.
	delete(es.open, c)
	es.in += uint64(in)
	es.out += uint64(out)
	es.mu.Unlock()
}

// refuse counts a handshake answered with status.
func (st *stats) refuse(status int) {
	if i := status - 400; i >= 0 && i < len(st.refused) {
		st.refused[i].Inc()
	}
}

// refusedShown are the statuses whose refusals show even at 0: the
// upgrade's own refusals and the Host check's.
var refusedShown = []int{400, 403, 404, 421, 426, 429, 503}

// write renders every counter in the Prometheus text format.
func (st *stats) write(s *Server) []byte {
	st.mu.Lock()
	eps := make([]*endpointStats, 0, len(st.eps))
	for _, es := range st.eps {
		eps = append(eps, es)
	}
	st.mu.Unlock()
	slices.SortFunc(eps, func(a, b *endpointStats) int { return cmp.Compare(a.label, b.label) })
	type snap struct {
		open    int
		in, out uint64
	}
	snaps := make([]snap, len(eps))
	for i, es := range eps {
		es.mu.Lock()
		sn := snap{open: len(es.open), in: es.in, out: es.out}
		for c := range es.open {
			in, out := c.Counts()
			sn.in += uint64(in)
			sn.out += uint64(out)
		}
		es.mu.Unlock()
		snaps[i] = sn
	}

	var t metrics.Text
	t.Family("wsbridge_connections_open", "WebSocket sessions open, by endpoint.", metrics.TypeGauge)
	for i, es := range eps {
		t.Gauge("wsbridge_connections_open", int64(snaps[i].open), "endpoint", es.label)
	}
	t.Family("wsbridge_connections_total", "WebSocket sessions begun, by endpoint.", metrics.TypeCounter)
	for _, es := range eps {
		t.Sample("wsbridge_connections_total", es.total.Load(), "endpoint", es.label)
	}
	t.Family("wsbridge_connections_closed_total", "WebSocket sessions ended, by endpoint and close code (1006: no close handshake; other: a code outside 1000-1015).", metrics.TypeCounter)
	for _, es := range eps {
		for i := range es.closed {
			n := es.closed[i].Load()
			if n == 0 && i != 0 && i != 1 {
				continue // 1000 and 1001 always show; others once seen
			}
			code := "other"
			if i < closeCodes {
				code = strconv.Itoa(1000 + i)
			}
			t.Sample("wsbridge_connections_closed_total", n, "endpoint", es.label, "code", code)
		}
	}
	t.Family("wsbridge_received_bytes_total", "Message payload bytes received from clients, by endpoint.", metrics.TypeCounter)
	for i, es := range eps {
		t.Sample("wsbridge_received_bytes_total", snaps[i].in, "endpoint", es.label)
	}
	t.Family("wsbridge_sent_bytes_total", "Message payload bytes sent to clients, by endpoint.", metrics.TypeCounter)
	for i, es := range eps {
		t.Sample("wsbridge_sent_bytes_total", snaps[i].out, "endpoint", es.label)
	}
	t.Family("wsbridge_slow_dropped_messages_total", "Messages a slow client of a shared program lost (--drop-slow), by endpoint.", metrics.TypeCounter)
	for _, es := range eps {
		if es.hub != nil {
			dropped, _ := es.hub.Slow()
			t.Sample("wsbridge_slow_dropped_messages_total", dropped, "endpoint", es.label)
		}
	}
	t.Family("wsbridge_slow_closed_total", "Slow clients of a shared program closed with 1013, by endpoint.", metrics.TypeCounter)
	for _, es := range eps {
		if es.hub != nil {
			_, cut := es.hub.Slow()
			t.Sample("wsbridge_slow_closed_total", cut, "endpoint", es.label)
		}
	}
	t.Family("wsbridge_handshake_failures_total", "WebSocket upgrades refused, by the status answered (503: connections refused by --max-conns before their request was read).", metrics.TypeCounter)
	for i := range st.refused {
		n := st.refused[i].Load()
		if n != 0 || slices.Contains(refusedShown, 400+i) {
			t.Sample("wsbridge_handshake_failures_total", n, "status", strconv.Itoa(400+i))
		}
	}
	t.Family("wsbridge_connection_failures_total", "Connections closed before their first request, by reason: plain HTTP on a TLS port (answered 400), a TLS handshake not finished in time or failed, a PROXY header missing, malformed or not trusted.", metrics.TypeCounter)
	for i, reason := range failReasons {
		t.Sample("wsbridge_connection_failures_total", st.fails[i].Load(), "reason", reason)
	}
	t.Family("wsbridge_children_running", "Programs running, of every endpoint.", metrics.TypeGauge)
	t.Gauge("wsbridge_children_running", s.forks.Load())
	t.Family("wsbridge_draining", "1 once shutdown has begun: the health check answers 503.", metrics.TypeGauge)
	draining := int64(0)
	if s.draining.Load() || s.isStopping() {
		draining = 1
	}
	t.Gauge("wsbridge_draining", draining)
	return t.Bytes()
}
