package examples

// c/wsbridge-handover.c against a stand-in daemon: a unixpacket listener
// that reads the one message, takes the descriptors and answers as the
// test says. The real daemon and real web servers are cmd/wsbridge's
// handover_test.go; here each case of the protocol is checked on its own.

import (
	"bytes"
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
)

// handoverMsg is what the stand-in daemon received: the payload's strings
// after the magic, and the descriptors.
type handoverMsg struct {
	Magic string
	Vars  []string
	Files []*os.File
}

// fakeDaemon listens on a unixpacket socket in a temp dir and answers each
// hand-over with reply ("" for none: it keeps the connection open
// without answering). Messages arrive on the channel.
func fakeDaemon(t *testing.T, reply string) (string, <-chan handoverMsg) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "wsbridge.sock")
	l, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	msgs := make(chan handoverMsg, 4)
	var held []net.Conn
	stopped := make(chan struct{})
	t.Cleanup(func() {
		l.Close()
		<-stopped
		for _, c := range held {
			c.Close()
		}
	})
	go func() {
		defer close(stopped)
		for {
			c, err := l.AcceptUnix()
			if err != nil {
				return
			}
			buf := make([]byte, 70*1024)
			oob := make([]byte, syscall.CmsgSpace(4*4))
			n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
			if err != nil {
				c.Close()
				continue
			}
			var m handoverMsg
			parts := strings.Split(string(buf[:n]), "\x00")
			m.Magic = parts[0]
			if len(parts) > 1 && parts[len(parts)-1] == "" {
				m.Vars = parts[1 : len(parts)-1]
			}
			scms, _ := syscall.ParseSocketControlMessage(oob[:oobn])
			for _, scm := range scms {
				fds, _ := syscall.ParseUnixRights(&scm)
				for _, fd := range fds {
					m.Files = append(m.Files, os.NewFile(uintptr(fd), "handed-over"))
				}
			}
			if reply == "" {
				// A daemon that hangs: it lets go of the client at
				// once, so the client sees the program's 503 end.
				for _, f := range m.Files {
					f.Close()
				}
				held = append(held, c) // the cleanup reads it once this goroutine stopped
				continue
			}
			msgs <- m
			c.Write([]byte(reply))
			c.Close()
		}
	}()
	return path, msgs
}

func buildHandover(t *testing.T, name string, defines ...string) string {
	t.Helper()
	cc := os.Getenv("CC")
	if cc == "" {
		cc = requireTool(t, "cc", "gcc")
	}
	args := append([]string{"-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-O2"}, defines...)
	path, err := build(name, exec.Command(cc, append(args, "-o", filepath.Join(binDir, name), "c/wsbridge-handover.c")...))
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// handoverRun is one run of the program: its exit code and stderr.
type handoverRun struct {
	code   int
	stderr string
}

func runHandover(t *testing.T, bin string, env []string, stdin, stdout *os.File, args ...string) handoverRun {
	t.Helper()
	var errOut bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, &errOut
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(runTimeout):
		cmd.Process.Kill()
		t.Fatalf("%s still running after %v", bin, runTimeout)
	}
	r := handoverRun{stderr: errOut.String()}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		r.code = exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return r
}

// tcpPair is a connected loopback pair: client, and the server side as a
// file to give the program as its fd 1 (boa's nph- CGI).
func tcpPair(t *testing.T) (net.Conn, *os.File) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	client, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	f, err := server.(*net.TCPConn).File()
	if err != nil {
		t.Fatal(err)
	}
	server.Close()
	t.Cleanup(func() { client.Close(); f.Close() })
	client.SetDeadline(time.Now().Add(ioTimeout))
	return client, f
}

func devNull(t *testing.T) *os.File {
	t.Helper()
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// cgiEnv is what boa sets for ws://host/cgi-bin/nph-ws/echo?room=1, with
// variables the protocol does not carry mixed in.
func cgiEnv(socket string) []string {
	return []string{
		"GATEWAY_INTERFACE=CGI/1.1",
		"REQUEST_METHOD=GET",
		"SERVER_PROTOCOL=HTTP/1.1",
		"REQUEST_URI=/cgi-bin/nph-ws/echo",
		"SCRIPT_NAME=/cgi-bin/nph-ws",
		"PATH_INFO=/echo",
		"QUERY_STRING=room=1",
		"REMOTE_ADDR=127.0.0.1",
		"REMOTE_PORT=40000",
		"SERVER_PORT=8080",
		"PATH=/bin:/usr/bin",
		"SECRET_TOKEN=not for the daemon",
		"HTTP_HOST=127.0.0.1:8080",
		"HTTP_UPGRADE=websocket",
		"HTTP_SEC_WEBSOCKET_KEY=dGhlIHNhbXBsZSBub25jZQ==",
		"HTTP_SEC_WEBSOCKET_VERSION=13",
		"WSBRIDGE_HANDOVER=" + socket,
	}
}

func recvMsg(t *testing.T, msgs <-chan handoverMsg) handoverMsg {
	t.Helper()
	select {
	case m := <-msgs:
		t.Cleanup(func() {
			for _, f := range m.Files {
				f.Close()
			}
		})
		return m
	case <-time.After(ioTimeout):
		t.Fatal("the daemon got no hand-over message")
		return handoverMsg{}
	}
}

func TestHandoverProgram(t *testing.T) {
	bin := buildHandover(t, "wsbridge-handover")

	t.Run("socket", func(t *testing.T) {
		sock, msgs := fakeDaemon(t, "OK")
		client, fd1 := tcpPair(t)
		r := runHandover(t, bin, cgiEnv(sock), devNull(t), fd1)
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("after OK: exit %d, stderr %q; want 0 and nothing", r.code, r.stderr)
		}
		m := recvMsg(t, msgs)
		if m.Magic != "WSBRIDGE-HANDOVER/1" {
			t.Errorf("magic %q", m.Magic)
		}
		// The named CGI variables and HTTP_*, in environ's order; not
		// GATEWAY_INTERFACE, PATH, the socket's own variable or others.
		want := []string{"REQUEST_METHOD=GET", "SERVER_PROTOCOL=HTTP/1.1", "REQUEST_URI=/cgi-bin/nph-ws/echo",
			"SCRIPT_NAME=/cgi-bin/nph-ws", "PATH_INFO=/echo", "QUERY_STRING=room=1", "REMOTE_ADDR=127.0.0.1",
			"REMOTE_PORT=40000", "SERVER_PORT=8080", "HTTP_HOST=127.0.0.1:8080", "HTTP_UPGRADE=websocket",
			"HTTP_SEC_WEBSOCKET_KEY=dGhlIHNhbXBsZSBub25jZQ==", "HTTP_SEC_WEBSOCKET_VERSION=13"}
		if strings.Join(m.Vars, "\n") != strings.Join(want, "\n") {
			t.Errorf("variables sent:\n%s\nwant:\n%s", strings.Join(m.Vars, "\n"), strings.Join(want, "\n"))
		}
		if len(m.Files) != 1 {
			t.Fatalf("%d descriptors, want 1: fd 1, the client's socket", len(m.Files))
		}
		// The descriptor is the client's connection, both ways, and the
		// program let go of it: only the daemon's copy is left.
		if _, err := m.Files[0].Write([]byte("from the daemon")); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len("from the daemon"))
		if _, err := io.ReadFull(client, got); err != nil || string(got) != "from the daemon" {
			t.Fatalf("client read %q, %v", got, err)
		}
		if _, err := client.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 1)
		if _, err := m.Files[0].Read(b); err != nil || b[0] != 'x' {
			t.Fatalf("daemon read %q, %v", b, err)
		}
		fd1.Close()
		m.Files[0].Close()
		if n, err := client.Read(b); err != io.EOF {
			t.Errorf("after the daemon closed its copy, the client read %d bytes, %v; want EOF (nobody else holds it)", n, err)
		}
	})

	t.Run("pipes", func(t *testing.T) {
		sock, msgs := fakeDaemon(t, "OK")
		inR, inW, _ := os.Pipe()
		outR, outW, _ := os.Pipe()
		defer inW.Close()
		defer outR.Close()
		r := runHandover(t, bin, cgiEnv(sock), inR, outW)
		inR.Close()
		outW.Close()
		if r.code != 0 {
			t.Fatalf("after OK: exit %d, stderr %q", r.code, r.stderr)
		}
		m := recvMsg(t, msgs)
		if len(m.Files) != 2 {
			t.Fatalf("%d descriptors, want 2: stdin's read end, stdout's write end", len(m.Files))
		}
		inW.Write([]byte("up"))
		b := make([]byte, 2)
		if _, err := io.ReadFull(m.Files[0], b); err != nil || string(b) != "up" {
			t.Errorf("the first descriptor read %q, %v; want stdin's data", b, err)
		}
		m.Files[1].Write([]byte("down"))
		m.Files[1].Close()
		if got, _ := io.ReadAll(outR); string(got) != "down" {
			t.Errorf("stdout's reader got %q, want what the daemon wrote to the second descriptor", got)
		}
	})

	t.Run("refused", func(t *testing.T) {
		sock, msgs := fakeDaemon(t, "ERR peer uid 33 not allowed")
		client, fd1 := tcpPair(t)
		r := runHandover(t, bin, cgiEnv(sock), devNull(t), fd1)
		for _, f := range recvMsg(t, msgs).Files {
			f.Close() // as the daemon does after its 400
		}
		if r.code != 1 || !strings.Contains(r.stderr, "refused the request: peer uid 33 not allowed") {
			t.Errorf("after ERR: exit %d, stderr %q; want 1 and the reason", r.code, r.stderr)
		}
		// The daemon answers the client itself on ERR: nothing from us.
		fd1.Close()
		if got, _ := io.ReadAll(client); len(got) != 0 {
			t.Errorf("the program wrote %q to the client after ERR", got)
		}
	})

	t.Run("denied", func(t *testing.T) {
		sock, msgs := fakeDaemon(t, "DENY user 33 (group 33) may not hand over to this daemon")
		client, fd1 := tcpPair(t)
		r := runHandover(t, bin, cgiEnv(sock), devNull(t), fd1)
		for _, f := range recvMsg(t, msgs).Files {
			f.Close() // DENY: the daemon keeps nothing
		}
		fd1.Close()
		got, _ := io.ReadAll(client)
		body := "503 Service Unavailable: wsbridge refused the hand-over of this request (the web server's error log says why)\n"
		if !strings.HasPrefix(string(got), "HTTP/1.0 503 Service Unavailable\r\n") || !strings.HasSuffix(string(got), "\r\n\r\n"+body) {
			t.Errorf("after DENY the client got %q, want a 503 with body %q", got, body)
		}
		if r.code != 1 || !strings.Contains(r.stderr, "refused the hand-over: user 33 (group 33) may not") {
			t.Errorf("after DENY: exit %d, stderr %q; want 1 and the reason", r.code, r.stderr)
		}
	})

	noDaemon := func(t *testing.T, bin, sock string) {
		t.Helper()
		body := "503 Service Unavailable: the wsbridge daemon is not running at " + sock + " (or does not answer)\n"
		client, fd1 := tcpPair(t)
		r := runHandover(t, bin, cgiEnv(sock), devNull(t), fd1)
		fd1.Close()
		got, _ := io.ReadAll(client)
		if !strings.HasPrefix(string(got), "HTTP/1.0 503 Service Unavailable\r\n") || !strings.HasSuffix(string(got), "\r\n\r\n"+body) {
			t.Errorf("nph- client got %q, want an HTTP/1.0 503 with body %q", got, body)
		}
		if r.code != 1 || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "not running at "+sock) {
			t.Errorf("exit %d, stderr %q; want 1 and one line naming the socket", r.code, r.stderr)
		}
		outR, outW, _ := os.Pipe()
		defer outR.Close()
		runHandover(t, bin, cgiEnv(sock), devNull(t), outW)
		outW.Close()
		got, _ = io.ReadAll(outR)
		if !strings.HasPrefix(string(got), "Status: 503 Service Unavailable\r\n") || !strings.HasSuffix(string(got), "\r\n\r\n"+body) {
			t.Errorf("CGI stdout got %q, want a Status: 503 header and body %q", got, body)
		}
	}
	t.Run("no daemon", func(t *testing.T) {
		noDaemon(t, bin, filepath.Join(t.TempDir(), "absent.sock"))
	})
	t.Run("no answer", func(t *testing.T) {
		short := buildHandover(t, "wsbridge-handover-200ms", "-DWSBRIDGE_HANDOVER_TIMEOUT_MS=200")
		sock, _ := fakeDaemon(t, "")
		noDaemon(t, short, sock)
	})

	t.Run("argument", func(t *testing.T) {
		fromArg, argMsgs := fakeDaemon(t, "OK")
		fromEnv, envMsgs := fakeDaemon(t, "OK")
		_, fd1 := tcpPair(t)
		if r := runHandover(t, bin, cgiEnv(fromEnv), devNull(t), fd1, fromArg); r.code != 0 {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
		recvMsg(t, argMsgs)
		// boa turns a query without '=' into arguments: a client must not
		// pick the socket that way, so the environment's wins.
		env := append(cgiEnv(fromEnv), "QUERY_STRING="+fromArg)
		_, fd1 = tcpPair(t)
		if r := runHandover(t, bin, env, devNull(t), fd1, fromArg); r.code != 0 {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
		recvMsg(t, envMsgs)
		select {
		case <-argMsgs:
			t.Error("an argument made from the query chose the socket")
		default:
		}
	})

	t.Run("too large", func(t *testing.T) {
		sock, msgs := fakeDaemon(t, "OK")
		client, fd1 := tcpPair(t)
		env := append(cgiEnv(sock), "HTTP_COOKIE="+strings.Repeat("c", 64*1024))
		r := runHandover(t, bin, env, devNull(t), fd1)
		fd1.Close()
		got, _ := io.ReadAll(client)
		if r.code != 1 || !strings.HasPrefix(string(got), "HTTP/1.0 400 Bad Request\r\n") {
			t.Errorf("exit %d, client got %q; want 1 and a 400", r.code, got)
		}
		select {
		case m := <-msgs:
			t.Errorf("a message of %d variables was sent; over 64 KiB nothing must be", len(m.Vars))
		case <-time.After(100 * time.Millisecond):
		}
	})
}

// TestHandoverProgramSize: built static against musl, as the Makefile
// builds it where musl-gcc is, the hand-over program is tens of KiB (a
// board's web server runs it once per WebSocket connection), and it works:
// it hands over to a daemon.
func TestHandoverProgramSize(t *testing.T) {
	musl := requireTool(t, "musl-gcc", "musl-tools")
	bin, err := build("wsbridge-handover-musl", exec.Command(musl, "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror",
		"-Os", "-static", "-s", "-o", filepath.Join(binDir, "wsbridge-handover-musl"), "c/wsbridge-handover.c"))
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	const limit = 64 << 10
	if fi.Size() > limit {
		t.Errorf("static musl build is %d bytes, want at most %d", fi.Size(), limit)
	}
	t.Logf("static musl build: %d bytes", fi.Size())
	sock, msgs := fakeDaemon(t, "OK")
	_, fd1 := tcpPair(t)
	r := runHandover(t, bin, cgiEnv(sock), devNull(t), fd1)
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	if m := recvMsg(t, msgs); m.Magic != "WSBRIDGE-HANDOVER/1" || len(m.Files) != 1 {
		t.Errorf("the daemon got magic %q and %d descriptors, want the socket alone", m.Magic, len(m.Files))
	}
}
