package main

// What the tests of wsbridge behind real reverse proxies share
// (reverseproxy_*_test.go): each runs a recipe of examples/deploy with only
// its ports and paths replaced, so the recipe the README names is the one
// tested. The client connects from 127.0.0.2 while the proxy reaches
// wsbridge from 127.0.0.1: a program that sees REMOTE_ADDR=127.0.0.2 got it
// from the proxy's word, not from the socket.

import (
	"context"
	"crypto/tls"
	"errors"
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

// clientIP is the loopback address the proxied clients connect from.
const clientIP = "127.0.0.2"

// proxyRecipe returns the file examples/deploy/REL with each old of subst (pairs
// old, new) replaced by its new, everywhere. An old that does not occur
// fails the test: the recipe changed and its test no longer runs it as the
// README says.
func proxyRecipe(t *testing.T, rel string, subst ...string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deployDir, rel))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if len(subst)%2 != 0 {
		t.Fatalf("recipe %s: odd substitution list %q", rel, subst)
	}
	for i := 0; i < len(subst); i += 2 {
		if !strings.Contains(s, subst[i]) {
			t.Fatalf("recipe %s no longer holds %q, which its test replaces", rel, subst[i])
		}
		s = strings.ReplaceAll(s, subst[i], subst[i+1])
	}
	return s
}

// dialClient opens a TCP connection to addr from clientIP.
func dialClient(t *testing.T, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(clientIP)}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dialing %s from %s: %v", addr, clientIP, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// envSession upgrades conn with o to a session of testchild env, which
// prints its environment, then echoes, and returns the session and that
// environment.
func envSession(t *testing.T, conn net.Conn, o wstest.Options) (*wstest.Conn, map[string]string) {
	t.Helper()
	c := wstest.New(conn, 0)
	resp, err := c.Upgrade(o)
	if err != nil {
		t.Fatalf("upgrade through the proxy: %v", err)
	}
	if resp.StatusCode != 101 {
		t.Fatalf("upgrade through the proxy: %s, want 101", resp.Status)
	}
	const mark = "end of the environment"
	if err := c.WriteMessage(wstest.OpText, []byte(mark), 0); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for {
		_, data, _, err := c.ReadMessage(10 * time.Second)
		if err != nil {
			t.Fatalf("reading the program's environment: %v (so far %v)", err, env)
		}
		if string(data) == mark {
			return c, env
		}
		k, v, _ := strings.Cut(string(data), "=")
		env[k] = v
	}
}

// echoThrough checks the session echoes messages both ways through the
// proxy: short ones, and one larger than a proxy's usual 16 KiB buffer.
func echoThrough(t *testing.T, c *wstest.Conn) {
	t.Helper()
	for _, msg := range []string{"one", "two through the proxy", strings.Repeat("x", 100_000)} {
		if err := c.WriteMessage(wstest.OpText, []byte(msg), 0); err != nil {
			t.Fatal(err)
		}
		c.ExpectMessage(t, wstest.OpText, msg)
	}
}

// closeThrough closes the session with 1000 and checks the server's close
// frame and the connection's end come back through the proxy.
func closeThrough(t *testing.T, c *wstest.Conn) {
	t.Helper()
	f, err := c.CloseHandshake(1000, 10*time.Second)
	if err != nil {
		t.Errorf("closing through the proxy: %v", err)
	} else if f.CloseCode() != 1000 {
		t.Errorf("closing through the proxy: the server's close frame says %d %q, want 1000", f.CloseCode(), f.CloseReason())
	}
}

// wantClient checks the program saw the proxied client, clientIP, as
// REMOTE_ADDR, and the extra variables of want.
func wantClient(t *testing.T, env map[string]string, want ...string) {
	t.Helper()
	if env["REMOTE_ADDR"] != clientIP {
		t.Errorf("REMOTE_ADDR=%s, want the client's %s (the proxy connects from 127.0.0.1)", env["REMOTE_ADDR"], clientIP)
	}
	for i := 0; i+1 < len(want); i += 2 {
		if env[want[i]] != want[i+1] {
			t.Errorf("%s=%q, want %q", want[i], env[want[i]], want[i+1])
		}
	}
}

// getFrom GETs url from clientIP (over TLS trusting conf's roots when conf
// is not nil) with the extra header lines of hdr ("Name: value"), and
// returns the status code and body.
func getFrom(t *testing.T, url string, conf *tls.Config, hdr ...string) (int, string) {
	t.Helper()
	d := &net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(clientIP)}}
	tr := &http.Transport{DialContext: d.DialContext, TLSClientConfig: conf, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(context.Background(), "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hdr {
		k, v, _ := strings.Cut(h, ": ")
		if k == "Host" {
			req.Host = v
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

// idleCut holds an open session silent, answering pings as a browser
// does, and checks the proxy cuts it after between min and max.
func idleCut(t *testing.T, c *wstest.Conn, min, max time.Duration) {
	t.Helper()
	start := time.Now()
	_, data, closed, err := c.ReadMessage(max + 5*time.Second)
	took := time.Since(start)
	switch {
	case err == nil:
		t.Fatalf("an idle session got a message %q, want it cut", data)
	case errors.Is(err, os.ErrDeadlineExceeded):
		t.Fatalf("an idle session still open after %v, want it cut within %v", took, max)
	case took < min || took > max:
		t.Errorf("an idle session was cut after %v (%v, close %d), want between %v and %v", took.Round(time.Millisecond), err, closed.CloseCode(), min, max)
	}
}

// idleKept holds an open session silent for d, answering pings as a
// browser does, and checks it still echoes afterwards.
func idleKept(t *testing.T, c *wstest.Conn, d time.Duration) {
	t.Helper()
	start := time.Now()
	_, data, closed, err := c.ReadMessage(d)
	switch {
	case err == nil:
		t.Fatalf("an idle session got a message %q", data)
	case !errors.Is(err, os.ErrDeadlineExceeded):
		t.Fatalf("an idle session ended after %v: %v (close %d %q), want it kept open by the pings for %v", time.Since(start).Round(time.Millisecond), err, closed.CloseCode(), closed.CloseReason(), d)
	}
	if err := c.WriteMessage(wstest.OpText, []byte("after the idle time"), 0); err != nil {
		t.Fatal(err)
	}
	c.ExpectMessage(t, wstest.OpText, "after the idle time")
	closeThrough(t, c)
}
