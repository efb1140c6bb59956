package bridge

// The pages the server answers plain requests with: a static directory
// (StaticDir), the demo and the dev console, beside the endpoints on the
// same port.

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

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
	_, mounted := serveTest(t, Options{StaticDir: static, Endpoints: []Endpoint{echoEndpoint(t, "/ws")}})
	// An endpoint at every path: a path with no file is the endpoint's.
	_, b := serveTest(t, Options{StaticDir: static, Endpoints: []Endpoint{echoEndpoint(t, "")}})
	_, demo := serveTest(t, Options{StaticDir: static, Demo: true, Endpoints: []Endpoint{echoEndpoint(t, "")}})

	get := func(t *testing.T, addr, path string) (int, string) {
		t.Helper()
		resp, body := rawExchange(t, addr, "GET "+path+" HTTP/1.1\r\nHost: "+addr+"\r\nConnection: close\r\n\r\n")
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
				resp, body := rawExchange(t, mounted, "HEAD /hello.txt HTTP/1.1\r\nHost: "+mounted+"\r\nConnection: close\r\n\r\n")
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
			c := wstest.MustDial(t, b, wstest.Options{Path: path})
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
	// A config file with devconsole = yes and [endpoint /a].
	_, addr := serveTest(t, Options{DevConsole: true, Endpoints: []Endpoint{echoEndpoint(t, "/a")}})
	resp, body := httpGet(t, "http://"+addr+"/a/room?x=1")
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
	if resp, _ := httpGet(t, "http://"+addr+"/b"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET of a path no endpoint serves: %s, want 404", resp.Status)
	}
	// Still an endpoint for WebSocket clients.
	c := wstest.MustDial(t, addr, wstest.Options{Path: "/a"})
	if err := c.WriteFrame(true, wstest.OpText, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if _, data, _, err := c.ReadMessage(5 * time.Second); err != nil || string(data) != "hi" {
		t.Fatalf("echo: %q %v", data, err)
	}
}
