package main

// Clients of a shared child (--shared) for the qemu matrix (cross_test.go):
// testchild broadcast (line framing) or testchild mux, over
// coder/websocket. The shared mode's own tests run in-process beside the
// bridge package (bridge/shared_*_test.go).

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"
)

// floodLine is line i of testchild's "go N SIZE" (and flood).
func floodLine(i, size int) string {
	b := []byte(strconv.Itoa(i) + " ")
	for c := 0; len(b) < size; c++ {
		b = append(b, byte('a'+c%26))
	}
	return string(b[:size])
}

// readSkipStarted reads one text message, skipping the "started PID"
// line a child writes as it starts: it reaches whoever is connected then.
func readSkipStarted(t testing.TB, ctx context.Context, c *websocket.Conn) string {
	t.Helper()
	for {
		if msg := readText(t, ctx, c); !strings.HasPrefix(msg, "started ") {
			return msg
		}
	}
}

// writeText sends one text message.
func writeText(t testing.TB, ctx context.Context, c *websocket.Conn, msg string) {
	t.Helper()
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatalf("write %q: %v", msg, err)
	}
}

// dialJoined dials n clients of a broadcast child, each of which sends
// "join" (the child counts them before a "go ... AFTER" floods), at most
// 50 dials at a time.
func dialJoined(t testing.TB, ctx context.Context, url string, n int) []*websocket.Conn {
	t.Helper()
	conns := make([]*websocket.Conn, n)
	errs := make([]error, n)
	sem := make(chan struct{}, 50)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			c, _, err := websocket.Dial(ctx, url, nil)
			if err != nil {
				errs[i] = err
				return
			}
			c.SetReadLimit(-1)
			conns[i] = c
			errs[i] = c.Write(ctx, websocket.MessageText, []byte("join"))
		})
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				c.CloseNow()
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("dialling %d clients: %v", n, err)
	}
	return conns
}

// readFloodAll reads flood lines 1..lines in order on every client; a
// "started" line first is skipped. It fails the test with the first
// client's error.
func readFloodAll(t testing.TB, ctx context.Context, conns []*websocket.Conn, lines, size int) {
	t.Helper()
	errs := make([]error, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			for n := 1; n <= lines; n++ {
				_, data, err := c.Read(ctx)
				if err != nil {
					errs[i] = fmt.Errorf("client %d: line %d: %w", i, n, err)
					return
				}
				msg := string(data)
				if n == 1 && strings.HasPrefix(msg, "started ") {
					n--
					continue
				}
				if msg != floodLine(n, size) {
					errs[i] = fmt.Errorf("client %d: got %.30q (%d bytes), want line %d", i, msg, len(msg), n)
					return
				}
			}
		})
	}
	wg.Wait()
	var failed []error
	for _, err := range errs {
		if err != nil {
			failed = append(failed, err)
		}
	}
	if len(failed) > 0 {
		t.Fatalf("%d of %d clients did not get every line in order; first: %v", len(failed), len(conns), failed[0])
	}
}

// expectNext reads the next message on every client and checks it.
func expectNext(t testing.TB, ctx context.Context, conns []*websocket.Conn, want string) {
	t.Helper()
	for i, c := range conns {
		if got := readText(t, ctx, c); got != want {
			t.Fatalf("client %d: got %.40q, want %q", i, got, want)
		}
	}
}

// muxClient is a client of testchild mux with its connection id.
type muxClient struct {
	*websocket.Conn
	id string
}

// dialMux connects to testchild mux and reads its greeting.
func dialMux(t *testing.T, ctx context.Context, b *bridgeProc, query string) muxClient {
	t.Helper()
	c := dialWS(t, ctx, b.URL("/?"+query), nil)
	hello := strings.Fields(readSkipStarted(t, ctx, c))
	if len(hello) != 4 || hello[0] != "hello" || hello[2] != "127.0.0.1" || hello[3] != query {
		t.Fatalf("greeting %q, want hello ID 127.0.0.1 %s", hello, query)
	}
	return muxClient{c, hello[1]}
}

// checkMuxAddressing has testchild's mux child answer a by its id, send
// from a to c by c's id, echo c's binary, and broadcast what from sends
// to every one of all, who must have had nothing else meanwhile.
func checkMuxAddressing(t *testing.T, ctx context.Context, a, c, from muxClient, all ...muxClient) {
	t.Helper()
	writeText(t, ctx, a.Conn, "hi")
	if got, want := readText(t, ctx, a.Conn), "echo "+a.id+": hi"; got != want {
		t.Fatalf("a got %q, want %q", got, want)
	}
	writeText(t, ctx, a.Conn, "to:"+c.id+":psst")
	if got := readText(t, ctx, c.Conn); got != "psst" {
		t.Fatalf("c got %q, want psst", got)
	}
	if err := c.Write(ctx, websocket.MessageBinary, []byte{0, 1, 0xff}); err != nil {
		t.Fatal(err)
	}
	if typ, got := readWS(t, ctx, c.Conn); typ != websocket.MessageBinary || string(got) != "\x00\x01\xff" {
		t.Fatalf("c got %v %q, want its binary back", typ, got)
	}
	// Only the sender got those: everyone's next message is the broadcast.
	writeText(t, ctx, from.Conn, "all:news")
	for _, m := range all {
		if got := readText(t, ctx, m.Conn); got != "news" {
			t.Fatalf("client %s got %q, want news", m.id, got)
		}
	}
}
