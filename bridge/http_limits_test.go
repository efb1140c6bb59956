package bridge

// What the server answers before a session starts: limits, malformed or
// slow requests, plain HTTP, origins and the extra response headers.

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

// 7. Limits and requests the bridge refuses.
func TestLimits(t *testing.T) {
	t.Run("maxforks", func(t *testing.T) {
		t.Parallel()
		_, addr := serveTest(t, Options{MaxForks: 2, Endpoints: []Endpoint{echoEndpoint(t, "")}})
		first := wstest.MustDial(t, addr, wstest.Options{Path: "/"})
		wstest.MustDial(t, addr, wstest.Options{Path: "/"})
		resp, body := tryUpgrade(t, addr)
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("third connection: %s, Retry-After %q, body %q; want 429 with Retry-After", resp.Status, resp.Header.Get("Retry-After"), body)
		}
		// Once a session ends there is room again.
		first.Conn.Close()
		deadline := time.Now().Add(10 * time.Second)
		for {
			resp, _ := tryUpgrade(t, addr)
			if resp.StatusCode == http.StatusSwitchingProtocols {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("still %s 10s after a session ended", resp.Status)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})

	t.Run("max-conns", func(t *testing.T) {
		t.Parallel()
		// In-process no probe connection has to be seen going first.
		_, addr := serveTest(t, Options{MaxConns: 2, Endpoints: []Endpoint{echoEndpoint(t, "")}})
		wstest.MustDial(t, addr, wstest.Options{Path: "/"})
		wstest.MustDial(t, addr, wstest.Options{Path: "/"})
		resp, body := tryUpgrade(t, addr)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("third connection: %s, Retry-After %q, body %q; want 503 with Retry-After", resp.Status, resp.Header.Get("Retry-After"), body)
		}
	})

	t.Run("handshake timeout", func(t *testing.T) {
		t.Parallel()
		_, addr := serveTest(t, Options{HandshakeTimeout: 300 * time.Millisecond, Endpoints: []Endpoint{echoEndpoint(t, "")}})
		start := time.Now()
		c := wstest.MustDialTCP(t, addr, wstest.Options{})
		if _, err := io.WriteString(c.Conn, "GET / HTTP/1.1\r\nHost: "+addr+"\r\nUpgrade: websocket\r\n"); err != nil {
			t.Fatal(err)
		}
		c.ExpectEOF(t, 5*time.Second)
		took := time.Since(start)
		t.Logf("half a request head: disconnected after %v", took.Round(time.Millisecond))
		if took < 250*time.Millisecond || took > 3*time.Second {
			t.Fatalf("disconnected after %v, want about 300ms", took)
		}
	})

	t.Run("head too large", func(t *testing.T) {
		t.Parallel()
		_, addr := serveTest(t, Options{Endpoints: []Endpoint{echoEndpoint(t, "")}})
		resp, body := tryUpgrade(t, addr, "X-Big: "+strings.Repeat("a", 9000))
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("%s %q, want 431", resp.Status, body)
		}
	})

	t.Run("garbage", func(t *testing.T) {
		t.Parallel()
		_, addr := serveTest(t, Options{Endpoints: []Endpoint{echoEndpoint(t, "")}})
		resp, body := rawExchange(t, addr, "HELLO THERE\r\n\r\n")
		if resp.StatusCode != http.StatusBadRequest || strings.TrimSpace(body) == "" {
			t.Fatalf("%s %q, want 400 with a reason", resp.Status, body)
		}
		t.Logf("garbage: %s %q", resp.Status, body)
	})

	t.Run("plain GET", func(t *testing.T) {
		t.Parallel()
		_, addr := serveTest(t, Options{Endpoints: []Endpoint{echoEndpoint(t, "")}})
		resp, body := httpGet(t, "http://"+addr+"/chat")
		if resp.StatusCode != http.StatusUpgradeRequired || !strings.Contains(body, "WebSocket") || !strings.Contains(body, "ws://"+addr+"/chat") {
			t.Fatalf("%s %q, want 426 saying to use a WebSocket client at ws://%s/chat", resp.Status, body, addr)
		}
		if !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
			t.Errorf("426 without Upgrade: websocket (%v)", resp.Header)
		}
	})

	t.Run("demo", func(t *testing.T) {
		t.Parallel()
		_, addr := serveTest(t, Options{Demo: true, Endpoints: []Endpoint{echoEndpoint(t, "")}})
		resp, body := httpGet(t, "http://"+addr+"/")
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, "<title>wsbridge demo</title>") {
			t.Fatalf("%s %s %.100q, want the demo page", resp.Status, resp.Header.Get("Content-Type"), body)
		}
		// The page's WebSocket still works on the same port.
		c := wstest.MustDial(t, addr, wstest.Options{Path: "/"})
		if err := c.WriteFrame(true, wstest.OpText, []byte("hi")); err != nil {
			t.Fatal(err)
		}
		if _, data, _, err := c.ReadMessage(5 * time.Second); err != nil || string(data) != "hi" {
			t.Fatalf("echo: %q %v", data, err)
		}
	})
}

// 8. Which pages may connect.
func TestOrigin(t *testing.T) {
	const self = "SELF" // replaced by the bridge's own http://127.0.0.1:PORT
	cases := []struct {
		name    string
		opts    Options         // the flags: --origin, --sameorigin
		allowed map[string]bool // Origin ("" for none) -> allowed
	}{
		{"default", Options{}, map[string]bool{
			"": true, self: true, "http://evil.example": false, "http://127.0.0.1:1": false, "null": false,
		}},
		{"any", Options{Origins: []string{"*"}}, map[string]bool{
			"": true, self: true, "http://evil.example": true, "null": true,
		}},
		{"listed", Options{Origins: []string{"app.example"}}, map[string]bool{
			"": true, "https://app.example:1234": true, "http://app.example": true,
			"http://evil.example": false, "http://app.example.evil.example": false, self: false,
		}},
		{"sameorigin", Options{SameOrigin: true}, map[string]bool{
			"": true, self: true, "http://evil.example": false, "https://127.0.0.1": false,
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			lg := newTestLog()
			opts := tc.opts
			opts.Endpoints, opts.Logger = []Endpoint{echoEndpoint(t, "")}, lg.Logger()
			_, addr := serveTest(t, opts)
			for origin, allowed := range tc.allowed {
				name := origin
				if origin == "" {
					name = "no Origin"
				}
				t.Run(strings.ReplaceAll(name, "/", "_"), func(t *testing.T) {
					var extra []string
					if origin != "" {
						extra = []string{"Origin: " + strings.Replace(origin, self, "http://"+addr, 1)}
					}
					resp, body := tryUpgrade(t, addr, extra...)
					want := http.StatusForbidden
					if allowed {
						want = http.StatusSwitchingProtocols
					}
					if resp.StatusCode != want {
						t.Fatalf("%s %q, want %d", resp.Status, body, want)
					}
					if !allowed && !strings.Contains(body, "--origin") {
						t.Errorf("403 body %q does not say which flag allows the origin", body)
					}
				})
			}
			if log := lg.String(); strings.Contains(log, "refused: origin") && !strings.Contains(log, "--origin") {
				t.Errorf("origin refusals logged without naming --origin")
			}
		})
	}
}

// 12. --header on every response, --header-ws on upgrades only,
// --header-http on every response but upgrades.
func TestExtraHeaders(t *testing.T) {
	t.Parallel()
	// --header=X-All: all --header-ws=X-WS: ws --header-http=X-HTTP: http
	opts := Options{
		Header:     http.Header{"X-All": {"all"}},
		HeaderWS:   http.Header{"X-Ws": {"ws"}},
		HeaderHTTP: http.Header{"X-Http": {"http"}},
		Endpoints:  []Endpoint{echoEndpoint(t, "")},
	}
	opts.MaxForks = 1
	_, addr := serveTest(t, opts)
	opts.MaxForks, opts.MaxConns = 0, 1
	_, fullAddr := serveTest(t, opts)

	check := func(t *testing.T, what string, h http.Header, ws bool) {
		t.Helper()
		if h.Get("X-All") != "all" {
			t.Errorf("%s: no X-All (%v)", what, h)
		}
		if got := h.Get("X-WS"); (got == "ws") != ws {
			t.Errorf("%s: X-WS %q, want it only on upgrades", what, got)
		}
		if got := h.Get("X-HTTP"); (got == "http") == ws {
			t.Errorf("%s: X-HTTP %q, want it on every response but upgrades", what, got)
		}
	}
	resp, _ := tryUpgrade(t, addr)
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %s", resp.Status)
	}
	check(t, "101", resp.Header, true)
	resp, _ = tryUpgrade(t, addr) // the first session holds the only fork
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("second upgrade: %s, want 429", resp.Status)
	}
	check(t, "429", resp.Header, false)
	resp, _ = httpGet(t, "http://"+addr+"/")
	check(t, "426", resp.Header, false)
	resp, _ = tryUpgrade(t, addr, "Origin: http://evil.example")
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("evil origin: %s, want 403", resp.Status)
	}
	check(t, "403", resp.Header, false)
	wstest.MustDial(t, fullAddr, wstest.Options{Path: "/"})
	resp, _ = tryUpgrade(t, fullAddr)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("over --max-conns: %s, want 503", resp.Status)
	}
	check(t, "503", resp.Header, false)
}

// A proxy may send the upgrade on a connection kept alive after a plain
// request: the bridge reads its next request head itself and runs the same
// session.
func TestUpgradeOnKeptAliveConnection(t *testing.T) {
	t.Parallel()
	_, addr := serveTest(t, Options{Endpoints: []Endpoint{echoEndpoint(t, "")}})
	c := wstest.MustDialTCP(t, addr, wstest.Options{})
	resp, err := c.Request("GET / HTTP/1.1\r\nHost: "+addr+"\r\n\r\n", "")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusUpgradeRequired || resp.Close {
		t.Fatalf("plain GET: %s (close %v), want 426 on a kept-alive connection", resp.Status, resp.Close)
	}
	resp, err = c.Upgrade(wstest.Options{Path: "/"})
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v, want 101", resp, err)
	}
	if err := c.WriteFrame(true, wstest.OpText, []byte("hi\n")); err != nil {
		t.Fatal(err)
	}
	if _, data, _, err := c.ReadMessage(10 * time.Second); err != nil || string(data) != "hi" {
		t.Fatalf("echo: %q %v, want \"hi\"", data, err)
	}
}

// The same with everything in one write, as a client that sends its first
// frame with the handshake does: a plain request that fills most of
// net/http's 4 KiB read buffer, the upgrade, then a frame that net/http
// reads only in part. What net/http had read comes before the rest, or the
// frame is garbled.
func TestUpgradeOnKeptAliveConnectionPipelined(t *testing.T) {
	t.Parallel()
	_, addr := serveTest(t, Options{Endpoints: []Endpoint{echoEndpoint(t, "")}})
	c := wstest.MustDialTCP(t, addr, wstest.Options{})
	plain := "GET / HTTP/1.1\r\nHost: " + addr + "\r\nX-Pad: "
	plain += strings.Repeat("p", 4086-len(plain)-4) + "\r\n\r\n"
	req, _ := wstest.UpgradeRequest(addr, "/")
	// Just under the 8 KiB the bridge reads with a request head: net/http
	// reads 4 KiB, 1 byte, then 4 KiB less one, leaving a few.
	msg := strings.Repeat("m", 8<<10-4-len(plain)-len(req)-8-1)
	wire := append([]byte(plain+req), wstest.AppendFrame(nil, wstest.Frame{Fin: true, Op: wstest.OpText, Payload: []byte(msg + "\n")})...)
	if _, err := c.Conn.Write(wire); err != nil {
		t.Fatal(err)
	}
	resp, err := c.Request("", "")
	if err != nil || resp.StatusCode != http.StatusUpgradeRequired {
		t.Fatalf("plain GET: %v %v, want 426", resp, err)
	}
	resp, err = c.Request("", "")
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v, want 101", resp, err)
	}
	op, data, cf, err := c.ReadMessage(10 * time.Second)
	if err != nil || op != wstest.OpText || string(data) != msg {
		t.Fatalf("echo: %d %.40q close %d %q %v, want the message back", op, data, cf.CloseCode(), cf.CloseReason(), err)
	}
}
