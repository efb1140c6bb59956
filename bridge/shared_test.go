package bridge

import (
	"context"
	"encoding/binary"
	"errors"
	"github.com/wsbridge/wsbridge/bridge/transport"
	"github.com/wsbridge/wsbridge/bridge/wstest"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSharedHub runs shared endpoints in-process, under the race detector
// in CI, with cat as the child: every line a client sends goes to every
// client. A slow client is cut off (1013) or loses whole messages
// (DropSlow) while the others get everything; a child killed is
// restarted, its clients closed (1012) or kept; at shutdown everyone gets
// 1001, and nothing is left running (see TestMain).
func TestSharedHub(t *testing.T) {
	skipShort(t)
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
	flood := func(path string) []*wstest.Conn {
		slow := dial(t, addr, path, 2048)
		a, b := dial(t, addr, path, 0), dial(t, addr, path, 0)
		waitMembers(t, srv, path, 3)
		sent := make(chan error, 1)
		go func() {
			for i := 1; i <= lines; i++ {
				if err := a.WriteMessage(wstest.OpText, []byte(line(i, size)), 1000); err != nil { // in 8 frames each
					sent <- err
					return
				}
			}
			sent <- nil
		}()
		for i := 1; i <= lines; i++ {
			expectWhole(t, a, line(i, size))
			expectWhole(t, b, line(i, size))
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
			op, p, err := read(slow, timeout)
			if errors.Is(err, os.ErrDeadlineExceeded) && path == "/drop" && !quiet {
				// Everything queued is read: what is sent now must come.
				quiet = true
				send(t, a, "end", 100)
				continue
			}
			if err != nil {
				t.Fatalf("%s: after line %d: %v", path, last, err)
			}
			if path == "/cut" && op == wstest.OpClose {
				if code := transport.CloseCode(binary.BigEndian.Uint16([]byte(p))); code != transport.CloseTryAgainLater {
					t.Fatalf("%s: close %d, want 1013", path, code)
				}
				answerClose(slow, transport.CloseTryAgainLater)
				break
			}
			if path == "/drop" && p == "end" {
				break
			}
			n, _ := strconv.Atoi(strings.Fields(p + " ")[0])
			if op != wstest.OpText || p != line(n, size) || n <= last || path == "/cut" && n != last+1 {
				t.Fatalf("%s: after line %d got %v %.20q (%d bytes)", path, last, op, p, len(p))
			}
			last = n
			got++
		}
		if got == lines {
			t.Fatalf("%s: the slow client got every line: it was not slow", path)
		}
		if path == "/drop" {
			expectWhole(t, a, "end")
			expectWhole(t, b, "end")
			return []*wstest.Conn{slow, a, b}
		}
		return []*wstest.Conn{a, b}
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
	kept := dial(t, addr, "/keep", 0)
	send(t, kept, "before", 100)
	expectWhole(t, kept, "before")
	restart("/keep")
	send(t, kept, "after", 100)
	expectWhole(t, kept, "after")
	open = append(open, kept)
	restart("/cut")
	for _, c := range cut {
		expectCloseAnswer(t, c, transport.CloseServiceRestart)
	}

	cancel()
	for _, c := range open {
		for {
			op, p, err := read(c, 10*time.Second)
			if err != nil {
				t.Fatalf("waiting for the close at shutdown: %v", err)
			}
			if op == wstest.OpClose {
				if code := transport.CloseCode(binary.BigEndian.Uint16([]byte(p))); code != transport.CloseGoingAway {
					t.Fatalf("close %d at shutdown, want 1001", code)
				}
				answerClose(c, transport.CloseGoingAway)
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
