package bridge

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/bridge/handover"
	"github.com/wsbridge/wsbridge/bridge/transport"
	"github.com/wsbridge/wsbridge/bridge/wstest"
	"github.com/wsbridge/wsbridge/cmd/testchild/childbin"
)

// The bridge's tests run a Server in-process on loopback (serveTest),
// under the goroutine-leak check of TestMain, with cmd/testchild or
// /bin/sh as the program, and talk to it with bridge/wstest, or with
// bridge/internal/memconn through ServeClient (transports_test.go).

// stoppable is a Server a test runs on loopback (serveStoppable), with
// its log.
type stoppable struct {
	srv      *Server
	addr     string
	handover string   // the hand-over socket, when the test asked for one
	log      *testLog // its records, unless the test gave a Logger
	cancel   context.CancelFunc
	done     chan struct{} // closed when Serve returns, with its error in served
	served   error
}

// serveStoppable runs New(opts) on a 127.0.0.1 port until the test ends,
// recording the log (when opts has no Logger), with the shutdown in the
// test's hands: shutdown ends Serve's context, as SIGTERM ends the
// daemon's, and wait waits for Serve to return. The test fails if Serve
// does not return at its end; the log is printed if it failed.
func serveStoppable(t *testing.T, opts Options) *stoppable {
	t.Helper()
	return serveListening(t, opts, "")
}

// serveListening is serveStoppable, also taking connections handed over
// on the unix socket handoverPath when it is not "".
func serveListening(t *testing.T, opts Options, handoverPath string) *stoppable {
	t.Helper()
	lg := newTestLog()
	if opts.Logger == nil {
		opts.Logger = lg.Logger()
	}
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listeners := []net.Listener{l}
	if handoverPath != "" {
		hl, err := handover.Listen(handoverPath, handover.Config{Log: opts.Logger})
		if err != nil {
			t.Fatal(err)
		}
		listeners = append(listeners, hl)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &stoppable{srv: srv, addr: l.Addr().String(), handover: handoverPath, log: lg, cancel: cancel, done: make(chan struct{})}
	go func() { s.served = srv.Serve(ctx, listeners...); close(s.done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.done:
		case <-time.After(30 * time.Second):
			t.Errorf("Serve did not return after its context ended")
		}
		if t.Failed() {
			t.Logf("the server's log:\n%s", lg)
		}
	})
	return s
}

// shutdown ends Serve's context: the daemon's SIGTERM.
func (s *stoppable) shutdown() { s.cancel() }

// wait waits up to timeout for Serve to return and returns its error;
// it fails the test on timeout.
func (s *stoppable) wait(t testing.TB, timeout time.Duration) error {
	t.Helper()
	select {
	case <-s.done:
		return s.served
	case <-time.After(timeout):
		t.Fatalf("Serve still running %v after its context ended", timeout)
		return nil
	}
}

// stop is shutdown, then wait.
func (s *stoppable) stop(t testing.TB, timeout time.Duration) error {
	t.Helper()
	s.shutdown()
	return s.wait(t, timeout)
}

// serveTest is serveStoppable for a test that leaves the shutdown to its
// end.
func serveTest(t *testing.T, opts Options) (*Server, string) {
	t.Helper()
	s := serveStoppable(t, opts)
	return s.srv, s.addr
}

// waitFor polls cond for up to a minute (a guard against hangs on a busy
// machine, not a speed assertion).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s after a minute", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
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

// dial upgrades a connection to path; rcvbuf, when not 0, shrinks its
// receive buffer first: a client slow to read.
func dial(t *testing.T, addr, path string, rcvbuf int) *wstest.Conn {
	t.Helper()
	return wstest.MustDial(t, addr, wstest.Options{Path: path, RcvBuf: rcvbuf})
}

// send writes one text message in frames of at most frame bytes.
func send(t *testing.T, c *wstest.Conn, msg string, frame int) {
	t.Helper()
	if err := c.WriteMessage(wstest.OpText, []byte(msg), frame); err != nil {
		t.Fatal(err)
	}
}

// read reads one frame within timeout: the bridge sends a line in one
// frame, so a fragment is an error.
func read(c *wstest.Conn, timeout time.Duration) (byte, string, error) {
	f, err := c.ReadFrame(timeout)
	if err != nil {
		return 0, "", err
	}
	if !f.Fin {
		return 0, "", fmt.Errorf("a fragment of %d bytes: the bridge sends lines whole", len(f.Payload))
	}
	return f.Op, string(f.Payload), nil
}

// expectWhole fails unless the next frame is text msg, whole.
func expectWhole(t *testing.T, c *wstest.Conn, msg string) {
	t.Helper()
	op, p, err := read(c, 10*time.Second)
	if err != nil || op != wstest.OpText || p != msg {
		t.Fatalf("got %v %.40q (%d bytes) %v, want text %.40q (%d bytes)", op, p, len(p), err, msg, len(msg))
	}
}

// answerClose sends a close frame with code and ends the connection.
func answerClose(c *wstest.Conn, code transport.CloseCode) {
	_ = c.WriteClose(int(code), "")
	c.Conn.Close()
}

// closeCodeOf reads frames until a close comes and returns its code, or 0
// if the connection ends first.
func closeCodeOf(c *wstest.Conn, timeout time.Duration) transport.CloseCode {
	for {
		f, err := c.ReadFrame(timeout)
		if err != nil {
			return 0
		}
		if f.Op == wstest.OpClose && len(f.Payload) >= 2 {
			return transport.CloseCode(f.CloseCode())
		}
	}
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

// expectCloseAnswer fails unless the next frame is a close with code, and
// answers it.
func expectCloseAnswer(t *testing.T, c *wstest.Conn, code transport.CloseCode) {
	t.Helper()
	op, p, err := read(c, 10*time.Second)
	if err != nil || op != wstest.OpClose || len(p) < 2 || transport.CloseCode(wstest.CloseCode([]byte(p))) != code {
		t.Fatalf("got %v %.40q %v, want close %d", op, p, err, code)
	}
	answerClose(c, code)
}

// skipShort skips a test that mostly waits (on close timeouts, stall
// limits, scripts' timeouts) in -short runs: the qemu matrix runs this
// package's tests under emulation with -short, where every board would
// pay the waits again. make test runs them all.
func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("waits on timeouts: run without -short")
	}
}
