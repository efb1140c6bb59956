package main

// Tests of the shared mode (--shared): one child for every client of the
// endpoint. The child is testchild broadcast (line framing) or testchild
// mux; clients are coder/websocket, or raw TCP where a test must control
// reading.

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"github.com/wsbridge/wsbridge/procs/proctest"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

// floodLine is line i of testchild's "go N SIZE" (and flood).
func floodLine(i, size int) string {
	b := []byte(strconv.Itoa(i) + " ")
	for c := 0; len(b) < size; c++ {
		b = append(b, byte('a'+c%26))
	}
	return string(b[:size])
}

// floodNumber returns the number of a flood line, checking the rest of it.
func floodNumber(msg string, size int) (int, bool) {
	n, err := strconv.Atoi(strings.SplitN(msg, " ", 2)[0])
	return n, err == nil && n > 0 && msg == floodLine(n, size)
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

// slowDial opens a WebSocket connection whose receive buffer is as small
// as the kernel allows, sends "join", and then reads only when the test
// says: a client that stops reading.
func slowDial(t testing.TB, addr string) *wstest.Conn {
	t.Helper()
	c := wstest.MustDialTCP(t, addr, wstest.Options{RcvBuf: 2048, ReadBuffer: 512, Timeout: 5 * time.Second})
	resp, err := c.Upgrade(wstest.Options{Path: "/"})
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	if err := c.WriteFrame(true, wstest.OpText, []byte("join")); err != nil {
		t.Fatal(err)
	}
	return c
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

// Every line a shared child writes reaches every one of 1,000 clients,
// once, whole and in order.
func TestSharedBroadcastManyClients(t *testing.T) {
	const clients, lines, size = 1000, 50, 200
	b := startBridge(t, "--shared", childBin, "broadcast")
	ctx := testCtx(t, 120*time.Second)
	conns := dialJoined(t, ctx, b.URL("/"), clients)
	writeText(t, ctx, conns[0], fmt.Sprintf("go %d %d %d", lines, size, clients))
	readFloodAll(t, ctx, conns, lines, size)
	// Nothing was sent twice: the next message is the one after the flood.
	writeText(t, ctx, conns[0], "end")
	expectNext(t, ctx, conns, "echo: end")
	if n := len(proctest.ChildrenOf(b.PID())); n != 1 {
		t.Errorf("%d children for %d clients, want 1", n, clients)
	}
}

// Clients that send large messages in many frames at the same time: the
// child gets each message whole, never mixed with another client's.
func TestSharedMessagesNeverInterleave(t *testing.T) {
	t.Parallel()
	const clients, msgs, size, frame = 6, 3, 200 << 10, 4 << 10
	b := startBridge(t, "--shared", childBin, "broadcast")
	ctx := testCtx(t, 60*time.Second)
	conns := dialJoined(t, ctx, b.URL("/"), clients)
	var want []string
	payloads := make([][][]byte, clients)
	for i := range clients {
		for j := range msgs {
			p := []byte(strings.Repeat(fmt.Sprintf("client %d message %d ", i, j), size)[:size])
			payloads[i] = append(payloads[i], p)
			want = append(want, fmt.Sprintf("hash %d %x", len(p), sha256.Sum256(p)))
		}
	}
	slices.Sort(want)
	errs := make([]error, 2*clients)
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() { // sends, one frame at a time
			for _, p := range payloads[i] {
				w, err := c.Writer(ctx, websocket.MessageText)
				if err != nil {
					errs[i] = err
					return
				}
				if _, err := w.Write([]byte("hash ")); err != nil {
					errs[i] = err
					return
				}
				for off := 0; off < len(p); off += frame {
					if _, err := w.Write(p[off:min(off+frame, len(p))]); err != nil {
						errs[i] = err
						return
					}
				}
				if err := w.Close(); err != nil {
					errs[i] = err
					return
				}
			}
		})
		wg.Go(func() { // reads every client's digests
			var got []string
			for len(got) < len(want) {
				_, data, err := c.Read(ctx)
				if err != nil {
					errs[clients+i] = fmt.Errorf("client %d after %d digests: %w", i, len(got), err)
					return
				}
				if msg := string(data); strings.HasPrefix(msg, "hash ") {
					got = append(got, msg)
				} else if !strings.HasPrefix(msg, "started ") {
					errs[clients+i] = fmt.Errorf("client %d: unexpected %.60q", i, msg)
					return
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				errs[clients+i] = fmt.Errorf("client %d: the child saw other messages than were sent:\ngot  %q\nwant %q", i, got, want)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

// slowRun floods a broadcast child's clients, one of which never reads
// until the test says: good clients, a raw slow one, and the bridge. The
// good clients read in the background; goodDone waits for them and fails
// the test unless every one got every line in order.
func slowRun(t *testing.T, flags ...string) (b *bridgeProc, ctx context.Context, good []*websocket.Conn, slow *wstest.Conn, goodDone func()) {
	t.Helper()
	const goodClients, lines, size = 3, 3000, 1000 // 3 MB: more than the socket buffers and --queue
	b = startBridge(t, append(append([]string{"--shared", "--queue=64KiB"}, flags...), childBin, "broadcast")...)
	ctx = testCtx(t, 60*time.Second)
	slow = slowDial(t, b.Addr)
	good = dialJoined(t, ctx, b.URL("/"), goodClients)
	writeText(t, ctx, good[0], fmt.Sprintf("go %d %d %d", lines, size, goodClients+1))
	// A slow client slows nobody: the others get every line.
	read := make(chan struct{})
	var tb testing.TB = &errorsOnly{TB: t}
	go func() {
		defer close(read)
		readFloodAll(tb, ctx, good, lines, size)
	}()
	t.Cleanup(func() { <-read })
	return b, ctx, good, slow, func() {
		t.Helper()
		<-read
		if tb.Failed() {
			t.FailNow()
		}
	}
}

// errorsOnly is a testing.TB for another goroutine than the test's: its
// Fatal marks the test failed and ends the goroutine, which the test's own
// goroutine then notices with Failed.
type errorsOnly struct{ testing.TB }

func (e *errorsOnly) Fatalf(format string, args ...any) {
	e.TB.Errorf(format, args...)
	runtime.Goexit()
}

func (e *errorsOnly) Fatal(args ...any) {
	e.TB.Error(args...)
	runtime.Goexit()
}

// A client that does not read is cut off with 1013 once its queue is
// full; the others lose nothing. What it reads is whole messages in order,
// then the close, if it reads them within the close timeout (2s): then
// the bridge gives up on it.
func TestSharedSlowClientCutOff(t *testing.T) {
	t.Parallel()
	const size = 1000
	b, _, _, slow, goodDone := slowRun(t)
	recs := b.WaitRecords("slow client disconnected", 1, 10*time.Second)
	if recs[0]["limit"] != "65536" {
		t.Errorf("log line %v: want limit=65536", recs[0])
	}
	cut, err := time.Parse(time.RFC3339Nano, recs[0]["time"])
	if err != nil {
		t.Fatal(err)
	}
	var got int
	for {
		op, data, cf, err := slow.ReadMessage(10 * time.Second)
		if errors.Is(err, wstest.ErrClosed) {
			if cf.CloseCode() != 1013 {
				t.Fatalf("close %d %q after %d lines, want 1013", cf.CloseCode(), cf.CloseReason(), got)
			}
			break
		}
		if err != nil && time.Since(cut) < 1900*time.Millisecond {
			t.Fatalf("after %d lines, %v after the cut: %v, want a close frame with 1013", got, time.Since(cut), err)
		}
		if err != nil {
			t.Logf("NOTE: %v after %d lines: this client took %v to read, more than the close timeout", err, got, time.Since(cut))
			break
		}
		if op == wstest.OpText && strings.HasPrefix(string(data), "started ") && got == 0 {
			continue
		}
		if n, ok := floodNumber(string(data), size); op != wstest.OpText || !ok || n != got+1 {
			t.Fatalf("after %d lines got %.30q (%d bytes), want line %d whole", got, data, len(data), got+1)
		}
		got++
	}
	t.Logf("the slow client got %d lines, then 1013, %v after the cut", got, time.Since(cut))
	if got >= 3000 {
		t.Errorf("the slow client got all %d lines: it was not slow", got)
	}
	goodDone()
	access := b.Access(1)
	if access[0]["close"] != "1013" {
		t.Errorf("access line %v: want close=1013", access[0])
	}
}

// With --drop-slow a client that does not read stays connected and loses
// whole messages: what it reads is some of the lines, each whole, in
// order, and then what comes after.
func TestSharedDropSlow(t *testing.T) {
	t.Parallel()
	const lines, size = 3000, 1000
	b, ctx, good, slow, goodDone := slowRun(t, "--drop-slow")
	b.WaitRecords("slow client: dropping messages (--drop-slow)", 1, 10*time.Second)
	goodDone()
	last, got := 0, 0
	quiet := false
	for {
		timeout := 10 * time.Second
		if !quiet {
			timeout = 500 * time.Millisecond // long enough for the queue to drain once read
		}
		op, data, cf, err := slow.ReadMessage(timeout)
		if errors.Is(err, os.ErrDeadlineExceeded) && !quiet {
			// Everything queued is read: what is sent now must come.
			quiet = true
			writeText(t, ctx, good[0], "end")
			continue
		}
		if err != nil {
			t.Fatalf("after %d lines: %v %d %q", got, err, cf.CloseCode(), cf.CloseReason())
		}
		msg := string(data)
		if msg == "echo: end" {
			break
		}
		if strings.HasPrefix(msg, "started ") && got == 0 {
			continue
		}
		n, ok := floodNumber(msg, size)
		if op != wstest.OpText || !ok || n <= last {
			t.Fatalf("after line %d got %.30q (%d bytes), want a later line whole", last, msg, len(msg))
		}
		last = n
		got++
	}
	t.Logf("the slow client got %d of %d lines, the last %d", got, lines, last)
	if got >= lines {
		t.Errorf("the slow client got all %d lines: nothing was dropped", lines)
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

// mustUpgradeMux is dialMux for a raw client.
func mustUpgradeMux(t *testing.T, b *bridgeProc, query string) *wstest.Conn {
	t.Helper()
	c := wstest.MustDial(t, b.Addr, wstest.Options{Path: "/?" + query})
	for {
		_, msg, _, err := c.ReadMessage(10 * time.Second)
		if err != nil {
			t.Fatalf("greeting: %v", err)
		}
		if strings.HasPrefix(string(msg), "hello ") {
			return c
		}
		if !strings.HasPrefix(string(msg), "started ") {
			t.Fatalf("greeting %q, want hello ...", msg)
		}
	}
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

// With the mux framing the child tells clients apart: it sees each one's
// environment, answers one, addresses another or everyone, closes one
// with a code of its own, and learns how each one left.
func TestSharedMux(t *testing.T) {
	t.Parallel()
	b := startBridge(t, "--shared", "--framing=mux", childBin, "mux")
	ctx := testCtx(t, 30*time.Second)
	a := dialMux(t, ctx, b, "name=a")
	c := dialMux(t, ctx, b, "name=c")
	d := dialMux(t, ctx, b, "name=d")
	if a.id == c.id || c.id == d.id || a.id == d.id {
		t.Fatalf("ids %s %s %s: not distinct", a.id, c.id, d.id)
	}

	checkMuxAddressing(t, ctx, a, c, d, a, c, d)

	// The child closes a with a code and reason of its own; a answers
	// with the same code, which the child hears about.
	writeText(t, ctx, a.Conn, "close:4001:go away")
	if code, reason, msgs := expectClose(t, ctx, a.Conn); code != 4001 || reason != "go away" || len(msgs) != 0 {
		t.Fatalf("a: close %d %q after %q, want 4001 \"go away\" at once", code, reason, msgs)
	}
	for _, m := range []muxClient{c, d} {
		if got, want := readText(t, ctx, m.Conn), "left "+a.id+" 4001"; got != want {
			t.Fatalf("client %s got %q, want %q", m.id, got, want)
		}
	}
	// c closes with a code of its own.
	if err := c.Close(4002, "bye"); err != nil {
		t.Fatal(err)
	}
	if got, want := readText(t, ctx, d.Conn), "left "+c.id+" 4002"; got != want {
		t.Fatalf("d got %q, want %q", got, want)
	}
	// A client that vanishes without a close frame: 1006.
	e := dialMux(t, ctx, b, "name=e")
	e.CloseNow()
	if got, want := readText(t, ctx, d.Conn), "left "+e.id+" 1006"; got != want {
		t.Fatalf("d got %q, want %q", got, want)
	}
	// The child closes everyone at once.
	f := dialMux(t, ctx, b, "name=f")
	writeText(t, ctx, f.Conn, "closeall:4003:all done")
	for _, m := range []muxClient{d, f} {
		if code, reason, _ := expectClose(t, ctx, m.Conn); code != 4003 || reason != "all done" {
			t.Fatalf("client %s: close %d %q, want 4003 \"all done\"", m.id, code, reason)
		}
	}
}

// startedPIDs reads the PIDs testchild broadcast appended to file, waiting
// up to timeout for at least n.
func startedPIDs(t *testing.T, file string, n int, timeout time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		b, _ := os.ReadFile(file)
		pids := strings.Fields(string(b))
		if len(pids) >= n {
			return pids
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d starts of the child after %v, want %d", len(pids), timeout, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A shared child that exits is restarted. By default its clients are
// closed with 1012 and may reconnect; with --on-restart=keep they stay
// and hear the new child.
func TestSharedRestart(t *testing.T) {
	t.Parallel()
	t.Run("close", func(t *testing.T) {
		t.Parallel()
		marker := filepath.Join(t.TempDir(), "pids")
		b := startBridge(t, "--shared", childBin, "broadcast", marker)
		ctx := testCtx(t, 30*time.Second)
		first := startedPIDs(t, marker, 1, 10*time.Second)[0]
		conns := dialJoined(t, ctx, b.URL("/"), 2)
		writeText(t, ctx, conns[0], "exit 3")
		for i, c := range conns {
			if code, reason, _ := expectClose(t, ctx, c); code != websocket.StatusServiceRestart {
				t.Fatalf("client %d: close %d %q, want 1012", i, code, reason)
			}
		}
		rec := b.WaitRecords("shared program exited; restarting", 1, 10*time.Second)[0]
		if rec["exit"] != "exit status 3" {
			t.Errorf("log line %v: want exit=\"exit status 3\"", rec)
		}
		second := startedPIDs(t, marker, 2, 10*time.Second)[1]
		if second == first {
			t.Fatalf("the same PID %s started twice", first)
		}
		// A client that reconnects talks to the new child.
		c := dialWS(t, ctx, b.URL("/"), nil)
		writeText(t, ctx, c, "again")
		if got := readSkipStarted(t, ctx, c); got != "echo: again" {
			t.Fatalf("got %q from the new child, want \"echo: again\"", got)
		}
	})
	t.Run("keep", func(t *testing.T) {
		t.Parallel()
		marker := filepath.Join(t.TempDir(), "pids")
		b := startBridge(t, "--shared", "--on-restart=keep", childBin, "broadcast", marker)
		ctx := testCtx(t, 30*time.Second)
		startedPIDs(t, marker, 1, 10*time.Second)
		c := dialJoined(t, ctx, b.URL("/"), 1)[0]
		writeText(t, ctx, c, "exit 3")
		second := startedPIDs(t, marker, 2, 10*time.Second)[1]
		// The client stayed, and hears the new child from its start.
		if got := readText(t, ctx, c); got != "started "+second {
			t.Fatalf("got %q, want \"started %s\" from the new child", got, second)
		}
		writeText(t, ctx, c, "still here")
		if got := readText(t, ctx, c); got != "echo: still here" {
			t.Fatalf("got %q, want \"echo: still here\"", got)
		}
	})
	t.Run("mux keep", func(t *testing.T) {
		t.Parallel()
		b := startBridge(t, "--shared", "--on-restart=keep", "--framing=mux", childBin, "mux")
		ctx := testCtx(t, 30*time.Second)
		a := dialMux(t, ctx, b, "name=a")
		c := dialMux(t, ctx, b, "name=c")
		writeText(t, ctx, a.Conn, "exit")
		// The new child is told about both clients, with their
		// environment, and greets each under the same id.
		for _, m := range []muxClient{a, c} {
			got := readSkipStarted(t, ctx, m.Conn)
			if want := "hello " + m.id + " 127.0.0.1 name=" + map[string]string{a.id: "a", c.id: "c"}[m.id]; got != want {
				t.Fatalf("client %s got %q, want %q", m.id, got, want)
			}
		}
		writeText(t, ctx, c.Conn, "to:"+a.id+":after")
		if got := readText(t, ctx, a.Conn); got != "after" {
			t.Fatalf("a got %q, want after", got)
		}
		rec := b.WaitRecords("shared program exited; restarting", 1, 10*time.Second)[0]
		if rec["exit"] != "exit status 7" {
			t.Errorf("log line %v: want exit=\"exit status 7\"", rec)
		}
	})
	t.Run("backoff", func(t *testing.T) {
		t.Parallel()
		// A child that exits at once: each wait before a restart is
		// twice the one before.
		b := startBridge(t, "--shared", childBin, "exit", "1")
		recs := b.WaitRecords("shared program exited; restarting", 4, 20*time.Second)
		starts := b.Records("shared program started")
		var afters []string
		for _, r := range recs[:4] {
			afters = append(afters, r["after"])
		}
		if want := []string{"100ms", "200ms", "400ms", "800ms"}; !slices.Equal(afters, want) {
			t.Errorf("waits before restarting %q, want %q", afters, want)
		}
		// And the bridge does wait: each start comes at least that
		// long after the exit before it.
		for i := 1; i < 4 && i < len(starts); i++ {
			exited, _ := time.Parse(time.RFC3339Nano, recs[i-1]["time"])
			started, _ := time.Parse(time.RFC3339Nano, starts[i]["time"])
			wait, _ := time.ParseDuration(afters[i-1])
			if gap := started.Sub(exited); gap < wait-5*time.Millisecond {
				t.Errorf("start %d came %v after the exit before it, want at least %v", i+1, gap, wait)
			}
		}
	})
}

// --shared=lazy starts the child only when the first client connects.
func TestSharedLazy(t *testing.T) {
	t.Parallel()
	marker := filepath.Join(t.TempDir(), "pids")
	b := startBridge(t, "--shared=lazy", childBin, "broadcast", marker)
	ctx := testCtx(t, 30*time.Second)
	time.Sleep(200 * time.Millisecond) // an eager start would show by now
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the child started before any client: %v", err)
	}
	if kids := proctest.ChildrenOf(b.PID()); len(kids) != 0 {
		t.Fatalf("children %+v before any client, want none", kids)
	}
	// The first message goes out at once: it waits for the child.
	c := dialWS(t, ctx, b.URL("/"), nil)
	writeText(t, ctx, c, "hello")
	if got := readSkipStarted(t, ctx, c); got != "echo: hello" {
		t.Fatalf("got %q, want \"echo: hello\"", got)
	}
	pid := startedPIDs(t, marker, 1, 10*time.Second)[0]
	if kids := proctest.ChildrenOf(b.PID()); len(kids) != 1 || strconv.Itoa(kids[0].PID) != pid {
		t.Fatalf("children %+v, want the one child %s", kids, pid)
	}
}

// SIGTERM closes every client with 1001, a stuck one included, and ends
// the child before the bridge exits.
func TestSharedShutdown(t *testing.T) {
	t.Parallel()
	const lines, size = 3000, 1000
	b := startBridge(t, "--shared", "--drop-slow", "--queue=64KiB", childBin, "broadcast")
	ctx := testCtx(t, 30*time.Second)
	child := proctest.WaitChildren(t, b.PID(), 1, 10*time.Second)[0]
	stuck := slowDial(t, b.Addr)
	conns := dialJoined(t, ctx, b.URL("/"), 3)
	writeText(t, ctx, conns[0], fmt.Sprintf("go %d %d 4", lines, size))
	readFloodAll(t, ctx, conns, lines, size)
	b.WaitRecords("slow client: dropping messages (--drop-slow)", 1, 10*time.Second)

	b.Signal(syscall.SIGTERM)
	for i, c := range conns {
		if code, reason, _ := expectClose(t, ctx, c); code != websocket.StatusGoingAway {
			t.Errorf("client %d: close %d %q, want 1001", i, code, reason)
		}
	}
	if err := b.Wait(15 * time.Second); err != nil {
		t.Errorf("exit after SIGTERM: %v, want status 0", err)
	}
	if !child.Gone() {
		t.Errorf("the child %d outlived the bridge", child.PID)
	}
	_ = stuck // it never read: the bridge did not wait for it for ever
}

// stuckClients dials n clients that never read, floods every client of
// a broadcast child until their sockets and queues are full, and returns
// them with a client that reads. The bridge runs --drop-slow, so the
// stuck clients stay connected, each with output it cannot write.
func stuckClients(t *testing.T, b *bridgeProc, ctx context.Context, n int) ([]*wstest.Conn, *websocket.Conn) {
	t.Helper()
	const lines, size = 3000, 1000
	stuck := make([]*wstest.Conn, n)
	for i := range stuck {
		stuck[i] = slowDial(t, b.Addr)
	}
	good := dialJoined(t, ctx, b.URL("/"), 1)
	writeText(t, ctx, good[0], fmt.Sprintf("go %d %d %d", lines, size, n+1))
	readFloodAll(t, ctx, good, lines, size)
	b.WaitRecords("slow client: dropping messages (--drop-slow)", n, 10*time.Second)
	return stuck, good[0]
}

// A client that the bridge closes (here for a restart) but that reads
// nothing is not kept for ever: it has the close timeout to take its
// output and the close, and is then dropped.
func TestSharedCloseStuckClient(t *testing.T) {
	t.Parallel()
	b := startBridge(t, "--shared", "--drop-slow", "--queue=64KiB", childBin, "broadcast")
	ctx := testCtx(t, 60*time.Second)
	_, good := stuckClients(t, b, ctx, 1)
	writeText(t, ctx, good, "exit 3")
	if code, reason, _ := expectClose(t, ctx, good); code != websocket.StatusServiceRestart {
		t.Fatalf("close %d %q, want 1012", code, reason)
	}
	for _, rec := range b.WaitRecords("session", 2, 20*time.Second) {
		if rec["close"] != "1012" {
			t.Errorf("access line %v: want close=1012", rec)
		}
	}
}

// SIGTERM with several clients that read nothing: the waits for them run
// side by side, not one after the other.
func TestSharedShutdownStuckClients(t *testing.T) {
	t.Parallel()
	const n = 8 // 8 close timeouts of 2s in a row would pass the bound below
	b := startBridge(t, "--shared", "--drop-slow", "--queue=64KiB", childBin, "broadcast")
	ctx := testCtx(t, 60*time.Second)
	_, good := stuckClients(t, b, ctx, n)
	closed := make(chan websocket.StatusCode, 1)
	go func() {
		_, _, err := good.Read(ctx)
		closed <- websocket.CloseStatus(err)
	}()
	b.Signal(syscall.SIGTERM)
	if err := b.Wait(12 * time.Second); err != nil {
		t.Errorf("exit after SIGTERM: %v, want status 0", err)
	}
	if code := <-closed; code != websocket.StatusGoingAway {
		t.Errorf("the client that reads got close %d, want 1001", code)
	}
}

// A client that reads nothing but pings all the time holds up nobody:
// the pongs it is owed wait for its socket like its messages. When it
// reads at last, every frame is whole: no pong lands inside a message.
func TestSharedPingingStuckClient(t *testing.T) {
	t.Parallel()
	const lines, size = 3000, 1000
	b := startBridge(t, "--shared", "--drop-slow", "--queue=64KiB", childBin, "broadcast")
	ctx := testCtx(t, 60*time.Second)
	pinger := slowDial(t, b.Addr)
	stop := make(chan struct{})
	stopPings := sync.OnceFunc(func() { close(stop) })
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stopPings()
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Microsecond):
			}
			if pinger.WriteFrame(true, wstest.OpPing, []byte(strconv.Itoa(i))) != nil {
				return
			}
		}
	})
	good := dialJoined(t, ctx, b.URL("/"), 2)
	writeText(t, ctx, good[0], fmt.Sprintf("go %d %d 3", lines, size))
	readFloodAll(t, ctx, good, lines, size)
	stopPings()
	wg.Wait()
	last, quiet := 0, false
	for {
		timeout := 10 * time.Second
		if !quiet {
			timeout = 500 * time.Millisecond // long enough for the queue to drain once read
		}
		f, err := pinger.ReadFrame(timeout)
		if errors.Is(err, os.ErrDeadlineExceeded) && !quiet {
			// Everything queued is read: what is sent now must come.
			quiet = true
			writeText(t, ctx, good[0], "end")
			continue
		}
		if err != nil {
			t.Fatalf("after line %d: %v", last, err)
		}
		if f.Op == wstest.OpPong {
			continue
		}
		msg := string(f.Payload)
		if f.Op != wstest.OpText || !f.Fin {
			t.Fatalf("after line %d: frame op %d fin %v %.30q: want a whole text message", last, f.Op, f.Fin, msg)
		}
		if msg == "echo: end" {
			break
		}
		if strings.HasPrefix(msg, "started ") && last == 0 {
			continue
		}
		n, ok := floodNumber(msg, size)
		if !ok || n <= last {
			t.Fatalf("after line %d got %.30q (%d bytes), want a later line whole", last, msg, len(msg))
		}
		last = n
	}
}

// A mux child whose output turns malformed while it does not read its
// stdin, on which a client's message waits: the child is ended and
// restarted all the same, and the client is told.
func TestSharedMalformedWhileStdinFull(t *testing.T) {
	t.Parallel()
	b := startBridge(t, "--shared", "--framing=mux", childBin, "mux")
	ctx := testCtx(t, 30*time.Second)
	c := mustUpgradeMux(t, b, "name=a")
	if err := c.WriteFrame(true, wstest.OpText, []byte("garble")); err != nil {
		t.Fatal(err)
	}
	// Fill the child's stdin: the bridge blocks writing to it.
	var wg sync.WaitGroup
	defer wg.Wait()
	defer c.Conn.Close()
	wg.Go(func() {
		big := make([]byte, 900<<10)
		for range 4 {
			if c.WriteFrame(true, wstest.OpBinary, big) != nil {
				return
			}
		}
	})
	b.WaitRecords("shared program output is malformed; restarting it", 1, 10*time.Second)
	for {
		_, _, cf, err := c.ReadMessage(time.Until(deadlineOf(ctx)))
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
	b.WaitRecords("shared program started", 2, 10*time.Second)
}

// deadlineOf returns ctx's deadline.
func deadlineOf(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

// A mux child restarted with many clients, whose open records and
// greetings fill both pipes: the bridge reads the child's output while it
// tells it who is connected, and every client is greeted again.
func TestSharedMuxRestartManyClients(t *testing.T) {
	t.Parallel()
	const clients = 250
	b := startBridge(t, "--shared", "--on-restart=keep", "--framing=mux", childBin, "mux")
	ctx := testCtx(t, 60*time.Second)
	query := "q=" + strings.Repeat("x", 3500) // in QUERY_STRING and REQUEST_URI, and in the greeting
	conns := make([]muxClient, clients)
	for i := range conns {
		conns[i] = dialMux(t, ctx, b, query)
	}
	writeText(t, ctx, conns[0].Conn, "exit")
	for _, m := range conns {
		if got, want := readSkipStarted(t, ctx, m.Conn), "hello "+m.id+" 127.0.0.1 "+query; got != want {
			t.Fatalf("client %s got %.40q, want %.40q", m.id, got, want)
		}
	}
}

// With --on-restart=close a mux child never hears of the clients of the
// child before it: no open record for them, nor a close record when they
// finally go.
func TestSharedMuxRestartForgetsOldClients(t *testing.T) {
	t.Parallel()
	b := startBridge(t, "--shared", "--framing=mux", childBin, "mux")
	ctx := testCtx(t, 30*time.Second)
	old := mustUpgradeMux(t, b, "name=old") // never answers the 1012
	if err := old.WriteFrame(true, wstest.OpText, []byte("exit")); err != nil {
		t.Fatal(err)
	}
	b.WaitRecords("shared program started", 2, 10*time.Second)
	c := dialMux(t, ctx, b, "name=new")
	b.Access(1) // the old client is gone
	writeText(t, ctx, c.Conn, "hi")
	if got, want := readText(t, ctx, c.Conn), "echo "+c.id+": hi"; got != want {
		t.Fatalf("got %q, want %q: the new child heard of the old client", got, want)
	}
}

// A shared child that leaves a daemon holding its stdout does not hold
// up shutdown, and the daemon does not outlive it.
func TestSharedShutdownDaemonHoldsStdout(t *testing.T) {
	t.Parallel()
	b := startBridge(t, "--shared", childBin, "detach")
	child := proctest.WaitChildren(t, b.PID(), 1, 10*time.Second)[0]
	daemon := proctest.WaitChildren(t, child.PID, 1, 10*time.Second)[0]
	t.Cleanup(func() { syscall.Kill(daemon.PID, syscall.SIGKILL) })
	b.Signal(syscall.SIGTERM)
	if err := b.Wait(15 * time.Second); err != nil {
		t.Errorf("exit after SIGTERM: %v, want status 0", err)
	}
	if !child.Gone() {
		t.Errorf("the child %d outlived the bridge", child.PID)
	}
	proctest.WaitGone(t, 5*time.Second, daemon) // ended, not just left behind
}

// A child that never reads its stdin holds back the clients that write to
// it, and nobody else: other clients still come and go.
func TestSharedChildNotReadingStdin(t *testing.T) {
	t.Parallel()
	b := startBridge(t, "--shared", childBin, "noread")
	ctx := testCtx(t, 30*time.Second)
	fillStdin(t, b, ctx)
	for i := range 3 {
		c := dialWS(t, ctx, b.URL("/"), nil)
		if err := c.Close(websocket.StatusNormalClosure, "bye"); err != nil {
			t.Fatalf("client %d: close: %v: the bridge did not answer", i, err)
		}
	}
	for _, rec := range b.Access(3) {
		if rec["close"] != "1000" || rec["close_by"] != "client" {
			t.Errorf("access line %v: want close=1000 close_by=client", rec)
		}
	}
}

// Lines longer than the bridge's buffer go out in pieces, shared by every
// client; each client gets each line whole. (--queue holds a whole line,
// so no client counts as slow here.)
func TestSharedLongLines(t *testing.T) {
	t.Parallel()
	const lines, size = 3, 300 << 10 // 300 KiB, more than the 128 KiB buffer
	b := startBridge(t, "--shared", "--queue=4MiB", childBin, "broadcast")
	ctx := testCtx(t, 30*time.Second)
	conns := dialJoined(t, ctx, b.URL("/"), 3)
	writeText(t, ctx, conns[0], fmt.Sprintf("go %d %d 3", lines, size))
	readFloodAll(t, ctx, conns, lines, size)
	writeText(t, ctx, conns[0], "end")
	expectNext(t, ctx, conns, "echo: end")
}
