package bridge

// Issue 9, items 3 and 7: processes a program started that leave its
// process group (setsid, a double fork, SIGTERM ignored) must not outlive
// the session or the Server, and must not hold a CGI reply past the
// timeout. The programs are sh scripts because the issue names sh
// behaviour; each appends "NAME PID" lines to $DIR/pids for the test to
// find the processes by PID.
//
// The test process is no child subreaper (the daemon makes itself one,
// and cmd/wsbridge's TestEscapeEndsWithDaemon tests that way): orphans go
// to an ancestor, and the server finds what escaped by its marker.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/bridge/wstest"
	"github.com/wsbridge/wsbridge/procs/proctest"
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

// daemonEnv is what the daemon passes its programs by default
// (--passenv): the scripts find setsid and sleep on PATH.
var daemonEnv = []string{"PATH", "LD_LIBRARY_PATH"}

// The ladder is 100 ms + 500 ms + 1 s for the group, then up to 100 ms +
// 1 s for what left it; escapeSlack is that and room for a loaded machine.
const escapeSlack = 15 * time.Second

// A per-connection program's escaped processes end with its session.
func TestEscapeEndsWithSession(t *testing.T) {
	skipShort(t)
	t.Parallel()
	dir := t.TempDir()
	s := serveStoppable(t, Options{Endpoints: []Endpoint{{Command: []string{"/bin/sh", "-c", escapeScript, "sh", dir}, PassEnv: daemonEnv}}})
	c := dialMember(t, s.addr, "/")
	if got := c.text(t); got != "started" {
		t.Fatalf("got %q", got)
	}
	es := proctest.WaitRecorded(t, filepath.Join(dir, "pids"), 0, 3, false)
	if _, err := c.CloseHandshake(1000, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	proctest.WaitNamedGone(t, escapeSlack, es)
}

// A shared program's escaped processes end when it is restarted, and
// when the Server shuts down.
func TestSharedEscapeEnds(t *testing.T) {
	skipShort(t)
	t.Parallel()
	dir := t.TempDir()
	// Exits at the first line a client sends: the hub restarts it.
	script := strings.Replace(escapeScript, "exec cat", "read line; exit 0", 1)
	s := runShared(t, Endpoint{Command: []string{"/bin/sh", "-c", script, "sh", dir}, PassEnv: daemonEnv})
	first := proctest.WaitRecorded(t, filepath.Join(dir, "pids"), 0, 3, false)
	c := dialMember(t, s.addr, "/")
	c.say(t, "exit")
	second := proctest.WaitRecorded(t, filepath.Join(dir, "pids"), 3, 3, false)
	proctest.WaitNamedGone(t, escapeSlack, first)
	if err := s.stop(t, 30*time.Second); err != nil {
		t.Errorf("Serve after the shutdown: %v, want nil", err)
	}
	proctest.WaitNamedGone(t, 5*time.Second, second)
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

// serveCGIScript serves the executable script src per message, with o,
// and returns the server and the script's directory.
func serveCGIScript(t *testing.T, src string, o CGIOptions) (*stoppable, string) {
	t.Helper()
	dir := t.TempDir()
	script := filepath.Join(dir, "escape.cgi")
	if err := os.WriteFile(script, []byte(src), 0o755); err != nil {
		t.Fatal(err)
	}
	ep := Endpoint{Command: []string{script}, Mode: ModeCGI, CGI: o, PassEnv: daemonEnv}
	return serveStoppable(t, Options{Endpoints: []Endpoint{ep}}), dir
}

// A script that exits leaving a process that holds its stdout still gets
// its reply, and the process ends with the script.
func TestCGIEscapeAfterExit(t *testing.T) {
	skipShort(t)
	t.Parallel()
	s, dir := serveCGIScript(t, cgiEscapeScript, CGIOptions{})
	c := dialMember(t, s.addr, "/")
	for _, m := range []string{"leave", "after"} {
		c.say(t, m)
	}
	for _, want := range []string{"reply leave", "reply after"} {
		if got := c.text(t); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	proctest.WaitNamedGone(t, escapeSlack, proctest.WaitRecorded(t, filepath.Join(dir, "pids"), 0, 1, true))
}

// A timeout ends the reply at the timeout, whatever holds the pipe: the
// 504 comes, the next message is answered, the escaped process ends and
// the Server still shuts down.
func TestCGITimeoutEscape(t *testing.T) {
	skipShort(t)
	t.Parallel()
	s, dir := serveCGIScript(t, cgiEscapeScript, CGIOptions{Timeout: 2 * time.Second, PerConn: 1})
	c := dialMember(t, s.addr, "/")
	sent := time.Now()
	for _, m := range []string{"hang", "after"} {
		c.say(t, m)
	}
	// Generous against a loaded machine; without the fix no reply ever
	// comes.
	reply := func() string {
		t.Helper()
		op, data, _, err := c.ReadMessage(20 * time.Second)
		if err != nil || op != wstest.OpText {
			t.Fatalf("reply: opcode %#x %q %v, want text", op, data, err)
		}
		return string(data)
	}
	var first struct{ Status int }
	if err := json.Unmarshal([]byte(reply()), &first); err != nil || first.Status != 504 {
		t.Fatalf("first reply: %+v %v, want status 504", first, err)
	}
	t.Logf("504 came %v after the message (CGI timeout 2s)", time.Since(sent).Round(time.Millisecond))
	if got := reply(); got != "reply after" {
		t.Fatalf("second reply %q", got)
	}
	es := proctest.WaitRecorded(t, filepath.Join(dir, "pids"), 0, 1, true)
	proctest.WaitNamedGone(t, escapeSlack, es)

	// Again, and shut down while the script hangs.
	c.say(t, "hang")
	es = proctest.WaitRecorded(t, filepath.Join(dir, "pids"), 1, 1, false)
	if err := s.stop(t, 30*time.Second); err != nil {
		t.Errorf("Serve after the shutdown: %v, want nil", err)
	}
	proctest.WaitNamedGone(t, 5*time.Second, es)
}

// Shutdown closes a per-message CGI connection with 1001, as it closes a
// session, and Serve returns though the client stays.
func TestCGIShutdownClosesClients(t *testing.T) {
	t.Parallel()
	s, _ := serveCGIScript(t, cgiEscapeScript, CGIOptions{})
	c := dialMember(t, s.addr, "/")
	c.say(t, "hi")
	if got := c.text(t); got != "reply hi" {
		t.Fatalf("got %q", got)
	}
	s.shutdown()
	if code, reason, msgs := c.closed(t); code != 1001 {
		t.Errorf("after the shutdown: close %d %q after %q, want close 1001", code, reason, msgs)
	}
	if err := s.wait(t, 30*time.Second); err != nil {
		t.Errorf("Serve after the shutdown: %v, want nil", err)
	}
}

// A script that writes more than MaxOut without reading its stdin gets
// its 502 at once, not at the timeout: the feed of a message larger than
// the pipe must not hold the reply back.
func TestCGITooBigNotReading(t *testing.T) {
	t.Parallel()
	s, _ := serveCGIScript(t, "#!/bin/sh\nhead -c 100000 /dev/zero | tr '\\0' x\nexec sleep 300\n",
		CGIOptions{Timeout: 60 * time.Second, MaxOut: 1000})
	c := dialMember(t, s.addr, "/")
	if err := c.WriteMessage(wstest.OpBinary, make([]byte, 1<<20), 0); err != nil {
		t.Fatal(err)
	}
	// Generous against a loaded machine, well short of the timeout.
	op, data, _, err := c.ReadMessage(30 * time.Second)
	var reply struct{ Status int }
	if err != nil || op != wstest.OpText {
		t.Fatalf("reply: opcode %#x %v, want a text reply", op, err)
	}
	if err := json.Unmarshal(data, &reply); err != nil || reply.Status != 502 {
		t.Fatalf("reply: %+v %v, want status 502 before the 60s timeout", reply, err)
	}
}
