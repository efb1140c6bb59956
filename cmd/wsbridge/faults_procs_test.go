package main

// Issue 9, item 3: processes a program started that leave its process
// group (setsid, a double fork, SIGTERM ignored, a cleared environment)
// must not outlive the daemon, which is a subreaper and ends what is left
// at exit (procs.EndAll, or KillAll at a second signal). That they end
// with their session, their shared child's restart and a CGI reply is
// tested in-process (bridge/escape_test.go). The programs are sh scripts
// because the issue names sh behaviour; each appends "NAME PID" lines to
// $DIR/pids for the test to find the processes by PID.

import (
	"github.com/wsbridge/wsbridge/procs/proctest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// escapeScript, run as sh -c escapeScript sh DIR, starts three processes
// that leave its group and, when $2 is "unmarked", a fourth that also
// clears its environment; it records their PIDs, then echoes stdin.
const escapeScript = `d=$1
setsid sleep 301 &
echo "setsid $!" >> "$d/pids"
(setsid sleep 302 & echo "double-fork $!" >> "$d/pids")
setsid sh -c 'trap "" TERM; exec sleep 303' &
echo "ignores-term $!" >> "$d/pids"
if [ "$2" = unmarked ]; then
	(env -i /usr/bin/setsid /usr/bin/sleep 304 & echo "unmarked $!" >> "$d/pids")
fi
echo started
exec cat
`

// escapee is a process a program left behind, as the test saw it.
type escapee struct {
	name string
	proctest.Stat
}

// waitEscapees waits until $dir/pids names first+n processes and returns
// the n after the first; the test kills whatever is left of them when it
// ends. Each must be running, unless ended is true: the bridge may have
// ended them already (a CGI script's, once the reply is out).
func waitEscapees(t *testing.T, dir string, first, n int, ended bool) []escapee {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(dir, "pids"))
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(b) > 0 && len(lines) >= first+n {
			var es []escapee
			for _, l := range lines[first : first+n] {
				name, p, _ := strings.Cut(l, " ")
				pid, err := strconv.Atoi(p)
				if err != nil {
					t.Fatalf("pids file: %q", l)
				}
				st, ok := proctest.Read(pid)
				if !ok && !ended {
					t.Fatalf("%s %d is gone before the test began", name, pid)
				}
				if !ok {
					st = proctest.Stat{PID: pid, Start: ^uint64(0)} // no process starts then
				}
				e := escapee{name, st}
				t.Cleanup(func() {
					if !e.Gone() {
						syscall.Kill(e.PID, syscall.SIGKILL)
					}
				})
				es = append(es, e)
			}
			return es
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d processes recorded after 20s, want %d: %q", len(lines), first+n, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitEscapeesGone fails unless every one of es is gone (no /proc entry,
// not even a zombie) within timeout.
func waitEscapeesGone(t *testing.T, timeout time.Duration, es []escapee) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var left []string
		for _, e := range es {
			if !e.Gone() {
				st, _ := proctest.Read(e.PID)
				left = append(left, e.name+" "+strconv.Itoa(e.PID)+" state "+string(st.State)+" ppid "+strconv.Itoa(st.PPID))
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still running %v after: %s", timeout, strings.Join(left, "; "))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Nothing a session started outlives the daemon, even a process that
// cleared its environment: after a clean shutdown, and after the second
// signal's exit at once.
func TestEscapeEndsWithDaemon(t *testing.T) {
	for _, tt := range []struct {
		name    string
		signals int
	}{
		{"SIGTERM", 1},
		{"second signal", 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			b := startBridge(t, "/bin/sh", "-c", escapeScript, "sh", dir, "unmarked")
			ctx := testCtx(t, 60*time.Second)
			c := dialWS(t, ctx, b.URL("/"), nil)
			defer c.CloseNow()
			if got := readText(t, ctx, c); got != "started" {
				t.Fatalf("got %q", got)
			}
			es := waitEscapees(t, dir, 0, 4, false)
			b.Signal(syscall.SIGTERM)
			if tt.signals == 2 {
				if !b.Log.WaitFor("shutting down", 10*time.Second) {
					t.Fatal("no shutdown log line")
				}
				b.Signal(syscall.SIGTERM)
			}
			err := b.Wait(30 * time.Second)
			if tt.signals == 1 && err != nil {
				t.Errorf("exit after SIGTERM: %v, want status 0", err)
			}
			// Killed before the daemon exits; a zombie it left is
			// reaped by init.
			waitEscapeesGone(t, 5*time.Second, es)
		})
	}
}
