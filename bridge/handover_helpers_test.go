package bridge

import (
	"bytes"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wsbridge/wsbridge/bridge/handover"
)

// The hand-over is tested here with web servers written in Go that do
// what boa and lighttpd do with a CGI (cmd/wsbridge's tests run the real
// ones): read the request, make its CGI environment, and hand the
// connection over, the socket itself (boa's nph- CGIs) or two pipes the
// web server then relays (lighttpd's cgi.upgrade).

// handoverCGI is where the fake web servers mount the hand-over CGI: the
// daemon sees PATH_INFO, the rest of the path.
const handoverCGI = "/cgi-bin/nph-ws"

// startWebServer starts a web server on loopback that hands its next
// connection over to the daemon at sock, through pipes when pipes is
// set, and returns its address. It stops at the test's end.
func startWebServer(t *testing.T, sock string, pipes bool, extraEnv ...string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		handOver(t, conn, sock, pipes, extraEnv)
	}()
	return ln.Addr().String()
}

// handOver reads conn's request head and hands conn over as a web
// server's CGI would; with pipes it relays conn through them until both
// directions end.
func handOver(t *testing.T, conn net.Conn, sock string, pipes bool, extraEnv []string) {
	defer conn.Close()
	head, err := readHead(conn)
	if err != nil {
		t.Errorf("web server: %v", err)
		return
	}
	env := append(cgiEnv(head, conn), extraEnv...)
	if !pipes {
		f, err := conn.(*net.TCPConn).File()
		if err != nil {
			t.Errorf("web server: %v", err)
			return
		}
		defer f.Close()
		if err := handover.Send(sock, []int{int(f.Fd())}, env, 5*time.Second); err != nil {
			t.Logf("web server: hand-over: %v", err)
		}
		return // the web server closes its copy
	}
	var in, out [2]int // in: to the CGI's stdin; out: from its stdout
	if err := unix.Pipe2(in[:], unix.O_CLOEXEC); err != nil {
		t.Error(err)
		return
	}
	if err := unix.Pipe2(out[:], unix.O_CLOEXEC); err != nil {
		t.Error(err)
		return
	}
	toCGI, fromCGI := os.NewFile(uintptr(in[1]), "to cgi"), os.NewFile(uintptr(out[0]), "from cgi")
	err = handover.Send(sock, []int{in[0], out[1]}, env, 5*time.Second)
	unix.Close(in[0])
	unix.Close(out[1])
	if err != nil {
		t.Logf("web server: hand-over: %v", err)
	}
	relayed := make(chan struct{})
	go func() {
		_, _ = io.Copy(toCGI, conn)
		toCGI.Close()
		close(relayed)
	}()
	_, _ = io.Copy(conn, fromCGI)
	fromCGI.Close()
	_ = conn.(*net.TCPConn).CloseWrite()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	<-relayed
}

// readHead reads a request head a byte at a time, so nothing after it is
// taken off the socket.
func readHead(conn net.Conn) ([]byte, error) {
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer conn.SetReadDeadline(time.Time{})
	var head []byte
	b := make([]byte, 1)
	for !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
		if _, err := conn.Read(b); err != nil {
			return nil, err
		}
		head = append(head, b[0])
	}
	return head, nil
}

// cgiEnv is the CGI environment boa makes of a request head: HTTP_* for
// the fields but Connection, which boa consumes.
func cgiEnv(head []byte, conn net.Conn) []string {
	lines := strings.Split(strings.TrimSuffix(string(head), "\r\n\r\n"), "\r\n")
	parts := strings.SplitN(lines[0], " ", 3)
	uri, query, _ := strings.Cut(parts[1], "?")
	remote := conn.RemoteAddr().(*net.TCPAddr)
	local := conn.LocalAddr().(*net.TCPAddr)
	env := []string{
		"PATH=/bin:/usr/bin", "GATEWAY_INTERFACE=CGI/1.1",
		"REQUEST_METHOD=" + parts[0], "SERVER_PROTOCOL=" + parts[2], "REQUEST_URI=" + uri,
		"SCRIPT_NAME=" + handoverCGI, "PATH_INFO=" + strings.TrimPrefix(uri, handoverCGI), "QUERY_STRING=" + query,
		"REMOTE_ADDR=" + remote.IP.String(), "REMOTE_PORT=" + strconv.Itoa(remote.Port),
		"SERVER_ADDR=" + local.IP.String(), "SERVER_PORT=" + strconv.Itoa(local.Port),
	}
	for _, l := range lines[1:] {
		name, value, _ := strings.Cut(l, ":")
		if strings.EqualFold(name, "Connection") {
			continue
		}
		env = append(env, "HTTP_"+strings.ToUpper(strings.ReplaceAll(name, "-", "_"))+"="+strings.TrimSpace(value))
	}
	return env
}
