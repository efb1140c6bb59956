package bridge

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/bridge/metrics"
	"github.com/wsbridge/wsbridge/bridge/wstest"
)

// healthGet asks addr for path with method and a Host, and returns the
// answer with its body.
func healthGet(t *testing.T, addr, method, path, host string) (*http.Response, string) {
	t.Helper()
	req := method + " " + path + " HTTP/1.1\r\nConnection: close\r\n"
	if host != "" {
		req += "Host: " + host + "\r\n"
	}
	return rawExchange(t, addr, req+"\r\n")
}

func TestHealthAnswersWhileServing(t *testing.T) {
	_, addr := serveTest(t, Options{Endpoints: []Endpoint{echoEndpoint(t, "")}, HealthPath: "/health"})
	resp, body := healthGet(t, addr, "GET", "/health", addr)
	if resp.StatusCode != 200 || body != "ok\n" {
		t.Errorf("GET /health: %d %q, want 200 \"ok\\n\"", resp.StatusCode, body)
	}
	if ct, cc := resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"); !strings.HasPrefix(ct, "text/plain") || cc != "no-store" {
		t.Errorf("GET /health: Content-Type %q, Cache-Control %q; want text/plain, no-store", ct, cc)
	}
	// HAProxy's httpchk sends HTTP/1.0 without a Host; another balancer
	// may send its own name, which no --allow-host lists.
	resp, body = rawExchange(t, addr, "GET /health HTTP/1.0\r\n\r\n")
	if resp.StatusCode != 200 || body != "ok\n" {
		t.Errorf("GET /health HTTP/1.0 without Host: %d %q, want 200 ok", resp.StatusCode, body)
	}
	if resp, _ := healthGet(t, addr, "GET", "/health", "lb.internal.example"); resp.StatusCode != 200 {
		t.Errorf("GET /health with a foreign Host: %d, want 200", resp.StatusCode)
	}
	if resp, body := healthGet(t, addr, "HEAD", "/health", addr); resp.StatusCode != 200 || body != "" {
		t.Errorf("HEAD /health: %d %q, want 200 and no body", resp.StatusCode, body)
	}
	if resp, _ := healthGet(t, addr, "POST", "/health", addr); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /health: %d, want 405", resp.StatusCode)
	}
	// An upgrade to the same path is the endpoint's.
	c := dial(t, addr, "/health", 0)
	send(t, c, "still a session", 0)
	expectWhole(t, c, "still a session")
	// The metrics were not asked for: they are not served.
	if resp, _ := healthGet(t, addr, "GET", DefaultMetricsPath, addr); resp.StatusCode == 200 {
		t.Errorf("GET %s without MetricsPath: 200, want them not served", DefaultMetricsPath)
	}
}

func TestHealthOffByDefault(t *testing.T) {
	_, addr := serveTest(t, Options{Endpoints: []Endpoint{echoEndpoint(t, "/echo")}})
	if resp, body := healthGet(t, addr, "GET", "/health", addr); resp.StatusCode == 200 {
		t.Errorf("GET /health without HealthPath: 200 %q, want it not served", body)
	}
}

// TestDrain: once shutdown begins, health checks get 503 while old and
// new sessions are served; once the drain ends, sessions get 1001 and
// Serve returns.
func TestDrain(t *testing.T) {
	s := serveStoppable(t, Options{Endpoints: []Endpoint{echoEndpoint(t, "/echo")}, HealthPath: "/hc", Drain: time.Hour})
	old := dial(t, s.addr, "/echo", 0)
	send(t, old, "before", 0)
	expectWhole(t, old, "before")
	s.shutdown()
	t.Cleanup(func() { // before serveStoppable's, which waits for Serve
		select {
		case <-s.srv.drainCut:
		default:
			close(s.srv.drainCut)
		}
	})
	s.log.WaitRecords(t, "draining: health checks get 503; serving on meanwhile", 1, 10*time.Second)
	resp, body := healthGet(t, s.addr, "GET", "/hc", s.addr)
	if resp.StatusCode != http.StatusServiceUnavailable || body != "draining\n" {
		t.Errorf("GET /hc while draining: %d %q, want 503 \"draining\\n\"", resp.StatusCode, body)
	}
	send(t, old, "during", 0)
	expectWhole(t, old, "during")
	late := dial(t, s.addr, "/echo", 0) // a client the balancer sent before it noticed
	send(t, late, "new", 0)
	expectWhole(t, late, "new")
	select {
	case <-s.done:
		t.Fatal("Serve returned during the drain")
	default:
	}
	close(s.srv.drainCut)
	for _, c := range []*wstest.Conn{old, late} {
		if code, _ := serverClose(t, c); code != 1001 {
			t.Errorf("close after the drain: %d, want 1001", code)
		}
	}
	if err := s.wait(t, 30*time.Second); err != nil {
		t.Errorf("Serve after the drain: %v", err)
	}
}

// TestNoDrainByDefault: without Drain, shutdown is what it was: the
// sessions get 1001 at once, and health checks are never answered 200
// once it began.
func TestNoDrainByDefault(t *testing.T) {
	s := serveStoppable(t, Options{Endpoints: []Endpoint{echoEndpoint(t, "/echo")}, HealthPath: "/health"})
	c := dial(t, s.addr, "/echo", 0)
	send(t, c, "x", 0)
	expectWhole(t, c, "x")
	s.shutdown()
	if code, _ := serverClose(t, c); code != 1001 {
		t.Errorf("close at shutdown: %d, want 1001", code)
	}
	if err := s.wait(t, 30*time.Second); err != nil {
		t.Error(err)
	}
}

func TestHealthOptionsChecked(t *testing.T) {
	for _, o := range []Options{
		{HealthPath: "health"},
		{MetricsPath: "metrics"},
		{HealthPath: "/x", MetricsPath: "/x"},
		{HealthPath: "/health", Drain: -time.Second},
	} {
		o.Endpoints = []Endpoint{{Command: []string{"/bin/cat"}}}
		if err := o.Check(); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}

// scrape GETs the metrics at path and returns their text.
func scrape(t *testing.T, addr, path string) string {
	t.Helper()
	resp, body := healthGet(t, addr, "GET", path, addr)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != metrics.ContentType {
		t.Fatalf("GET %s: %d %s, want 200 %s", path, resp.StatusCode, resp.Header.Get("Content-Type"), metrics.ContentType)
	}
	return body
}

// waitMetric waits until the metrics at path hold the sample line want.
func waitMetric(t *testing.T, addr, path, want string) {
	t.Helper()
	var text string
	if !eventually(10*time.Second, func() bool {
		text = scrape(t, addr, path)
		return strings.Contains(text, "\n"+want+"\n")
	}) {
		t.Fatalf("metrics never held %q; last:\n%s", want, text)
	}
}

func TestMetricsMove(t *testing.T) {
	_, addr := serveTest(t, Options{Endpoints: []Endpoint{echoEndpoint(t, "/echo")}, MetricsPath: "/stats"})
	waitMetric(t, addr, "/stats", `wsbridge_connections_total{endpoint="/echo"} 0`)
	if code, _ := upgradeStatus(t, addr, "/nowhere"); code != 404 {
		t.Fatalf("upgrade to /nowhere: %d, want 404", code)
	}
	c := dial(t, addr, "/echo", 0)
	send(t, c, "hello", 0)
	expectWhole(t, c, "hello")
	for _, want := range []string{
		`wsbridge_connections_open{endpoint="/echo"} 1`,
		`wsbridge_connections_total{endpoint="/echo"} 1`,
		`wsbridge_received_bytes_total{endpoint="/echo"} 5`,
		`wsbridge_sent_bytes_total{endpoint="/echo"} 5`,
		`wsbridge_handshake_failures_total{status="404"} 1`,
		`wsbridge_children_running 1`,
		`wsbridge_draining 0`,
	} {
		waitMetric(t, addr, "/stats", want)
	}
	if _, err := c.CloseHandshake(1000, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	waitMetric(t, addr, "/stats", `wsbridge_connections_closed_total{endpoint="/echo",code="1000"} 1`)
	waitMetric(t, addr, "/stats", `wsbridge_connections_open{endpoint="/echo"} 0`)
	waitMetric(t, addr, "/stats", `wsbridge_received_bytes_total{endpoint="/echo"} 5`) // kept once the session ended
	waitMetric(t, addr, "/stats", `wsbridge_children_running 0`)

	// A page that rebinds a name to the board must not read them.
	if resp, _ := healthGet(t, addr, "GET", "/stats", "attacker.example"); resp.StatusCode == 200 {
		t.Errorf("GET /stats with a foreign Host: 200, want refused")
	}
	// A WebSocket upgrade with a foreign Host is a handshake failure too.
	resp, err := wstest.MustDialTCP(t, addr, wstest.Options{}).Upgrade(wstest.Options{Host: "attacker.example"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusMisdirectedRequest {
		t.Fatalf("upgrade with a foreign Host: %d, want 421", resp.StatusCode)
	}
	waitMetric(t, addr, "/stats", `wsbridge_handshake_failures_total{status="421"} 1`)
}

func TestServeMetricsOwnPort(t *testing.T) {
	srv, addr := serveTest(t, Options{Endpoints: []Endpoint{echoEndpoint(t, "/echo")}})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ServeMetrics(ctx, l, "") }()
	maddr := l.Addr().String()
	waitMetric(t, maddr, DefaultMetricsPath, `wsbridge_connections_total{endpoint="/echo"} 0`)
	c := dial(t, addr, "/echo", 0)
	send(t, c, "x", 0)
	expectWhole(t, c, "x")
	waitMetric(t, maddr, DefaultMetricsPath, `wsbridge_connections_open{endpoint="/echo"} 1`)
	if resp, _ := healthGet(t, maddr, "GET", "/", maddr); resp.StatusCode != 404 {
		t.Errorf("GET / on the metrics port: %d, want 404", resp.StatusCode)
	}
	if resp, body := healthGet(t, maddr, "HEAD", DefaultMetricsPath, maddr); resp.StatusCode != 200 || body != "" {
		t.Errorf("HEAD %s: %d %q, want 200, no body", DefaultMetricsPath, resp.StatusCode, body)
	}
	// Not on the public port: nobody asked for them there.
	if resp, _ := healthGet(t, addr, "GET", DefaultMetricsPath, addr); resp.StatusCode == 200 {
		t.Errorf("GET %s on the public port: 200, want not served", DefaultMetricsPath)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("ServeMetrics: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("ServeMetrics still running after its context ended")
	}
}

// TestMetricsGolden: the whole text for a fixed set of counters, as a
// scraper reads it.
func TestMetricsGolden(t *testing.T) {
	srv, err := New(Options{Endpoints: []Endpoint{
		{Path: "/chat", Command: []string{"/bin/cat"}, Mode: ModeShared},
		{Command: []string{"/bin/cat"}},
	}, Logger: newTestLog().Logger()})
	if err != nil {
		t.Fatal(err)
	}
	st := &srv.stats
	all := st.eps["*"]
	all.total.Add(7)
	all.closed[1].Add(2)  // 1001
	all.closed[6].Add(1)  // 1006
	all.closed[16].Add(3) // other
	all.in, all.out = 100, 2000
	st.eps["/chat"].total.Inc()
	st.refuse(404)
	st.refuse(404)
	st.refuse(431)
	st.refuse(999) // out of range: not counted
	srv.forks.Store(2)
	const want = `# HELP wsbridge_connections_open WebSocket sessions open, by endpoint.
# TYPE wsbridge_connections_open gauge
wsbridge_connections_open{endpoint="*"} 0
wsbridge_connections_open{endpoint="/chat"} 0
# HELP wsbridge_connections_total WebSocket sessions begun, by endpoint.
# TYPE wsbridge_connections_total counter
wsbridge_connections_total{endpoint="*"} 7
wsbridge_connections_total{endpoint="/chat"} 1
# HELP wsbridge_connections_closed_total WebSocket sessions ended, by endpoint and close code (1006: no close handshake; other: a code outside 1000-1015).
# TYPE wsbridge_connections_closed_total counter
wsbridge_connections_closed_total{endpoint="*",code="1000"} 0
wsbridge_connections_closed_total{endpoint="*",code="1001"} 2
wsbridge_connections_closed_total{endpoint="*",code="1006"} 1
wsbridge_connections_closed_total{endpoint="*",code="other"} 3
wsbridge_connections_closed_total{endpoint="/chat",code="1000"} 0
wsbridge_connections_closed_total{endpoint="/chat",code="1001"} 0
# HELP wsbridge_received_bytes_total Message payload bytes received from clients, by endpoint.
# TYPE wsbridge_received_bytes_total counter
wsbridge_received_bytes_total{endpoint="*"} 100
wsbridge_received_bytes_total{endpoint="/chat"} 0
# HELP wsbridge_sent_bytes_total Message payload bytes sent to clients, by endpoint.
# TYPE wsbridge_sent_bytes_total counter
wsbridge_sent_bytes_total{endpoint="*"} 2000
wsbridge_sent_bytes_total{endpoint="/chat"} 0
# HELP wsbridge_slow_dropped_messages_total Messages a slow client of a shared program lost (--drop-slow), by endpoint.
# TYPE wsbridge_slow_dropped_messages_total counter
wsbridge_slow_dropped_messages_total{endpoint="/chat"} 0
# HELP wsbridge_slow_closed_total Slow clients of a shared program closed with 1013, by endpoint.
# TYPE wsbridge_slow_closed_total counter
wsbridge_slow_closed_total{endpoint="/chat"} 0
# HELP wsbridge_handshake_failures_total WebSocket upgrades refused, by the status answered (503: connections refused by --max-conns before their request was read).
# TYPE wsbridge_handshake_failures_total counter
wsbridge_handshake_failures_total{status="400"} 0
wsbridge_handshake_failures_total{status="403"} 0
wsbridge_handshake_failures_total{status="404"} 2
wsbridge_handshake_failures_total{status="421"} 0
wsbridge_handshake_failures_total{status="426"} 0
wsbridge_handshake_failures_total{status="429"} 0
wsbridge_handshake_failures_total{status="431"} 1
wsbridge_handshake_failures_total{status="503"} 0
# HELP wsbridge_connection_failures_total Connections closed before their first request, by reason: plain HTTP on a TLS port (answered 400), a TLS handshake not finished in time or failed, a PROXY header missing, malformed or not trusted.
# TYPE wsbridge_connection_failures_total counter
wsbridge_connection_failures_total{reason="plain_http_on_tls"} 0
wsbridge_connection_failures_total{reason="tls_timeout"} 0
wsbridge_connection_failures_total{reason="tls_handshake"} 0
wsbridge_connection_failures_total{reason="proxy_header"} 0
# HELP wsbridge_children_running Programs running, of every endpoint.
# TYPE wsbridge_children_running gauge
wsbridge_children_running 2
# HELP wsbridge_draining 1 once shutdown has begun: the health check answers 503.
# TYPE wsbridge_draining gauge
wsbridge_draining 0
`
	if got := string(st.write(srv)); got != want {
		t.Errorf("metrics:\n%s\nwant:\n%s", got, want)
	}
}
