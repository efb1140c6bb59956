package main

// Tests of how a shared child's output is paced (issue 9, items 4 and
// 10): the fastest clients set the pace, a client a whole --queue behind
// them is cut (or skipped, --drop-slow), and a client cut hears its 1013.

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

// A program that writes 20 MB as fast as it can: a client that reads as
// fast as it can gets every line, in order, and is never cut, whether or
// not a client that never reads is connected too; that one is cut (or,
// with --drop-slow, skipped for) and does not hold the others back.
func TestSharedFastProgramPacedByFastestClient(t *testing.T) {
	const lines, size = 20000, 1000 // 20 MB
	for _, tc := range []struct {
		name  string
		flags []string
		stuck bool // a client that never reads joins too
	}{
		{name: "alone"},
		{name: "with a client that never reads", stuck: true},
		{name: "drop-slow with a client that never reads", flags: []string{"--drop-slow"}, stuck: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := startBridge(t, append(append([]string{"--shared"}, tc.flags...), childBin, "broadcast")...)
			ctx := testCtx(t, 3*time.Minute)
			joins := 1
			if tc.stuck {
				slowDial(t, b.Addr)
				joins++
			}
			fast := dialJoined(t, ctx, b.URL("/"), 1)
			writeText(t, ctx, fast[0], fmt.Sprintf("go %d %d %d", lines, size, joins))
			readFloodAll(t, ctx, fast, lines, size)
			writeText(t, ctx, fast[0], "end")
			expectNext(t, ctx, fast, "echo: end")
			if tc.stuck && len(tc.flags) == 0 {
				b.WaitRecords("slow client disconnected", 1, 30*time.Second)
			}
		})
	}
}

// A lone client that never reads holds the program back only for a
// while: once it has taken nothing for the stall limit it is cut, and
// the program, and the clients that come later, go on.
func TestSharedStuckClientDoesNotStallProgram(t *testing.T) {
	t.Parallel()
	const lines, size = 20000, 1000
	b := startBridge(t, "--shared", childBin, "broadcast")
	ctx := testCtx(t, 2*time.Minute)
	stuck := slowDial(t, b.Addr)
	if err := stuck.WriteFrame(true, wstest.OpText, []byte(fmt.Sprintf("go %d %d", lines, size))); err != nil {
		t.Fatal(err)
	}
	b.WaitRecords("slow client disconnected", 1, time.Minute)
	late := dialJoined(t, ctx, b.URL("/"), 1)
	writeText(t, ctx, late[0], "end")
	for {
		_, data, err := late[0].Read(ctx)
		if err != nil {
			t.Fatalf("a client that came after the stuck one: %v", err)
		}
		if string(data) == "echo: end" {
			break
		}
	}
	var ce websocket.CloseError
	if err := late[0].Close(websocket.StatusNormalClosure, ""); err != nil && !errors.As(err, &ce) {
		t.Logf("close: %v", err)
	}
}

// A client cut for being slow hears why: what it reads after a pause
// longer than the close timeout is whole lines in order, then the close
// frame with 1013, never a connection that just ends (1006).
func TestSharedSlowClientHearsItsClose(t *testing.T) {
	t.Parallel()
	const size = 1000
	b, _, _, slow, goodDone := slowRun(t)
	b.WaitRecords("slow client disconnected", 1, 30*time.Second)
	time.Sleep(4 * time.Second) // a pause past the close timeout (2s): the client is not reading
	got := 0
	for {
		op, data, cf, err := slow.ReadMessage(30 * time.Second)
		if errors.Is(err, wstest.ErrClosed) {
			if cf.CloseCode() != 1013 {
				t.Fatalf("close %d %q after %d lines, want 1013", cf.CloseCode(), cf.CloseReason(), got)
			}
			break
		}
		if err != nil {
			t.Fatalf("after %d lines: %v, want a close frame with 1013", got, err)
		}
		if op == wstest.OpText && got == 0 && len(data) > 8 && string(data[:8]) == "started " {
			continue
		}
		if n, ok := floodNumber(string(data), size); op != wstest.OpText || !ok || n != got+1 {
			t.Fatalf("after %d lines got %.30q (%d bytes), want line %d whole", got, data, len(data), got+1)
		}
		got++
	}
	t.Logf("the slow client got %d lines, then 1013", got)
	goodDone()
}

// At shutdown a client that reads nothing hears the 1001 too, when it
// reads after a pause longer than the close timeout: what was queued for
// it is dropped, the frame begun on the wire is finished, then the close.
func TestSharedShutdownStuckClientHearsItsClose(t *testing.T) {
	t.Parallel()
	const size = 1000
	b := startBridge(t, "--shared", "--drop-slow", "--queue=64KiB", childBin, "broadcast")
	ctx := testCtx(t, 60*time.Second)
	stuck, _ := stuckClients(t, b, ctx, 1)
	b.Signal(syscall.SIGTERM)
	time.Sleep(4 * time.Second) // past the close timeout (2s)
	got := 0
	for {
		op, data, cf, err := stuck[0].ReadMessage(30 * time.Second)
		if errors.Is(err, wstest.ErrClosed) {
			if cf.CloseCode() != 1001 {
				t.Fatalf("close %d %q after %d lines, want 1001", cf.CloseCode(), cf.CloseReason(), got)
			}
			break
		}
		if err != nil {
			t.Fatalf("after %d lines: %v, want a close frame with 1001", got, err)
		}
		if _, ok := floodNumber(string(data), size); op != wstest.OpText || !ok && got > 0 {
			t.Fatalf("after %d lines got %.30q (%d bytes), want a line whole", got, data, len(data))
		}
		got++
	}
	t.Logf("the stuck client got %d messages, then 1001", got)
	if err := b.Wait(20 * time.Second); err != nil {
		t.Errorf("exit after SIGTERM: %v, want status 0", err)
	}
}

// --assembly-budget bounds what the clients of a shared child hold
// together in messages they have not finished: the client whose message
// does not fit is closed with 1013 and logged, the others keep theirs. A
// budget below --max-message is refused before start (exit 2).
func TestSharedAssemblyBudgetFlag(t *testing.T) {
	t.Parallel()
	t.Run("refused below max-message", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, bridgeBin, "--address=127.0.0.1", "--port=0", "--shared",
			"--assembly-budget=512KiB", childBin, "broadcast").CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "--assembly-budget") {
			t.Fatalf("%v %q, want exit status 2 naming --assembly-budget", err, out)
		}
	})
	t.Run("bounds unfinished messages", func(t *testing.T) {
		b := startBridge(t, "--shared", "--assembly-budget=2MiB", childBin, "broadcast")
		part := make([]byte, 700<<10) // held in a 1 MiB buffer
		var held []*wstest.Conn
		for range 2 {
			c := wstest.MustDial(t, b.Addr, wstest.Options{Path: "/"})
			if err := c.WriteFrame(false, wstest.OpText, part); err != nil {
				t.Fatal(err)
			}
			held = append(held, c)
		}
		b.WaitRecords("shared program started", 1, 10*time.Second)
		// Both parts are in before the third: each has its frame read.
		time.Sleep(500 * time.Millisecond)
		third := wstest.MustDial(t, b.Addr, wstest.Options{Path: "/"})
		if err := third.WriteFrame(false, wstest.OpText, part); err != nil {
			t.Fatal(err)
		}
		for {
			_, _, cf, err := third.ReadMessage(20 * time.Second)
			if errors.Is(err, wstest.ErrClosed) {
				if cf.CloseCode() != 1013 {
					t.Fatalf("close %d %q, want 1013", cf.CloseCode(), cf.CloseReason())
				}
				break
			}
			if err != nil {
				t.Fatalf("the client past the budget: %v, want close 1013", err)
			}
		}
		b.WaitRecords("client message refused: assembly budget full", 1, 10*time.Second)
		// The first finishes its message: it reaches the child, whose
		// echo reaches everyone left.
		if err := held[0].WriteFrame(true, wstest.OpContinuation, []byte("!")); err != nil {
			t.Fatal(err)
		}
		for _, c := range held {
			for {
				op, data, _, err := c.ReadMessage(20 * time.Second)
				if err != nil {
					t.Fatalf("a client within the budget: %v", err)
				}
				if op == wstest.OpText && strings.HasPrefix(string(data), "echo: ") && len(data) == len("echo: ")+len(part)+1 {
					break
				}
			}
		}
	})
}
