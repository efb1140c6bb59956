package bridge

import (
	"context"
	"errors"
	"fmt"
	"github.com/wsbridge/wsbridge/bridge/wstest"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
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

// waitParked waits up to 10 s for the n idle clients of what to park,
// and fails unless fewer than n/2 goroutines of the bridge (a client's
// connection, its pump, a TLS read) still wait for them.
func waitParked(t *testing.T, n int, what string) {
	t.Helper()
	waiting := func() int {
		k := 0
		for _, g := range goroutines() {
			if strings.Contains(g, "bridge/wsconn.") || strings.Contains(g, "bridge/modes.(*Pump)") || strings.Contains(g, "crypto/tls.(*Conn).Read") {
				k++
			}
		}
		return k
	}
	deadline := time.Now().Add(10 * time.Second)
	for waiting() >= n/2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if k := waiting(); k >= n/2 {
		t.Errorf("%d goroutines wait for %d idle %s: they do not park", k, n, what)
	}
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
		// MustDial closes each at the test's end. The last one is left
		// open for the shutdown: an unclosed socket would be closed later
		// by a finalizer, whose goroutine the leak check then finds
		// running.
		c := wstest.MustDial(t, l.Addr().String(), wstest.Options{Path: "/x", Host: "localhost"})
		if i == 1 {
			time.Sleep(50 * time.Millisecond) // idle long enough to park both pumps
		}
		msg := fmt.Sprintf("message %d", i)
		if err := c.WriteMessage(wstest.OpText, []byte(msg), 0); err != nil {
			t.Fatal(err)
		}
		op, p, _, err := c.ReadMessage(10 * time.Second)
		if err != nil || op != wstest.OpText || string(p) != msg {
			t.Fatalf("echo: %v %q %v, want text %q", op, p, err, msg)
		}
		if i == 2 {
			break // left open: shutdown closes it with 1001
		}
		if err := c.WriteClose(1000, ""); err != nil {
			t.Fatal(err)
		}
		if f, err := c.ReadFrame(10 * time.Second); err != nil || f.Op != wstest.OpClose {
			t.Fatalf("close answered with %v, %v", f.Op, err)
		}
		c.Conn.Close()
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
