package main

// wsbridge behind a real lighttpd's mod_proxy, the recipe
// examples/deploy/lighttpd/proxy.conf: lighttpd keeps its pages and hands
// /ws to wsbridge, upgrade and all.

import (
	"fmt"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

// startLighttpdProxy runs lighttpd with the test's base config, extra, and
// the recipe pointed at the bridge b.
func startLighttpdProxy(t *testing.T, b *bridgeProc, extra string) *webServer {
	t.Helper()
	var port int
	if _, err := fmt.Sscanf(b.Addr, "127.0.0.1:%d", &port); err != nil {
		t.Fatal(err)
	}
	w := startLighttpd(t, lighttpdTestConf+extra+proxyRecipe(t, "lighttpd/proxy.conf", `"port" => 8081`, fmt.Sprintf(`"port" => %d`, port)))
	w.writeFile("www/index.html", "<p>lighttpd page</p>\n", 0o644)
	return w
}

// TestReverseProxyLighttpd: lighttpd serves its own page and proxies /ws/
// to wsbridge, whose program sees the client's address from
// X-Forwarded-For, a forged entry of the client's changing nothing.
func TestReverseProxyLighttpd(t *testing.T) {
	t.Parallel()
	w := startLighttpdProxy(t, startBridge(t, "--trusted-proxy=127.0.0.1/32", childBin, "env"), "")
	if code, body := getFrom(t, w.URL("/index.html"), nil); code != 200 || body != "<p>lighttpd page</p>\n" {
		t.Errorf("GET /index.html: %d %q, want lighttpd's own page", code, body)
	}
	c, env := envSession(t, dialClient(t, w.Addr), wstest.Options{Path: "/ws/chat", Host: w.Addr, Origin: "http://" + w.Addr,
		Header: []string{"X-Forwarded-For: 203.0.113.9"}})
	wantClient(t, env, "HTTPS", "", "REQUEST_URI", "/ws/chat")
	echoThrough(t, c)
	closeThrough(t, c)
}

// TestReverseProxyLighttpdIdle: with server.max-read-idle at 1 s lighttpd
// cuts a silent WebSocket after 1 to 2 s, and --ping-interval=300ms (its
// pongs are the client's traffic) keeps one open through 3 s.
func TestReverseProxyLighttpdIdle(t *testing.T) {
	t.Parallel()
	start := func(t *testing.T, flags ...string) *wstest.Conn {
		w := startLighttpdProxy(t, startBridge(t, append(flags, childBin, "echo")...), "server.max-read-idle = 1\n")
		c := wstest.MustDial(t, w.Addr, wstest.Options{Path: "/ws"})
		if err := c.WriteMessage(wstest.OpText, []byte("hello"), 0); err != nil {
			t.Fatal(err)
		}
		c.ExpectMessage(t, wstest.OpText, "hello")
		return c
	}
	t.Run("NoPing", func(t *testing.T) {
		t.Parallel()
		// lighttpd looks at its idle connections once a second.
		idleCut(t, start(t), 800*time.Millisecond, 4*time.Second)
	})
	t.Run("Ping", func(t *testing.T) {
		t.Parallel()
		idleKept(t, start(t, "--ping-interval=300ms"), 3*time.Second)
	})
}
