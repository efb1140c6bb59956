package bridge

// The HTTP side of the fault matrix (issue 9): special files in the
// directories and paths the server is given, DNS rebinding, the request
// head timeout on kept-alive connections, and what a browser's GET of a
// missing static file gets. Real sockets on loopback.

import (
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

// 6. A named pipe (or any special file) in a directory wsbridge serves is
// refused without blocking; the daemon keeps answering.
func TestFaultSpecialFiles(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	static := filepath.Join(base, "www")
	writeFile(t, static, "hello.txt", "HELLO", 0o644)
	mkfifo(t, filepath.Join(static, "pipe"), 0o644)
	mkfifo(t, filepath.Join(static, "sub", "index.html"), 0o644) // a directory whose index is a FIFO
	symlink(t, "pipe", filepath.Join(static, "link-to-pipe"))
	scripts := filepath.Join(base, "scripts")
	writeFile(t, scripts, "ok.sh", "#!/bin/sh\necho ok\n", 0o755)
	mkfifo(t, filepath.Join(scripts, "pipe.sh"), 0o755)

	// --staticdir, and a config file with [endpoint /ws] and [endpoint /s] dir = scripts.
	_, addr := serveTest(t, Options{StaticDir: static, Endpoints: []Endpoint{echoEndpoint(t, "/ws"), {Path: "/s", ScriptDir: scripts}}})
	// More requests than the daemon would survive if each held a thread
	// would take too long to make here; a few at once show that none is
	// answered late, and the daemon answers after them.
	for _, tc := range []struct {
		path string
		code int
	}{
		{"/pipe", 404}, {"/sub/", 404}, {"/link-to-pipe", 404}, {"/pipe", 404}, {"/pipe", 404},
		{"/sub/index.html", 301}, // the file server's redirect to /sub/, before any open
	} {
		t.Run("GET "+tc.path, func(t *testing.T) {
			code, body := getWithin(t, addr, tc.path, 15*time.Second)
			if code != tc.code {
				t.Fatalf("GET %s: %d %q, want %d", tc.path, code, body, tc.code)
			}
		})
	}
	t.Run("--dir FIFO", func(t *testing.T) {
		c := wstest.MustDialTCP(t, addr, wstest.Options{})
		_ = c.Conn.SetDeadline(time.Now().Add(15 * time.Second))
		resp, err := c.Upgrade(wstest.Options{Path: "/s/pipe.sh"})
		if err != nil {
			t.Fatalf("upgrade of a FIFO script: %v", err)
		}
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("upgrade of a FIFO script: %s, want 404", resp.Status)
		}
	})
	if code, body := getWithin(t, addr, "/hello.txt", 15*time.Second); code != 200 || body != "HELLO" {
		t.Fatalf("after the FIFOs, GET /hello.txt: %d %q", code, body)
	}
}

// 9. DNS rebinding: a page of rebind.attacker.example, once its name
// resolves to the board, is same-origin with a Host that names the
// attacker. Only a Host that names this daemon is served.
func TestFaultDNSRebinding(t *testing.T) {
	t.Parallel()
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	short, _, _ := strings.Cut(host, ".")
	const rebind = "rebind.attacker.example"
	cases := []struct {
		name    string
		opts    Options         // the flags: --allow-host, --origin
		allowed map[string]bool // Host (":PORT" appended) -> allowed
	}{
		{"default", Options{}, map[string]bool{
			"127.0.0.1": true, "[::1]": true, "localhost": true, "LOCALHOST": true, "localhost.": true,
			host: true, short: true, short + ".local": true, "192.0.2.7": true,
			rebind: false, "localhost.attacker.example": false, host + ".attacker.example": false,
		}},
		{"flag", Options{AllowedHosts: []string{"board.example,.lan.example"}}, map[string]bool{
			"board.example": true, "BOARD.example": true, "x.lan.example": true, "lan.example": true, "localhost": true,
			"127.0.0.1": true, rebind: false, "sub.board.example": false,
		}},
		{"star", Options{AllowedHosts: []string{"*"}}, map[string]bool{rebind: true, "localhost": true}},
		{"--origin=* does not allow a Host", Options{Origins: []string{"*"}}, map[string]bool{rebind: false, "localhost": true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			lg := newTestLog()
			opts := tc.opts
			opts.Endpoints, opts.Logger = []Endpoint{echoEndpoint(t, "")}, lg.Logger()
			_, addr := serveTest(t, opts)
			_, port, _ := net.SplitHostPort(addr)
			for h, allowed := range tc.allowed {
				hostport := h + ":" + port
				t.Run(h, func(t *testing.T) {
					// The attack: Origin and Host both the rebound name.
					c := wstest.MustDialTCP(t, addr, wstest.Options{})
					req, key := wstest.UpgradeRequest(hostport, "/", "Origin: http://"+hostport)
					resp, err := c.Request(req, key)
					if err != nil {
						t.Fatal(err)
					}
					body, _ := io.ReadAll(resp.Body)
					want := http.StatusMisdirectedRequest
					if allowed {
						want = http.StatusSwitchingProtocols
					}
					if resp.StatusCode != want {
						t.Fatalf("upgrade with Host %s: %s %q, want %d", hostport, resp.Status, body, want)
					}
					if !allowed && !strings.Contains(string(body), "--allow-host="+strings.ToLower(h)) {
						t.Errorf("421 body %q does not name the flag that allows the Host", body)
					}
					// A page of the same origin could read the static
					// files, the console and the demo: plain requests
					// are checked the same way.
					resp, body2 := rawExchange(t, addr, "GET /x HTTP/1.1\r\nHost: "+hostport+"\r\nConnection: close\r\n\r\n")
					want = http.StatusMisdirectedRequest
					if allowed {
						want = http.StatusUpgradeRequired
					}
					if resp.StatusCode != want {
						t.Fatalf("plain GET with Host %s: %s %q, want %d", hostport, resp.Status, body2, want)
					}
				})
			}
			if log := lg.String(); strings.Contains(log, "refused: host") && !strings.Contains(log, "--allow-host="+rebind) {
				t.Errorf("Host refusals logged without naming --allow-host")
			}
			if !tc.allowed[rebind] && !logged(lg, "refused: host", 5*time.Second) {
				t.Errorf("no log line for the refused Host")
			}
		})
	}
	t.Run("no Host", func(t *testing.T) {
		t.Parallel()
		// HTTP/1.0 without Host: not a browser, so not a rebinding page.
		_, addr := serveTest(t, Options{Endpoints: []Endpoint{echoEndpoint(t, "")}})
		resp, body := rawExchange(t, addr, "GET /x HTTP/1.0\r\n\r\n")
		if resp.StatusCode != http.StatusUpgradeRequired {
			t.Fatalf("HTTP/1.0 without Host: %s %q, want 426", resp.Status, body)
		}
		resp, body = rawExchange(t, addr, "GET /x HTTP/1.1\r\nHost: localhost\r\nHost: "+rebind+"\r\n\r\n")
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("two Host fields: %s %q, want 400", resp.Status, body)
		}
	})
}

// 11. Every request head on a connection must arrive within
// --handshake-timeout of its first byte, not only the first; the idle
// wait between requests keeps its own, longer, timeout.
func TestFaultHeadTimeoutKeptAlive(t *testing.T) {
	skipShort(t)
	t.Parallel()
	_, addr := serveTest(t, Options{HandshakeTimeout: time.Second, Endpoints: []Endpoint{echoEndpoint(t, "")}})
	c := wstest.MustDialTCP(t, addr, wstest.Options{})
	get := "GET /x HTTP/1.1\r\nHost: " + addr + "\r\n\r\n"
	resp, err := c.Request(get, "")
	if err != nil || resp.StatusCode != http.StatusUpgradeRequired || resp.Close {
		t.Fatalf("first request: %v %v, want 426 on a kept-alive connection", resp, err)
	}
	// Idle between requests longer than the head timeout: still served.
	time.Sleep(2500 * time.Millisecond)
	resp, err = c.Request(get, "")
	if err != nil || resp.StatusCode != http.StatusUpgradeRequired {
		t.Fatalf("request after 2.5s idle: %v %v, want 426", resp, err)
	}
	// A slowloris head: the first line, then nothing. The idle timeout
	// (a minute) must not be what ends it.
	if _, err := io.WriteString(c.Conn, "GET /x HTTP/1.1\r\nHost: "+addr+"\r\n"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c.ExpectEOF(t, 30*time.Second)
	t.Logf("a half head after a kept-alive request: disconnected after %v", time.Since(start).Round(time.Millisecond))
}

// 12. With --staticdir and an endpoint at every path, a browser's GET of a
// file that is not there gets 404, not the endpoint's 426; the endpoint's
// own path still says what it is.
func TestFaultStaticMissingFile(t *testing.T) {
	t.Parallel()
	static := t.TempDir()
	writeFile(t, static, "hello.txt", "HELLO", 0o644)
	_, catchAll := serveTest(t, Options{StaticDir: static, Endpoints: []Endpoint{echoEndpoint(t, "")}})
	_, console := serveTest(t, Options{StaticDir: static, DevConsole: true, Endpoints: []Endpoint{echoEndpoint(t, "")}})
	_, mounted := serveTest(t, Options{StaticDir: static, Endpoints: []Endpoint{echoEndpoint(t, "/ws")}})
	for _, tc := range []struct {
		name string
		addr string
		path string
		code int
	}{
		{"favicon behind a catch-all", catchAll, "/favicon.ico", 404},
		{"missing file in a directory behind a catch-all", catchAll, "/a/b.js", 404},
		{"the catch-all's own path", catchAll, "/", 426},
		{"a file behind a catch-all", catchAll, "/hello.txt", 200},
		{"favicon with the console", console, "/favicon.ico", 404},
		{"the console at the endpoint's path", console, "/", 200},
		{"a mounted endpoint's path", mounted, "/ws", 426},
		{"below a mounted endpoint's path", mounted, "/ws/room", 426},
		{"favicon beside a mounted endpoint", mounted, "/favicon.ico", 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := getWithin(t, tc.addr, tc.path, 15*time.Second)
			if code != tc.code {
				t.Fatalf("GET %s: %d %q, want %d", tc.path, code, body, tc.code)
			}
		})
	}
	// Upgrades at any path still reach the catch-all.
	c := wstest.MustDial(t, catchAll, wstest.Options{Path: "/favicon.ico"})
	if err := c.WriteFrame(true, wstest.OpText, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if _, data, _, err := c.ReadMessage(10 * time.Second); err != nil || string(data) != "hi" {
		t.Fatalf("echo at /favicon.ico: %q %v", data, err)
	}
}

// 6. The directories themselves are opened at each request (so one
// replaced while running is followed): one replaced by a FIFO must not
// block the requests either.
func TestFaultDirectoryReplacedByFIFO(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	static := filepath.Join(base, "www")
	writeFile(t, static, "hello.txt", "HELLO", 0o644)
	scripts := filepath.Join(base, "scripts")
	writeFile(t, scripts, "ok.sh", "#!/bin/sh\necho ok\n", 0o755)
	_, addr := serveTest(t, Options{StaticDir: static, Endpoints: []Endpoint{{Path: "/s", ScriptDir: scripts}}})
	if code, body := getWithin(t, addr, "/hello.txt", 15*time.Second); code != 200 || body != "HELLO" {
		t.Fatalf("GET /hello.txt: %d %q", code, body)
	}
	for _, d := range []string{static, scripts} {
		if err := os.Rename(d, d+".old"); err != nil {
			t.Fatal(err)
		}
		mkfifo(t, d, 0o755)
	}
	if code, body := getWithin(t, addr, "/hello.txt", 15*time.Second); code == 200 {
		t.Fatalf("GET /hello.txt from a FIFO: %d %q", code, body)
	}
	c := wstest.MustDialTCP(t, addr, wstest.Options{})
	_ = c.Conn.SetDeadline(time.Now().Add(15 * time.Second))
	resp, err := c.Upgrade(wstest.Options{Path: "/s/ok.sh"})
	if err != nil {
		t.Fatalf("upgrade of a script in a FIFO: %v", err)
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		t.Fatalf("upgrade of a script in a FIFO: %s", resp.Status)
	}
}
