package bridge

// How a shared child's output is paced (issue 9, items 4 and 10): the
// fastest clients set the pace, a client a whole Queue behind them is cut
// (or skipped, DropSlow), and a client cut hears its 1013.

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

// A program that writes 20 MB as fast as it can: a client that reads as
// fast as it can gets every line, in order, and is never cut, whether or
// not a client that never reads is connected too; that one is cut (or,
// with DropSlow, skipped for) and does not hold the others back.
func TestSharedFastProgramPacedByFastestClient(t *testing.T) {
	const lines, size = 20000, 1000 // 20 MB
	for _, tc := range []struct {
		name  string
		opts  SharedOptions
		stuck bool // a client that never reads joins too
	}{
		{name: "alone"},
		{name: "with a client that never reads", stuck: true},
		{name: "drop-slow with a client that never reads", opts: SharedOptions{DropSlow: true}, stuck: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := runShared(t, Endpoint{Command: testChildCmd(t, "broadcast"), Shared: tc.opts})
			joins := 1
			if tc.stuck {
				slowDial(t, s.addr)
				joins++
			}
			fast := dialJoined(t, s.addr, 1)
			fast[0].say(t, fmt.Sprintf("go %d %d %d", lines, size, joins))
			readFloodAll(t, fast, lines, size)
			fast[0].say(t, "end")
			expectNext(t, fast, "echo: end")
			if tc.stuck && !tc.opts.DropSlow {
				s.log.WaitRecords(t, "slow client disconnected", 1, 30*time.Second)
			}
		})
	}
}

// A lone client that never reads holds the program back only for a
// while: once it has taken nothing for the stall limit it is cut, and
// the program, and the clients that come later, go on.
func TestSharedStuckClientDoesNotStallProgram(t *testing.T) {
	skipShort(t)
	t.Parallel()
	const lines, size = 20000, 1000
	s := runShared(t, Endpoint{Command: testChildCmd(t, "broadcast")})
	stuck := slowDial(t, s.addr)
	if err := stuck.WriteFrame(true, wstest.OpText, []byte(fmt.Sprintf("go %d %d", lines, size))); err != nil {
		t.Fatal(err)
	}
	s.log.WaitRecords(t, "slow client disconnected", 1, time.Minute)
	late := dialJoined(t, s.addr, 1)[0]
	late.say(t, "end")
	for {
		_, data, _, err := late.ReadMessage(readTimeout)
		if err != nil {
			t.Fatalf("a client that came after the stuck one: %v", err)
		}
		if string(data) == "echo: end" {
			break
		}
	}
	if _, err := late.CloseHandshake(1000, 10*time.Second); err != nil {
		t.Logf("close: %v", err)
	}
}

// A client cut for being slow hears why: what it reads after a pause
// longer than the close timeout is whole lines in order, then the close
// frame with 1013, never a connection that just ends (1006).
func TestSharedSlowClientHearsItsClose(t *testing.T) {
	skipShort(t)
	t.Parallel()
	const size = 1000
	s, _, slow, goodDone := slowRun(t, SharedOptions{})
	s.log.WaitRecords(t, "slow client disconnected", 1, 30*time.Second)
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
