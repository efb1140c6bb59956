package main

// Integration tests: the real wsbridge binary, real children (cmd/testchild),
// real loopback sockets, and clients that share no code with the server:
// the end-to-end set, and what needs the daemon (signals, exit status).
// What a session does is tested in-process in bridge (process_*_test.go,
// session_*_test.go).

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsbridge/wsbridge/procs/proctest"
)

// testCtx is a context bounded by timeout and the test's end.
func testCtx(t testing.TB, timeout time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return ctx
}

// 1. Round trips in every framing, with every client.
func TestEchoRoundTrips(t *testing.T) {
	big := make([]byte, 20000) // a frame with a 16-bit length; hex-encoded it still fits in one argv string
	_, _ = rand.Read(big)
	cases := []struct {
		name string
		args []string
		send []wsMsg
		raw  bool // boundaries are the pipe's: compare the bytes only
	}{
		{
			name: "line",
			args: []string{childBin, "echo"},
			send: []wsMsg{wsText("hello"), wsText("héllo wörld ✓"), wsText(""), wsText(strings.Repeat("x", 1000))},
		},
		{
			name: "raw",
			args: []string{"--binary", childBin, "cat"},
			send: []wsMsg{wsBinary([]byte{0, 1, 2, 0xff, '\n', 0}), wsBinary(big)},
			raw:  true,
		},
		{
			name: "len32",
			args: []string{"--framing=len32", childBin, "cat"},
			send: []wsMsg{wsText("hello"), wsBinary([]byte{0, 1, 0xff}), wsText(""), wsBinary(nil), wsText("two\nlines"), wsBinary(big)},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := startBridge(t, tc.args...)
			var want []byte
			for _, m := range tc.send {
				want = append(want, m.Data...)
			}
			plan := readPlan{"msgs", len(tc.send)}
			if tc.raw {
				plan = readPlan{"bytes", len(want)}
			}
			for _, cl := range wsClients {
				t.Run(cl.name, func(t *testing.T) {
					run := cl.run(t, b.URL("/"), plan, tc.send)
					if run.CloseCode != 1000 {
						t.Errorf("close code %d %q, want 1000", run.CloseCode, run.CloseReason)
					}
					if !tc.raw {
						if fmt.Sprint(run.Msgs) != fmt.Sprint(tc.send) {
							t.Errorf("received\n%v\nwant\n%v", run.Msgs, tc.send)
						}
						return
					}
					var got []byte
					for _, m := range run.Msgs {
						if !m.Binary {
							t.Errorf("raw framing sent a text message %q", m.Data)
						}
						got = append(got, m.Data...)
					}
					if !bytes.Equal(got, want) {
						t.Errorf("received %d bytes %x..., want %d bytes %x...", len(got), got[:min(16, len(got))], len(want), want[:16])
					}
				})
			}
			for _, rec := range b.Access(len(wsClients)) {
				if rec["close"] != "1000" || rec["exit"] != "exit status 0" {
					t.Errorf("access line %v: want close=1000 exit=\"exit status 0\"", rec)
				}
			}
		})
	}
}

// 4. How the child's end reaches the client, with every client.
func TestChildExit(t *testing.T) {
	flood := make([]wsMsg, 1000)
	for i := range flood {
		flood[i] = wsText(fmt.Sprintf("%d %s", i+1, "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuv"[:100-len(strconv.Itoa(i+1))-1]))
	}
	cases := []struct {
		name   string
		args   []string
		want   []wsMsg
		code   int
		reason string  // a substring of the close reason
		or     []wsMsg // also accepted, noted in the output
	}{
		{"exit 0", []string{childBin, "exit", "0", "bye"}, []wsMsg{wsText("bye")}, 1000, "", nil},
		{"exit 3", []string{childBin, "exit", "3", "bye"}, []wsMsg{wsText("bye")}, 1011, "exit status 3", nil},
		// websocketd drops a last line without newline.
		{"partial line", []string{childBin, "partial", "no newline"}, []wsMsg{wsText("no newline")}, 1000, "", nil},
		// The 10 bytes of the cut record go out as an unfinished message,
		// which clients drop at the close: never taken for a whole one.
		{"len32 truncated", []string{"--framing=len32", childBin, "len32-truncated"}, nil, 1011, "mid-message", nil},
		// Everything written just before exit arrives before the close.
		{"flood then exit", []string{childBin, "flood", "1000", "100"}, flood, 1000, "", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := startBridge(t, tc.args...)
			for _, cl := range wsClients {
				t.Run(cl.name, func(t *testing.T) {
					run := cl.run(t, b.URL("/"), readPlan{mode: "wait"}, nil)
					if tc.or != nil && fmt.Sprint(run.Msgs) == fmt.Sprint(tc.or) {
						t.Logf("NOTE: received %v before the close", run.Msgs)
					} else if fmt.Sprint(run.Msgs) != fmt.Sprint(tc.want) {
						t.Errorf("received %d messages %.200v, want %d %.200v", len(run.Msgs), run.Msgs, len(tc.want), tc.want)
					}
					if run.CloseCode != tc.code || !strings.Contains(run.CloseReason, tc.reason) {
						t.Errorf("close %d %q, want %d with %q", run.CloseCode, run.CloseReason, tc.code, tc.reason)
					}
				})
			}
		})
	}
}

// 6. Protocol rules as a conforming client sees them: what third-party
// clients make of a program's invalid UTF-8. The other protocol rules are
// tested in-process, in bridge/session_protocol_test.go.
func TestProtocol(t *testing.T) {
	t.Run("child prints invalid UTF-8", func(t *testing.T) {
		t.Parallel()
		// "a\xffb\n", "ok\n", "\xc3\n" (a cut code point)
		b := startBridge(t, childBin, "bytes", "61ff620a6f6b0ac30a")
		for _, cl := range wsClients {
			t.Run(cl.name, func(t *testing.T) {
				run := cl.run(t, b.URL("/"), readPlan{mode: "wait"}, nil)
				want := []wsMsg{wsBinary([]byte("a\xffb")), wsText("ok"), wsBinary([]byte{0xc3})}
				if fmt.Sprint(run.Msgs) != fmt.Sprint(want) || run.CloseCode != 1000 {
					t.Fatalf("received %v, close %d; want %v, close 1000", run.Msgs, run.CloseCode, want)
				}
			})
		}
	})
}

// 11. SIGTERM closes every session with 1001, ends every child, and the
// bridge exits 0; a second signal while draining exits at once.
func TestShutdown(t *testing.T) {
	cases := []struct {
		name          string
		child         string
		first         string
		atLeast, most time.Duration
	}{
		{"echo children", "echo", "", 0, 5 * time.Second},
		// Children that ignore SIGTERM need the whole ladder (100ms +
		// 500ms, then SIGKILL); the three run theirs at the same time.
		{"ignore-term children", "ignore-term", "ready", 600 * time.Millisecond, 5 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := startBridge(t, childBin, tc.child)
			ctx := testCtx(t, 20*time.Second)
			type result struct {
				code websocket.StatusCode
				err  error
			}
			results := make(chan result, 3)
			for range 3 {
				c := dialWS(t, ctx, b.URL("/"), nil)
				if tc.first != "" {
					readText(t, ctx, c)
				}
				go func() {
					_, _, err := c.Read(ctx)
					results <- result{websocket.CloseStatus(err), err}
				}()
			}
			kids := proctest.WaitChildren(t, b.PID(), 3, 5*time.Second)
			start := time.Now()
			b.Signal(syscall.SIGTERM)
			for range 3 {
				if r := <-results; r.code != websocket.StatusGoingAway {
					t.Errorf("client got %v, want close 1001", r.err)
				}
			}
			if err := b.Wait(10 * time.Second); err != nil {
				t.Errorf("bridge exit: %v, want status 0", err)
			}
			took := time.Since(start)
			proctest.WaitGone(t, time.Second, kids...)
			t.Logf("bridge exited %v after SIGTERM with 3 sessions", took.Round(time.Millisecond))
			if took < tc.atLeast || took > tc.most {
				t.Errorf("shutdown took %v, want %v to %v", took, tc.atLeast, tc.most)
			}
		})
	}

	t.Run("second signal", func(t *testing.T) {
		t.Parallel()
		b := startBridge(t, "--closems=5000", childBin, "ignore-term")
		ctx := testCtx(t, 20*time.Second)
		c := dialWS(t, ctx, b.URL("/"), nil)
		readText(t, ctx, c)
		child := proctest.WaitChildren(t, b.PID(), 1, 5*time.Second)[0]
		t.Cleanup(func() {
			if !child.Gone() {
				syscall.Kill(child.PID, syscall.SIGKILL) // the bridge left it behind
			}
		})
		go c.Read(ctx) // answer the bridge's close
		b.Signal(syscall.SIGTERM)
		if !b.Log.WaitFor("shutting down", 5*time.Second) {
			t.Fatal("no shutdown log line")
		}
		start := time.Now()
		b.Signal(syscall.SIGTERM)
		err := b.Wait(5 * time.Second)
		took := time.Since(start)
		t.Logf("exit %v %v after the second signal", err, took.Round(time.Millisecond))
		var ee interface{ ExitCode() int }
		if !errors.As(err, &ee) || ee.ExitCode() == 0 {
			t.Errorf("bridge exit %v, want a non-zero status", err)
		}
		if took > 2*time.Second {
			t.Errorf("bridge took %v to exit after the second signal", took)
		}
		// The draining session's child ignores SIGTERM and the ladder was
		// stretched to 5s: exiting at once must not leave it running.
		deadline := time.Now().Add(2 * time.Second)
		for !child.Gone() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if !child.Gone() {
			st, _ := proctest.Read(child.PID)
			t.Errorf("BUG: child %d (ignore-term) still running after the bridge exited on the second signal (state %c, ppid %d)", child.PID, st.State, st.PPID)
		}
	})
}

// A connection that has not sent its request (a browser's preconnect) does
// not hold shutdown for the 10s handshake timeout.
func TestShutdownWithSilentConnection(t *testing.T) {
	t.Parallel()
	b := startBridge(t, childBin, "echo")
	c, err := net.Dial("tcp", b.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(100 * time.Millisecond) // let the bridge start reading its head
	began := time.Now()
	b.Signal(syscall.SIGTERM)
	if err := b.Wait(8 * time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v, want status 0", err)
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Fatalf("shutdown took %v with one silent connection: it waited for the handshake timeout", d.Round(time.Millisecond))
	}
	t.Logf("shutdown with a silent connection took %v", time.Since(began).Round(time.Millisecond))
}
