package bridge

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

// What a session gives its program (the CGI environment), and what it
// tells the operator (stderr and access lines); many at once.

// The child's CGI environment. Not parallel: the daemon's variables are
// the test process's, set here.
func TestEnvironment(t *testing.T) {
	t.Setenv("SECRET", "1")
	t.Setenv("FOO", "bar")
	// env reads the child's environment: it sends END after connecting and
	// collects the lines the env child prints before echoing it.
	env := func(t *testing.T, p *program, path string, headers ...string) (map[string]string, string) {
		t.Helper()
		c := wstest.MustDial(t, p.addr, wstest.Options{Path: path, Header: headers})
		if err := c.WriteFrame(true, wstest.OpText, []byte("END")); err != nil {
			t.Fatal(err)
		}
		vars := map[string]string{}
		for {
			op, data, _, err := c.ReadMessage(5 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if op != wstest.OpText {
				t.Fatalf("binary message %q", data)
			}
			if string(data) == "END" {
				return vars, c.Conn.LocalAddr().String()
			}
			k, v, _ := strings.Cut(string(data), "=")
			vars[k] = v
		}
	}

	envChild := []string{testChildPath(t), "env"}
	p := runProgram(t, Options{}, Endpoint{Command: envChild})
	vars, local := env(t, p, "/some/path?x=1&y=%20",
		"X-Custom: hello", "X_Under: smuggled", "X.Dot: dotted", "X-Ctl: a\x01b\x7fc\td")
	_, localPort, _ := strings.Cut(local, ":")
	want := map[string]string{
		"REMOTE_ADDR":       "127.0.0.1",
		"REMOTE_PORT":       localPort,
		"SERVER_NAME":       "127.0.0.1",
		"SERVER_PORT":       p.port,
		"SERVER_PROTOCOL":   "HTTP/1.1",
		"REQUEST_METHOD":    "GET",
		"REQUEST_URI":       "/some/path?x=1&y=%20",
		"SCRIPT_NAME":       "/some/path",
		"PATH_INFO":         "",
		"QUERY_STRING":      "x=1&y=%20",
		"GATEWAY_INTERFACE": "CGI/1.1",
		"HTTP_HOST":         p.addr,
		"HTTP_X_CUSTOM":     "hello",
		"HTTP_X_CTL":        "abc\td",
		"PATH":              os.Getenv("PATH"),
	}
	for k, v := range want {
		if got, ok := vars[k]; !ok || got != v {
			t.Errorf("%s=%q (set: %v), want %q", k, got, ok, v)
		}
	}
	if !strings.HasPrefix(vars["SERVER_SOFTWARE"], "wsbridge/") {
		t.Errorf("SERVER_SOFTWARE=%q, want wsbridge/...", vars["SERVER_SOFTWARE"])
	}
	for k, v := range vars {
		if k == "SECRET" || k == "FOO" || strings.Contains(k, "UNDER") || strings.Contains(k, "DOT") {
			t.Errorf("%s=%q leaked into the child's environment", k, v)
		}
	}
	vars2, _ := env(t, p, "/")
	if vars["UNIQUE_ID"] == "" || vars["UNIQUE_ID"] == vars2["UNIQUE_ID"] {
		t.Errorf("UNIQUE_ID %q then %q: want two different ids", vars["UNIQUE_ID"], vars2["UNIQUE_ID"])
	}

	// websocketd passes every request header, the handshake's too; a
	// browser can set no header but Sec-WebSocket-Protocol, so programs
	// read tokens from HTTP_SEC_WEBSOCKET_PROTOCOL.
	t.Run("handshake headers", func(t *testing.T) {
		vars, _ := env(t, p, "/", "Sec-WebSocket-Protocol: chat.v1, token.abc")
		for k, v := range map[string]string{
			"HTTP_UPGRADE":                "websocket",
			"HTTP_CONNECTION":             "Upgrade",
			"HTTP_SEC_WEBSOCKET_VERSION":  "13",
			"HTTP_SEC_WEBSOCKET_PROTOCOL": "chat.v1, token.abc",
		} {
			if got, ok := vars[k]; got != v {
				t.Errorf("BUG: %s=%q (set: %v), want %q: headers the upgrader consumes never reach the environment", k, got, ok, v)
			}
		}
		if vars["HTTP_SEC_WEBSOCKET_KEY"] == "" {
			t.Errorf("BUG: no HTTP_SEC_WEBSOCKET_KEY")
		}
	})

	t.Run("passenv", func(t *testing.T) {
		p := runProgram(t, Options{}, Endpoint{Command: envChild, PassEnv: []string{"FOO"}})
		vars, _ := env(t, p, "/")
		if vars["FOO"] != "bar" {
			t.Errorf("FOO=%q, want bar", vars["FOO"])
		}
		for _, k := range []string{"PATH", "SECRET"} {
			if v, ok := vars[k]; ok {
				t.Errorf("%s=%q passed without PassEnv naming it", k, v)
			}
		}
	})
}

// What the child writes on stderr is logged, tagged with the
// connection's id.
func TestStderrLogged(t *testing.T) {
	t.Parallel()
	p := runProgram(t, Options{}, Endpoint{Command: []string{testChildPath(t), "stderr", "3"}})
	for range 2 {
		c := p.dial(t, "/")
		if err := c.WriteMessage(wstest.OpText, []byte("x"), 0); err != nil {
			t.Fatal(err)
		}
		readText(t, c)
		if _, err := c.CloseHandshake(1000, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	byID := map[string][]string{}
	for _, rec := range p.log.WaitRecords(t, "child stderr", 6, 5*time.Second) {
		byID[rec["id"]] = append(byID[rec["id"]], rec["line"])
	}
	access := p.access(t, 2)
	for _, a := range access {
		if got := strings.Join(byID[a["id"]], ","); got != "err 1,err 2,err 3" {
			t.Errorf("stderr lines tagged id=%s: %q, want err 1..3", a["id"], got)
		}
	}
	if len(byID) != 2 {
		t.Errorf("stderr lines under ids %v, want the two sessions' ids", byID)
	}
}

// One access line per connection with what an operator needs, at the
// access level (the daemon names it ACCESS).
func TestAccessLog(t *testing.T) {
	t.Parallel()
	p := runProgram(t, Options{}, Endpoint{Command: []string{testChildPath(t), "echo"}})
	type conn struct {
		remote string
		pid    int
		close  string
	}
	var conns []conn
	for i, polite := range []bool{true, false} {
		c := p.dial(t, "/")
		for _, m := range []string{"hello", "hi"} {
			if err := c.WriteFrame(true, wstest.OpText, []byte(m)); err != nil {
				t.Fatal(err)
			}
			if _, data, _, err := c.ReadMessage(5 * time.Second); err != nil || string(data) != m {
				t.Fatalf("echo of %q: %q %v", m, data, err)
			}
		}
		kids := p.waitChildren(t, 1, 5*time.Second)
		cc := conn{remote: c.Conn.LocalAddr().String(), pid: kids[0].PID, close: "1006"}
		if polite {
			cc.close = "1000"
			if err := c.WriteClose(1000, ""); err != nil {
				t.Fatal(err)
			}
			if f, err := c.ReadFrame(5 * time.Second); err != nil || f.Op != wstest.OpClose || f.CloseCode() != 1000 {
				t.Fatalf("close answered with %+v %v", f, err)
			}
			c.ExpectEOF(t, 5*time.Second)
		} else {
			c.Conn.Close() // gone without a close frame
		}
		conns = append(conns, cc)
		p.access(t, i+1)
	}
	recs := p.access(t, 2)
	if len(recs) != 2 {
		t.Fatalf("%d access lines, want 2", len(recs))
	}
	for i, rec := range recs {
		want := map[string]string{
			"level": LevelAccess.String(), "id": strconv.Itoa(i + 1), "remote": conns[i].remote,
			"pid": strconv.Itoa(conns[i].pid), "in": "7", "out": "7",
			"close": conns[i].close, "exit": "exit status 0",
		}
		for k, v := range want {
			if rec[k] != v {
				t.Errorf("access line %d: %s=%q, want %q (line %v)", i+1, k, rec[k], v, rec)
			}
		}
		if d, err := time.ParseDuration(rec["duration"]); err != nil || d <= 0 {
			t.Errorf("access line %d: duration=%q", i+1, rec["duration"])
		}
	}
}

// Many connections at once: each gets its own child and a round trip;
// afterwards no child of the server is left.
func TestManyConnections(t *testing.T) {
	skipShort(t)
	const n = 200
	p := runProgram(t, Options{}, Endpoint{Command: []string{testChildPath(t), "echo"}})
	var (
		wg       sync.WaitGroup
		opened   sync.WaitGroup // all n connections open at once
		release  = make(chan struct{})
		failures atomic.Int64
		errOnce  sync.Once
		firstErr error
	)
	fail := func(err error) {
		failures.Add(1)
		errOnce.Do(func() { firstErr = err })
	}
	start := time.Now()
	opened.Add(n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			openedOnce := sync.OnceFunc(opened.Done)
			defer openedOnce()
			c, err := wstest.Dial(p.addr, wstest.Options{Path: "/", Timeout: 60 * time.Second})
			if err != nil {
				fail(err)
				return
			}
			defer c.Conn.Close()
			msg := fmt.Sprintf("hello %d", i)
			if err := c.WriteMessage(wstest.OpText, []byte(msg), 0); err != nil {
				fail(err)
				return
			}
			if _, got, _, err := c.ReadMessage(60 * time.Second); err != nil || string(got) != msg {
				fail(fmt.Errorf("connection %d: got %q %v", i, got, err))
				return
			}
			openedOnce()
			<-release
			if _, err := c.CloseHandshake(1000, 30*time.Second); err != nil {
				fail(err)
			}
		}()
	}
	opened.Wait()
	peak := len(p.children())
	close(release)
	wg.Wait()
	t.Logf("%d connections, %d children at the peak, in %v", n, peak, time.Since(start).Round(time.Millisecond))
	if failures.Load() > 0 {
		t.Fatalf("%d of %d connections failed; first: %v", failures.Load(), n, firstErr)
	}
	if peak != n {
		t.Errorf("%d children while %d connections were open", peak, n)
	}
	p.waitChildren(t, 0, 20*time.Second)
	if recs := p.access(t, n); len(recs) != n {
		t.Errorf("%d access lines, want %d", len(recs), n)
	}
	// Zombies have no environment to tell them by: the server's count
	// of its children says none is left unreaped.
	waitFor(t, "no child counted", func() bool { return p.srv.forks.Load() == 0 })
}
