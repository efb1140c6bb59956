package wstest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// serve runs a server on loopback, independent of this package: each
// connection is upgraded by gobwas/ws (its request head recorded in
// heads) and then handed to handle. It returns the address.
func serve(t *testing.T, handle func(net.Conn)) (addr string, heads chan string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	heads = make(chan string, 16)
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
				var head strings.Builder
				u := ws.Upgrader{
					OnRequest: func(uri []byte) error { head.WriteString(string(uri) + "\n"); return nil },
					OnHeader: func(k, v []byte) error {
						head.WriteString(string(k) + ": " + string(v) + "\n")
						return nil
					},
				}
				if _, err := u.Upgrade(conn); err != nil {
					return
				}
				heads <- head.String()
				handle(conn)
			})
		}
	})
	return l.Addr().String(), heads
}

// echo echoes data messages until the client closes, and answers its
// close.
func echo(conn net.Conn) {
	for {
		p, op, err := wsutil.ReadClientData(conn)
		if err != nil {
			return
		}
		if err := wsutil.WriteServerMessage(conn, op, p); err != nil {
			return
		}
	}
}

func TestDialEchoes(t *testing.T) {
	addr, heads := serve(t, echo)
	c := MustDial(t, addr, Options{Path: "/x?y=1", Origin: "http://example.test", Header: []string{"X-Test: yes"}})
	head := <-heads
	for _, want := range []string{"/x?y=1\n", "Origin: http://example.test\n", "X-Test: yes\n"} {
		if !strings.Contains(head, want) {
			t.Errorf("request head lacks %q:\n%s", want, head)
		}
	}
	if err := c.WriteFrame(true, OpText, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	c.ExpectMessage(t, OpText, "hello")
	// A message in frames of 3 bytes comes back whole.
	if err := c.WriteMessage(OpBinary, []byte("fragmented"), 3); err != nil {
		t.Fatal(err)
	}
	c.ExpectMessage(t, OpBinary, "fragmented")
	f, err := c.CloseHandshake(CloseNormal, 5*time.Second)
	if err != nil || f.CloseCode() != CloseNormal {
		t.Fatalf("closing: %v %d, want nil 1000", err, f.CloseCode())
	}
}

func TestDialRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = bufio.NewReader(conn).ReadString('\n')
		_, _ = io.WriteString(conn, "HTTP/1.1 403 Forbidden\r\nContent-Length: 7\r\n\r\nno, sir")
	}()
	_, err = Dial(l.Addr().String(), Options{Timeout: 5 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "403 Forbidden") || !strings.Contains(err.Error(), "no, sir") {
		t.Fatalf("Dial: %v, want an error with the status and body", err)
	}
}

// A wrong Sec-WebSocket-Accept fails both Dial and Upgrade.
func TestWrongAccept(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = bufio.NewReader(conn).ReadString('\n')
			_, _ = io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "+AcceptKey("not the key")+"\r\n\r\n")
			conn.Close()
		}
	}()
	if _, err := Dial(l.Addr().String(), Options{}); err == nil || !strings.Contains(err.Error(), "Sec-WebSocket-Accept") {
		t.Errorf("Dial: %v, want a Sec-WebSocket-Accept error", err)
	}
	c := MustDialTCP(t, l.Addr().String(), Options{})
	if _, err := c.Upgrade(Options{}); err == nil || !strings.Contains(err.Error(), "Sec-WebSocket-Accept") {
		t.Errorf("Upgrade: %v, want a Sec-WebSocket-Accept error", err)
	}
}

func TestUpgradeAnswer(t *testing.T) {
	addr, _ := serve(t, echo)
	c := MustDialTCP(t, addr, Options{})
	resp, err := c.Upgrade(Options{Path: "/"})
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("Upgrade: %v %v, want 101", resp, err)
	}
	// gobwas refuses a request without a key, with a body saying why.
	c = MustDialTCP(t, addr, Options{})
	resp, err = c.Request("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n", "")
	if err != nil || resp.StatusCode != 400 {
		t.Fatalf("Request: %v %v, want 400", resp, err)
	}
	if body, _ := io.ReadAll(resp.Body); len(body) == 0 {
		t.Error("the 400's body was not read")
	}
}

// TestRcvBuf checks the receive buffer is set before the connection, as a
// slow reader's test needs.
func TestRcvBuf(t *testing.T) {
	addr, _ := serve(t, echo)
	c := MustDial(t, addr, Options{RcvBuf: 4096})
	rc, err := c.Conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got int
	var serr error
	_ = rc.Control(func(fd uintptr) { got, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF) })
	// Linux doubles the value asked for, for its bookkeeping.
	if serr != nil || got > 2*4096 {
		t.Fatalf("SO_RCVBUF %d %v, want at most %d", got, serr, 2*4096)
	}
}

// TestReadMessagePings checks a ping is answered with its payload inside a
// fragmented message, and the message comes whole.
func TestReadMessagePings(t *testing.T) {
	pong := make(chan string, 1)
	addr, _ := serve(t, func(conn net.Conn) {
		_ = ws.WriteFrame(conn, ws.NewFrame(ws.OpText, false, []byte("one ")))
		_ = ws.WriteFrame(conn, ws.NewPingFrame([]byte("are you there")))
		_ = ws.WriteFrame(conn, ws.NewFrame(ws.OpContinuation, true, []byte("two")))
		h, err := ws.ReadHeader(conn)
		p := make([]byte, min(h.Length, 125))
		if err == nil {
			_, err = io.ReadFull(conn, p)
			ws.Cipher(p, h.Mask, 0)
		}
		pong <- fmt.Sprintf("%v %q %v", h.OpCode, p, err)
		_ = ws.WriteFrame(conn, ws.NewCloseFrame(ws.NewCloseFrameBody(4001, "bye")))
		_, _ = ws.ReadHeader(conn) // the answer, then the server ends the connection
	})
	c := MustDial(t, addr, Options{})
	c.ExpectMessage(t, OpText, "one two")
	if got, want := <-pong, fmt.Sprintf("%v %q <nil>", ws.OpPong, "are you there"); got != want {
		t.Errorf("the server got %s, want %s", got, want)
	}
	if f := c.ExpectClose(t, 4001); f.CloseReason() != "bye" {
		t.Errorf("reason %q, want bye", f.CloseReason())
	}
}

// TestReadMessageRejects checks frames no server may send are errors.
func TestReadMessageRejects(t *testing.T) {
	for name, wire := range map[string][]byte{
		"masked":             AppendFrame(nil, Frame{Fin: true, Op: OpText, Payload: []byte("x")}),
		"rsv":                AppendFrame(nil, Frame{Fin: true, RSV: 4, Op: OpText, Unmasked: true}),
		"bare continuation":  AppendFrame(nil, Frame{Fin: true, Op: OpContinuation, Unmasked: true}),
		"data inside a data": append(AppendFrame(nil, Frame{Op: OpText, Unmasked: true}), AppendFrame(nil, Frame{Fin: true, Op: OpText, Unmasked: true})...),
		"reserved opcode":    AppendFrame(nil, Frame{Fin: true, Op: 0x3, Unmasked: true}),
	} {
		t.Run(name, func(t *testing.T) {
			addr, _ := serve(t, func(conn net.Conn) { _, _ = conn.Write(wire); _, _ = io.Copy(io.Discard, conn) })
			c := MustDial(t, addr, Options{})
			if op, data, _, err := c.ReadMessage(5 * time.Second); err == nil || errors.Is(err, ErrClosed) {
				t.Fatalf("ReadMessage = %#x %q %v, want an error", op, data, err)
			}
		})
	}
}

// TestReadFrameAsSent checks ReadFrame shows what a server sent, bad bits
// and all, and a masked payload unmasked.
func TestReadFrameAsSent(t *testing.T) {
	sent := []Frame{
		{Fin: false, RSV: 5, Op: 0xB, Unmasked: true, Payload: []byte("reserved")},
		{Fin: true, Op: OpBinary, Payload: bytes.Repeat([]byte{0xA5}, 70000)},
	}
	addr, _ := serve(t, func(conn net.Conn) {
		for _, f := range sent {
			_, _ = conn.Write(AppendFrame(nil, f))
		}
		_, _ = io.Copy(io.Discard, conn)
	})
	c := MustDial(t, addr, Options{})
	for i, want := range sent {
		got, err := c.ReadFrame(5 * time.Second)
		if err != nil || got.Fin != want.Fin || got.RSV != want.RSV || got.Op != want.Op || got.Unmasked != want.Unmasked || !bytes.Equal(got.Payload, want.Payload) {
			t.Fatalf("frame %d: %+.40v %v, want %+.40v", i, got, err, want)
		}
	}
}

// TestReadEOF tells an orderly end from a reset.
func TestReadEOF(t *testing.T) {
	for _, reset := range []bool{false, true} {
		addr, _ := serve(t, func(conn net.Conn) {
			_, _ = conn.Write([]byte("xyz"))
			if reset {
				time.Sleep(50 * time.Millisecond) // the bytes leave before the RST
				_ = conn.(*net.TCPConn).SetLinger(0)
			}
		})
		c := MustDial(t, addr, Options{})
		n, err := c.ReadEOF(5 * time.Second)
		if reset && !errors.Is(err, syscall.ECONNRESET) || !reset && (err != nil || n != 3) {
			t.Errorf("reset %v: ReadEOF = %d, %v", reset, n, err)
		}
	}
	addr, _ := serve(t, func(conn net.Conn) { time.Sleep(time.Second) })
	c := MustDial(t, addr, Options{})
	if _, err := c.ReadEOF(50 * time.Millisecond); err == nil {
		t.Error("ReadEOF on an open connection: nil, want the deadline")
	}
}

// TestWriteChunks checks the bytes arrive whole, cut and paced as asked.
func TestWriteChunks(t *testing.T) {
	got := make(chan []byte, 1)
	addr, _ := serve(t, func(conn net.Conn) {
		b, _ := io.ReadAll(conn)
		got <- b
	})
	c := MustDial(t, addr, Options{})
	wire := AppendFrame(nil, Frame{Fin: true, Op: OpText, Payload: []byte("chunked all the way")})
	start := time.Now()
	if err := c.WriteChunks(wire, 5, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if d, min := time.Since(start), time.Duration((len(wire)-1)/5)*10*time.Millisecond; d < min {
		t.Errorf("took %v, want at least %v of pauses", d, min)
	}
	c.Conn.(*net.TCPConn).CloseWrite()
	if b := <-got; !bytes.Equal(b, wire) {
		t.Errorf("server got %x, want %x", b, wire)
	}
}

func TestBuffer(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() { fmt.Fprintf(&b, "line %d\n", i) })
	}
	if !b.WaitFor("line 7\n", 5*time.Second) {
		t.Fatalf("no line 7 in %q", b.String())
	}
	wg.Wait()
	if n := strings.Count(b.String(), "\n"); n != 8 || len(b.Bytes()) != len(b.String()) {
		t.Errorf("%d lines in %q, want 8", n, b.String())
	}
	if b.WaitFor("never", 30*time.Millisecond) {
		t.Error("WaitFor found what was never written")
	}
}
