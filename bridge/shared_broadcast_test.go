package bridge

// The shared mode with testchild broadcast (line framing): one child for
// every client of the endpoint, whose every line goes to every client.

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/bridge/wstest"
	"github.com/wsbridge/wsbridge/procs/proctest"
)

// Every line a shared child writes reaches every one of 1,000 clients,
// once, whole and in order. (Not parallel: it counts the children of the
// test process.)
func TestSharedBroadcastManyClients(t *testing.T) {
	const clients, lines, size = 1000, 50, 200
	s := runShared(t, Endpoint{Command: testChildCmd(t, "broadcast")})
	conns := dialJoined(t, s.addr, clients)
	conns[0].say(t, fmt.Sprintf("go %d %d %d", lines, size, clients))
	readFloodAll(t, conns, lines, size)
	// Nothing was sent twice: the next message is the one after the flood.
	conns[0].say(t, "end")
	expectNext(t, conns, "echo: end")
	if n := len(proctest.ChildrenOf(os.Getpid())); n != 1 {
		t.Errorf("%d children for %d clients, want 1", n, clients)
	}
}

// Clients that send large messages in many frames at the same time: the
// child gets each message whole, never mixed with another client's.
func TestSharedMessagesNeverInterleave(t *testing.T) {
	t.Parallel()
	const clients, msgs, size, frame = 6, 3, 200 << 10, 4 << 10
	s := runShared(t, Endpoint{Command: testChildCmd(t, "broadcast")})
	conns := dialJoined(t, s.addr, clients)
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
				frames := append([]wstest.Frame{{Op: wstest.OpText, Payload: []byte("hash ")}},
					wstest.Fragments(wstest.OpContinuation, p, frame)...)
				for _, f := range frames {
					if err := c.WriteFrames(f); err != nil {
						errs[i] = err
						return
					}
				}
			}
		})
		wg.Go(func() { // reads every client's digests
			var got []string
			for len(got) < len(want) {
				_, data, _, err := c.ReadMessage(readTimeout)
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

// Lines longer than the server's buffer go out in pieces, shared by every
// client; each client gets each line whole. (Queue holds a whole line, so
// no client counts as slow here.)
func TestSharedLongLines(t *testing.T) {
	t.Parallel()
	const lines, size = 3, 300 << 10 // 300 KiB, more than the 128 KiB buffer
	s := runShared(t, Endpoint{Command: testChildCmd(t, "broadcast"), Shared: SharedOptions{Queue: 4 << 20}})
	conns := dialJoined(t, s.addr, 3)
	conns[0].say(t, fmt.Sprintf("go %d %d 3", lines, size))
	readFloodAll(t, conns, lines, size)
	conns[0].say(t, "end")
	expectNext(t, conns, "echo: end")
}

// Lazy starts the child only when the first client connects. (Not
// parallel: it counts the children of the test process.)
func TestSharedLazy(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "pids")
	s := runShared(t, Endpoint{Command: testChildCmd(t, "broadcast", marker), Shared: SharedOptions{Lazy: true}})
	time.Sleep(200 * time.Millisecond) // an eager start would show by now
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the child started before any client: %v", err)
	}
	if kids := proctest.ChildrenOf(os.Getpid()); len(kids) != 0 {
		t.Fatalf("children %+v before any client, want none", kids)
	}
	// The first message goes out at once: it waits for the child.
	c := dialMember(t, s.addr, "/")
	c.say(t, "hello")
	if got := c.skipStarted(t); got != "echo: hello" {
		t.Fatalf("got %q, want \"echo: hello\"", got)
	}
	pid := startedPIDs(t, marker, 1, 10*time.Second)[0]
	if kids := proctest.ChildrenOf(os.Getpid()); len(kids) != 1 || strconv.Itoa(kids[0].PID) != pid {
		t.Fatalf("children %+v, want the one child %s", kids, pid)
	}
}

// A child that never reads its stdin holds back the clients that write to
// it, and nobody else: other clients still come and go.
func TestSharedChildNotReadingStdin(t *testing.T) {
	t.Parallel()
	s := runShared(t, Endpoint{Command: testChildCmd(t, "noread")})
	fillSharedStdin(t, s)
	for i := range 3 {
		c := dialMember(t, s.addr, "/")
		if _, err := c.CloseHandshake(1000, 10*time.Second); err != nil {
			t.Fatalf("client %d: close: %v: the server did not answer", i, err)
		}
	}
	for _, rec := range s.access(t, 3) {
		if rec["close"] != "1000" || rec["close_by"] != "client" {
			t.Errorf("access record %v: want close=1000 close_by=client", rec)
		}
	}
}

// fillSharedStdin connects to a shared "testchild noread" and sends
// binary messages of 32 KiB until the child's stdin, the server and the
// socket buffers are full and the client's writes stall. The writer ends
// with the test.
func fillSharedStdin(t *testing.T, s *stoppable) *member {
	t.Helper()
	c := dialMember(t, s.addr, "/")
	s.hubChild(t, "/")
	var sent atomic.Int64
	done := make(chan struct{})
	t.Cleanup(func() { c.Conn.Conn.Close(); <-done })
	go func() {
		defer close(done)
		msg := make([]byte, 32<<10)
		for sent.Load() < 32<<20 {
			if c.WriteMessage(wstest.OpBinary, msg, 0) != nil {
				return
			}
			sent.Add(int64(len(msg)))
		}
	}()
	// Stalled: no progress for 300ms, within 15s.
	deadline := time.Now().Add(15 * time.Second)
	last, since := sent.Load(), time.Now()
	for {
		select {
		case <-done:
			t.Fatalf("the writer ended after %d bytes: want its writes to stall", sent.Load())
		case <-time.After(10 * time.Millisecond):
		}
		if now := sent.Load(); now != last {
			last, since = now, time.Now()
		} else if time.Since(since) >= 300*time.Millisecond {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the writer neither finished nor stalled in 15s")
		}
	}
	if last <= 1<<20 {
		t.Fatalf("client sent %d bytes, then stalled: want > 1 MiB", last)
	}
	t.Logf("client sent %d KiB, then its writes stalled", last>>10)
	return c
}
