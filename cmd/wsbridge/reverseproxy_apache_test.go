package main

// wsbridge behind a real Apache httpd, mod_proxy_http with
// upgrade=websocket: the recipe examples/deploy/apache/wsbridge.conf, in a
// self-contained config run in the foreground.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

// apacheBaseConf is what Debian's apache2.conf, envvars and a2enmod give
// the recipe, in the test's temp dir: one process (-X), loopback, logs.
const apacheBaseConf = `ServerRoot {{DIR}}
ServerName 127.0.0.1
Listen 127.0.0.1:{{PORT}}
PidFile {{DIR}}/apache2.pid
DefaultRuntimeDir {{DIR}}
ErrorLog {{DIR}}/error.log
LogLevel info
LogFormat "%a %>s \"%r\"" short
CustomLog {{DIR}}/access.log short
DocumentRoot {{DIR}}/www
<Directory />
    AllowOverride None
</Directory>
LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule proxy_module /usr/lib/apache2/modules/mod_proxy.so
LoadModule proxy_http_module /usr/lib/apache2/modules/mod_proxy_http.so
`

// startApache runs apache2 -X with apacheBaseConf, extra, and the recipe
// pointed at the bridge b.
func startApache(t *testing.T, b *bridgeProc, extra string) *webServer {
	t.Helper()
	bin := needTool(t, "/usr/sbin/apache2", "apt-get install apache2")
	base := apacheBaseConf
	if os.Getuid() == 0 {
		// Apache will not serve as root; Debian's user for it.
		base += "User www-data\nGroup www-data\n"
	}
	conf := base + extra + proxyRecipe(t, "apache/wsbridge.conf", "http://127.0.0.1:8081/", "http://"+b.Addr+"/")
	w := startWebServer(t, "apache2", conf, func(dir string) []string {
		return []string{bin, "-X", "-d", dir, "-f", filepath.Join(dir, "server.conf")}
	})
	w.writeFile("www/index.html", "<p>apache page</p>\n", 0o644)
	if os.Getuid() == 0 {
		// www-data reads the page: open the temp dirs to it.
		for _, d := range []string{filepath.Dir(w.Dir), w.Dir, filepath.Join(w.Dir, "www")} {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	return w
}

// TestReverseProxyApache: Apache serves its own page and proxies /ws/ to
// wsbridge, whose program sees the client's address from X-Forwarded-For,
// a forged entry of the client's changing nothing; the page's origin
// passes.
func TestReverseProxyApache(t *testing.T) {
	t.Parallel()
	w := startApache(t, startBridge(t, "--trusted-proxy=127.0.0.1/32", childBin, "env"), "")
	if code, body := getFrom(t, w.URL("/index.html"), nil); code != 200 || body != "<p>apache page</p>\n" {
		t.Errorf("GET /index.html: %d %q, want Apache's own page", code, body)
	}
	c, env := envSession(t, dialClient(t, w.Addr), wstest.Options{Path: "/ws/chat", Host: w.Addr, Origin: "http://" + w.Addr,
		Header: []string{"X-Forwarded-For: 203.0.113.9"}})
	wantClient(t, env, "HTTPS", "", "REQUEST_URI", "/ws/chat")
	echoThrough(t, c)
	closeThrough(t, c)
	waitTunnelLogged(t, w, clientIP+` 101 "GET /ws/chat HTTP/1.1"`)
}

// waitTunnelLogged waits for Apache's access log to hold line, which it
// writes once a tunnel has ended. Stopping Apache -X before then may leave
// it hanging past SIGTERM until the harness kills it.
func waitTunnelLogged(t *testing.T, w *webServer, line string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(w.Dir, "access.log"))
		if strings.Contains(string(b), line+"\n") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Apache's access log lacks %q:\n%s", line, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReverseProxyApacheIdle: with Timeout 1 (and no ProxyTimeout) Apache
// cuts a silent WebSocket after about 1 s, and --ping-interval=300ms keeps
// one open through 3 s. The tunnel's limit is the larger of Timeout and
// ProxyTimeout: ProxyTimeout 1 alone leaves it at Timeout's 60 s.
func TestReverseProxyApacheIdle(t *testing.T) {
	t.Parallel()
	start := func(t *testing.T, flags ...string) (*webServer, *wstest.Conn) {
		w := startApache(t, startBridge(t, append(flags, childBin, "echo")...), "Timeout 1\n")
		c := wstest.MustDial(t, w.Addr, wstest.Options{Path: "/ws"})
		if err := c.WriteMessage(wstest.OpText, []byte("hello"), 0); err != nil {
			t.Fatal(err)
		}
		c.ExpectMessage(t, wstest.OpText, "hello")
		return w, c
	}
	t.Run("NoPing", func(t *testing.T) {
		t.Parallel()
		w, c := start(t)
		idleCut(t, c, 800*time.Millisecond, 3*time.Second)
		waitTunnelLogged(t, w, `127.0.0.1 101 "GET /ws HTTP/1.1"`)
	})
	t.Run("Ping", func(t *testing.T) {
		t.Parallel()
		w, c := start(t, "--ping-interval=300ms")
		idleKept(t, c, 3*time.Second)
		waitTunnelLogged(t, w, `127.0.0.1 101 "GET /ws HTTP/1.1"`)
	})
}
