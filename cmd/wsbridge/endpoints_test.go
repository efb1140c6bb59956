package main

// Integration tests of many endpoints behind one port: --dir, --staticdir,
// --devconsole and the config file, against the real binary on loopback.

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

// writeFile writes a file below base, making its directories.
func writeFile(t *testing.T, base, rel, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(base, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// whoAmI is a script that says which it is and what it was given.
func whoAmI(name string) string {
	return "#!/bin/sh\nprintf '%s\\n' \"" + name + " SCRIPT_NAME=$SCRIPT_NAME PATH_INFO=$PATH_INFO QUERY_STRING=$QUERY_STRING PWD=$(pwd)\"\n"
}

// upgradeStatus attempts an upgrade of path and returns the status and
// body; a 101 session is left to end with the test.
func upgradeStatus(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	resp, err := wstest.MustDialTCP(t, addr, wstest.Options{}).Upgrade(wstest.Options{Path: path})
	if err != nil {
		t.Fatalf("handshake %s: %v", path, err)
	}
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestScriptDir(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	dir := filepath.Join(base, "ws")
	writeFile(t, dir, "a.sh", whoAmI("a"), 0o755)
	writeFile(t, dir, "b.sh", whoAmI("b"), 0o755)
	writeFile(t, dir, "sub/c.sh", whoAmI("c"), 0o755)
	writeFile(t, dir, "plain.sh", whoAmI("plain"), 0o644)
	writeFile(t, dir, ".hidden.sh", whoAmI("hidden"), 0o755)
	// An executable outside the directory, which links inside try to reach.
	writeFile(t, base, "outside.sh", whoAmI("OUTSIDE"), 0o755)
	symlink(t, "../outside.sh", filepath.Join(dir, "escape.sh"))
	symlink(t, filepath.Join(base, "outside.sh"), filepath.Join(dir, "escape-abs.sh"))
	symlink(t, base, filepath.Join(dir, "up"))
	symlink(t, "a.sh", filepath.Join(dir, "alias.sh"))
	b := startBridge(t, "--dir="+dir)
	ctx := testCtx(t, 20*time.Second)

	t.Run("scripts", func(t *testing.T) {
		for _, tc := range []struct{ path, want string }{
			{"/a.sh", "a SCRIPT_NAME=/a.sh PATH_INFO= QUERY_STRING= PWD=" + dir},
			{"/b.sh/room1?x=1", "b SCRIPT_NAME=/b.sh PATH_INFO=/room1 QUERY_STRING=x=1 PWD=" + dir},
			{"/a.sh/x/y/", "a SCRIPT_NAME=/a.sh PATH_INFO=/x/y/ QUERY_STRING= PWD=" + dir},
			{"/sub/c.sh/more", "c SCRIPT_NAME=/sub/c.sh PATH_INFO=/more QUERY_STRING= PWD=" + filepath.Join(dir, "sub")},
			{"/alias.sh", "a SCRIPT_NAME=/alias.sh PATH_INFO= QUERY_STRING= PWD=" + dir},
		} {
			c := dialWS(t, ctx, b.URL(tc.path), nil)
			if got := readText(t, ctx, c); got != tc.want {
				t.Errorf("%s said %q, want %q", tc.path, got, tc.want)
			}
			if code, reason, _ := expectClose(t, ctx, c); code != websocket.StatusNormalClosure {
				t.Errorf("%s: close %d %q, want 1000", tc.path, code, reason)
			}
		}
	})

	t.Run("refused", func(t *testing.T) {
		for _, tc := range []struct{ path, why string }{
			{"/missing.sh", "no script missing.sh"},
			{"/plain.sh", "plain.sh is not executable"},
			{"/.hidden.sh", "hidden file .hidden.sh"},
			{"/sub", "/sub is a directory"},
			{"/sub/", "/sub is a directory"},
			{"/", "/ is a directory"},
			{"/../outside.sh", `\"..\" component`},
			{"/sub/../../outside.sh", `\"..\" component`},
			{"/%2e%2e/outside.sh", `\"..\" component`},
			{"/%2E%2E%2Foutside.sh", "encoded slash"},
			{"/sub%2fc.sh", "encoded slash"},
			{"/escape.sh", "escape"},
			{"/escape-abs.sh", "escape"},
			{"/up/outside.sh", "escape"},
			{"/a.sh%00", "NUL"},
		} {
			code, body := upgradeStatus(t, b.Addr, tc.path)
			if code != http.StatusNotFound || strings.Contains(body, "OUTSIDE") {
				t.Errorf("%s: %d %q, want 404", tc.path, code, body)
			}
			if !b.Log.WaitFor(tc.why, 5*time.Second) {
				t.Errorf("%s: no log line saying %q", tc.path, tc.why)
			}
		}
		if strings.Contains(b.Log.String(), "OUTSIDE") {
			t.Errorf("the script outside the directory ran")
		}
		// Not an endpoint over plain HTTP either.
		if resp, _ := httpGet(t, "http://"+b.Addr+"/escape.sh"); resp.StatusCode != http.StatusNotFound {
			t.Errorf("plain GET of a refused script: %s, want 404", resp.Status)
		}
		if resp, _ := httpGet(t, "http://"+b.Addr+"/a.sh"); resp.StatusCode != http.StatusUpgradeRequired {
			t.Errorf("plain GET of a script: %s, want 426", resp.Status)
		}
	})

	t.Run("added while running", func(t *testing.T) {
		if code, _ := upgradeStatus(t, b.Addr, "/new.sh"); code != http.StatusNotFound {
			t.Fatalf("/new.sh before it exists: %d, want 404", code)
		}
		writeFile(t, dir, "later/new.sh", whoAmI("new"), 0o755)
		c := dialWS(t, ctx, b.URL("/later/new.sh"), nil)
		if got, want := readText(t, ctx, c), "new SCRIPT_NAME=/later/new.sh PATH_INFO= QUERY_STRING= PWD="+filepath.Join(dir, "later"); got != want {
			t.Errorf("new script said %q, want %q", got, want)
		}
	})
}

func TestStaticDir(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	static := filepath.Join(base, "www")
	writeFile(t, static, "index.html", "<p>INDEX</p>", 0o644)
	writeFile(t, static, "hello.txt", "HELLO", 0o644)
	writeFile(t, static, "sub/file.txt", "SUBFILE", 0o644)
	writeFile(t, static, "sub2/index.html", "SUB2 INDEX", 0o644)
	writeFile(t, static, ".secret", "SECRET", 0o644)
	writeFile(t, static, ".git/config", "SECRET", 0o644)
	writeFile(t, base, "outside.txt", "SECRET OUTSIDE", 0o644)
	symlink(t, "../outside.txt", filepath.Join(static, "out.txt"))
	symlink(t, base, filepath.Join(static, "up"))
	symlink(t, "hello.txt", filepath.Join(static, "in.txt"))
	// Endpoints at /ws only: a path with no file is the file server's 404.
	mounted := startBridge(t, "--staticdir="+static, "--config="+testConfig(t, "[endpoint /ws]\ncommand = "+childBin+" echo\n"))
	// An endpoint at every path: a path with no file is the endpoint's.
	b := startBridge(t, "--staticdir="+static, childBin, "echo")
	demo := startBridge(t, "--staticdir="+static, "--demo", childBin, "echo")

	get := func(t *testing.T, b *bridgeProc, path string) (int, string) {
		t.Helper()
		resp, body := rawExchange(t, b.Addr, "GET "+path+" HTTP/1.1\r\nHost: "+b.Addr+"\r\nConnection: close\r\n\r\n")
		return resp.StatusCode, body
	}
	for _, tc := range []struct {
		name, path string
		code       int
		body       string
	}{
		{"index", "/", 200, "<p>INDEX</p>"},
		{"file", "/hello.txt", 200, "HELLO"},
		{"file in a directory", "/sub/file.txt", 200, "SUBFILE"},
		{"directory index", "/sub2/", 200, "SUB2 INDEX"},
		{"link inside", "/in.txt", 200, "HELLO"},
		{"HEAD", "", 0, ""},
		{"no listing", "/sub/", 404, ""},
		{"hidden file", "/.secret", 404, ""},
		{"hidden directory", "/.git/config", 404, ""},
		{"link out", "/out.txt", 404, ""},
		{"link to the parent", "/up/outside.txt", 404, ""},
		{"dot dot", "/../outside.txt", 0, ""},
		{"encoded dot dot", "/%2e%2e/outside.txt", 0, ""},
		{"encoded slash", "/..%2foutside.txt", 0, ""},
		{"no such file", "/nothing.txt", 404, ""},
		{"an endpoint's path", "/ws", 426, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "HEAD" {
				resp, body := rawExchange(t, mounted.Addr, "HEAD /hello.txt HTTP/1.1\r\nHost: "+mounted.Addr+"\r\nConnection: close\r\n\r\n")
				if resp.StatusCode != 200 || resp.ContentLength != 5 || body != "" {
					t.Errorf("HEAD: %s length %d body %q", resp.Status, resp.ContentLength, body)
				}
				return
			}
			// Behind a catch-all endpoint, what the directory does not
			// serve goes to the endpoint, which does not show it either.
			if code, body := get(t, b, tc.path); strings.Contains(body, "SECRET") || (tc.code != 200 && code == 200) {
				t.Fatalf("GET %s behind a catch-all: %d %q", tc.path, code, body)
			}
			code, body := get(t, mounted, tc.path)
			if strings.Contains(body, "SECRET") {
				t.Fatalf("GET %s: %d showed a secret: %q", tc.path, code, body)
			}
			if tc.code == 0 {
				if code == 200 {
					t.Errorf("GET %s: 200 %q, want it refused", tc.path, body)
				}
				return
			}
			if code != tc.code || (tc.body != "" && body != tc.body) {
				t.Errorf("GET %s: %d %q, want %d %q", tc.path, code, body, tc.code, tc.body)
			}
		})
	}
	t.Run("upgrades still reach the endpoint", func(t *testing.T) {
		for _, path := range []string{"/", "/hello.txt"} {
			c := wstest.MustDial(t, b.Addr, wstest.Options{Path: path})
			if err := c.WriteFrame(true, wstest.OpText, []byte("hi")); err != nil {
				t.Fatal(err)
			}
			if _, data, _, err := c.ReadMessage(5 * time.Second); err != nil || string(data) != "hi" {
				t.Fatalf("echo at %s: %q %v", path, data, err)
			}
		}
	})
	t.Run("the demo wins at / only", func(t *testing.T) {
		if code, body := get(t, demo, "/"); code != 200 || !strings.Contains(body, "<title>wsbridge demo</title>") {
			t.Errorf("GET /: %d %.80q, want the demo page", code, body)
		}
		if code, body := get(t, demo, "/hello.txt"); code != 200 || body != "HELLO" {
			t.Errorf("GET /hello.txt: %d %q, want the file", code, body)
		}
	})
}

// The console's HTTP side; what it does in a browser is TestDevConsole's.
func TestDevConsoleHTTP(t *testing.T) {
	t.Parallel()
	conf := testConfig(t, "devconsole = yes\n[endpoint /a]\ncommand = "+childBin+" echo\n")
	b := startBridge(t, "--config="+conf)
	resp, body := httpGet(t, "http://"+b.Addr+"/a/room?x=1")
	csp := resp.Header.Get("Content-Security-Policy")
	if resp.StatusCode != 200 || !strings.Contains(body, "<title>wsbridge console</title>") {
		t.Fatalf("GET /a/room: %s %.80q, want the console", resp.Status, body)
	}
	for _, want := range []string{"default-src 'none'", "script-src 'sha256-", "connect-src 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe") || strings.Contains(body, "innerHTML") || strings.Contains(body, "eval(") {
		t.Errorf("the console allows or uses unsafe markup or eval: CSP %q", csp)
	}
	if resp, _ := httpGet(t, "http://"+b.Addr+"/b"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET of a path no endpoint serves: %s, want 404", resp.Status)
	}
	// Still an endpoint for WebSocket clients.
	c := wstest.MustDial(t, b.Addr, wstest.Options{Path: "/a"})
	if err := c.WriteFrame(true, wstest.OpText, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if _, data, _, err := c.ReadMessage(5 * time.Second); err != nil || string(data) != "hi" {
		t.Fatalf("echo: %q %v", data, err)
	}
}

// Two endpoints of a config file, each with its own program and framing,
// on one port.
func TestConfigFile(t *testing.T) {
	t.Parallel()
	conf := testConfig(t, fmt.Sprintf(`# two programs behind one port
max-conns = 10

[endpoint /lines]
command = %s echo
max-message = 1KiB

[endpoint /raw]
command = %s cat
binary = yes

[endpoint /env]
command = '%s' env
passenv =
`, childBin, childBin, childBin))
	b := startBridge(t, "--config="+conf)
	ctx := testCtx(t, 20*time.Second)

	lines := dialWS(t, ctx, b.URL("/lines"), nil)
	if err := lines.Write(ctx, websocket.MessageText, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if got := readText(t, ctx, lines); got != "hello" {
		t.Errorf("/lines echoed %q", got)
	}
	if err := lines.Write(ctx, websocket.MessageText, []byte(strings.Repeat("x", 2000))); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := expectClose(t, ctx, lines); code != websocket.StatusMessageTooBig {
		t.Errorf("/lines: a message over its max-message closed with %d, want 1009", code)
	}

	raw := dialWS(t, ctx, b.URL("/raw"), nil)
	if err := raw.Write(ctx, websocket.MessageBinary, []byte{0, 1, 0xff, '\n'}); err != nil {
		t.Fatal(err)
	}
	if typ, data := readWS(t, ctx, raw); typ != websocket.MessageBinary || string(data) != "\x00\x01\xff\n" {
		t.Errorf("/raw: %v %q, want the bytes back as binary", typ, data)
	}

	env := dialWS(t, ctx, b.URL("/env/more"), nil)
	vars := map[string]string{}
	for {
		line := readText(t, ctx, env)
		k, v, _ := strings.Cut(line, "=")
		vars[k] = v
		if k > "SCRIPT_NAME" {
			break // sorted: what we look for has come
		}
	}
	if vars["SCRIPT_NAME"] != "/env" || vars["PATH_INFO"] != "/more" {
		t.Errorf("/env/more: SCRIPT_NAME %q PATH_INFO %q", vars["SCRIPT_NAME"], vars["PATH_INFO"])
	}
	if _, ok := vars["PATH"]; ok {
		t.Errorf("passenv = (empty) still passed PATH")
	}

	if code, _ := upgradeStatus(t, b.Addr, "/other"); code != http.StatusNotFound {
		t.Errorf("a path no endpoint serves: %d, want 404", code)
	}
}

// A bad configuration stops the daemon before it serves, with status 2 and
// a message saying where and what.
func TestConfigErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, conf string
		args       []string
		want       string
	}{
		{"flag and file disagree", "port = 8000\n[endpoint]\ncommand = cat\n", []string{"--port=8001"},
			"--port=8001 on the command line, but port = 8000 at CONF:1: remove one"},
		{"unknown key", "[endpoint /a]\ncommand = cat\nframeing = raw\n", nil, `CONF:3: unknown key "frameing" in [endpoint /a]: did you mean framing?`},
		{"bad value", "ping-interval = soon\n[endpoint]\ncommand = cat\n", nil, "CONF:1: ping-interval = soon: want a duration"},
		{"missing program", "[endpoint /a]\ncommand = /no/such/program\n", nil, `CONF:2: [endpoint /a]: cannot run the program "/no/such/program": no such file or directory`},
		{"missing script dir", "[endpoint /a]\ndir = /no/such/dir\n", nil, "CONF:2: --dir=/no/such/dir: no such directory"},
		{"COMMAND and a catch-all", "[endpoint]\ncommand = cat\n", []string{"cat"}, "the COMMAND or --dir on the command line and [endpoint] at CONF:1 both serve every path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conf := testConfig(t, tc.conf)
			cmd := exec.Command(bridgeBin, append([]string{"--config=" + conf}, tc.args...)...)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 {
				t.Fatalf("exit %v, want status 2; output %q", err, out)
			}
			want := "wsbridge: " + strings.ReplaceAll(tc.want, "CONF", conf)
			if !strings.Contains(string(out), want) {
				t.Errorf("output %q, want %q", out, want)
			}
		})
	}
}

// With --shared, each script of --dir has a shared child of its own, and
// shutdown ends them all.
func TestScriptDirShared(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "a.sh", "#!/bin/sh\nexec /bin/cat\n", 0o755)
	writeFile(t, dir, "b.sh", "#!/bin/sh\nexec /bin/cat\n", 0o755)
	b := startBridge(t, "--dir="+dir, "--shared")
	ctx := testCtx(t, 20*time.Second)

	// readUntil reads c's messages up to want, which must come.
	readUntil := func(t *testing.T, c *websocket.Conn, want string) {
		t.Helper()
		for readText(t, ctx, c) != want {
		}
	}
	a1 := dialWS(t, ctx, b.URL("/a.sh"), nil)
	a2 := dialWS(t, ctx, b.URL("/a.sh"), nil)
	other := dialWS(t, ctx, b.URL("/b.sh"), nil)
	// Once a2 hears itself it has joined, and so has a1, which came first.
	if err := a2.Write(ctx, websocket.MessageText, []byte("a2 here")); err != nil {
		t.Fatal(err)
	}
	readUntil(t, a2, "a2 here")
	if err := a1.Write(ctx, websocket.MessageText, []byte("to every client of a.sh")); err != nil {
		t.Fatal(err)
	}
	readUntil(t, a1, "to every client of a.sh")
	readUntil(t, a2, "to every client of a.sh")
	if err := other.Write(ctx, websocket.MessageText, []byte("b only")); err != nil {
		t.Fatal(err)
	}
	if got := readText(t, ctx, other); got != "b only" {
		t.Errorf("the client of b.sh got %q first, want only what b.sh's own child wrote", got)
	}

	// The clients read on, so they answer the close frames.
	ended := make(chan error, 3)
	for _, c := range []*websocket.Conn{a1, a2, other} {
		go func() {
			for {
				if _, _, err := c.Read(ctx); err != nil {
					ended <- err
					return
				}
			}
		}()
	}
	b.Signal(syscall.SIGTERM)
	if err := b.Wait(10 * time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v, want status 0", err)
	}
	for range 3 {
		if err := <-ended; websocket.CloseStatus(err) != websocket.StatusGoingAway {
			t.Errorf("a client ended with %v at shutdown, want 1001", err)
		}
	}
}

// With --cgi-per-message, --cgi-total bounds the scripts of the whole
// directory, not each script: two scripts never overlap under
// --cgi-total=1.
func TestScriptDirCGITotal(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "a.sh", cgiScript, 0o755)
	writeFile(t, dir, "b.sh", cgiScript, 0o755) // counts overlaps in the same DIR/state
	b := startBridge(t, "--dir="+dir, "--cgi-per-message", "--cgi-total=1")
	ctx := testCtx(t, 20*time.Second)
	a := dialWS(t, ctx, b.URL("/a.sh"), nil)
	other := dialWS(t, ctx, b.URL("/b.sh"), nil)
	for _, c := range []*websocket.Conn{a, other} {
		if err := c.Write(ctx, websocket.MessageText, []byte("sleep 1 x")); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []*websocket.Conn{a, other} {
		if got := readText(t, ctx, c); !strings.HasSuffix(got, "|sleep 1 x|1") {
			t.Errorf("reply %q: want the script to have run alone (|1)", got)
		}
	}
}
