package main

// wsbridge behind a real HAProxy: the recipes examples/deploy/haproxy/
// http.cfg (HTTP mode, X-Forwarded-For), https.cfg (TLS ended at HAProxy)
// and tcp.cfg (TCP mode, PROXY protocol v2), and what cuts an idle
// session there.

import (
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

// waitLogLine waits up to 10 s for a line of HAProxy's log holding every
// one of parts, and fails the test without one.
func (h *haproxyProc) waitLogLine(t *testing.T, parts ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, line := range strings.Split(h.Out.String(), "\n") {
			n := 0
			for _, p := range parts {
				if strings.Contains(line, p) {
					n++
				}
			}
			if n == len(parts) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no line of HAProxy's log holds all of %q:\n%s", parts, h.Out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// staticSite is a --staticdir holding index.html, whose content it returns.
func staticSite(t *testing.T) (dir, page string) {
	t.Helper()
	dir, page = t.TempDir(), "<p>served by wsbridge</p>\n"
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, page
}

// TestReverseProxyHAProxyHTTP: the issue's HAProxy config, http.cfg, sends a
// page request to backend www and a WebSocket to backend socket, both the
// same wsbridge; the program sees the client's address from
// X-Forwarded-For, and a client's forged X-Forwarded-For or -Proto changes
// nothing.
func TestReverseProxyHAProxyHTTP(t *testing.T) {
	t.Parallel()
	site, page := staticSite(t)
	b := startBridge(t, "--trusted-proxy=127.0.0.1/32", "--staticdir="+site, "--allow-host=ws.example.com", childBin, "env")
	h := startHAProxy(t, "haproxy/http.cfg", "bind :80", "bind 127.0.0.1:{{PORT}}", "127.0.0.1:8081", b.Addr)

	if code, body := getFrom(t, "http://"+h.Addr+"/", nil); code != 200 || body != page {
		t.Errorf("GET / through HAProxy: %d %q, want 200 and the page", code, body)
	}
	h.waitLogLine(t, clientIP+":", " public www/www1 ", " 200 ", `"GET / HTTP/1.1"`)

	c, env := envSession(t, dialClient(t, h.Addr), wstest.Options{Host: h.Addr})
	wantClient(t, env, "HTTPS", "")
	echoThrough(t, c)
	closeThrough(t, c)
	h.waitLogLine(t, clientIP+":", " public socket/ws1 ", " 101 ")

	t.Run("ForgedHeaders", func(t *testing.T) {
		c, env := envSession(t, dialClient(t, h.Addr), wstest.Options{Host: h.Addr,
			Header: []string{"X-Forwarded-For: 203.0.113.9", "X-Forwarded-Proto: https"}})
		wantClient(t, env, "HTTPS", "")
		// The program may still read what the client claimed.
		if !strings.Contains(env["HTTP_X_FORWARDED_FOR"], "203.0.113.9") {
			t.Errorf("HTTP_X_FORWARDED_FOR=%q, want the client's own entry kept for the program", env["HTTP_X_FORWARDED_FOR"])
		}
		echoThrough(t, c)
		closeThrough(t, c)
	})
	t.Run("HostACL", func(t *testing.T) {
		// A host ws... goes to backend socket, upgrade or not.
		if code, body := getFrom(t, "http://"+h.Addr+"/", nil, "Host: ws.example.com"); code != 200 || body != page {
			t.Errorf("GET / with Host ws.example.com: %d %q, want 200 and the page", code, body)
		}
		h.waitLogLine(t, " public socket/ws1 ", " 200 ", `"GET / HTTP/1.1"`)
	})
}

// TestReverseProxyHAProxyTLS: with TLS ended at HAProxy (https.cfg), a
// client trusting the CA gets the page over https:// and a wss:// session
// whose program sees HTTPS=on and the client's address; the page's
// https:// origin is same-origin.
func TestReverseProxyHAProxyTLS(t *testing.T) {
	t.Parallel()
	site, page := staticSite(t)
	ca := newTestCA(t, "haproxy")
	crt := ca.issueHAProxy("server", "127.0.0.1", "localhost")
	b := startBridge(t, "--trusted-proxy=127.0.0.1/32", "--staticdir="+site, childBin, "env")
	h := startHAProxy(t, "haproxy/https.cfg",
		"bind :443 ssl crt /etc/haproxy/certs/wsbridge.pem", "bind 127.0.0.1:{{PORT}} ssl crt "+crt,
		"127.0.0.1:8081", b.Addr)
	conf := &tls.Config{RootCAs: ca.Pool, ServerName: "localhost"}

	if code, body := getFrom(t, "https://"+h.Addr+"/", conf); code != 200 || body != page {
		t.Errorf("GET https://%s/: %d %q, want 200 and the page", h.Addr, code, body)
	}
	h.waitLogLine(t, clientIP+":", " public~ www/www1 ", " 200 ")

	conn := tls.Client(dialClient(t, h.Addr), conf)
	if err := conn.Handshake(); err != nil {
		t.Fatalf("TLS handshake with HAProxy: %v", err)
	}
	c, env := envSession(t, conn, wstest.Options{Host: h.Addr, Origin: "https://" + h.Addr})
	wantClient(t, env, "HTTPS", "on")
	echoThrough(t, c)
	closeThrough(t, c)
	h.waitLogLine(t, clientIP+":", " public~ socket/ws1 ", " 101 ")
}

// TestReverseProxyHAProxyTCP: in TCP mode (tcp.cfg) HAProxy names the
// client in a PROXY v2 header, and the program sees its address and port.
func TestReverseProxyHAProxyTCP(t *testing.T) {
	t.Parallel()
	b := startBridge(t, "--proxy-protocol", "--trusted-proxy=127.0.0.1/32", childBin, "env")
	h := startHAProxy(t, "haproxy/tcp.cfg", "bind :80", "bind 127.0.0.1:{{PORT}}", "127.0.0.1:8081", b.Addr)
	conn := dialClient(t, h.Addr)
	c, env := envSession(t, conn, wstest.Options{Host: h.Addr})
	wantClient(t, env, "REMOTE_PORT", strconv.Itoa(conn.LocalAddr().(*net.TCPAddr).Port))
	echoThrough(t, c)
	closeThrough(t, c)
}

// TestReverseProxyHAProxyIdle: with http.cfg's timeouts shortened (tunnel
// 2 s), an idle session is cut after the tunnel timeout, and
// --ping-interval=500ms keeps one open through 6 s of silence.
func TestReverseProxyHAProxyIdle(t *testing.T) {
	t.Parallel()
	start := func(t *testing.T, flags ...string) *haproxyProc {
		b := startBridge(t, append(flags, childBin, "echo")...)
		return startHAProxy(t, "haproxy/http.cfg", "bind :80", "bind 127.0.0.1:{{PORT}}", "127.0.0.1:8081", b.Addr,
			"timeout client 30s", "timeout client 1s", "timeout server 30s", "timeout server 1s",
			"timeout tunnel 1h", "timeout tunnel 2s")
	}
	session := func(t *testing.T, addr string) *wstest.Conn {
		c := wstest.MustDial(t, addr, wstest.Options{})
		if err := c.WriteMessage(wstest.OpText, []byte("hello"), 0); err != nil {
			t.Fatal(err)
		}
		c.ExpectMessage(t, wstest.OpText, "hello")
		return c
	}
	t.Run("NoPing", func(t *testing.T) {
		t.Parallel()
		h := start(t)
		idleCut(t, session(t, h.Addr), 1500*time.Millisecond, 4*time.Second)
	})
	t.Run("Ping", func(t *testing.T) {
		t.Parallel()
		h := start(t, "--ping-interval=500ms")
		idleKept(t, session(t, h.Addr), 6*time.Second)
	})
}
