package main

// Integration tests of the config file: many endpoints behind one port,
// against the real binary on loopback. What --dir, --staticdir and
// --devconsole do is tested beside bridge (bridge/scriptdir_test.go,
// bridge/pages_test.go).

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

// upgradeStatus attempts an upgrade of path and returns the status and
// body; a 101 session is left to end with the test.
func upgradeStatus(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	resp, err := wstest.MustDialTCP(t, addr, wstest.Options{}).Upgrade(wstest.Options{Path: path})
	if err != nil {
		t.Fatalf("handshake %s: %v", path, err)
	}
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// Two endpoints of a config file, each with its own program and framing,
// on one port.
func TestConfigFile(t *testing.T) {
	t.Parallel()
	conf := testConfig(t, fmt.Sprintf(`# two programs behind one port
max-conns = 10

[endpoint /lines]
command = %s echo
max-message = 1KiB

[endpoint /raw]
command = %s cat
binary = yes

[endpoint /env]
command = '%s' env
passenv =
`, childBin, childBin, childBin))
	b := startBridge(t, "--config="+conf)
	ctx := testCtx(t, 20*time.Second)

	lines := dialWS(t, ctx, b.URL("/lines"), nil)
	if err := lines.Write(ctx, websocket.MessageText, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if got := readText(t, ctx, lines); got != "hello" {
		t.Errorf("/lines echoed %q", got)
	}
	if err := lines.Write(ctx, websocket.MessageText, []byte(strings.Repeat("x", 2000))); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := expectClose(t, ctx, lines); code != websocket.StatusMessageTooBig {
		t.Errorf("/lines: a message over its max-message closed with %d, want 1009", code)
	}

	raw := dialWS(t, ctx, b.URL("/raw"), nil)
	if err := raw.Write(ctx, websocket.MessageBinary, []byte{0, 1, 0xff, '\n'}); err != nil {
		t.Fatal(err)
	}
	if typ, data := readWS(t, ctx, raw); typ != websocket.MessageBinary || string(data) != "\x00\x01\xff\n" {
		t.Errorf("/raw: %v %q, want the bytes back as binary", typ, data)
	}

	env := dialWS(t, ctx, b.URL("/env/more"), nil)
	vars := map[string]string{}
	for {
		line := readText(t, ctx, env)
		k, v, _ := strings.Cut(line, "=")
		vars[k] = v
		if k > "SCRIPT_NAME" {
			break // sorted: what we look for has come
		}
	}
	if vars["SCRIPT_NAME"] != "/env" || vars["PATH_INFO"] != "/more" {
		t.Errorf("/env/more: SCRIPT_NAME %q PATH_INFO %q", vars["SCRIPT_NAME"], vars["PATH_INFO"])
	}
	if _, ok := vars["PATH"]; ok {
		t.Errorf("passenv = (empty) still passed PATH")
	}

	if code, _ := upgradeStatus(t, b.Addr, "/other"); code != http.StatusNotFound {
		t.Errorf("a path no endpoint serves: %d, want 404", code)
	}
}

// A bad configuration stops the daemon before it serves, with status 2 and
// a message saying where and what.
func TestConfigErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, conf string
		args       []string
		want       string
	}{
		{"flag and file disagree", "port = 8000\n[endpoint]\ncommand = cat\n", []string{"--port=8001"},
			"--port=8001 on the command line, but port = 8000 at CONF:1: remove one"},
		{"unknown key", "[endpoint /a]\ncommand = cat\nframeing = raw\n", nil, `CONF:3: unknown key "frameing" in [endpoint /a]: did you mean framing?`},
		{"bad value", "ping-interval = soon\n[endpoint]\ncommand = cat\n", nil, "CONF:1: ping-interval = soon: want a duration"},
		{"missing program", "[endpoint /a]\ncommand = /no/such/program\n", nil, `CONF:2: [endpoint /a]: cannot run the program "/no/such/program": no such file or directory`},
		{"missing script dir", "[endpoint /a]\ndir = /no/such/dir\n", nil, "CONF:2: --dir=/no/such/dir: no such directory"},
		{"COMMAND and a catch-all", "[endpoint]\ncommand = cat\n", []string{"cat"}, "the COMMAND or --dir on the command line and [endpoint] at CONF:1 both serve every path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conf := testConfig(t, tc.conf)
			cmd := exec.Command(bridgeBin, append([]string{"--config=" + conf}, tc.args...)...)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 {
				t.Fatalf("exit %v, want status 2; output %q", err, out)
			}
			want := "wsbridge: " + strings.ReplaceAll(tc.want, "CONF", conf)
			if !strings.Contains(string(out), want) {
				t.Errorf("output %q, want %q", out, want)
			}
		})
	}
}
