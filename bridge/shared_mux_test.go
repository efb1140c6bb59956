package bridge

// The shared mode with the mux framing (testchild mux): the child tells
// its clients apart, addresses them, and hears how each one left.

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

// muxEndpoint is a shared testchild mux, with o.
func muxEndpoint(t *testing.T, o SharedOptions) Endpoint {
	return Endpoint{Command: testChildCmd(t, "mux"), Framing: "mux", Shared: o}
}

// With the mux framing the child tells clients apart: it sees each one's
// environment, answers one, addresses another or everyone, closes one
// with a code of its own, and learns how each one left.
func TestSharedMux(t *testing.T) {
	t.Parallel()
	s := runShared(t, muxEndpoint(t, SharedOptions{}))
	a := dialMux(t, s.addr, "name=a")
	c := dialMux(t, s.addr, "name=c")
	d := dialMux(t, s.addr, "name=d")
	if a.id == c.id || c.id == d.id || a.id == d.id {
		t.Fatalf("ids %s %s %s: not distinct", a.id, c.id, d.id)
	}

	checkMuxAddressing(t, a, c, d, a, c, d)

	// The child closes a with a code and reason of its own; a answers
	// with the same code, which the child hears about.
	a.say(t, "close:4001:go away")
	if code, reason, msgs := a.closed(t); code != 4001 || reason != "go away" || len(msgs) != 0 {
		t.Fatalf("a: close %d %q after %q, want 4001 \"go away\" at once", code, reason, msgs)
	}
	for _, m := range []*member{c, d} {
		if got, want := m.text(t), "left "+a.id+" 4001"; got != want {
			t.Fatalf("client %s got %q, want %q", m.id, got, want)
		}
	}
	// c closes with a code of its own.
	if _, err := c.CloseHandshake(4002, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if got, want := d.text(t), "left "+c.id+" 4002"; got != want {
		t.Fatalf("d got %q, want %q", got, want)
	}
	// A client that vanishes without a close frame: 1006.
	e := dialMux(t, s.addr, "name=e")
	e.Conn.Conn.Close()
	if got, want := d.text(t), "left "+e.id+" 1006"; got != want {
		t.Fatalf("d got %q, want %q", got, want)
	}
	// The child closes everyone at once.
	f := dialMux(t, s.addr, "name=f")
	f.say(t, "closeall:4003:all done")
	for _, m := range []*member{d, f} {
		if code, reason, _ := m.closed(t); code != 4003 || reason != "all done" {
			t.Fatalf("client %s: close %d %q, want 4003 \"all done\"", m.id, code, reason)
		}
	}
}

// A mux child whose output turns malformed while it does not read its
// stdin, on which a client's message waits: the child is ended and
// restarted all the same, and the client is told.
func TestSharedMalformedWhileStdinFull(t *testing.T) {
	t.Parallel()
	s := runShared(t, muxEndpoint(t, SharedOptions{}))
	c := dialMux(t, s.addr, "name=a")
	if err := c.WriteFrame(true, wstest.OpText, []byte("garble")); err != nil {
		t.Fatal(err)
	}
	// Fill the child's stdin: the server blocks writing to it.
	var wg sync.WaitGroup
	defer wg.Wait()
	defer c.Conn.Conn.Close()
	wg.Go(func() {
		big := make([]byte, 900<<10)
		for range 4 {
			if c.WriteFrame(true, wstest.OpBinary, big) != nil {
				return
			}
		}
	})
	s.log.WaitRecords(t, "shared program output is malformed; restarting it", 1, 10*time.Second)
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, _, cf, err := c.ReadMessage(time.Until(deadline))
		if errors.Is(err, wstest.ErrClosed) {
			if cf.CloseCode() != 1012 {
				t.Fatalf("close %d %q, want 1012", cf.CloseCode(), cf.CloseReason())
			}
			break
		}
		if err != nil {
			t.Fatalf("%v, want a close frame with 1012: the child was not restarted", err)
		}
	}
	s.log.WaitRecords(t, "shared program started", 2, 10*time.Second)
}

// A mux child restarted with many clients, whose open records and
// greetings fill both pipes: the server reads the child's output while it
// tells it who is connected, and every client is greeted again.
func TestSharedMuxRestartManyClients(t *testing.T) {
	t.Parallel()
	const clients = 250
	s := runShared(t, muxEndpoint(t, SharedOptions{KeepClients: true}))
	query := "q=" + strings.Repeat("x", 3500) // in QUERY_STRING and REQUEST_URI, and in the greeting
	conns := make([]*member, clients)
	for i := range conns {
		conns[i] = dialMux(t, s.addr, query)
	}
	conns[0].say(t, "exit")
	for _, m := range conns {
		if got, want := m.skipStarted(t), "hello "+m.id+" 127.0.0.1 "+query; got != want {
			t.Fatalf("client %s got %.40q, want %.40q", m.id, got, want)
		}
	}
}

// When clients are closed at a restart (the default) a mux child never
// hears of the clients of the child before it: no open record for them,
// nor a close record when they finally go.
func TestSharedMuxRestartForgetsOldClients(t *testing.T) {
	skipShort(t)
	t.Parallel()
	s := runShared(t, muxEndpoint(t, SharedOptions{}))
	old := dialMux(t, s.addr, "name=old") // never answers the 1012
	if err := old.WriteFrame(true, wstest.OpText, []byte("exit")); err != nil {
		t.Fatal(err)
	}
	s.log.WaitRecords(t, "shared program started", 2, 10*time.Second)
	c := dialMux(t, s.addr, "name=new")
	s.access(t, 1) // the old client is gone
	c.say(t, "hi")
	if got, want := c.text(t), "echo "+c.id+": hi"; got != want {
		t.Fatalf("got %q, want %q: the new child heard of the old client", got, want)
	}
}
