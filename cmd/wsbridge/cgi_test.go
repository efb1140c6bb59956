package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
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

func startCGI(t *testing.T, args ...string) *bridgeProc {
	t.Helper()
	script := writeScript(t, "cgi.sh", cgiScript)
	if err := os.Chmod(script, 0o755); err != nil {
		t.Fatal(err)
	}
	return startBridge(t, append(append([]string{"--cgi-per-message"}, args...), script)...)
}

// TestCGIPerMessage runs the script once per message, with a CGI/1.1
// environment and the message on stdin, and replies in message order
// even when a later script finishes first.
func TestCGIPerMessage(t *testing.T) {
	b := startCGI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := dialWS(t, ctx, b.URL("/cgi?room=7"), nil)
	defer c.CloseNow()
	for _, m := range []string{"sleep 1 first", "second", "héllo"} {
		if err := c.Write(ctx, websocket.MessageText, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{
		"POST|13|text/plain; charset=utf-8|room=7|sleep 1 first|",
		"POST|6|text/plain; charset=utf-8|room=7|second|",
		"POST|6|text/plain; charset=utf-8|room=7|héllo|",
	} {
		got := readText(t, ctx, c)
		if !strings.HasPrefix(got, want) {
			t.Errorf("reply %q, want it to start %q", got, want)
		}
	}
	if err := c.Write(ctx, websocket.MessageBinary, []byte{0xff, 0}); err != nil {
		t.Fatal(err)
	}
	typ, got := readWS(t, ctx, c)
	if typ != websocket.MessageBinary || !strings.HasPrefix(string(got), "POST|2|application/octet-stream|") {
		t.Errorf("binary message: reply %v %q, want a binary reply with CONTENT_TYPE application/octet-stream", typ, got)
	}
}

// TestCGIReplies: the header block decides the reply's kind; a script's
// own Status passes its body through; a script with no body sends nothing.
func TestCGIReplies(t *testing.T) {
	b := startCGI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := dialWS(t, ctx, b.URL("/"), nil)
	defer c.CloseNow()
	for _, m := range []string{"binary", "status", "quiet", "after quiet"} {
		if err := c.Write(ctx, websocket.MessageText, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	if typ, got := readWS(t, ctx, c); typ != websocket.MessageBinary || string(got) != "\x01\x02\x03" {
		t.Errorf("binary content type: got %v %q", typ, got)
	}
	if got := readText(t, ctx, c); got != "no such thing" {
		t.Errorf("Status 404 script: got %q, want its body", got)
	}
	if got := readText(t, ctx, c); !strings.Contains(got, "|after quiet|") {
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
	b := startCGI(t, "--cgi-timeout=1s")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := dialWS(t, ctx, b.URL("/"), nil)
	defer c.CloseNow()
	for _, m := range []string{"fail", "sleep 5 slow", "bad-header", "fine"} {
		if err := c.Write(ctx, websocket.MessageText, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []struct {
		status int
		detail string
	}{
		{502, "exit status 3"},
		{504, "longer than 1s"},
		{502, "malformed"},
	} {
		got := readText(t, ctx, c)
		var e cgiErr
		if err := json.Unmarshal([]byte(got), &e); err != nil || e.Status != want.status || !strings.Contains(e.Detail, want.detail) {
			t.Errorf("error reply %q, want status %d and a detail with %q", got, want.status, want.detail)
		}
	}
	if got := readText(t, ctx, c); !strings.Contains(got, "|fine|") {
		t.Errorf("after the failures: got %q, want the script's reply", got)
	}
	for _, line := range []string{"failing as asked", "script failed", "script timed out", "not a CGI response"} {
		if !b.Log.WaitFor(line, 5*time.Second) {
			t.Errorf("log lacks %q:\n%s", line, b.Log)
		}
	}
}

// TestCGIConcurrencyBound: no more than --cgi-per-conn scripts of one
// connection run at once, and replies keep their order.
func TestCGIConcurrencyBound(t *testing.T) {
	b := startCGI(t, "--cgi-per-conn=2")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := dialWS(t, ctx, b.URL("/"), nil)
	defer c.CloseNow()
	const n = 6
	for i := range n {
		if err := c.Write(ctx, websocket.MessageText, []byte(fmt.Sprintf("sleep 0.3 m%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	peak := 0
	for i := range n {
		got := readText(t, ctx, c)
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
