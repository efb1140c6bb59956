package main

// Issue 9, items 3 and 7: processes a program started that leave its
// process group (setsid, a double fork, SIGTERM ignored) must not outlive
// the session or the daemon, and must not hold a CGI reply past the
// timeout. The programs are sh scripts because the issue names sh
// behaviour; each appends "NAME PID" lines to $DIR/pids for the test to
// find the processes by PID.

import (
	"encoding/json"
	"github.com/wsbridge/wsbridge/procs/proctest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
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

// The ladder is 100 ms + 500 ms + 1 s for the group, then up to 100 ms +
// 1 s for what left it; escapeSlack is that and room for a loaded machine.
const escapeSlack = 15 * time.Second

// A per-connection program's escaped processes end with its session.
func TestEscapeEndsWithSession(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b := startBridge(t, "/bin/sh", "-c", escapeScript, "sh", dir)
	ctx := testCtx(t, 60*time.Second)
	c := dialWS(t, ctx, b.URL("/"), nil)
	if got := readText(t, ctx, c); got != "started" {
		t.Fatalf("got %q", got)
	}
	es := waitEscapees(t, dir, 0, 3, false)
	if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
	waitEscapeesGone(t, escapeSlack, es)
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

// A --shared program's escaped processes end when it is restarted, and
// when the daemon shuts down.
func TestSharedEscapeEnds(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// Exits at the first line a client sends: the hub restarts it.
	script := strings.Replace(escapeScript, "exec cat", "read line; exit 0", 1)
	b := startBridge(t, "--shared", "/bin/sh", "-c", script, "sh", dir)
	first := waitEscapees(t, dir, 0, 3, false)
	ctx := testCtx(t, 60*time.Second)
	c := dialWS(t, ctx, b.URL("/"), nil)
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageText, []byte("exit")); err != nil {
		t.Fatal(err)
	}
	second := waitEscapees(t, dir, 3, 3, false)
	waitEscapeesGone(t, escapeSlack, first)
	b.Signal(syscall.SIGTERM)
	if err := b.Wait(30 * time.Second); err != nil {
		t.Errorf("exit after SIGTERM: %v, want status 0", err)
	}
	waitEscapeesGone(t, 5*time.Second, second)
}

// cgiEscapeScript is a per-message CGI script: "leave" leaves a setsid
// process holding stdout and exits; "hang" does the same and then runs
// past any timeout; anything else is echoed.
const cgiEscapeScript = `#!/bin/sh
msg=$(dd bs=1 count="$CONTENT_LENGTH" 2>/dev/null)
d=${0%/*}
case $msg in
leave) setsid sleep 305 & echo "leave $!" >> "$d/pids" ;;
hang) setsid sh -c 'trap "" TERM; exec sleep 306' & echo "hang $!" >> "$d/pids"; sleep 60 ;;
esac
printf 'Content-Type: text/plain\n\nreply %s' "$msg"
`

func startCGIEscape(t *testing.T, args ...string) (*bridgeProc, string) {
	t.Helper()
	script := writeScript(t, "escape.cgi", cgiEscapeScript)
	if err := os.Chmod(script, 0o755); err != nil {
		t.Fatal(err)
	}
	return startBridge(t, append(append([]string{"--cgi-per-message"}, args...), script)...), filepath.Dir(script)
}

// A script that exits leaving a process that holds its stdout still gets
// its reply, and the process ends with the script.
func TestCGIEscapeAfterExit(t *testing.T) {
	t.Parallel()
	b, dir := startCGIEscape(t)
	ctx := testCtx(t, 30*time.Second)
	c := dialWS(t, ctx, b.URL("/"), nil)
	defer c.CloseNow()
	for _, m := range []string{"leave", "after"} {
		if err := c.Write(ctx, websocket.MessageText, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"reply leave", "reply after"} {
		if got := readText(t, ctx, c); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	waitEscapeesGone(t, escapeSlack, waitEscapees(t, dir, 0, 1, true))
}

// A timeout ends the reply at the timeout, whatever holds the pipe: the
// 504 comes, the next message is answered, the escaped process ends and
// SIGTERM still shuts the daemon down.
func TestCGITimeoutEscape(t *testing.T) {
	t.Parallel()
	b, dir := startCGIEscape(t, "--cgi-timeout=2s", "--cgi-per-conn=1")
	ctx := testCtx(t, 60*time.Second)
	c := dialWS(t, ctx, b.URL("/"), nil)
	defer c.CloseNow()
	sent := time.Now()
	for _, m := range []string{"hang", "after"} {
		if err := c.Write(ctx, websocket.MessageText, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	// Generous against a loaded machine; without the fix no reply ever
	// comes.
	rctx := testCtx(t, 20*time.Second)
	var reply struct{ Status int }
	if err := json.Unmarshal([]byte(readText(t, rctx, c)), &reply); err != nil || reply.Status != 504 {
		t.Fatalf("first reply: %+v %v, want status 504", reply, err)
	}
	t.Logf("504 came %v after the message (--cgi-timeout=2s)", time.Since(sent).Round(time.Millisecond))
	if got := readText(t, rctx, c); got != "reply after" {
		t.Fatalf("second reply %q", got)
	}
	es := waitEscapees(t, dir, 0, 1, true)
	waitEscapeesGone(t, escapeSlack, es)

	// Again, and shut down while the script hangs.
	if err := c.Write(ctx, websocket.MessageText, []byte("hang")); err != nil {
		t.Fatal(err)
	}
	es = waitEscapees(t, dir, 1, 1, false)
	b.Signal(syscall.SIGTERM)
	if err := b.Wait(30 * time.Second); err != nil {
		t.Errorf("exit after SIGTERM: %v, want status 0", err)
	}
	waitEscapeesGone(t, 5*time.Second, es)
}

// SIGTERM closes a per-message CGI connection with 1001, as it closes a
// session, and the daemon exits though the client stays.
func TestCGIShutdownClosesClients(t *testing.T) {
	t.Parallel()
	b, _ := startCGIEscape(t)
	ctx := testCtx(t, 60*time.Second)
	c := dialWS(t, ctx, b.URL("/"), nil)
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageText, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if got := readText(t, ctx, c); got != "reply hi" {
		t.Fatalf("got %q", got)
	}
	b.Signal(syscall.SIGTERM)
	_, _, err := c.Read(ctx)
	if code := websocket.CloseStatus(err); code != websocket.StatusGoingAway {
		t.Errorf("read after SIGTERM: %v, want close 1001", err)
	}
	if err := b.Wait(30 * time.Second); err != nil {
		t.Errorf("exit after SIGTERM: %v, want status 0", err)
	}
}

// A script that writes more than --cgi-max-output without reading its
// stdin gets its 502 at once, not at --cgi-timeout: the feed of a message
// larger than the pipe must not hold the reply back.
func TestCGITooBigNotReading(t *testing.T) {
	t.Parallel()
	script := writeScript(t, "big.cgi", "#!/bin/sh\nhead -c 100000 /dev/zero | tr '\\0' x\nexec sleep 300\n")
	if err := os.Chmod(script, 0o755); err != nil {
		t.Fatal(err)
	}
	b := startBridge(t, "--cgi-per-message", "--cgi-timeout=60s", "--cgi-max-output=1000", script)
	ctx := testCtx(t, 90*time.Second)
	c := dialWS(t, ctx, b.URL("/"), nil)
	defer c.CloseNow()
	c.SetReadLimit(-1)
	if err := c.Write(ctx, websocket.MessageBinary, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	// Generous against a loaded machine, well short of the timeout.
	rctx := testCtx(t, 30*time.Second)
	var reply struct{ Status int }
	if err := json.Unmarshal([]byte(readText(t, rctx, c)), &reply); err != nil || reply.Status != 502 {
		t.Fatalf("reply: %+v %v, want status 502 before --cgi-timeout=60s", reply, err)
	}
}
