package main

// wsbridge behind a real nginx, the recipe examples/deploy/nginx/nginx.conf:
// to a TCP upstream and to a unix-socket one, and what cuts an idle
// session there.

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

// startNginx runs nginx in the foreground, one process, with the recipe
// pointed at upstream (127.0.0.1:PORT or unix:PATH) and subst (pairs old,
// new) applied too. Its pid file, logs and temp files are in its temp dir.
func startNginx(t *testing.T, upstream string, subst ...string) *webServer {
	t.Helper()
	bin := needTool(t, "/usr/sbin/nginx", "apt-get install nginx-light")
	conf := proxyRecipe(t, "nginx/nginx.conf", append([]string{
		"listen 80;", "listen 127.0.0.1:{{PORT}};",
		"server 127.0.0.1:8081;", "server " + upstream + ";",
		"/var/log/nginx/wsbridge.access.log", "{{DIR}}/access.log",
		// Debian's build keeps them in /var/lib/nginx, root's.
		"http {", "http {\n    client_body_temp_path {{DIR}}/body; proxy_temp_path {{DIR}}/proxy;\n" +
			"    fastcgi_temp_path {{DIR}}/fastcgi; uwsgi_temp_path {{DIR}}/uwsgi; scgi_temp_path {{DIR}}/scgi;",
	}, subst...)...)
	return startWebServer(t, "nginx", conf, func(dir string) []string {
		return []string{bin, "-p", dir, "-c", filepath.Join(dir, "server.conf"), "-g",
			"daemon off; master_process off; pid " + filepath.Join(dir, "nginx.pid") + "; error_log " + filepath.Join(dir, "error.log") + " info;"}
	})
}

// TestReverseProxyNginx: through nginx to wsbridge on TCP and on
// --unixsocket, a session echoes, its program sees the client's address
// from X-Forwarded-For (a forged entry of the client's changing nothing),
// and the page's own origin passes the origin check.
func TestReverseProxyNginx(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// upstream starts wsbridge and returns nginx's upstream for it.
		upstream func(t *testing.T) string
	}{
		{"TCP", func(t *testing.T) string {
			return startBridge(t, "--trusted-proxy=127.0.0.1/32", childBin, "env").Addr
		}},
		{"UnixSocket", func(t *testing.T) string {
			sock := filepath.Join(t.TempDir(), "wsbridge.sock")
			startBridge(t, "--unixsocket="+sock, "--trusted-proxy=unix", childBin, "env")
			return "unix:" + sock
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := startNginx(t, tc.upstream(t))
			c, env := envSession(t, dialClient(t, n.Addr), wstest.Options{Host: n.Addr, Origin: "http://" + n.Addr,
				Header: []string{"X-Forwarded-For: 203.0.113.9"}})
			wantClient(t, env, "HTTPS", "")
			echoThrough(t, c)
			closeThrough(t, c)
		})
	}
}

// TestReverseProxyNginxIdle: with proxy_read_timeout and
// proxy_send_timeout shortened to 1 s, nginx cuts an idle session after
// about 1 s, and --ping-interval=300ms keeps one open through 3 s.
func TestReverseProxyNginxIdle(t *testing.T) {
	t.Parallel()
	start := func(t *testing.T, flags ...string) *wstest.Conn {
		b := startBridge(t, append(flags, childBin, "echo")...)
		n := startNginx(t, b.Addr, "proxy_read_timeout 60s;", "proxy_read_timeout 1s;", "proxy_send_timeout 60s;", "proxy_send_timeout 1s;")
		c := wstest.MustDial(t, n.Addr, wstest.Options{})
		if err := c.WriteMessage(wstest.OpText, []byte("hello"), 0); err != nil {
			t.Fatal(err)
		}
		c.ExpectMessage(t, wstest.OpText, "hello")
		return c
	}
	t.Run("NoPing", func(t *testing.T) {
		t.Parallel()
		idleCut(t, start(t), 800*time.Millisecond, 3*time.Second)
	})
	t.Run("Ping", func(t *testing.T) {
		t.Parallel()
		idleKept(t, start(t, "--ping-interval=300ms"), 3*time.Second)
	})
}
