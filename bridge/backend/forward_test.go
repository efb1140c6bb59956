package backend

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/bridge/http1"
)

// fakeBackend is a web server written for the test: handle gets each
// request it reads and writes the raw response. conns counts the
// connections it accepted.
type fakeBackend struct {
	ln    net.Listener
	conns atomic.Int32
}

func startBackend(t *testing.T, handle func(c net.Conn, r *http.Request, body []byte) (keep bool)) *fakeBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &fakeBackend{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.conns.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					r, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					body, _ := io.ReadAll(r.Body)
					if !handle(c, r, body) {
						return
					}
				}
			}()
		}
	}()
	return b
}

// startFront serves f the way the bridge does: each request head read and
// parsed, then forwarded, for as long as Forward keeps the connection.
func startFront(t *testing.T, f *Forwarder) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close(); f.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 8<<10)
				n := 0
				for {
					hl, m, err := http1.ReadHead(c, buf, n)
					if err != nil {
						return
					}
					req, err := http1.Parse(buf[:hl], http1.Peer{Remote: c.RemoteAddr(), Local: c.LocalAddr()})
					if err != nil {
						return
					}
					var extra []byte
					if m > hl {
						extra = bytes.Clone(buf[hl:m])
					}
					if !f.Forward(c, req, extra) {
						return
					}
					n = copy(buf, buf[hl:m])
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func newForwarder(t *testing.T, addr string, opts Options) *Forwarder {
	t.Helper()
	opts.Addr = addr
	f, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// client is one client connection to the front.
type client struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return &client{t: t, c: c, br: bufio.NewReader(c)}
}

func (c *client) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.c, s); err != nil {
		c.t.Fatal(err)
	}
}

// read reads one response to method, with its body.
func (c *client) read(method string) (*http.Response, string) {
	c.t.Helper()
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		c.t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("body: %v", err)
	}
	return resp, string(body)
}

// closed checks the front closed the connection.
func (c *client) closed() {
	c.t.Helper()
	_ = c.c.SetReadDeadline(time.Now().Add(3 * time.Second))
	n, err := c.br.Read(make([]byte, 1))
	var ne net.Error
	switch {
	case err == nil:
		c.t.Fatalf("connection still open: %d bytes more", n)
	case errors.As(err, &ne) && ne.Timeout():
		c.t.Fatal("connection still open: no end within 3s")
	}
}

func TestForwardHeaders(t *testing.T) {
	t.Parallel()
	got := make(chan *http.Request, 1)
	b := startBackend(t, func(c net.Conn, r *http.Request, _ []byte) bool {
		got <- r
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\nX-End: 1\r\n\r\nhi")
		return true
	})
	front := startFront(t, newForwarder(t, b.ln.Addr().String(), Options{Header: []byte("X-Bridge: yes\r\n")}))
	c := dial(t, front)
	c.send("GET /cgi-bin/x?a=1 HTTP/1.1\r\nHost: board.lan:8080\r\nConnection: keep-alive, X-Secret\r\nX-Secret: s\r\n" +
		"Keep-Alive: 300\r\nTE: trailers\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Host: evil\r\nForwarded: for=6.6.6.6\r\nCookie: a=b\r\n\r\n")
	resp, body := c.read("GET")
	if resp.StatusCode != 200 || body != "hi" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if resp.Header.Get("X-Hop") != "" || resp.Header.Get("Keep-Alive") != "" || resp.Header.Get("X-End") != "1" || resp.Header.Get("X-Bridge") != "yes" {
		t.Fatalf("response header %v", resp.Header)
	}
	r := <-got
	if r.Host != "board.lan:8080" || r.RequestURI != "/cgi-bin/x?a=1" || r.Header.Get("Cookie") != "a=b" {
		t.Fatalf("backend got Host %q target %q header %v", r.Host, r.RequestURI, r.Header)
	}
	for _, name := range []string{"X-Secret", "Te", "Forwarded"} {
		if v := r.Header.Get(name); v != "" {
			t.Errorf("hop-by-hop or spoofed %s: %q reached the backend", name, v)
		}
	}
	want := map[string]string{"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Proto": "http", "X-Forwarded-Host": "board.lan:8080"}
	for k, v := range want {
		if got := r.Header.Values(k); len(got) != 1 || got[0] != v {
			t.Errorf("%s = %q, want %q alone", k, got, v)
		}
	}
}

func TestForwardChunkedResponse(t *testing.T) {
	t.Parallel()
	b := startBackend(t, func(c net.Conn, r *http.Request, _ []byte) bool {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n")
		return true
	})
	front := startFront(t, newForwarder(t, b.ln.Addr().String(), Options{}))
	t.Run("HTTP/1.1 passes it through", func(t *testing.T) {
		c := dial(t, front)
		for range 2 { // the framing is known: the connection stays
			c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
			resp, body := c.read("GET")
			if body != "hello world" || len(resp.TransferEncoding) != 1 || resp.Close {
				t.Fatalf("body %q, encoding %v, close %v", body, resp.TransferEncoding, resp.Close)
			}
		}
	})
	t.Run("HTTP/1.0 gets it plain", func(t *testing.T) {
		c := dial(t, front)
		c.send("GET / HTTP/1.0\r\nHost: a\r\n\r\n")
		resp, body := c.read("GET")
		if body != "hello world" || resp.TransferEncoding != nil || !resp.Close {
			t.Fatalf("body %q, encoding %v, close %v", body, resp.TransferEncoding, resp.Close)
		}
		c.closed()
	})
}

func TestForwardChunkedRequest(t *testing.T) {
	t.Parallel()
	type seen struct {
		length int64
		te     []string
		body   string
	}
	got := make(chan seen, 4)
	b := startBackend(t, func(c net.Conn, r *http.Request, body []byte) bool {
		got <- seen{r.ContentLength, r.TransferEncoding, string(body)}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
		return true
	})
	front := startFront(t, newForwarder(t, b.ln.Addr().String(), Options{MaxBody: 10}))
	c := dial(t, front)
	c.send("POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
	if resp, _ := c.read("POST"); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if s := <-got; s.length != 5 || s.te != nil || s.body != "abcde" {
		t.Fatalf("backend got %+v, want the body with Content-Length: 5", s)
	}
	c = dial(t, front)
	c.send("POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n6\r\nghijkl\r\n0\r\n\r\n")
	if resp, _ := c.read("POST"); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", resp.StatusCode)
	}
	c.closed()
	select {
	case s := <-got:
		t.Fatalf("a body over the limit reached the backend: %+v", s)
	default:
	}
}

func TestForwardNoBody(t *testing.T) {
	t.Parallel()
	b := startBackend(t, func(c net.Conn, r *http.Request, _ []byte) bool {
		switch r.URL.Path {
		case "/head":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
		case "/204":
			io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n")
		case "/304":
			io.WriteString(c, "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n")
		}
		return true
	})
	front := startFront(t, newForwarder(t, b.ln.Addr().String(), Options{}))
	c := dial(t, front)
	// One connection for all three: none has a body, so none ends it.
	c.send("HEAD /head HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, body := c.read("HEAD"); resp.StatusCode != 200 || resp.ContentLength != 1000 || body != "" {
		t.Fatalf("HEAD: %d length %d body %q", resp.StatusCode, resp.ContentLength, body)
	}
	c.send("GET /204 HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, _ := c.read("GET"); resp.StatusCode != 204 || resp.Close {
		t.Fatalf("204: %d close %v", resp.StatusCode, resp.Close)
	}
	c.send("GET /304 HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, _ := c.read("GET"); resp.StatusCode != 304 || resp.Header.Get("Etag") != `"x"` {
		t.Fatalf("304: %d %v", resp.StatusCode, resp.Header)
	}
	if n := b.conns.Load(); n != 1 {
		t.Fatalf("backend connections %d, want 1 kept alive", n)
	}
}

func TestForwardUntilClose(t *testing.T) {
	t.Parallel()
	b := startBackend(t, func(c net.Conn, r *http.Request, _ []byte) bool {
		io.WriteString(c, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it")
		return false
	})
	front := startFront(t, newForwarder(t, b.ln.Addr().String(), Options{}))
	c := dial(t, front)
	c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, body := c.read("GET")
	if body != "all of it" || !resp.Close {
		t.Fatalf("body %q close %v", body, resp.Close)
	}
	c.closed()
}

// TestForwardStreams checks a body's bytes reach the client as the
// backend sends them, not once it is done.
func TestForwardStreams(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	b := startBackend(t, func(c net.Conn, r *http.Request, _ []byte) bool {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nfirst\n")
		<-release
		io.WriteString(c, "second")
		return true
	})
	front := startFront(t, newForwarder(t, b.ln.Addr().String(), Options{}))
	c := dial(t, front)
	c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	close(release)
	if err != nil || line != "first\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
}

func TestForwardExpect(t *testing.T) {
	t.Parallel()
	b := startBackend(t, func(c net.Conn, r *http.Request, body []byte) bool {
		io.WriteString(c, "HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: "+
			strconv.Itoa(len(body))+"\r\n\r\n"+string(body))
		return true
	})
	front := startFront(t, newForwarder(t, b.ln.Addr().String(), Options{}))
	c := dial(t, front)
	c.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
	line, err := c.br.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("before the body: %q, %v; want 100 Continue", line, err)
	}
	c.br.ReadString('\n')
	c.send("body")
	if resp, body := c.read("POST"); resp.StatusCode != 200 || body != "body" {
		t.Fatalf("got %d %q; the 102 is not relayed", resp.StatusCode, body)
	}
}

func TestForwardBackendDown(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	front := startFront(t, newForwarder(t, addr, Options{}))
	c := dial(t, front)
	start := time.Now()
	c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, body := c.read("GET")
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, addr) {
		t.Fatalf("got %d %q, want 502 naming %s", resp.StatusCode, body, addr)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("502 took %v", d)
	}
	c.closed()
}

func TestForwardTimeout(t *testing.T) {
	t.Parallel()
	b := startBackend(t, func(c net.Conn, r *http.Request, _ []byte) bool {
		time.Sleep(2 * time.Second)
		return false
	})
	front := startFront(t, newForwarder(t, b.ln.Addr().String(), Options{Timeout: 300 * time.Millisecond}))
	c := dial(t, front)
	c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, _ := c.read("GET"); resp.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("status %d, want 504", resp.StatusCode)
	}
}

// TestForwardRetry checks a kept backend connection the backend has
// closed since is replaced, unseen by the client, for a GET.
func TestForwardRetry(t *testing.T) {
	t.Parallel()
	b := startBackend(t, func(c net.Conn, r *http.Request, _ []byte) bool {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return false // says nothing of closing, and closes
	})
	front := startFront(t, newForwarder(t, b.ln.Addr().String(), Options{}))
	c := dial(t, front)
	for i := range 3 {
		c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		if resp, body := c.read("GET"); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
		time.Sleep(50 * time.Millisecond) // the close reaches the kept connection
	}
}

// TestForwardClientGone checks a client that leaves while a long-poll
// waits ends the backend's request.
func TestForwardClientGone(t *testing.T) {
	t.Parallel()
	ended := make(chan struct{})
	b := startBackend(t, func(c net.Conn, r *http.Request, _ []byte) bool {
		_, _ = c.Read(make([]byte, 1)) // blocks until the forwarder closes
		close(ended)
		return false
	})
	front := startFront(t, newForwarder(t, b.ln.Addr().String(), Options{}))
	c := dial(t, front)
	c.send("GET /poll HTTP/1.1\r\nHost: a\r\n\r\n")
	time.Sleep(100 * time.Millisecond)
	c.c.Close()
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the backend connection outlived the client")
	}
}

// TestForwardPost checks a Content-Length body goes through byte for
// byte, and the response after it.
func TestForwardPost(t *testing.T) {
	t.Parallel()
	b := startBackend(t, func(c net.Conn, r *http.Request, body []byte) bool {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n")
		c.Write(body)
		return true
	})
	front := startFront(t, newForwarder(t, b.ln.Addr().String(), Options{}))
	c := dial(t, front)
	payload := bytes.Repeat([]byte("0123456789abcdef"), 300<<10/16)
	c.send("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: " + strconv.Itoa(len(payload)) + "\r\n\r\n")
	go c.c.Write(payload)
	if resp, body := c.read("POST"); resp.StatusCode != 200 || body != string(payload) {
		t.Fatalf("status %d, body %d bytes, want %d echoed", resp.StatusCode, len(body), len(payload))
	}
}

// TestForwardRefused checks what never reaches the backend: a tunnel, a
// body whose length does not parse.
func TestForwardRefused(t *testing.T) {
	t.Parallel()
	b := startBackend(t, func(c net.Conn, r *http.Request, _ []byte) bool {
		t.Errorf("backend got %s %s", r.Method, r.RequestURI)
		return false
	})
	front := startFront(t, newForwarder(t, b.ln.Addr().String(), Options{}))
	for req, status := range map[string]int{
		"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n":            http.StatusMethodNotAllowed,
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n": http.StatusBadRequest,
	} {
		c := dial(t, front)
		c.send(req)
		if resp, _ := c.read("GET"); resp.StatusCode != status {
			t.Errorf("%q: %d, want %d", req, resp.StatusCode, status)
		}
		c.closed()
	}
}

func TestForwardUnix(t *testing.T) {
	t.Parallel()
	path := t.TempDir() + "/httpd.sock"
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		if _, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nunix")
		}
	}()
	front := startFront(t, newForwarder(t, "unix:"+path, Options{}))
	c := dial(t, front)
	c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, body := c.read("GET"); resp.StatusCode != 200 || body != "unix" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
}

func TestParseAddr(t *testing.T) {
	for _, tc := range []struct{ in, network string }{
		{"127.0.0.1:8081", "tcp"}, {"[::1]:80", "tcp"}, {"localhost:80", "tcp"}, {"unix:/run/httpd.sock", "unix"},
		{"8081", ""}, {":8081", ""}, {"127.0.0.1:0", ""}, {"127.0.0.1:http", ""}, {"unix:rel", ""},
	} {
		n, _, err := ParseAddr(tc.in)
		if n != tc.network || (err == nil) != (tc.network != "") {
			t.Errorf("ParseAddr(%q) = %q, %v; want %q", tc.in, n, err, tc.network)
		}
	}
}

// TestForwardPostAfterIdleClose checks a POST after the backend closed a
// kept connection (its keep-alive timeout, lighttpd's 5 s) goes out on a
// new one: a body is not sent twice, so the kept one must be found dead
// before the request is written, not after.
func TestForwardPostAfterIdleClose(t *testing.T) {
	t.Parallel()
	b := startBackend(t, func(c net.Conn, r *http.Request, body []byte) bool {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(len(body)+2)+"\r\n\r\nok")
		c.Write(body)
		return false // says nothing of closing, and closes
	})
	front := startFront(t, newForwarder(t, b.ln.Addr().String(), Options{}))
	c := dial(t, front)
	c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, body := c.read("GET"); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("GET: %d %q", resp.StatusCode, body)
	}
	time.Sleep(50 * time.Millisecond) // the close reaches the kept connection
	c.send("POST /form HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nx=1")
	if resp, body := c.read("POST"); resp.StatusCode != 200 || body != "okx=1" {
		t.Fatalf("POST after the backend closed its kept connection: %d %q", resp.StatusCode, body)
	}
}

// TestForwardStaleBytes checks bytes a backend sent on a kept connection
// after a response (a body to a HEAD, a second answer) never reach the
// client as the answer to its next request.
func TestForwardStaleBytes(t *testing.T) {
	t.Parallel()
	b := startBackend(t, func(c net.Conn, r *http.Request, _ []byte) bool {
		if r.Method == "HEAD" {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 41\r\n\r\n")
			time.Sleep(20 * time.Millisecond) // the body in a later read
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale")
			return true
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh")
		return true
	})
	front := startFront(t, newForwarder(t, b.ln.Addr().String(), Options{}))
	c := dial(t, front)
	c.send("HEAD / HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, _ := c.read("HEAD"); resp.StatusCode != 200 {
		t.Fatalf("HEAD: %d", resp.StatusCode)
	}
	time.Sleep(100 * time.Millisecond)
	c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, body := c.read("GET"); resp.StatusCode != 200 || body != "fresh" {
		t.Fatalf("GET after a HEAD answered with a body: %d %q, want the backend's fresh answer", resp.StatusCode, body)
	}
}

// TestForwardUnderscoreSpoof checks a client cannot forge the forwarded
// fields with underscores: a CGI server maps X_Forwarded_For and
// X-Forwarded-For both to HTTP_X_FORWARDED_FOR, and boa's getenv takes
// the first, the client's.
func TestForwardUnderscoreSpoof(t *testing.T) {
	t.Parallel()
	got := make(chan *http.Request, 1)
	b := startBackend(t, func(c net.Conn, r *http.Request, _ []byte) bool {
		got <- r
		io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n")
		return true
	})
	front := startFront(t, newForwarder(t, b.ln.Addr().String(), Options{}))
	c := dial(t, front)
	c.send("GET / HTTP/1.1\r\nHost: a\r\nX_Forwarded_For: 6.6.6.6\r\nx_forwarded_proto: https\r\nX-Forwarded_Host: evil\r\nX_Other: kept\r\n\r\n")
	if resp, _ := c.read("GET"); resp.StatusCode != 204 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	r := <-got
	cgi := map[string][]string{}
	for k, v := range r.Header {
		name := "HTTP_" + strings.ToUpper(strings.ReplaceAll(k, "-", "_"))
		cgi[name] = append(cgi[name], v...)
	}
	want := map[string]string{"HTTP_X_FORWARDED_FOR": "127.0.0.1", "HTTP_X_FORWARDED_PROTO": "http", "HTTP_X_FORWARDED_HOST": "a", "HTTP_X_OTHER": "kept"}
	for k, v := range want {
		if len(cgi[k]) != 1 || cgi[k][0] != v {
			t.Errorf("the backend's CGI sees %s = %q, want %q alone (header %v)", k, cgi[k], v, r.Header)
		}
	}
}

// TestForwardAmbiguousLength checks the framing RFC 9112 forbids keeping
// a connection after: a request with both Content-Length and
// Transfer-Encoding (a proxy in front that framed it by the length would
// take the rest for a next request), and one whose last coding is not
// chunked, whose length is unknown (400).
func TestForwardAmbiguousLength(t *testing.T) {
	t.Parallel()
	b := startBackend(t, func(c net.Conn, r *http.Request, body []byte) bool {
		if string(body) != "hello" {
			t.Errorf("backend got %s %q", r.Method, body)
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return true
	})
	front := startFront(t, newForwarder(t, b.ln.Addr().String(), Options{}))
	chunked := "5\r\nhello\r\n0\r\n\r\n"
	for req, status := range map[string]int{
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n": 200,
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n":                         400,
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n":                400,
	} {
		c := dial(t, front)
		c.send(req)
		time.Sleep(20 * time.Millisecond) // the body apart from the head, as a proxy may send it
		c.send(chunked)
		if resp, _ := c.read("POST"); resp.StatusCode != status {
			t.Errorf("%q: %d, want %d", req, resp.StatusCode, status)
		}
		c.closed()
	}
}
