package examples

import (
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

// The "Deploy on a board" guide of README.md, on loopback: BusyBox httpd
// serves deploy/www/, wsbridge serves a C example on another port, and a
// real browser loads the page from httpd and talks to the program.

// startHTTPD runs BusyBox httpd in the foreground serving dir on a free
// loopback port and returns its address once it accepts connections.
func startHTTPD(t *testing.T, dir string) string {
	t.Helper()
	busybox := requireTool(t, "busybox", "busybox")
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	var log wstest.Buffer
	cmd := exec.Command(busybox, "httpd", "-f", "-vv", "-p", addr, "-h", dir)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		<-done
		if t.Failed() {
			t.Logf("httpd log:\n%s", log.String())
		}
	})
	deadline := time.Now().Add(ioTimeout)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return addr
		}
		select {
		case err := <-done:
			t.Fatalf("busybox httpd exited: %v\n%s", err, log.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("busybox httpd not accepting connections on %s: %v", addr, err)
		}
	}
}

// dumpDOM loads url in headless Chromium, lets the page run for a few
// seconds of virtual time and returns the resulting DOM.
func dumpDOM(t *testing.T, chromium, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(), "--virtual-time-budget=5000", "--dump-dom", url)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom %s: %v", url, err)
	}
	return string(out)
}

func TestBoardPage(t *testing.T) {
	chromium := requireTool(t, "chromium", "chromium")
	www, err := filepath.Abs(filepath.Join("deploy", "www"))
	if err != nil {
		t.Fatal(err)
	}
	httpd := startHTTPD(t, www)
	echo := buildC(t, "line-echo")

	t.Run("with --origin", func(t *testing.T) {
		b := startBridge(t, "--origin=http://"+httpd, echo)
		_, port, _ := net.SplitHostPort(b.addr)
		dom := dumpDOM(t, chromium, "http://"+httpd+"/?port="+port)
		for _, want := range []string{"connected to ws://127.0.0.1:" + port + "/", "&gt; hello board", "&lt; echo: hello board"} {
			if !strings.Contains(dom, want) {
				t.Errorf("the page does not show %q; DOM:\n%.2000s", want, dom)
			}
		}
		b.stop(t)
	})

	// What the guide warns about: without --origin wsbridge refuses a page
	// from the web server's port, and says which flag would allow it.
	t.Run("without --origin", func(t *testing.T) {
		b := startBridge(t, echo)
		_, port, _ := net.SplitHostPort(b.addr)
		dom := dumpDOM(t, chromium, "http://"+httpd+"/?port="+port)
		if strings.Contains(dom, "echo: hello board") || !strings.Contains(dom, "closed with code 1006") {
			t.Errorf("a page from the web server's port was not refused; DOM:\n%.2000s", dom)
		}
		b.stop(t)
		if log := b.stderr.String(); !strings.Contains(log, "--origin=") {
			t.Errorf("no log line naming --origin for the refused page:\n%s", log)
		}
	})
}
