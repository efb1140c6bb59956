package bridge

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"github.com/wsbridge/wsbridge/cmd/testchild/childbin"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// TestMain fails the run if goroutines outlive the tests: every pump,
// parked reader, poller and reaper must have an owner that stops it.
func TestMain(m *testing.M) {
	before := goroutines()
	code := m.Run()
	if testChild.dir != "" {
		os.RemoveAll(testChild.dir)
	}
	if code == 0 {
		deadline := time.Now().Add(5 * time.Second)
		for len(goroutines()) > len(before) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if after := goroutines(); len(after) > len(before) {
			fmt.Fprintf(os.Stderr, "goroutines leaked: %d before the tests, %d after:\n\n%s\n",
				len(before), len(after), strings.Join(after, "\n\n"))
			code = 1
		}
	}
	os.Exit(code)
}

// testChild is cmd/testchild, built at the first test that runs it.
var testChild struct {
	once      sync.Once
	dir, path string
	err       error
}

// testChildPath returns the path of cmd/testchild (see childbin).
func testChildPath(t *testing.T) string {
	t.Helper()
	testChild.once.Do(func() {
		if testChild.dir, testChild.err = os.MkdirTemp("", "bridge-testchild"); testChild.err == nil {
			testChild.path, testChild.err = childbin.Build(testChild.dir)
		}
	})
	if testChild.err != nil {
		t.Fatal(testChild.err)
	}
	return testChild.path
}

// goroutines returns the stacks of the running goroutines but the
// runtime's own: the signal loop, which signal.Notify (the reaper's
// SIGCHLD) starts once for the life of the process, and the goroutines
// that run cleanups and finalizers after a collection (os.File and
// os.Root queue them), which runtime.Stack lists while they run: seen
// under qemu-mips, where a collection can fall at the end of the run.
func goroutines() []string {
	buf := make([]byte, 1<<20)
	var out []string
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if !strings.Contains(g, "os/signal.signal_recv") &&
			!strings.Contains(g, "runtime.runCleanups") && !strings.Contains(g, "runtime.runfinq") {
			out = append(out, g)
		}
	}
	return out
}

// TestServeEndToEnd runs the server in-process with a real child: a
// message echoes through cat, the client's close is echoed, idle sessions
// park, and after shutdown nothing of the server is left running (see
// TestMain).
func TestServeEndToEnd(t *testing.T) {
	cat := "/bin/cat"
	if _, err := os.Stat(cat); err != nil {
		t.Skipf("no %s here", cat)
	}
	srv, err := New(Options{Endpoints: []Endpoint{{Command: []string{cat}, Framing: "len32"}}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, l) }()

	for i := range 3 {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		// The last one is left open for the shutdown: an unclosed
		// socket would be closed later by a finalizer, whose goroutine
		// the leak check then finds running.
		t.Cleanup(func() { c.Close() })
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "GET /x HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
		br := bufio.NewReader(c)
		status, _ := br.ReadString('\n')
		if !strings.Contains(status, " 101 ") {
			t.Fatalf("handshake answered %q", status)
		}
		for line, _ := br.ReadString('\n'); line != "\r\n"; line, _ = br.ReadString('\n') {
		}
		if i == 1 {
			time.Sleep(50 * time.Millisecond) // idle long enough to park both pumps
		}
		msg := fmt.Sprintf("message %d", i)
		if _, err := c.Write(clientFrame(t, true, 0, ws.OpText, []byte(msg))); err != nil {
			t.Fatal(err)
		}
		h, err := ws.ReadHeader(br)
		if err != nil {
			t.Fatal(err)
		}
		p := make([]byte, h.Length)
		if _, err := io.ReadFull(br, p); err != nil {
			t.Fatal(err)
		}
		if h.OpCode != ws.OpText || string(p) != msg {
			t.Fatalf("echo: %v %q, want text %q", h.OpCode, p, msg)
		}
		if i == 2 {
			break // left open: shutdown closes it with 1001
		}
		if _, err := c.Write(clientFrame(t, true, 0, ws.OpClose, []byte{3, 232})); err != nil {
			t.Fatal(err)
		}
		if h, err = ws.ReadHeader(br); err != nil || h.OpCode != ws.OpClose {
			t.Fatalf("close answered with %v, %v", h.OpCode, err)
		}
		c.Close()
	}
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	if srv.conns.Load() != 0 || srv.forks.Load() != 0 {
		t.Errorf("counters after shutdown: %d connections, %d children; want 0", srv.conns.Load(), srv.forks.Load())
	}
	// Serve closed its listener. (Dialling the port would prove nothing:
	// another test's server may have taken it since.)
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("listener after Serve returned: Accept gave %v, want net.ErrClosed", err)
	}
}
