package bridge

import (
	"bytes"
	"github.com/wsbridge/wsbridge/bridge/transport"
	"github.com/wsbridge/wsbridge/bridge/wstest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCutMessagesNeverReachTheProgram sends, for each way a message can
// fail to arrive whole and valid, the start of a message with a marker in
// it, then a whole message from another client; the program (the shared
// child, or each CGI script) appends all it reads to a file, which must
// hold the whole messages and no marker, whatever the framing.
func TestCutMessagesNeverReachTheProgram(t *testing.T) {
	sh := "/bin/sh"
	if _, err := os.Stat(sh); err != nil {
		t.Skipf("no %s here", sh)
	}
	const maxMessage = 4096
	// Each case writes frames that open a message holding marker and
	// never finish it whole; want is the close the client gets, or 0
	// when the client drops the connection itself.
	cases := []struct {
		name  string
		wire  func(t *testing.T, marker []byte) []byte
		drop  bool
		want  transport.CloseCode
		after func(t *testing.T, marker []byte) []byte // sent after the close is read
	}{
		{name: "tcp dropped mid-frame", drop: true, wire: func(t *testing.T, m []byte) []byte {
			f := wstest.AppendFrame(nil, wstest.Frame{Fin: true, Op: wstest.OpText, Payload: append(bytes.Clone(m), make([]byte, 100)...)})
			return f[:len(f)-50]
		}},
		{name: "tcp dropped mid-message", drop: true, wire: func(t *testing.T, m []byte) []byte {
			return wstest.AppendFrame(nil, wstest.Frame{Op: wstest.OpText, Payload: m})
		}},
		{name: "closed mid-message", want: transport.CloseNormal, wire: func(t *testing.T, m []byte) []byte {
			return append(wstest.AppendFrame(nil, wstest.Frame{Op: wstest.OpText, Payload: m}), wstest.AppendFrame(nil, wstest.Frame{Fin: true, Op: wstest.OpClose, Payload: []byte{3, 232}})...)
		}},
		{name: "invalid UTF-8", want: transport.CloseInvalidPayload, wire: func(t *testing.T, m []byte) []byte {
			return append(wstest.AppendFrame(nil, wstest.Frame{Op: wstest.OpText, Payload: m}), wstest.AppendFrame(nil, wstest.Frame{Fin: true, Op: wstest.OpContinuation, Payload: []byte{0xff}})...)
		}},
		{name: "over max-message", want: transport.CloseMessageTooBig, wire: func(t *testing.T, m []byte) []byte {
			return append(wstest.AppendFrame(nil, wstest.Frame{Op: wstest.OpText, Payload: m}), wstest.AppendFrame(nil, wstest.Frame{Fin: true, Op: wstest.OpContinuation, Payload: make([]byte, maxMessage)})...)
		}},
		{name: "protocol error", want: transport.CloseProtocolError, wire: func(t *testing.T, m []byte) []byte {
			return append(wstest.AppendFrame(nil, wstest.Frame{Op: wstest.OpText, Payload: m}), wstest.AppendFrame(nil, wstest.Frame{Fin: true, Op: wstest.OpText, Payload: []byte("x")})...)
		}},
	}
	dir := t.TempDir()
	var eps []Endpoint
	modes := []struct{ path, framing string }{
		{"/line", "line"}, {"/len32", "len32"}, {"/mux", "mux"}, {"/cgi", ""},
	}
	for _, m := range modes {
		out := filepath.Join(dir, strings.TrimPrefix(m.path, "/"))
		ep := Endpoint{Path: m.path, Framing: m.framing, MaxMessage: maxMessage,
			Command: []string{sh, "-c", `cat >>"$0"`, out}, Mode: ModeShared} // sh keeps stdout open: a child that closes it is restarted
		if m.framing == "" {
			ep.Mode = ModeCGI
		}
		eps = append(eps, ep)
	}
	srv, addr := serveTest(t, Options{Endpoints: eps, CloseTimeout: 20 * time.Second})
	for _, m := range modes {
		t.Run(m.path, func(t *testing.T) {
			out := filepath.Join(dir, strings.TrimPrefix(m.path, "/"))
			for _, tc := range cases {
				marker := []byte("CUT " + tc.name)
				c := dial(t, addr, m.path, 0)
				if _, err := c.Conn.Write(tc.wire(t, marker)); err != nil {
					t.Fatal(err)
				}
				if tc.drop {
					c.Conn.Close()
				} else if got := closeCodeOf(c, 20*time.Second); got != tc.want {
					t.Fatalf("%s: close %d, want %d", tc.name, got, tc.want)
				} else {
					answerClose(c, tc.want)
				}
			}
			// Whatever was held for the clients is gone once they are.
			waitFor(t, "the cut clients to be gone", func() bool { return srv.conns.Load() == 0 })
			ok := dial(t, addr, m.path, 0)
			send(t, ok, "whole message", 3) // in fragments, assembled
			waitFor(t, "the whole message in "+out, func() bool {
				b, _ := os.ReadFile(out)
				return bytes.Contains(b, []byte("whole message"))
			})
			answerClose(ok, transport.CloseNormal)
			waitFor(t, "the last client to be gone", func() bool { return srv.conns.Load() == 0 })
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(b, []byte("CUT")) {
				t.Fatalf("part of a message that never arrived whole reached the program:\n%q", b)
			}
			if m.framing == "len32" && !bytes.Equal(b, append([]byte{0x80, 0, 0, 13}, "whole message"...)) {
				t.Fatalf("len32 program read %q, want only the whole message's record (a text record)", b)
			}
			if m.framing == "line" && string(b) != "whole message\n" {
				t.Fatalf("line program read %q, want only the whole message's line", b)
			}
			ep, _, _ := srv.routes.find(m.path)
			if held := ep.budget.Held(); held != 0 {
				t.Fatalf("%d bytes still charged to the assembly budget with every client gone", held)
			}
		})
	}
}

// TestAssemblyBudget holds unfinished messages from several clients of a
// shared and a CGI endpoint: together they may hold AssemblyBudget bytes;
// the client whose message does not fit is closed with 1013, the others
// are not, and the room comes back when a holder leaves.
func TestAssemblyBudget(t *testing.T) {
	sh := "/bin/sh"
	if _, err := os.Stat(sh); err != nil {
		t.Skipf("no %s here", sh)
	}
	const budget, part = 64 << 10, 20 << 10 // a part takes a 32 KiB buffer
	eps := []Endpoint{
		{Path: "/shared", Command: []string{sh, "-c", "exec cat"}, Mode: ModeShared, MaxMessage: budget, AssemblyBudget: budget},
		{Path: "/cgi", Command: []string{sh, "-c", "exec cat"}, Mode: ModeCGI, MaxMessage: budget, AssemblyBudget: budget},
	}
	srv, addr := serveTest(t, Options{Endpoints: eps, CloseTimeout: 20 * time.Second})
	for _, path := range []string{"/shared", "/cgi"} {
		t.Run(path, func(t *testing.T) {
			ep, _, _ := srv.routes.find(path)
			held := ep.budget
			hold := func() *wstest.Conn {
				c := dial(t, addr, path, 0)
				if _, err := c.Conn.Write(wstest.AppendFrame(nil, wstest.Frame{Op: wstest.OpBinary, Payload: make([]byte, part)})); err != nil {
					t.Fatal(err)
				}
				return c
			}
			a, b := hold(), hold()
			waitFor(t, "two messages held", func() bool { return held.Held() == 2*32<<10 })
			c := hold()
			if got := closeCodeOf(c, 20*time.Second); got != transport.CloseTryAgainLater {
				t.Fatalf("third unfinished message: close %d, want 1013", got)
			}
			answerClose(c, transport.CloseTryAgainLater)
			// a and b are still served: b finishes its message.
			if _, err := b.Conn.Write(wstest.AppendFrame(nil, wstest.Frame{Fin: true, Op: wstest.OpContinuation, Payload: []byte("!")})); err != nil {
				t.Fatal(err)
			}
			if _, _, err := read(b, 20*time.Second); err != nil {
				t.Fatalf("a client within the budget got no answer: %v", err)
			}
			answerClose(a, transport.CloseNormal)
			answerClose(b, transport.CloseNormal)
			waitFor(t, "the budget to be given back", func() bool { return held.Held() == 0 })
			d := hold()
			waitFor(t, "a new client to hold a message", func() bool { return held.Held() == 32<<10 })
			answerClose(d, transport.CloseNormal)
			waitFor(t, "the clients to be gone", func() bool { return srv.conns.Load() == 0 && held.Held() == 0 })
		})
	}
}
