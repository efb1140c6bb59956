package bridge

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/bridge/wstest"
	"github.com/wsbridge/wsbridge/procs/proctest"
)

// How a child of its own ends, and what it leaves behind: nothing.

// When the client goes away the child is ended by the ladder: stdin
// EOF, then SIGTERM, then SIGKILL; its whole process group goes with it.
func TestClientGoesAway(t *testing.T) {
	child := testChildPath(t)
	cases := []struct {
		name    string
		args    []string
		grace   time.Duration // --closems
		first   string        // what the child says first, if anything
		exit    string        // the access line's exit field
		atLeast time.Duration // the ladder's waits before that end
	}{
		{"stdin EOF", []string{child, "echo"}, 0, "", "exit status 0", 0},
		{"SIGTERM", []string{child, "sleep"}, 0, "", "killed by signal 15 (terminated)", 100 * time.Millisecond},
		{"SIGKILL", []string{child, "ignore-term"}, 0, "ready", "killed by signal 9 (killed)", 600 * time.Millisecond},
		{"SIGKILL closems", []string{child, "ignore-term"}, 300 * time.Millisecond, "ready", "killed by signal 9 (killed)", 1200 * time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := runProgram(t, Options{}, Endpoint{Command: tc.args, CloseGrace: tc.grace})
			c := p.dial(t, "/")
			if tc.first != "" {
				if got := readText(t, c); got != tc.first {
					t.Fatalf("child said %q, want %q", got, tc.first)
				}
			}
			child := p.waitChildren(t, 1, 5*time.Second)[0]
			start := time.Now()
			if f, err := c.CloseHandshake(1000, 10*time.Second); err != nil || f.CloseCode() != 1000 {
				t.Fatalf("close answered with %d, %v", f.CloseCode(), err)
			}
			proctest.WaitGone(t, 10*time.Second, child)
			took := time.Since(start)
			t.Logf("child gone %v after the client closed", took.Round(time.Millisecond))
			if took < tc.atLeast {
				t.Errorf("child gone after %v, want at least %v", took, tc.atLeast)
			}
			rec := p.access(t, 1)[0]
			if rec["exit"] != tc.exit || rec["close"] != "1000" || rec["pid"] != strconv.Itoa(child.PID) {
				t.Errorf("access line %v: want exit=%q close=1000 pid=%d", rec, tc.exit, child.PID)
			}
		})
	}

	t.Run("grandchild", func(t *testing.T) {
		t.Parallel()
		p := runProgram(t, Options{}, Endpoint{Command: []string{child, "grandchild"}})
		c := p.dial(t, "/")
		var gcPID int
		if _, err := fmt.Sscanf(readText(t, c), "grandchild %d", &gcPID); err != nil {
			t.Fatal(err)
		}
		child := p.waitChildren(t, 1, 5*time.Second)[0]
		gc := proctest.MustStat(t, gcPID)
		if gc.PGID != child.PID {
			t.Fatalf("grandchild pgid %d, want the child's group %d", gc.PGID, child.PID)
		}
		if _, err := c.CloseHandshake(1000, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		// Gone means no /proc entry: not running, not a zombie.
		proctest.WaitGone(t, 10*time.Second, child, gc)
	})

	// A daemon the child started in a session of its own keeps stdout and
	// stderr open once the child's group is gone: nothing more can reach
	// the client, so the session must end anyway and free its slot, and
	// the daemon ends with it (it is outside the group: the server finds
	// it as the child's descendant).
	t.Run("detached grandchild holds stdout", func(t *testing.T) {
		t.Parallel()
		p := runProgram(t, Options{MaxForks: 1}, Endpoint{Command: []string{child, "detach"}})
		c := p.dial(t, "/")
		// Killed by the test too, should the server leave it.
		killLater := func(text string) proctest.Stat {
			var pid int
			if _, err := fmt.Sscanf(text, "grandchild %d", &pid); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
			return proctest.MustStat(t, pid)
		}
		gc := killLater(readText(t, c))
		child := p.waitChildren(t, 1, 5*time.Second)[0]
		if _, err := c.CloseHandshake(1000, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		proctest.WaitGone(t, 10*time.Second, child, gc)
		if rec := p.access(t, 1)[0]; rec["close"] != "1000" || rec["pid"] != strconv.Itoa(child.PID) {
			t.Errorf("access line %v: want close=1000 pid=%d", rec, child.PID)
		}
		// The MaxForks slot is free again.
		c2 := p.dial(t, "/")
		killLater(readText(t, c2))
	})

	t.Run("own process group", func(t *testing.T) {
		t.Parallel()
		p := runProgram(t, Options{}, Endpoint{Command: []string{child, "pid"}})
		c := p.dial(t, "/")
		var pid, pgid int
		if _, err := fmt.Sscanf(readText(t, c), "pid %d pgid %d", &pid, &pgid); err != nil {
			t.Fatal(err)
		}
		ourGroup := proctest.MustStat(t, os.Getpid()).PGID
		if pgid != pid || pgid == ourGroup {
			t.Fatalf("child pid %d pgid %d (the server's group %d): want a group of its own", pid, pgid, ourGroup)
		}
		if st := proctest.MustStat(t, pid); st.PPID != os.Getpid() {
			t.Fatalf("child's parent is %d, want the server's process %d", st.PPID, os.Getpid())
		}
	})
}

// TestProgramExitWithBackgroundJob: a program that exits while a job it
// started in the background keeps stdout open still ends the session: the
// client gets what was written, then close 1000, and the job is ended.
func TestProgramExitWithBackgroundJob(t *testing.T) {
	skipShort(t)
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	p := runProgram(t, Options{}, Endpoint{Command: []string{"/bin/sh", "-c", "echo hi; sleep 300 & echo $!; exit 0"}})
	c := p.dial(t, "/")
	var got []string
	for {
		_, data, cf, err := c.ReadMessage(15 * time.Second)
		if errors.Is(err, wstest.ErrClosed) {
			if cf.CloseCode() != 1000 {
				t.Errorf("close %d %q, want 1000", cf.CloseCode(), cf.CloseReason())
			}
			break
		}
		if err != nil {
			t.Fatalf("after %q: no close frame: %v", got, err)
		}
		got = append(got, string(data))
	}
	if len(got) != 2 || got[0] != "hi" {
		t.Fatalf("received %q, want hi and the job's PID", got)
	}
	pid, err := strconv.Atoi(got[1])
	if err != nil {
		t.Fatal(err)
	}
	if st, ok := proctest.Read(pid); ok {
		t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
		proctest.WaitGone(t, 15*time.Second, st)
	}
}

// TestMaxForksSlotFreeWhenProgramGone: with MaxForks 1 a client that
// finished the close handshake but keeps its socket open does not hold
// the slot once its program is gone: a reconnect gets 101, not 429.
func TestMaxForksSlotFreeWhenProgramGone(t *testing.T) {
	p := runProgram(t, Options{MaxForks: 1}, Endpoint{Command: []string{testChildPath(t), "pid"}})
	c := p.dial(t, "/")
	_, data, _, err := c.ReadMessage(10 * time.Second)
	m := regexp.MustCompile(`^pid (\d+) `).FindSubmatch(data)
	if err != nil || m == nil {
		t.Fatalf("pid line: %q, %v", data, err)
	}
	pid, _ := strconv.Atoi(string(m[1]))
	st, ok := proctest.Read(pid)
	if err := c.WriteClose(1000, ""); err != nil {
		t.Fatal(err)
	}
	if _, _, cf, err := c.ReadMessage(10 * time.Second); !errors.Is(err, wstest.ErrClosed) || cf.CloseCode() != 1000 {
		t.Fatalf("close answered with %d, %v", cf.CloseCode(), err)
	}
	// The client keeps its TCP socket open from here on.
	if ok {
		proctest.WaitGone(t, 10*time.Second, st)
	}
	// The slot goes with the program: allow a moment for the session's
	// bookkeeping, far less than the 2s close timeout it waited for.
	deadline := time.Now().Add(time.Second)
	for {
		c2 := wstest.MustDialTCP(t, p.addr, wstest.Options{})
		resp, err := c2.Upgrade(wstest.Options{Path: "/"})
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == http.StatusSwitchingProtocols {
			break
		}
		c2.Conn.Close()
		if resp.StatusCode != http.StatusTooManyRequests || time.Now().After(deadline) {
			t.Fatalf("reconnect once the program is gone: %s, want 101", resp.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
