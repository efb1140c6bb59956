package bridge

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/wsbridge/wsbridge/bridge/transport"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// testClient is a raw WebSocket client of an in-process server.
type testClient struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
}

// dialTest connects to path on addr and completes the handshake. rcvbuf,
// when not 0, shrinks the socket's receive buffer first: a client that is
// slow to read.
func dialTest(t *testing.T, addr, path string, rcvbuf int) *testClient {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		if rcvbuf == 0 {
			return nil
		}
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
		})
		return errors.Join(err, serr)
	}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", path)
	br := bufio.NewReader(conn)
	status, _ := br.ReadString('\n')
	if !strings.Contains(status, " 101 ") {
		t.Fatalf("handshake answered %q", status)
	}
	for line, _ := br.ReadString('\n'); line != "\r\n"; line, _ = br.ReadString('\n') {
	}
	_ = conn.SetDeadline(time.Time{})
	return &testClient{t: t, conn: conn, br: br}
}

// send writes one text message, in frames of at most frame bytes.
func (c *testClient) send(msg string, frame int) {
	c.t.Helper()
	if err := c.trySend(msg, frame); err != nil {
		c.t.Fatal(err)
	}
}

// trySend is send for another goroutine than the test's.
func (c *testClient) trySend(msg string, frame int) error {
	var wire []byte
	for first := true; first || len(msg) > 0; first = false {
		n := min(frame, len(msg))
		op := ws.OpContinuation
		if first {
			op = ws.OpText
		}
		wire = append(wire, clientFrame(c.t, n == len(msg), 0, op, []byte(msg[:n]))...)
		msg = msg[n:]
	}
	_ = c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := c.conn.Write(wire)
	return err
}

// read reads one frame within timeout: its opcode and payload, or an
// error.
func (c *testClient) read(timeout time.Duration) (ws.OpCode, string, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(timeout))
	h, err := ws.ReadHeader(c.br)
	if err != nil {
		return 0, "", err
	}
	p := make([]byte, h.Length)
	if _, err := io.ReadFull(c.br, p); err != nil {
		return 0, "", err
	}
	if !h.Fin {
		return 0, "", fmt.Errorf("a fragment of %d bytes: the bridge sends lines whole", h.Length)
	}
	return h.OpCode, string(p), nil
}

// expect reads the next frame and fails unless it is text msg.
func (c *testClient) expect(msg string) {
	c.t.Helper()
	op, p, err := c.read(10 * time.Second)
	if err != nil || op != ws.OpText || p != msg {
		c.t.Fatalf("got %v %.40q (%d bytes) %v, want text %.40q (%d bytes)", op, p, len(p), err, msg, len(msg))
	}
}

// expectClose reads the next frame, fails unless it is a close with
// code, and answers it.
func (c *testClient) expectClose(code transport.CloseCode) {
	c.t.Helper()
	op, p, err := c.read(10 * time.Second)
	if err != nil || op != ws.OpClose || len(p) < 2 || transport.CloseCode(binary.BigEndian.Uint16([]byte(p))) != code {
		c.t.Fatalf("got %v %.40q %v, want close %d", op, p, err, code)
	}
	c.answerClose(code)
}

// answerClose sends a close frame with code and ends the connection.
func (c *testClient) answerClose(code transport.CloseCode) {
	_, _ = c.conn.Write(clientFrame(c.t, true, 0, ws.OpClose, binary.BigEndian.AppendUint16(nil, uint16(code))))
	c.conn.Close()
}

// waitMembers waits until the hub of path has n members and a child.
func waitMembers(t *testing.T, srv *Server, path string, n int) {
	t.Helper()
	ep, _, _ := srv.routes.find(path)
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, running := ep.hub.Members(), ep.hub.PID() != 0
		if got == n && running {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d members, running %v; want %d members and a child", path, got, running, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// line returns message i of a flood: its number first, then filler.
func line(i, size int) string {
	s := strconv.Itoa(i) + " "
	return s + strings.Repeat("x", size-len(s))
}

// TestSharedHub runs shared endpoints in-process, under the race detector
// in CI, with cat as the child: every line a client sends goes to every
// client. A slow client is cut off (1013) or loses whole messages
// (DropSlow) while the others get everything; a child killed is
// restarted, its clients closed (1012) or kept; at shutdown everyone gets
// 1001, and nothing is left running (see TestMain).
func TestSharedHub(t *testing.T) {
	cat := "/bin/cat"
	if _, err := os.Stat(cat); err != nil {
		t.Skipf("no %s here", cat)
	}
	shared := func(path string, o SharedOptions) Endpoint {
		o.Queue, o.RestartDelay = 32<<10, 10*time.Millisecond
		return Endpoint{Path: path, Command: []string{cat}, Mode: ModeShared, Shared: o}
	}
	srv, err := New(Options{
		Endpoints: []Endpoint{
			shared("/cut", SharedOptions{}),
			shared("/drop", SharedOptions{DropSlow: true}),
			shared("/keep", SharedOptions{KeepClients: true}),
		},
		CloseTimeout: 20 * time.Second, // the slow clients read late, on a busy machine
		Logger:       slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, l) }()

	const lines, size = 400, 8000 // 3.2 MB: more than the socket buffers and the queue
	// flood has a slow client and two others on path; a sends lines that
	// the child writes back to all. It returns the clients still open.
	flood := func(path string) []*testClient {
		slow := dialTest(t, addr, path, 2048)
		a, b := dialTest(t, addr, path, 0), dialTest(t, addr, path, 0)
		waitMembers(t, srv, path, 3)
		sent := make(chan error, 1)
		go func() {
			for i := 1; i <= lines; i++ {
				if err := a.trySend(line(i, size), 1000); err != nil { // in 8 frames each
					sent <- err
					return
				}
			}
			sent <- nil
		}()
		for i := 1; i <= lines; i++ {
			a.expect(line(i, size))
			b.expect(line(i, size))
		}
		if err := <-sent; err != nil {
			t.Fatal(err)
		}
		// The slow client reads at last: lines whole and in order, then
		// the close, or (DropSlow) then what came after.
		last, got, quiet := 0, 0, false
		for {
			timeout := 10 * time.Second
			if path == "/drop" && !quiet {
				timeout = 500 * time.Millisecond // long enough for the queue to drain once read
			}
			op, p, err := slow.read(timeout)
			if errors.Is(err, os.ErrDeadlineExceeded) && path == "/drop" && !quiet {
				// Everything queued is read: what is sent now must come.
				quiet = true
				a.send("end", 100)
				continue
			}
			if err != nil {
				t.Fatalf("%s: after line %d: %v", path, last, err)
			}
			if path == "/cut" && op == ws.OpClose {
				if code := transport.CloseCode(binary.BigEndian.Uint16([]byte(p))); code != transport.CloseTryAgainLater {
					t.Fatalf("%s: close %d, want 1013", path, code)
				}
				slow.answerClose(transport.CloseTryAgainLater)
				break
			}
			if path == "/drop" && p == "end" {
				break
			}
			n, _ := strconv.Atoi(strings.Fields(p + " ")[0])
			if op != ws.OpText || p != line(n, size) || n <= last || path == "/cut" && n != last+1 {
				t.Fatalf("%s: after line %d got %v %.20q (%d bytes)", path, last, op, p, len(p))
			}
			last = n
			got++
		}
		if got == lines {
			t.Fatalf("%s: the slow client got every line: it was not slow", path)
		}
		if path == "/drop" {
			a.expect("end")
			b.expect("end")
			return []*testClient{slow, a, b}
		}
		return []*testClient{a, b}
	}
	cut := flood("/cut")
	open := flood("/drop") // closed with 1001 at shutdown

	// A child that dies is restarted; its clients are closed, or kept.
	// restart kills the child of path and waits for the next.
	restart := func(path string) {
		ep, _, _ := srv.routes.find(path)
		old := ep.hub.PID()
		if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			if pid := ep.hub.PID(); pid != 0 && pid != old {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no new child 10s after the last was killed", path)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	kept := dialTest(t, addr, "/keep", 0)
	kept.send("before", 100)
	kept.expect("before")
	restart("/keep")
	kept.send("after", 100)
	kept.expect("after")
	open = append(open, kept)
	restart("/cut")
	for _, c := range cut {
		c.expectClose(transport.CloseServiceRestart)
	}

	cancel()
	for _, c := range open {
		for {
			op, p, err := c.read(10 * time.Second)
			if err != nil {
				t.Fatalf("waiting for the close at shutdown: %v", err)
			}
			if op == ws.OpClose {
				if code := transport.CloseCode(binary.BigEndian.Uint16([]byte(p))); code != transport.CloseGoingAway {
					t.Fatalf("close %d at shutdown, want 1001", code)
				}
				c.answerClose(transport.CloseGoingAway)
				break
			}
		}
	}
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("Serve did not return after its context ended:\n%s", strings.Join(goroutines(), "\n\n"))
	}
	if srv.conns.Load() != 0 || srv.forks.Load() != 0 {
		t.Errorf("counters after shutdown: %d connections, %d children; want 0", srv.conns.Load(), srv.forks.Load())
	}
}

// clientFrame returns a masked client frame.
func clientFrame(t *testing.T, fin bool, rsv byte, op ws.OpCode, payload []byte) []byte {
	t.Helper()
	p := bytes.Clone(payload)
	mask := [4]byte{9, 8, 7, 6}
	ws.Cipher(p, mask, 0)
	var b bytes.Buffer
	if err := ws.WriteHeader(&b, ws.Header{Fin: fin, Rsv: rsv, OpCode: op, Masked: true, Mask: mask, Length: int64(len(p))}); err != nil {
		t.Fatal(err)
	}
	b.Write(p)
	return b.Bytes()
}
