package bridge

// A shared child that exits is restarted, after a wait that doubles at
// each quick exit; its clients are closed (1012) or kept.

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

// A shared child that exits is restarted. By default its clients are
// closed with 1012 and may reconnect; with KeepClients they stay and hear
// the new child.
func TestSharedRestart(t *testing.T) {
	t.Parallel()
	t.Run("close", func(t *testing.T) {
		t.Parallel()
		marker := filepath.Join(t.TempDir(), "pids")
		s := runShared(t, Endpoint{Command: testChildCmd(t, "broadcast", marker)})
		first := startedPIDs(t, marker, 1, 10*time.Second)[0]
		conns := dialJoined(t, s.addr, 2)
		conns[0].say(t, "exit 3")
		for i, c := range conns {
			if code, reason, _ := c.closed(t); code != 1012 {
				t.Fatalf("client %d: close %d %q, want 1012", i, code, reason)
			}
		}
		rec := s.log.WaitRecords(t, "shared program exited; restarting", 1, 10*time.Second)[0]
		if rec["exit"] != "exit status 3" {
			t.Errorf("log record %v: want exit=\"exit status 3\"", rec)
		}
		second := startedPIDs(t, marker, 2, 10*time.Second)[1]
		if second == first {
			t.Fatalf("the same PID %s started twice", first)
		}
		// A client that reconnects talks to the new child.
		c := dialMember(t, s.addr, "/")
		c.say(t, "again")
		if got := c.skipStarted(t); got != "echo: again" {
			t.Fatalf("got %q from the new child, want \"echo: again\"", got)
		}
	})
	t.Run("keep", func(t *testing.T) {
		t.Parallel()
		marker := filepath.Join(t.TempDir(), "pids")
		s := runShared(t, Endpoint{Command: testChildCmd(t, "broadcast", marker), Shared: SharedOptions{KeepClients: true}})
		first := startedPIDs(t, marker, 1, 10*time.Second)[0]
		c := dialJoined(t, s.addr, 1)[0]
		c.say(t, "exit 3")
		second := startedPIDs(t, marker, 2, 10*time.Second)[1]
		// The client stayed, and hears the new child from its start. (It
		// may have joined before the first child's own line went out: a
		// slow server, under qemu, says it after the PID file has it.)
		got := c.text(t)
		if got == "started "+first {
			got = c.text(t)
		}
		if got != "started "+second {
			t.Fatalf("got %q, want \"started %s\" from the new child", got, second)
		}
		c.say(t, "still here")
		if got := c.text(t); got != "echo: still here" {
			t.Fatalf("got %q, want \"echo: still here\"", got)
		}
	})
	t.Run("mux keep", func(t *testing.T) {
		t.Parallel()
		s := runShared(t, muxEndpoint(t, SharedOptions{KeepClients: true}))
		a := dialMux(t, s.addr, "name=a")
		c := dialMux(t, s.addr, "name=c")
		a.say(t, "exit")
		// The new child is told about both clients, with their
		// environment, and greets each under the same id.
		for _, m := range []*member{a, c} {
			got := m.skipStarted(t)
			if want := "hello " + m.id + " 127.0.0.1 name=" + map[string]string{a.id: "a", c.id: "c"}[m.id]; got != want {
				t.Fatalf("client %s got %q, want %q", m.id, got, want)
			}
		}
		c.say(t, "to:"+a.id+":after")
		if got := a.text(t); got != "after" {
			t.Fatalf("a got %q, want after", got)
		}
		rec := s.log.WaitRecords(t, "shared program exited; restarting", 1, 10*time.Second)[0]
		if rec["exit"] != "exit status 7" {
			t.Errorf("log record %v: want exit=\"exit status 7\"", rec)
		}
	})
	t.Run("backoff", func(t *testing.T) {
		t.Parallel()
		// A child that exits at once: each wait before a restart is
		// twice the one before.
		s := runShared(t, Endpoint{Command: testChildCmd(t, "exit", "1")})
		recs := s.log.WaitRecords(t, "shared program exited; restarting", 4, 20*time.Second)
		starts := s.log.Records("shared program started")
		var afters []string
		for _, r := range recs[:4] {
			afters = append(afters, r["after"])
		}
		if want := []string{"100ms", "200ms", "400ms", "800ms"}; !slices.Equal(afters, want) {
			t.Errorf("waits before restarting %q, want %q", afters, want)
		}
		// And the server does wait: each start comes at least that
		// long after the exit before it.
		for i := 1; i < 4 && i < len(starts); i++ {
			exited, _ := time.Parse(time.RFC3339Nano, recs[i-1]["time"])
			started, _ := time.Parse(time.RFC3339Nano, starts[i]["time"])
			wait, _ := time.ParseDuration(afters[i-1])
			if gap := started.Sub(exited); gap < wait-5*time.Millisecond {
				t.Errorf("start %d came %v after the exit before it, want at least %v", i+1, gap, wait)
			}
		}
	})
}

// AssemblyBudget bounds what the clients of a shared child hold together
// in messages they have not finished: the client whose message does not
// fit is closed with 1013 and logged, the others keep theirs. (That the
// daemon refuses a budget below --max-message stays in cmd/wsbridge.)
func TestSharedAssemblyBudgetBoundsUnfinished(t *testing.T) {
	t.Parallel()
	s := runShared(t, Endpoint{Command: testChildCmd(t, "broadcast"), AssemblyBudget: 2 << 20})
	part := make([]byte, 700<<10) // held in a 1 MiB buffer
	var held []*wstest.Conn
	for range 2 {
		c := wstest.MustDial(t, s.addr, wstest.Options{Path: "/"})
		if err := c.WriteFrame(false, wstest.OpText, part); err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	s.log.WaitRecords(t, "shared program started", 1, 10*time.Second)
	// Both parts are in before the third: each has its frame read.
	time.Sleep(500 * time.Millisecond)
	third := wstest.MustDial(t, s.addr, wstest.Options{Path: "/"})
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
	s.log.WaitRecords(t, "client message refused: assembly budget full", 1, 10*time.Second)
	// The first finishes its message: it reaches the child, whose echo
	// reaches everyone left.
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
}
