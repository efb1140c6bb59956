package main

import (
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

// The hand-over's flags and the sender's command line; the hand-over
// itself is tested with the real web servers (handover_test.go) and, for
// every mode, in bridge/.

func TestHandoverFlagErrors(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "h.sock")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"relative socket", []string{"--handover=h.sock", "cat"}, "--handover=h.sock: want an absolute path"},
		{"bad mode", []string{"--handover=" + sock, "--handover-mode=rw", "cat"}, "--handover-mode=rw: want octal permissions"},
		{"mode without socket", []string{"--handover-mode=0600", "cat"}, "--handover-mode needs --handover=PATH"},
		{"unknown owner", []string{"--handover=" + sock, "--handover-owner=no-such-user-here", "cat"}, `no user "no-such-user-here"`},
		{"unknown group", []string{"--handover=" + sock, "--handover-allow=:no-such-group-here", "cat"}, `no group "no-such-group-here"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := exec.Command(bridgeBin, tc.args...).CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), tc.want) {
				t.Fatalf("exit %v, output %q: want status 2 and %q", err, out, tc.want)
			}
		})
	}
	// A socket path taken by a live daemon is refused at start.
	d := startBareHandoverDaemon(t, sock)
	out, err := exec.Command(bridgeBin, "--handover="+sock, childBin, "echo").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "is serving "+sock) {
		t.Errorf("a second daemon on %s: %v, %q: want a refusal", sock, err, out)
	}
	d.Process.Signal(syscall.SIGTERM)
}

// startBareHandoverDaemon runs wsbridge on the hand-over socket alone and
// returns once it takes hand-overs.
func startBareHandoverDaemon(t *testing.T, sock string, args ...string) *exec.Cmd {
	t.Helper()
	log := &wstest.Buffer{}
	cmd := exec.Command(bridgeBin, append(append([]string{"--handover=" + sock, "--loglevel=debug"}, args...), childBin, "echo")...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			t.Logf("daemon log:\n%s", log)
		}
	})
	if !log.WaitFor("taking connections handed over", 10*time.Second) {
		t.Fatalf("the daemon did not start:\n%s", log)
	}
	if strings.Contains(log.String(), `msg=listening`) {
		t.Errorf("with --handover alone the daemon listens on TCP too:\n%s", log)
	}
	return cmd
}

// TestHandoverSocketMode: the socket has the mode and the owner asked for.
func TestHandoverSocketMode(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sock := filepath.Join(dir, "h.sock")
	args := []string{"--handover-mode=0600"}
	root := os.Getuid() == 0
	if root {
		args = append(args, "--handover-owner=65534:65534") // nobody, nogroup
	}
	startBareHandoverDaemon(t, sock, args...)
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want a socket of 0600", fi.Mode())
	}
	if st := fi.Sys().(*syscall.Stat_t); root && (st.Uid != 65534 || st.Gid != 65534) {
		t.Errorf("socket owner %d:%d, want 65534:65534", st.Uid, st.Gid)
	}
}

// TestHandoverSenderNoDaemon: with no daemon the sender answers 503 on
// its stdout, in the CGI's form on a pipe and as a whole response on a
// socket, says why on stderr, and exits 1; run under an nph- name it
// takes the socket from $WSBRIDGE_HANDOVER.
func TestHandoverSenderNoDaemon(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "none.sock")
	env := []string{"REQUEST_METHOD=GET", "REMOTE_ADDR=127.0.0.1", "HTTP_UPGRADE=websocket"}

	cmd := exec.Command(bridgeBin, "--handover-send="+sock)
	cmd.Env = env
	var stderr wstest.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output() // stdout a pipe: an ordinary CGI
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit %v, want 1", err)
	}
	if !strings.HasPrefix(string(out), "Status: 503 Service Unavailable\r\n") || !strings.Contains(string(out), "not running at "+sock) {
		t.Errorf("stdout %q: want a CGI 503 naming the socket", out)
	}
	if !strings.Contains(stderr.String(), sock) {
		t.Errorf("stderr %q does not name the socket", stderr.String())
	}

	// Under an nph- name, stdout the client's socket.
	nph := filepath.Join(t.TempDir(), "nph-ws")
	if err := os.Symlink(bridgeBin, nph); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	f, _ := server.(*net.TCPConn).File()
	server.Close()
	cmd = exec.Command(nph)
	cmd.Env = append(env, "WSBRIDGE_HANDOVER="+sock)
	cmd.Stdout = f
	err = cmd.Run()
	f.Close()
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("nph- exit %v, want 1", err)
	}
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, _ := io.ReadAll(client)
	if !strings.HasPrefix(string(b), "HTTP/1.0 503 Service Unavailable\r\n") || !strings.Contains(string(b), sock) {
		t.Errorf("the client got %q: want an HTTP 503 naming %s", b, sock)
	}

	// A usage mistake is status 2, not a hand-over.
	if err := exec.Command(bridgeBin, "--handover-send").Run(); !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Errorf("--handover-send without a socket: %v, want exit 2", err)
	}
}
