package bridge

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/bridge/http1"
	"github.com/wsbridge/wsbridge/bridge/internal/memconn"
	"github.com/wsbridge/wsbridge/bridge/transport"
	"github.com/wsbridge/wsbridge/bridge/wstest"
	"github.com/wsbridge/wsbridge/framing"
)

// The modes are driven through two transports by the same tests: a real
// WebSocket over loopback TCP, and memconn, an in-memory transport with
// no socket and a wire of its own that joins through Server.ServeClient,
// as the fallback transports will. That the tests pass through both says
// the modes talk to their clients only through the transport seam.

// peer is a client under test, of either transport.
type peer interface {
	send(msg string)   // one text message
	next() frame       // the next message or the close
	close(code uint16) // the client's close
}

// frame is what a peer reads: a message, or a close.
type frame struct {
	msg    string
	close  bool
	code   transport.CloseCode
	reason string
	err    error
}

// transports are what the modes' tests run over: the two above, and a
// WebSocket a web server hands over, its socket (boa) or through pipes
// it relays (lighttpd).
var transports = []struct {
	name string
	dial func(t *testing.T, s *stoppable, path string) peer
}{
	{"websocket", dialWSPeer},
	{"memory", dialMemPeer},
	{"handover-socket", dialHandedOver(false)},
	{"handover-pipes", dialHandedOver(true)},
}

type wsPeer struct{ c *wstest.Conn }

func dialWSPeer(t *testing.T, s *stoppable, path string) peer {
	return wsPeer{dial(t, s.addr, path, 0)}
}

// dialHandedOver dials a web server that hands the connection over to
// s's hand-over socket.
func dialHandedOver(pipes bool) func(t *testing.T, s *stoppable, path string) peer {
	return func(t *testing.T, s *stoppable, path string) peer {
		return wsPeer{dial(t, startWebServer(t, s.handover, pipes), handoverCGI+path, 0)}
	}
}

func (p wsPeer) send(msg string) { _ = p.c.WriteMessage(wstest.OpText, []byte(msg), 0) }

func (p wsPeer) next() frame {
	f, err := p.c.ReadFrame(10 * time.Second)
	switch {
	case err != nil:
		return frame{err: err}
	case f.Op == wstest.OpClose:
		return frame{close: true, code: transport.CloseCode(f.CloseCode()), reason: f.CloseReason()}
	case f.Op != wstest.OpText || !f.Fin:
		return frame{err: fmt.Errorf("opcode %v, fin %v", f.Op, f.Fin)}
	}
	return frame{msg: string(f.Payload)}
}

func (p wsPeer) close(code uint16) { _ = p.c.WriteClose(int(code), "") }

type memPeer struct{ p *memconn.Peer }

// dialMemPeer joins an in-memory client to path through ServeClient,
// with a request parsed as one from the network would be.
func dialMemPeer(t *testing.T, s *stoppable, path string) peer {
	t.Helper()
	srv, addr := s.srv, s.addr
	c, p := memconn.Pair(memconn.Options{})
	head := "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\n\r\n"
	req, err := http1.Parse([]byte(head), http1.Peer{
		Remote: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 40000},
		Local:  &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.ServeClient(c, req, func() {}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Hangup)
	return memPeer{p}
}

func (m memPeer) send(msg string) { _ = m.p.Send(framing.Text, []byte(msg), 0) }

func (m memPeer) next() frame {
	got, err := m.p.Next(10 * time.Second)
	switch {
	case err != nil:
		return frame{err: err}
	case got.Close:
		return frame{close: true, code: got.Code, reason: got.Reason}
	case got.Kind != framing.Text:
		return frame{err: fmt.Errorf("a %v message", got.Kind)}
	}
	return frame{msg: string(got.Data)}
}

func (m memPeer) close(code uint16) { _ = m.p.Close(transport.CloseCode(code), "") }

// expect fails unless p's next message is want.
func expect(t *testing.T, p peer, want string) {
	t.Helper()
	if f := p.next(); f.err != nil || f.close || f.msg != want {
		t.Fatalf("got %+v, want message %q", f, want)
	}
}

// expectClose fails unless p's next frame is a close with code, and
// returns its reason.
func expectClose(t *testing.T, p peer, code transport.CloseCode) string {
	t.Helper()
	f := p.next()
	if f.err != nil || !f.close || f.code != code {
		t.Fatalf("got %+v, want close %d", f, code)
	}
	return f.reason
}

// bye closes p with 1000 and checks the server echoes it.
func bye(t *testing.T, p peer) {
	t.Helper()
	p.close(uint16(transport.CloseNormal))
	expectClose(t, p, transport.CloseNormal)
}

// TestModesOverTransports runs a client of each mode over each transport:
// what it sends reaches the program, what the program says reaches it,
// and the program's end, or the client's, closes it with the right code.
func TestModesOverTransports(t *testing.T) {
	child := testChildPath(t)
	st := serveListening(t, Options{Endpoints: []Endpoint{
		{Path: "/echo", Command: []string{child, "echo"}},
		{Path: "/exit", Command: []string{child, "exit", "3", "bye now"}},
		{Path: "/broadcast", Command: []string{child, "broadcast"}, Mode: ModeShared},
		{Path: "/mux", Command: []string{child, "mux"}, Mode: ModeShared, Framing: "mux"},
		{Path: "/cgi", Command: []string{child, "cat"}, Mode: ModeCGI},
	}}, filepath.Join(t.TempDir(), "handover.sock"))
	srv := st.srv
	for _, tr := range transports {
		dial := func(t *testing.T, path string) peer { return tr.dial(t, st, path) }
		t.Run(tr.name, func(t *testing.T) {
			t.Run("process", func(t *testing.T) {
				p := dial(t, "/echo")
				for _, m := range []string{"hello", "", "wörld"} {
					p.send(m)
					expect(t, p, m)
				}
				bye(t, p)
				q := dial(t, "/exit")
				expect(t, q, "bye now")
				if why := expectClose(t, q, transport.CloseInternalError); !strings.Contains(why, "3") {
					t.Fatalf("close reason %q does not say the exit status", why)
				}
				q.close(uint16(transport.CloseInternalError))
			})
			t.Run("shared", func(t *testing.T) {
				a := dial(t, "/broadcast")
				b := dial(t, "/broadcast")
				waitMembers(t, srv, "/broadcast", 2)
				a.send("hi all")
				expect(t, a, "echo: hi all")
				expect(t, b, "echo: hi all")
				bye(t, a)
				b.send("just me")
				expect(t, b, "echo: just me")
				bye(t, b)
			})
			t.Run("mux", func(t *testing.T) {
				a := dial(t, "/mux")
				f := a.next()
				if f.err != nil || !strings.HasPrefix(f.msg, "hello ") {
					t.Fatalf("first message %+v, want the child's hello", f)
				}
				id := strings.Fields(f.msg)[1]
				a.send("x")
				expect(t, a, "echo "+id+": x")
				b := dial(t, "/mux")
				if f := b.next(); !strings.HasPrefix(f.msg, "hello ") {
					t.Fatalf("b's first message %+v", f)
				}
				a.send("all:both")
				expect(t, a, "both")
				expect(t, b, "both")
				a.send("close:4000:done")
				if why := expectClose(t, a, 4000); why != "done" {
					t.Fatalf("close reason %q, want done", why)
				}
				a.close(4000)
				expect(t, b, "left "+id+" 4000")
				bye(t, b)
			})
			t.Run("cgi", func(t *testing.T) {
				p := dial(t, "/cgi")
				for _, m := range []string{"one", "two", "three"} {
					p.send(m)
				}
				for _, m := range []string{"one", "two", "three"} {
					expect(t, p, m)
				}
				bye(t, p)
			})
		})
	}
}
