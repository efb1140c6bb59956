package bridge

// The shutdown of a shared endpoint: Serve's context ends, as SIGTERM
// ends the daemon's. Every client is closed with 1001, stuck ones
// included, and the child ends before Serve returns.

import (
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/bridge/wstest"
	"github.com/wsbridge/wsbridge/procs/proctest"
)

// Shutdown closes every client with 1001, a stuck one included, and ends
// the child before Serve returns.
func TestSharedShutdown(t *testing.T) {
	skipShort(t)
	t.Parallel()
	const lines, size = 3000, 1000
	s := runShared(t, Endpoint{Command: testChildCmd(t, "broadcast"), Shared: dropSlow64K})
	kid := s.hubChild(t, "/")
	stuck := slowDial(t, s.addr)
	conns := dialJoined(t, s.addr, 3)
	conns[0].say(t, fmt.Sprintf("go %d %d 4", lines, size))
	readFloodAll(t, conns, lines, size)
	s.log.WaitRecords(t, "slow client: dropping messages (--drop-slow)", 1, 10*time.Second)

	s.shutdown()
	for i, c := range conns {
		if code, reason, _ := c.closed(t); code != 1001 {
			t.Errorf("client %d: close %d %q, want 1001", i, code, reason)
		}
	}
	if err := s.wait(t, 15*time.Second); err != nil {
		t.Errorf("Serve after the shutdown: %v, want nil", err)
	}
	if !kid.Gone() {
		t.Errorf("the child %d outlived Serve", kid.PID)
	}
	_ = stuck // it never read: the server did not wait for it for ever
}

// Shutdown with several clients that read nothing: the waits for them
// run side by side, not one after the other.
func TestSharedShutdownStuckClients(t *testing.T) {
	skipShort(t)
	t.Parallel()
	const n = 8 // 8 close timeouts of 2s in a row would pass the bound below
	s := runShared(t, Endpoint{Command: testChildCmd(t, "broadcast"), Shared: dropSlow64K})
	_, good := stuckClients(t, s, n)
	closed := make(chan int, 1)
	go func() {
		_, _, cf, err := good.ReadMessage(readTimeout)
		if !errors.Is(err, wstest.ErrClosed) {
			closed <- 0
			return
		}
		closed <- cf.CloseCode()
	}()
	if err := s.stop(t, 12*time.Second); err != nil {
		t.Errorf("Serve after the shutdown: %v, want nil", err)
	}
	if code := <-closed; code != 1001 {
		t.Errorf("the client that reads got close %d, want 1001", code)
	}
}

// At shutdown a client that reads nothing hears the 1001 too, when it
// reads after a pause longer than the close timeout: what was queued for
// it is dropped, the frame begun on the wire is finished, then the close.
func TestSharedShutdownStuckClientHearsItsClose(t *testing.T) {
	skipShort(t)
	t.Parallel()
	const size = 1000
	s := runShared(t, Endpoint{Command: testChildCmd(t, "broadcast"), Shared: dropSlow64K})
	stuck, _ := stuckClients(t, s, 1)
	s.shutdown()
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
	if err := s.wait(t, 20*time.Second); err != nil {
		t.Errorf("Serve after the shutdown: %v, want nil", err)
	}
}

// A shared child that leaves a daemon holding its stdout does not hold
// up shutdown, and the daemon does not outlive it.
func TestSharedShutdownDaemonHoldsStdout(t *testing.T) {
	skipShort(t)
	t.Parallel()
	s := runShared(t, Endpoint{Command: testChildCmd(t, "detach")})
	kid := s.hubChild(t, "/")
	daemon := proctest.WaitChildren(t, kid.PID, 1, 10*time.Second)[0]
	t.Cleanup(func() { syscall.Kill(daemon.PID, syscall.SIGKILL) })
	if err := s.stop(t, 15*time.Second); err != nil {
		t.Errorf("Serve after the shutdown: %v, want nil", err)
	}
	if !kid.Gone() {
		t.Errorf("the child %d outlived Serve", kid.PID)
	}
	proctest.WaitGone(t, 5*time.Second, daemon) // ended, not just left behind
}
