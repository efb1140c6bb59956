package bridge

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

// Helpers of the tests of what the server answers over HTTP, of pages,
// script directories, CGI and the conformance table.

// eventually polls cond for up to timeout and says whether it came true.
func eventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// logged waits up to timeout for substr to be in lg, and says whether it
// came: for what the daemon's tests read anywhere in its log.
func logged(lg *testLog, substr string, timeout time.Duration) bool {
	return eventually(timeout, func() bool { return strings.Contains(lg.String(), substr) })
}

// tryUpgrade sends a WebSocket handshake for "/" with extra header lines
// and returns the response, body read. The connection stays open (a 101
// holds a session) until the test ends.
func tryUpgrade(t testing.TB, addr string, extra ...string) (*http.Response, string) {
	t.Helper()
	c := wstest.MustDialTCP(t, addr, wstest.Options{})
	resp, err := c.Upgrade(wstest.Options{Path: "/", Header: extra})
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
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

// httpGet fetches url with a plain GET, through net/http's client. The
// connection is not kept: an idle one would hold goroutines past the
// tests (see TestMain).
func httpGet(t testing.TB, url string) (*http.Response, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

// rawExchange writes req on a fresh connection and returns the response
// with its body read.
func rawExchange(t testing.TB, addr, req string) (*http.Response, string) {
	t.Helper()
	c := wstest.MustDialTCP(t, addr, wstest.Options{})
	resp, err := c.Request(req, "")
	if err != nil {
		t.Fatalf("request %.40q: %v", req, err)
	}
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// getWithin sends a plain GET of path on a fresh connection and returns the
// status and body, failing the test if no answer comes within timeout (a
// request blocked in the file system never gets one).
func getWithin(t *testing.T, addr, path string, timeout time.Duration) (int, string) {
	t.Helper()
	c := wstest.MustDialTCP(t, addr, wstest.Options{})
	_ = c.Conn.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c.Conn, "GET "+path+" HTTP/1.1\r\nHost: "+addr+"\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(c.R, nil)
	if err != nil {
		t.Fatalf("GET %s: no answer within %v: %v", path, timeout, err)
	}
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

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

// mkfifo makes a named pipe at p that nobody writes to: opening it for
// reading blocks until someone opens it for writing.
func mkfifo(t *testing.T, p string, mode uint32) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(p, mode); err != nil {
		t.Fatal(err)
	}
	// Mkfifo applies the umask; the tests want the mode as given (an
	// executable FIFO in a script directory).
	if err := os.Chmod(p, os.FileMode(mode)); err != nil {
		t.Fatal(err)
	}
	return p
}

// echoEndpoint is testchild echo at path ("": every path), as the daemon
// runs `testchild echo` given as its COMMAND.
func echoEndpoint(t *testing.T, path string) Endpoint {
	return Endpoint{Path: path, Command: []string{testChildPath(t), "echo"}}
}

// serverClose reads until the server closes, skipping messages, answers
// the close and returns its code and reason.
func serverClose(t *testing.T, c *wstest.Conn) (int, string) {
	t.Helper()
	for {
		_, _, closed, err := c.ReadMessage(20 * time.Second)
		if errors.Is(err, wstest.ErrClosed) {
			_ = c.WriteFrame(true, wstest.OpClose, closed.Payload[:min(2, len(closed.Payload))])
			return closed.CloseCode(), closed.CloseReason()
		}
		if err != nil {
			t.Fatalf("connection ended without a close frame: %v", err)
		}
	}
}
