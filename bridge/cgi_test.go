package bridge

// Per-message CGI (ModeCGI): a script run for each message, with a
// CGI/1.1 environment, its replies in message order.

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

// cgiScript is a per-message CGI script in POSIX sh: it answers with the
// CGI variables it got and the message, after a header block. "sleep N
// TAG" answers after N seconds, "fail" exits 3, "binary" answers with a
// binary content type, "status" with its own Status, "bad-header" with a
// broken block, "quiet" with a header and no body. It counts the scripts
// of the run that overlap in $STATE (one file each while it runs).
const cgiScript = `#!/bin/sh
msg=$(dd bs=1 count="$CONTENT_LENGTH" 2>/dev/null)
state=${0%/*}/state
mkdir -p "$state"
: > "$state/$$"
running=$(ls "$state" | wc -l)
case $msg in
sleep*) set -- $msg; sleep "$2" ;;
fail) echo "failing as asked" >&2; exit 3 ;;
binary) printf 'Content-Type: application/octet-stream\r\n\r\n'; printf '\001\002\003'; rm -f "$state/$$"; exit 0 ;;
status) printf 'Status: 404 Not Found\nContent-Type: text/plain\n\nno such thing'; rm -f "$state/$$"; exit 0 ;;
bad-header) printf 'Content-Type: text/plain\nthis is not a header\n\nbody'; rm -f "$state/$$"; exit 0 ;;
quiet) printf 'Content-Type: text/plain\n\n'; rm -f "$state/$$"; exit 0 ;;
esac
rm -f "$state/$$"
printf 'Content-Type: text/plain; charset=utf-8\r\n\r\n'
printf '%s|%s|%s|%s|%s|%s' "$REQUEST_METHOD" "$CONTENT_LENGTH" "$CONTENT_TYPE" "$QUERY_STRING" "$msg" "$running"
`

// serveCGI runs cgiScript per message at every path, with o as the
// --cgi-* flags, and returns the server's address and log.
func serveCGI(t *testing.T, o CGIOptions) (string, *testLog) {
	t.Helper()
	script := writeFile(t, t.TempDir(), "cgi.sh", cgiScript, 0o755)
	lg := newTestLog()
	_, addr := serveTest(t, Options{Endpoints: []Endpoint{{Command: []string{script}, Mode: ModeCGI, CGI: o}}, Logger: lg.Logger()})
	return addr, lg
}

// sendBinary writes one binary message on c.
func sendBinary(t *testing.T, c *wstest.Conn, p []byte) {
	t.Helper()
	if err := c.WriteMessage(wstest.OpBinary, p, 0); err != nil {
		t.Fatal(err)
	}
}

// TestCGIPerMessage runs the script once per message, with a CGI/1.1
// environment and the message on stdin, and replies in message order
// even when a later script finishes first.
func TestCGIPerMessage(t *testing.T) {
	skipShort(t)
	addr, _ := serveCGI(t, CGIOptions{})
	c := dial(t, addr, "/cgi?room=7", 0)
	for _, m := range []string{"sleep 1 first", "second", "héllo"} {
		send(t, c, m, 0)
	}
	for _, want := range []string{
		"POST|13|text/plain; charset=utf-8|room=7|sleep 1 first|",
		"POST|6|text/plain; charset=utf-8|room=7|second|",
		"POST|6|text/plain; charset=utf-8|room=7|héllo|",
	} {
		got := readText(t, c)
		if !strings.HasPrefix(got, want) {
			t.Errorf("reply %q, want it to start %q", got, want)
		}
	}
	sendBinary(t, c, []byte{0xff, 0})
	typ, got := readMsg(t, c)
	if typ != wstest.OpBinary || !strings.HasPrefix(string(got), "POST|2|application/octet-stream|") {
		t.Errorf("binary message: reply %v %q, want a binary reply with CONTENT_TYPE application/octet-stream", typ, got)
	}
}

// TestCGIReplies: the header block decides the reply's kind; a script's
// own Status passes its body through; a script with no body sends nothing.
func TestCGIReplies(t *testing.T) {
	addr, _ := serveCGI(t, CGIOptions{})
	c := dial(t, addr, "/", 0)
	for _, m := range []string{"binary", "status", "quiet", "after quiet"} {
		send(t, c, m, 0)
	}
	if typ, got := readMsg(t, c); typ != wstest.OpBinary || string(got) != "\x01\x02\x03" {
		t.Errorf("binary content type: got %v %q", typ, got)
	}
	if got := readText(t, c); got != "no such thing" {
		t.Errorf("Status 404 script: got %q, want its body", got)
	}
	if got := readText(t, c); !strings.Contains(got, "|after quiet|") {
		t.Errorf("after a script with no body: got %q, want the next reply", got)
	}
}

// cgiErr is the error reply of a failed script.
type cgiErr struct {
	Error  string `json:"error"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
}

// TestCGIFailingScript: a script that fails, times out or writes a broken
// header block gets a clear error reply in its place, and a log line;
// the connection goes on.
func TestCGIFailingScript(t *testing.T) {
	skipShort(t)
	addr, lg := serveCGI(t, CGIOptions{Timeout: time.Second})
	c := dial(t, addr, "/", 0)
	for _, m := range []string{"fail", "sleep 5 slow", "bad-header", "fine"} {
		send(t, c, m, 0)
	}
	for _, want := range []struct {
		status int
		detail string
	}{
		{502, "exit status 3"},
		{504, "longer than 1s"},
		{502, "malformed"},
	} {
		got := readText(t, c)
		var e cgiErr
		if err := json.Unmarshal([]byte(got), &e); err != nil || e.Status != want.status || !strings.Contains(e.Detail, want.detail) {
			t.Errorf("error reply %q, want status %d and a detail with %q", got, want.status, want.detail)
		}
	}
	if got := readText(t, c); !strings.Contains(got, "|fine|") {
		t.Errorf("after the failures: got %q, want the script's reply", got)
	}
	for _, line := range []string{"failing as asked", "script failed", "script timed out", "not a CGI response"} {
		if !logged(lg, line, 5*time.Second) {
			t.Errorf("log lacks %q:\n%s", line, lg)
		}
	}
}

// TestCGIConcurrencyBound: no more than --cgi-per-conn scripts of one
// connection run at once, and replies keep their order.
func TestCGIConcurrencyBound(t *testing.T) {
	skipShort(t)
	addr, _ := serveCGI(t, CGIOptions{PerConn: 2})
	c := dial(t, addr, "/", 0)
	const n = 6
	for i := range n {
		send(t, c, fmt.Sprintf("sleep 0.3 m%d", i), 0)
	}
	peak := 0
	for i := range n {
		got := readText(t, c)
		f := strings.Split(got, "|")
		if len(f) != 6 || f[4] != fmt.Sprintf("sleep 0.3 m%d", i) {
			t.Fatalf("reply %d: %q, want the answer to message %d", i, got, i)
		}
		var running int
		fmt.Sscan(f[5], &running)
		peak = max(peak, running)
	}
	if peak < 1 || peak > 2 {
		t.Errorf("scripts running at once peaked at %d, want 1 or 2 (--cgi-per-conn=2)", peak)
	}
}

// With --cgi-per-message, --cgi-total bounds the scripts of the whole
// directory, not each script: two scripts never overlap under
// --cgi-total=1.
func TestScriptDirCGITotal(t *testing.T) {
	skipShort(t)
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "a.sh", cgiScript, 0o755)
	writeFile(t, dir, "b.sh", cgiScript, 0o755) // counts overlaps in the same DIR/state
	_, addr := serveTest(t, Options{Endpoints: []Endpoint{{ScriptDir: dir, Mode: ModeCGI, CGI: CGIOptions{Total: 1}}}})
	a := dial(t, addr, "/a.sh", 0)
	other := dial(t, addr, "/b.sh", 0)
	for _, c := range []*wstest.Conn{a, other} {
		send(t, c, "sleep 1 x", 0)
	}
	for _, c := range []*wstest.Conn{a, other} {
		if got := readText(t, c); !strings.HasSuffix(got, "|sleep 1 x|1") {
			t.Errorf("reply %q: want the script to have run alone (|1)", got)
		}
	}
}
