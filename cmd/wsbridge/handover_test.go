package main

// The hand-over of issue 11 end to end: a real boa or lighttpd owns the
// port, runs the hand-over program (the C one of examples/c, or wsbridge
// itself under the CGI's name) and the daemon, listening on its hand-over
// socket only, serves the session. The web servers are configured with the
// recipe files of examples/deploy/{boa,lighttpd}, their paths pointed into
// the test's temp dirs, so the recipes the README quotes are the tested ones.

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsbridge/wsbridge/bridge/wstest"
	"github.com/wsbridge/wsbridge/procs/proctest"
)

const deployDir = "../../examples/deploy"

// handoverSender is one form of the hand-over program, as a recipe's
// install.sh installs it.
type handoverSender struct {
	name string
	// defaultSocket: this form finds the daemon at /run/wsbridge.sock
	// only (boa's symlink to wsbridge: boa drops CGIEnv).
	defaultSocket bool
	env           func(t testing.TB, sock string) []string // for install.sh
}

// boaSenders are the forms of boa's recipe: the C program with the socket
// compiled in, the wsbridge binary as a symlink (default socket) and run
// by a script with --handover-send.
var boaSenders = []handoverSender{
	{"C", false, func(t testing.TB, sock string) []string {
		return []string{"HANDOVER=" + cHandoverBinary(t, sock), "SOCKET=" + sock}
	}},
	{"GoSymlink", true, func(testing.TB, string) []string { return []string{"WSBRIDGE=" + bridgeBin} }},
	{"GoScript", false, func(_ testing.TB, sock string) []string {
		return []string{"WSBRIDGE=" + bridgeBin, "SOCKET=" + sock}
	}},
}

// lighttpdSenders: lighttpd passes the socket in the environment
// (setenv), so both forms are the plain install.
var lighttpdSenders = []handoverSender{
	{"C", false, func(t testing.TB, _ string) []string { return []string{"HANDOVER=" + cHandoverBinary(t, "")} }},
	{"Go", false, func(testing.TB, string) []string { return []string{"WSBRIDGE=" + bridgeBin} }},
}

var cHandoverBuilds struct {
	sync.Mutex
	paths map[string]string
}

// cHandoverBinary builds examples/c/wsbridge-handover.c static and
// warning-free, with sock as its compiled-in socket ("": the default), as
// make handover WSBRIDGE_HANDOVER=sock does; once per socket.
func cHandoverBinary(t testing.TB, sock string) string {
	t.Helper()
	cc := needTool(t, "/usr/bin/gcc", "apt-get install -y gcc libc6-dev")
	cHandoverBuilds.Lock()
	defer cHandoverBuilds.Unlock()
	if p, ok := cHandoverBuilds.paths[sock]; ok {
		return p
	}
	out := filepath.Join(filepath.Dir(bridgeBin), fmt.Sprintf("wsbridge-handover-%d", len(cHandoverBuilds.paths)))
	args := []string{"-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-O2", "-static"}
	if sock != "" {
		args = append(args, fmt.Sprintf("-DWSBRIDGE_HANDOVER=%q", sock))
	}
	cmd := exec.Command(cc, append(args, "-o", out, "../../examples/c/wsbridge-handover.c")...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, b)
	}
	if cHandoverBuilds.paths == nil {
		cHandoverBuilds.paths = map[string]string{}
	}
	cHandoverBuilds.paths[sock] = out
	return out
}

// defaultSocketMu: one test at a time has the daemon at /run/wsbridge.sock.
var defaultSocketMu sync.Mutex

// handoverSocket is a fresh path for s's hand-over socket: short, as a
// unix socket's path must be (108 bytes), whatever the test's name; or
// /run/wsbridge.sock for a form that knows no other, held for the test
// (root only, and skipped when a real daemon is there).
func handoverSocket(t testing.TB, s handoverSender) string {
	t.Helper()
	if s.defaultSocket {
		const sock = "/run/wsbridge.sock"
		if os.Getuid() != 0 {
			t.Skip("SKIPPING: the " + s.name + " form uses " + sock + ", which needs root")
		}
		defaultSocketMu.Lock()
		t.Cleanup(defaultSocketMu.Unlock)
		if c, err := net.Dial("unixpacket", sock); err == nil {
			c.Close()
			t.Skip("SKIPPING: a wsbridge daemon already serves " + sock)
		}
		return sock
	}
	dir, err := os.MkdirTemp("", "wsh-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "wsbridge.sock")
}

// recipe reads examples/deploy/REL with the recipe's system paths pointed
// at the test's: the CGI directory, the socket, and www-data (the web
// server's user, which owns the socket) as the test's own user unless
// root, who can give the socket to www-data for real.
func recipe(t testing.TB, rel, cgiBin, sock string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deployDir, rel))
	if err != nil {
		t.Fatal(err)
	}
	owner := "www-data"
	if _, err := user.Lookup(owner); err != nil || os.Getuid() != 0 {
		u, err := user.Current()
		if err != nil {
			t.Fatal(err)
		}
		owner = u.Username
	}
	return strings.NewReplacer("/usr/lib/cgi-bin", cgiBin, "/run/wsbridge.sock", sock,
		"www-data", owner).Replace(string(b))
}

// install runs the recipe's install script examples/deploy/REL as is,
// into cgiBin, with env (which form, which socket) added.
func install(t testing.TB, rel, cgiBin string, env ...string) {
	t.Helper()
	cmd := exec.Command("/bin/sh", filepath.Join(deployDir, rel))
	cmd.Env = append(append(os.Environ(), "CGI_BIN="+cgiBin), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", rel, err, out)
	}
}

// startBoaHandover starts boa with the test's base config and the recipe's
// lines, and installs the sender as the recipe does. The daemon is the
// caller's: startHandoverDaemon.
func startBoaHandover(t testing.TB, s handoverSender, sock string) *webServer {
	t.Helper()
	return startBoaHandoverConf(t, s, sock, boaBaseConf)
}

// startBoaHandoverConf is startBoaHandover from another base config.
func startBoaHandoverConf(t testing.TB, s handoverSender, sock, base string) *webServer {
	t.Helper()
	w := startBoa(t, base+recipe(t, "boa/boa.conf", "{{DIR}}/cgi-bin", sock))
	install(t, "boa/install.sh", filepath.Join(w.Dir, "cgi-bin"), s.env(t, sock)...)
	return w
}

// startLighttpdHandover is startBoaHandover for lighttpd.
func startLighttpdHandover(t testing.TB, s handoverSender, sock string) *webServer {
	t.Helper()
	w := startLighttpd(t, lighttpdTestConf+recipe(t, "lighttpd/lighttpd.conf", "{{DIR}}/cgi-bin", sock))
	install(t, "lighttpd/install.sh", filepath.Join(w.Dir, "cgi-bin"), s.env(t, sock)...)
	return w
}

// startHandoverDaemon runs the daemon as the recipe's wsbridge.sh of
// server (boa, lighttpd) does, with args (more flags, then the program),
// and waits until its socket takes connections. Addr is empty: it has no
// port of its own.
func startHandoverDaemon(t testing.TB, server, sock string, args ...string) *bridgeProc {
	t.Helper()
	script := filepath.Join(t.TempDir(), "wsbridge.sh")
	if err := os.WriteFile(script, []byte(recipe(t, server+"/wsbridge.sh", "/nonexistent", sock)), 0o755); err != nil {
		t.Fatal(err)
	}
	b := &bridgeProc{t: t, Log: &wstest.Buffer{}, done: make(chan struct{})}
	// exec in the script: the PID is the daemon's.
	b.cmd = exec.Command("/bin/sh", append([]string{script, "--loglevel=debug"}, args...)...)
	b.cmd.Env = append(os.Environ(), "WSBRIDGE="+bridgeBin)
	b.cmd.Stdout, b.cmd.Stderr = b.Log, b.Log
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { b.err = b.cmd.Wait(); close(b.done) }()
	t.Cleanup(func() {
		b.Stop()
		if strings.Contains(b.Log.String(), "WARNING: DATA RACE") {
			t.Error("the race detector found a data race in wsbridge")
		}
		if t.Failed() {
			t.Logf("wsbridge (hand-over daemon) %s log:\n%s", strings.Join(args, " "), b.Log.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-b.done:
			t.Fatalf("wsbridge exited before listening on %s: %v\n%s", sock, b.err, b.Log.String())
		default:
		}
		// A probe connection: it sends nothing, which the daemon
		// drops. Only a connect tells that listen(2) is done.
		if c, err := net.Dial("unixpacket", sock); err == nil {
			c.Close()
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("wsbridge not listening on %s after 10 s:\n%s", sock, b.Log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// dialFrom dials url and returns the connection and the client's own
// address, which the daemon's access log must show.
func dialFrom(t testing.TB, ctx context.Context, url string) (*websocket.Conn, string) {
	t.Helper()
	var local string
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			local = c.LocalAddr().String()
		}
		return c, err
	}}
	c := dialWSWith(t, ctx, url, &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
	return c, local
}

// countLines counts the lines of log that contain s.
func countLines(log, s string) int {
	n := 0
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n
}

// echoSession sends lines and checks their echo, calling during (if not
// nil) once the session runs, then closes with 1000 and checks the
// daemon's access line: the client's real address, the close, the child's
// exit.
func echoSession(t *testing.T, b *bridgeProc, url string, during func()) {
	t.Helper()
	ctx := testCtx(t, 30*time.Second)
	c, local := dialFrom(t, ctx, url)
	for _, msg := range []string{"hello through the web server", "héllo ✓", strings.Repeat("x", 5000)} {
		writeText(t, ctx, c, msg)
		if got := readText(t, ctx, c); got != msg {
			t.Fatalf("echo %q, want %q", got, msg)
		}
	}
	if during != nil {
		during()
		writeText(t, ctx, c, "still there")
		if got := readText(t, ctx, c); got != "still there" {
			t.Fatalf("echo %q, want %q", got, "still there")
		}
	}
	if err := c.Close(websocket.StatusNormalClosure, "done"); err != nil {
		t.Fatalf("close: %v", err)
	}
	rec := b.Access(1)[0]
	if rec["remote"] != local {
		t.Errorf("access line remote=%q, want the client's own address %s (the web server's REMOTE_ADDR:REMOTE_PORT)", rec["remote"], local)
	}
	if rec["close"] != "1000" || rec["close_by"] != "client" || rec["exit"] != "exit status 0" {
		t.Errorf("access line %v: want close=1000 close_by=client exit=\"exit status 0\"", rec)
	}
}

// closeOf connects to url (a child that says "bye" and exits 3) and
// returns the close code and reason the client got.
func closeOf(t *testing.T, url string) (websocket.StatusCode, string) {
	t.Helper()
	ctx := testCtx(t, 30*time.Second)
	c := dialWS(t, ctx, url, nil)
	code, reason, msgs := expectClose(t, ctx, c)
	if len(msgs) != 1 || msgs[0] != "bye" {
		t.Errorf("messages before the close: %q, want [bye]", msgs)
	}
	return code, reason
}

const boaPage = "<p>the page beside the socket</p>\n"

// TestHandoverEcho: the page and the WebSocket on the web server's one
// port, through each web server with each form of the hand-over program;
// while the session runs, the hand-over program is gone and reaped: it
// does not stay for the session.
func TestHandoverEcho(t *testing.T) {
	for _, ws := range []struct {
		server  string
		senders []handoverSender
		start   func(testing.TB, handoverSender, string) *webServer
		path    string // where the recipe mounts the hand-over
	}{
		{"boa", boaSenders, startBoaHandover, "/cgi-bin/nph-ws/echo"},
		{"lighttpd", lighttpdSenders, startLighttpdHandover, "/ws/echo"},
	} {
		for _, s := range ws.senders {
			t.Run(ws.server+"/"+s.name, func(t *testing.T) {
				t.Parallel()
				sock := handoverSocket(t, s)
				w := ws.start(t, s, sock)
				w.writeFile("www/index.html", boaPage, 0o644)
				b := startHandoverDaemon(t, ws.server, sock, childBin, "echo")
				if code, body := httpGet(t, w.URL("/index.html")); code != 200 || body != boaPage {
					t.Errorf("GET /index.html from %s: %d %q, want 200 and the page", ws.server, code, body)
				}
				echoSession(t, b, "ws://"+w.Addr+ws.path, func() { waitNoChildren(t, w.PID) })
			})
		}
	}
}

// A child's end reaches a client through boa as it reaches a direct one:
// the same close code and reason.
func TestBoaHandoverCloseAsDirect(t *testing.T) {
	s := boaSenders[0]
	sock := handoverSocket(t, s)
	w := startBoaHandover(t, s, sock)
	startHandoverDaemon(t, "boa", sock, childBin, "exit", "3", "bye")
	direct := startBridge(t, childBin, "exit", "3", "bye")
	wantCode, wantReason := closeOf(t, direct.URL("/"))
	if code, reason := closeOf(t, "ws://"+w.Addr+"/cgi-bin/nph-ws/"); code != wantCode || reason != wantReason {
		t.Errorf("through boa: close %d %q; a direct client gets %d %q", code, reason, wantCode, wantReason)
	}
}

// --shared across connections boa handed over: one child, and both
// clients get what it broadcasts.
func TestBoaHandoverShared(t *testing.T) {
	for _, s := range boaSenders {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			sock := handoverSocket(t, s)
			w := startBoaHandover(t, s, sock)
			pids := filepath.Join(t.TempDir(), "pids")
			b := startHandoverDaemon(t, "boa", sock, "--shared", childBin, "broadcast", pids)
			ctx := testCtx(t, 30*time.Second)
			url := "ws://" + w.Addr + "/cgi-bin/nph-ws/room"
			a := dialWS(t, ctx, url, nil)
			writeText(t, ctx, a, "first")
			if got := readSkipStarted(t, ctx, a); got != "echo: first" {
				t.Fatalf("first client got %q", got)
			}
			c := dialWS(t, ctx, url, nil)
			writeText(t, ctx, c, "second")
			for i, conn := range []*websocket.Conn{a, c} {
				if got := readSkipStarted(t, ctx, conn); got != "echo: second" {
					t.Errorf("client %d got %q, want the broadcast echo: second", i+1, got)
				}
			}
			if n := len(proctest.ChildrenOf(b.PID())); n != 1 {
				t.Errorf("the daemon has %d children for 2 clients, want 1", n)
			}
			if got, _ := os.ReadFile(pids); strings.Count(string(got), "\n") != 1 {
				t.Errorf("the child started %d times (pids %q), want once", strings.Count(string(got), "\n"), got)
			}
			waitNoChildren(t, w.PID)
		})
	}
}

// upgradeGet sends a WebSocket upgrade request by hand and returns the
// status code and body of the answer (a 503 or 400 has one).
func upgradeGet(t testing.TB, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	var body strings.Builder
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		body.WriteString(sc.Text() + "\n")
	}
	return resp.StatusCode, body.String()
}

// No daemon: the hand-over program answers 503 itself, saying so, and
// leaves one line in boa's error log.
func TestBoaHandoverNoDaemon(t *testing.T) {
	for _, s := range boaSenders {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			sock := handoverSocket(t, s)
			w := startBoaHandover(t, s, sock)
			code, body := upgradeGet(t, w.URL("/cgi-bin/nph-ws/echo"))
			want := "wsbridge daemon is not running at " + sock
			if code != http.StatusServiceUnavailable || !strings.Contains(body, want) {
				t.Errorf("no daemon: %d %q, want 503 saying %q", code, body, want)
			}
			// One line naming the socket, whichever the sender's words.
			waitLogged(t, w, sock+":")
			if n := countLines(w.Log(), sock); n != 1 {
				t.Errorf("%d lines of boa's log name the socket, want 1:\n%s", n, w.Log())
			}
			waitNoChildren(t, w.PID)
		})
	}
}

// A peer the daemon does not allow is refused: boa runs its CGIs as
// nobody, the socket is nobody's to connect to, but --handover-allow names
// another uid. The daemon keeps nothing and logs who it refused; the
// program answers 503 and leaves the reason in boa's log.
func TestBoaHandoverRefusedPeer(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("SKIPPING: needs root, to run boa's CGIs as another user (nobody)")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("SKIPPING: no user nobody")
	}
	const allowed = "12345" // with root, which is always allowed
	for _, s := range boaSenders {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			sock := handoverSocket(t, s)
			conf := strings.NewReplacer("User {{USER}}", "User nobody", "Group {{GROUP}}", "Group nogroup").Replace(boaBaseConf)
			w := startBoaHandoverConf(t, s, sock, conf)
			// nobody must reach the CGI (and the wsbridge binary it may
			// be a symlink to) and the socket: only the allow list stops it.
			dirs := []string{filepath.Dir(w.Dir), w.Dir, filepath.Dir(bridgeBin)}
			if !s.defaultSocket {
				dirs = append(dirs, filepath.Dir(sock))
			}
			for _, d := range dirs {
				if err := os.Chmod(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			b := startHandoverDaemon(t, "boa", sock, "--handover-owner=nobody", "--handover-allow="+allowed, childBin, "echo")
			code, body := upgradeGet(t, w.URL("/cgi-bin/nph-ws/echo"))
			if code != http.StatusServiceUnavailable || !strings.Contains(body, "refused the hand-over") {
				t.Errorf("a peer not allowed: %d %q, want 503 saying the hand-over was refused", code, body)
			}
			recs := b.WaitRecords("refused: hand-over from a user not allowed (see --handover-allow)", 1, 5*time.Second)
			if recs[0]["uid"] != nobody.Uid {
				t.Errorf("refusal logged for uid %q, want nobody's %s: %v", recs[0]["uid"], nobody.Uid, recs[0])
			}
			waitLogged(t, w, "refused the hand-over")
			if len(b.Records("session")) != 0 {
				t.Errorf("a refused peer got a session: %v", b.Records("session"))
			}
			waitNoChildren(t, w.PID)
		})
	}
}

// A browser loads the recipe's page from boa and talks to the program
// through the same host and port: no --origin needed, it is one origin.
func TestBoaHandoverBrowser(t *testing.T) {
	chromium := needTool(t, "/usr/bin/chromium", "apt-get install -y chromium")
	s := boaSenders[0]
	sock := handoverSocket(t, s)
	w := startBoaHandover(t, s, sock)
	page, err := os.ReadFile(filepath.Join(deployDir, "boa", "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	w.writeFile("www/index.html", string(page), 0o644)
	b := startHandoverDaemon(t, "boa", sock, childBin, "echo")
	dom := dumpDOMShowing(t, chromium, w.URL("/index.html"), 3, "connected to ws://"+w.Addr+"/cgi-bin/nph-ws/", "&lt; hello board")
	for _, want := range []string{"connected to ws://" + w.Addr + "/cgi-bin/nph-ws/", "&lt; hello board"} {
		if !strings.Contains(dom, want) {
			t.Errorf("the page from boa does not show %q:\n%s", want, dom)
		}
	}
	if rec := b.Access(1)[0]; !strings.HasPrefix(rec["remote"], "127.0.0.1:") {
		t.Errorf("access line %v: want the browser's address as remote", rec)
	}
}
