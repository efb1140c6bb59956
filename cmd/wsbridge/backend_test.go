package main

// wsbridge in front of a real web server (--http-backend): BusyBox httpd
// and boa serve pages and CGIs behind it, WebSocket upgrades stay with
// wsbridge on the same port. The BusyBox tests run the recipe files of
// examples/deploy/busybox-httpd.

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

const recipeDir = "../../examples/deploy/busybox-httpd"

// recipeConf writes the recipe's wsbridge.conf for a test: its backend
// address replaced by backend, its timeout by timeout, and its port left
// to startBridge.
func recipeConf(t *testing.T, backend, timeout string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(recipeDir, "wsbridge.conf"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(line, "port ="):
			continue
		case strings.HasPrefix(line, "http-backend ="):
			line = "http-backend = " + backend
		case strings.HasPrefix(line, "http-backend-timeout ="):
			line = "http-backend-timeout = " + timeout
		}
		out = append(out, line)
	}
	path := filepath.Join(t.TempDir(), "wsbridge.conf")
	if err := os.WriteFile(path, []byte(strings.Join(out, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// The CGIs behind wsbridge.
const (
	// envCGI prints what a CGI sees of the client.
	backendEnvCGI = `#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
echo "xff=$HTTP_X_FORWARDED_FOR proto=$HTTP_X_FORWARDED_PROTO xhost=$HTTP_X_FORWARDED_HOST host=$HTTP_HOST remote=$REMOTE_ADDR"
`
	// postCGI echoes the body.
	postCGI = `#!/bin/sh
printf 'Content-Type: application/octet-stream\r\n\r\n'
exec /usr/bin/head -c "$CONTENT_LENGTH"
`
	// waitCGI writes a line, waits until the file $QUERY_STRING exists
	// (20 s at most), then writes another: a long poll.
	waitCGI = `#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\nfirst\n'
i=0
while [ ! -e "$QUERY_STRING" ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done
echo second
`
	// hangCGI says it started (the file $QUERY_STRING.started), then
	// sends nothing until the file $QUERY_STRING exists (20 s at most).
	hangCGI = `#!/bin/sh
: > "$QUERY_STRING.started"
i=0
while [ ! -e "$QUERY_STRING" ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done
printf 'Content-Type: text/plain\r\n\r\nlate\n'
`
	// sleepCGI answers after 3 s.
	sleepCGI = `#!/bin/sh
sleep 3
printf 'Content-Type: text/plain\r\n\r\nlate\n'
`
)

// startBusyboxBackend runs BusyBox httpd with the recipe's httpd.conf on a
// docroot holding index.html and the CGIs.
func startBusyboxBackend(t *testing.T) (*webServer, string) {
	t.Helper()
	docroot := t.TempDir()
	if err := os.Mkdir(filepath.Join(docroot, "cgi-bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{
		"index.html": "<p>busybox page</p>\n", "cgi-bin/env.cgi": backendEnvCGI, "cgi-bin/post.cgi": postCGI,
		"cgi-bin/wait.cgi": waitCGI, "cgi-bin/hang.cgi": hangCGI, "cgi-bin/sleep.cgi": sleepCGI,
	} {
		if err := os.WriteFile(filepath.Join(docroot, name), []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin := needTool(t, busyboxPath, serverInstall)
	conf, err := filepath.Abs(filepath.Join(recipeDir, "httpd.conf"))
	if err != nil {
		t.Fatal(err)
	}
	w := startWebServer(t, "busybox httpd", "", func(dir string) []string {
		return []string{bin, "httpd", "-f", "-vv", "-p", "127.0.0.1:" + portOf(dir), "-h", docroot, "-c", conf}
	})
	return w, docroot
}

// echoes checks a WebSocket session to /ws echoes n messages.
func echoes(t *testing.T, ws *wstest.Conn, n int) {
	t.Helper()
	for i := range n {
		msg := "ping " + string(rune('a'+i%26))
		if err := ws.WriteMessage(1, []byte(msg), 0); err != nil {
			t.Fatal(err)
		}
		ws.ExpectMessage(t, 1, msg)
	}
}

func get(t *testing.T, url string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: body: %v", url, err)
	}
	return resp, string(body)
}

func TestBackendBusybox(t *testing.T) {
	w, docroot := startBusyboxBackend(t)
	b := startBridge(t, "--config="+recipeConf(t, w.Addr, "60s"))
	base := "http://" + b.Addr

	t.Run("page", func(t *testing.T) {
		if resp, body := get(t, base+"/index.html"); resp.StatusCode != 200 || body != "<p>busybox page</p>\n" {
			t.Fatalf("GET /index.html: %d %q", resp.StatusCode, body)
		}
	})
	t.Run("CGI sees the client", func(t *testing.T) {
		// What the client says of itself is replaced: it is no proxy.
		_, body := get(t, base+"/cgi-bin/env.cgi", "X-Forwarded-For", "6.6.6.6", "X-Forwarded-Host", "evil")
		want := "xff=127.0.0.1 proto=http xhost=" + b.Addr + " host=" + b.Addr + " remote=127.0.0.1\n"
		if body != want {
			t.Fatalf("CGI saw %q, want %q", body, want)
		}
	})
	t.Run("POST body echoed", func(t *testing.T) {
		payload := make([]byte, 300<<10)
		_, _ = rand.Read(payload)
		resp, err := (&http.Client{Timeout: 15 * time.Second}).Post(base+"/cgi-bin/post.cgi", "application/octet-stream", bytes.NewReader(payload))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		got, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 200 || !bytes.Equal(got, payload) {
			t.Fatalf("status %d, %d bytes back of %d, equal %v, err %v", resp.StatusCode, len(got), len(payload), bytes.Equal(got, payload), err)
		}
	})
	t.Run("long poll streams", func(t *testing.T) {
		flag := filepath.Join(docroot, "flag-stream")
		resp, err := (&http.Client{Timeout: 15 * time.Second}).Get(base + "/cgi-bin/wait.cgi?" + flag)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		br := bufio.NewReader(resp.Body)
		// The CGI writes "second" only once flag exists: the first line
		// must arrive before.
		if line, err := br.ReadString('\n'); line != "first\n" || err != nil {
			t.Fatalf("first line %q, %v", line, err)
		}
		if err := os.WriteFile(flag, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if line, err := br.ReadString('\n'); line != "second\n" || err != nil {
			t.Fatalf("second line %q, %v", line, err)
		}
	})
	t.Run("WebSocket echoes beside a hung request", func(t *testing.T) {
		flag := filepath.Join(docroot, "flag-hung")
		defer os.WriteFile(flag, nil, 0o644) // lets the CGI end
		c := wstest.MustDialTCP(t, b.Addr, wstest.Options{})
		defer c.Conn.Close()
		// A request the CGI leaves unanswered, not a byte of it.
		if _, err := io.WriteString(c.Conn, "GET /cgi-bin/hang.cgi?"+flag+" HTTP/1.1\r\nHost: "+b.Addr+"\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if _, err := os.Stat(flag + ".started"); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the hanging CGI did not start")
			}
		}
		ws := wstest.MustDial(t, b.Addr, wstest.Options{Path: "/ws"})
		defer ws.Conn.Close()
		echoes(t, ws, 20)
		// And a page, meanwhile, on another connection.
		if resp, _ := get(t, base+"/index.html"); resp.StatusCode != 200 {
			t.Fatalf("page beside the hung request: %d", resp.StatusCode)
		}
		// Still unanswered, and answered once the CGI goes on.
		_ = c.Conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if n, err := c.R.Read(make([]byte, 1)); n != 0 || err == nil {
			t.Fatalf("the hung request was answered early: %d bytes, %v", n, err)
		}
		_ = c.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if err := os.WriteFile(flag, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if resp, err := http.ReadResponse(c.R, nil); err != nil || resp.StatusCode != 200 {
			t.Fatalf("the hung request, released: %v, %v", resp, err)
		}
	})
	t.Run("upgrade elsewhere gets 404", func(t *testing.T) {
		c := wstest.MustDialTCP(t, b.Addr, wstest.Options{})
		defer c.Conn.Close()
		resp, err := c.Upgrade(wstest.Options{Path: "/cgi-bin/env.cgi"})
		if err != nil || resp.StatusCode != http.StatusNotFound {
			t.Fatalf("upgrade to a CGI's path: %v, %v; want 404", resp, err)
		}
	})
}

func TestBackendBusyboxTimeout(t *testing.T) {
	w, _ := startBusyboxBackend(t)
	b := startBridge(t, "--config="+recipeConf(t, w.Addr, "1s"))
	start := time.Now()
	resp, body := get(t, "http://"+b.Addr+"/cgi-bin/sleep.cgi")
	took := time.Since(start)
	if resp.StatusCode != http.StatusGatewayTimeout || !strings.Contains(body, w.Addr) {
		t.Fatalf("got %d %q, want 504 naming %s", resp.StatusCode, body, w.Addr)
	}
	if took < time.Second || took > 2500*time.Millisecond {
		t.Fatalf("504 after %v, want after the 1s timeout, before the CGI's 3s", took)
	}
	if !b.Log.WaitFor("no response in time", 5*time.Second) {
		t.Fatal("the 504 was not logged")
	}
}

func TestBackendDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	ln.Close()
	b := startBridge(t, "--demo", "--config="+recipeConf(t, down, "60s"))
	start := time.Now()
	resp, body := get(t, "http://"+b.Addr+"/")
	took := time.Since(start)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, down) {
		t.Fatalf("got %d %q, want 502 naming %s", resp.StatusCode, body, down)
	}
	// Refused on loopback: at once, not after a timeout.
	if took > 500*time.Millisecond {
		t.Fatalf("502 took %v", took)
	}
	t.Logf("502 after %v", took)
	if n := strings.Count(b.Log.String(), "the demo page, the console and the static directory are not served"); n != 1 {
		t.Fatalf("--demo beside --http-backend logged %d times, want once:\n%s", n, b.Log.String())
	}
	// The WebSocket endpoint does not need the backend.
	ws := wstest.MustDial(t, b.Addr, wstest.Options{Path: "/ws"})
	defer ws.Conn.Close()
	echoes(t, ws, 3)
}

func TestBackendBoa(t *testing.T) {
	w := startBoa(t, boaTestConf)
	w.writeFile("www/index.html", "<p>boa page</p>\n", 0o644)
	b := startBridge(t, "--config="+recipeConf(t, w.Addr, "60s"))

	// Two requests on one client connection.
	c := wstest.MustDialTCP(t, b.Addr, wstest.Options{})
	defer c.Conn.Close()
	for i := range 2 {
		if _, err := io.WriteString(c.Conn, "GET /index.html HTTP/1.1\r\nHost: "+b.Addr+"\r\n\r\n"); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		_ = c.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(c.R, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 200 || string(body) != "<p>boa page</p>\n" || resp.Close {
			t.Fatalf("response %d: %d %q close %v, %v", i, resp.StatusCode, body, resp.Close, err)
		}
	}
	ws := wstest.MustDial(t, b.Addr, wstest.Options{Path: "/ws"})
	defer ws.Conn.Close()
	echoes(t, ws, 5)
}

func TestBackendFlagErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ arg, want string }{
		{"--http-backend=8081", `--http-backend=8081: "8081": want HOST:PORT (e.g. 127.0.0.1:8081) or unix:/path`},
		{"--http-backend=unix:httpd.sock", `--http-backend=unix:httpd.sock: "unix:httpd.sock": want unix:/absolute/path`},
		{"--http-backend-timeout=0s", "--http-backend-timeout must be > 0"},
	} {
		out, err := exec.Command(bridgeBin, tc.arg, "cat").CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || strings.TrimSpace(string(out)) != "wsbridge: "+tc.want {
			t.Errorf("%s: exit %v, output %q; want status 2 and %q", tc.arg, err, out, tc.want)
		}
	}
}

// TestBackendShutdown checks a request waiting on the backend does not
// hold the daemon's shutdown: it ends with the other connections.
func TestBackendShutdown(t *testing.T) {
	w, docroot := startBusyboxBackend(t)
	b := startBridge(t, "--config="+recipeConf(t, w.Addr, "60s"))
	flag := filepath.Join(docroot, "flag-shutdown")
	defer os.WriteFile(flag, nil, 0o644)
	c := wstest.MustDialTCP(t, b.Addr, wstest.Options{})
	defer c.Conn.Close()
	if _, err := io.WriteString(c.Conn, "GET /cgi-bin/hang.cgi?"+flag+" HTTP/1.1\r\nHost: "+b.Addr+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(flag + ".started"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the hanging CGI did not start")
		}
	}
	start := time.Now()
	b.Signal(syscall.SIGTERM)
	if err := b.Wait(10 * time.Second); err != nil {
		t.Fatalf("exit: %v", err)
	}
	if took := time.Since(start); took > 4*time.Second {
		t.Fatalf("shutdown took %v with a request waiting on the backend", took)
	}
}
