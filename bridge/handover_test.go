package bridge

import (
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/bridge/transport"
	"github.com/wsbridge/wsbridge/bridge/wstest"
)

// A connection a web server hands over is served as one the daemon
// accepted: TestModesOverTransports runs every mode over both kinds of
// hand-over. These are the rest: what the program and the access log
// say of the client, the origin policy, the limits, the answers to what
// is not an upgrade, and shutdown.

func serveHandover(t *testing.T, opts Options) *stoppable {
	t.Helper()
	return serveListening(t, opts, filepath.Join(t.TempDir(), "handover.sock"))
}

// TestHandOverClientAddress: the program's REMOTE_ADDR and REMOTE_PORT
// and the access log are the client's, not the web server's; its
// REQUEST_URI and SCRIPT_NAME are what a direct connection gets.
func TestHandOverClientAddress(t *testing.T) {
	for _, pipes := range []bool{false, true} {
		t.Run(map[bool]string{false: "socket", true: "pipes"}[pipes], func(t *testing.T) {
			s := serveHandover(t, Options{Endpoints: []Endpoint{{Path: "/env", Command: []string{testChildPath(t), "env"}}}})
			c := dial(t, startWebServer(t, s.handover, pipes), handoverCGI+"/env?q=1", 0)
			client := c.Conn.LocalAddr().(*net.TCPAddr)
			// The child prints its environment, then echoes.
			send(t, c, "still echoing", 0)
			env := map[string]string{}
			for {
				_, p, err := read(c, 10*time.Second)
				if err != nil {
					t.Fatalf("reading the environment: %v (so far %v)", err, env)
				}
				if p == "still echoing" {
					break
				}
				if k, v, ok := strings.Cut(p, "="); ok {
					env[k] = v
				}
			}
			if env["REMOTE_ADDR"] != "127.0.0.1" || env["REMOTE_PORT"] != strconv.Itoa(client.Port) {
				t.Errorf("REMOTE_ADDR %s REMOTE_PORT %s, want the client's 127.0.0.1 %d", env["REMOTE_ADDR"], env["REMOTE_PORT"], client.Port)
			}
			if env["REQUEST_URI"] != "/env?q=1" || env["QUERY_STRING"] != "q=1" {
				t.Errorf("REQUEST_URI %q QUERY_STRING %q: want the daemon's own, /env?q=1", env["REQUEST_URI"], env["QUERY_STRING"])
			}
			answerClose(c, transport.CloseNormal)
			rec := s.log.WaitRecords(t, "session", 1, 15*time.Second)[0]
			if rec["remote"] != client.String() || rec["close"] != "1000" {
				t.Errorf("access log %v: want remote %s and close 1000", rec, client)
			}
		})
	}
}

// TestHandOverPolicies: the origin policy, the fork limit and the upgrade's
// own checks answer a handed-over request as they answer one on the
// daemon's port; a plain request is answered and the connection ends
// there (the client's next request is the web server's).
func TestHandOverPolicies(t *testing.T) {
	child := testChildPath(t)
	s := serveHandover(t, Options{MaxForks: 1, Endpoints: []Endpoint{{Command: []string{child, "echo"}}}})
	web := func() string { return startWebServer(t, s.handover, false) }

	// Same origin: the page came from the web server, whose Host the
	// upgrade carries.
	addr := web()
	first := wstest.MustDial(t, addr, wstest.Options{Path: handoverCGI + "/", Header: []string{"Origin: http://" + addr}})
	send(t, first, "hi", 0)
	expectWhole(t, first, "hi")

	for _, c := range []struct {
		name   string
		header []string
		status string
	}{
		{"another origin", []string{"Origin: http://evil.example"}, "403"},
		{"over --maxforks", nil, "429"},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn, err := wstest.DialTCP(web(), wstest.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Conn.Close()
			req, key := wstest.UpgradeRequest(conn.Conn.RemoteAddr().String(), handoverCGI+"/", c.header...)
			resp, err := conn.Request(req, key)
			if err != nil || !strings.HasPrefix(resp.Status, c.status) {
				t.Fatalf("answer %v, %v: want %s", resp, err, c.status)
			}
		})
	}
	answerClose(first, transport.CloseNormal)

	t.Run("no key", func(t *testing.T) {
		conn, err := net.Dial("tcp", web())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		io.WriteString(conn, "GET "+handoverCGI+"/ HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n")
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, _ := io.ReadAll(conn)
		if !strings.HasPrefix(string(b), "HTTP/1.1 400 ") {
			t.Errorf("answer %q, want 400", b)
		}
	})
	t.Run("plain request", func(t *testing.T) {
		conn, err := net.Dial("tcp", web())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		io.WriteString(conn, "GET "+handoverCGI+"/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, err := io.ReadAll(conn) // ends: the daemon closes after one answer
		if err != nil || !strings.HasPrefix(string(b), "HTTP/1.1 426 ") || !strings.Contains(string(b), "Connection: close\r\n") {
			t.Errorf("answer %q, %v: want a 426 that closes the connection", b, err)
		}
	})
}

// TestHandOverShutdown: a handed-over session is closed with 1001 at
// shutdown, as any other, and Serve waits for it.
func TestHandOverShutdown(t *testing.T) {
	s := serveHandover(t, Options{Endpoints: []Endpoint{{Command: []string{testChildPath(t), "echo"}}}})
	c := dial(t, startWebServer(t, s.handover, true), handoverCGI+"/", 0)
	send(t, c, "x", 0)
	expectWhole(t, c, "x")
	s.shutdown()
	expectCloseAnswer(t, c, transport.CloseGoingAway)
	answerClose(c, transport.CloseGoingAway)
	if err := s.wait(t, 30*time.Second); err != nil {
		t.Fatal(err)
	}
}

// TestHandOverIdleParks: an idle client handed over, by its socket or
// through a web server's pipes, parks as one accepted does: no goroutine
// of the bridge waits for it.
func TestHandOverIdleParks(t *testing.T) {
	const n = 20
	for _, pipes := range []bool{false, true} {
		t.Run(map[bool]string{false: "socket", true: "pipes"}[pipes], func(t *testing.T) {
			s := serveHandover(t, Options{Endpoints: []Endpoint{{Command: []string{testChildPath(t), "broadcast"}, Mode: ModeShared}}})
			var cs []*wstest.Conn
			for range n {
				c := dial(t, startWebServer(t, s.handover, pipes), handoverCGI+"/", 0)
				cs = append(cs, c)
			}
			waitMembers(t, s.srv, "", n)
			send(t, cs[0], "wake", 0)
			for _, c := range cs {
				for {
					_, p, err := read(c, 10*time.Second)
					if err != nil {
						t.Fatal(err)
					}
					if p == "echo: wake" {
						break
					}
				}
			}
			waitParked(t, n, "handed-over clients")
			for _, c := range cs {
				answerClose(c, transport.CloseNormal)
			}
		})
	}
}
