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
	"path/filepath"
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
			es := proctest.WaitRecorded(t, filepath.Join(dir, "pids"), 0, 4, false)
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
			proctest.WaitNamedGone(t, 5*time.Second, es)
		})
	}
}
