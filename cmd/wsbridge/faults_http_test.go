package main

// The HTTP side of the fault matrix (issue 9): special files in the
// directories and paths the daemon is given, DNS rebinding, the request
// head timeout on kept-alive connections, and what a browser's GET of a
// missing static file gets. Real binary, real sockets on loopback.

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mkfifo makes a named pipe at p that nobody writes to: opening it for
// reading blocks until someone opens it for writing.
func mkfifo(t *testing.T, p string, mode uint32) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(p, mode); err != nil {
		t.Fatal(err)
	}
	// Mkfifo applies the umask; the tests want the mode as given (an
	// executable FIFO in --dir).
	if err := os.Chmod(p, os.FileMode(mode)); err != nil {
		t.Fatal(err)
	}
	return p
}

// getWithin sends a plain GET of path on a fresh connection and returns the
// status and body, failing the test if no answer comes within timeout (a
// request blocked in the file system never gets one).
func getWithin(t *testing.T, addr, path string, timeout time.Duration) (int, string) {
	t.Helper()
	c := rawDial(t, addr)
	_ = c.Conn.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c.Conn, "GET "+path+" HTTP/1.1\r\nHost: "+addr+"\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(c.R, nil)
	if err != nil {
		t.Fatalf("GET %s: no answer within %v: %v", path, timeout, err)
	}
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// 6. A named pipe (or any special file) in a directory wsbridge serves is
// refused without blocking; the daemon keeps answering.
func TestFaultSpecialFiles(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	static := filepath.Join(base, "www")
	writeFile(t, static, "hello.txt", "HELLO", 0o644)
	mkfifo(t, filepath.Join(static, "pipe"), 0o644)
	mkfifo(t, filepath.Join(static, "sub", "index.html"), 0o644) // a directory whose index is a FIFO
	symlink(t, "pipe", filepath.Join(static, "link-to-pipe"))
	scripts := filepath.Join(base, "scripts")
	writeFile(t, scripts, "ok.sh", "#!/bin/sh\necho ok\n", 0o755)
	mkfifo(t, filepath.Join(scripts, "pipe.sh"), 0o755)

	b := startBridge(t, "--staticdir="+static, "--config="+testConfig(t, "[endpoint /ws]\ncommand = "+childBin+" echo\n[endpoint /s]\ndir = "+scripts+"\n"))
	// More requests than the daemon would survive if each held a thread
	// would take too long to make here; a few at once show that none is
	// answered late, and the daemon answers after them.
	for _, tc := range []struct {
		path string
		code int
	}{
		{"/pipe", 404}, {"/sub/", 404}, {"/link-to-pipe", 404}, {"/pipe", 404}, {"/pipe", 404},
		{"/sub/index.html", 301}, // the file server's redirect to /sub/, before any open
	} {
		t.Run("GET "+tc.path, func(t *testing.T) {
			code, body := getWithin(t, b.Addr, tc.path, 15*time.Second)
			if code != tc.code {
				t.Fatalf("GET %s: %d %q, want %d", tc.path, code, body, tc.code)
			}
		})
	}
	t.Run("--dir FIFO", func(t *testing.T) {
		c := rawDial(t, b.Addr)
		_ = c.Conn.SetDeadline(time.Now().Add(15 * time.Second))
		resp, err := c.Handshake("/s/pipe.sh")
		if err != nil {
			t.Fatalf("upgrade of a FIFO script: %v", err)
		}
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("upgrade of a FIFO script: %s, want 404", resp.Status)
		}
	})
	if code, body := getWithin(t, b.Addr, "/hello.txt", 15*time.Second); code != 200 || body != "HELLO" {
		t.Fatalf("after the FIFOs, GET /hello.txt: %d %q", code, body)
	}
}

// 6. A special file named where the daemon wants a file or a directory
// stops the start, with status 2 and a message, and never blocks it.
func TestFaultSpecialFilesAtStart(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	fifo := mkfifo(t, filepath.Join(base, "fifo"), 0o755)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"--config", []string{"--config=" + fifo}, "not a regular file"},
		{"command in the file", []string{"--config=" + testConfig(t, "[endpoint /a]\ncommand = "+fifo+"\n")}, "cannot run the program"},
		{"COMMAND", []string{fifo}, "cannot run the program"},
		{"dir in the file", []string{"--config=" + testConfig(t, "[endpoint /a]\ndir = "+fifo+"\n")}, "not a directory"},
		{"workdir in the file", []string{"--config=" + testConfig(t, "[endpoint /a]\ncommand = "+childBin+" echo\nworkdir = "+fifo+"\n")}, "not a directory"},
		{"staticdir in the file", []string{"--config=" + testConfig(t, "staticdir = "+fifo+"\n[endpoint /a]\ncommand = "+childBin+" echo\n")}, "not a directory"},
		{"--staticdir", []string{"--staticdir=" + fifo, childBin, "echo"}, "not a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// A port that is free, in case the bad path is not noticed.
			args := append([]string{"--address=127.0.0.1", fmt.Sprintf("--port=%d", freePort(t))}, tc.args...)
			cmd := exec.Command(bridgeBin, args...)
			var out syncBuffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			var err error
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				<-done
				t.Fatalf("wsbridge %s still running after 30s; output %q", strings.Join(tc.args, " "), out.String())
			}
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 {
				t.Fatalf("exit %v, want status 2; output %q", err, out.String())
			}
			if !strings.Contains(out.String(), tc.want) {
				t.Errorf("output %q, want it to say %q", out.String(), tc.want)
			}
		})
	}
}
