package handover

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// logBuf records a listener's log lines.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *logBuf) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

func listen(t *testing.T, cfg Config) (*Listener, string, *logBuf) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "h.sock")
	lb := &logBuf{}
	cfg.Log = slog.New(slog.NewTextHandler(lb, nil))
	l, err := Listen(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, path, lb
}

// tcpPair returns both ends of a loopback TCP connection; the server end
// as a descriptor of its own, as boa gives an nph- CGI.
func tcpPair(t *testing.T) (client net.Conn, serverFD int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	f, err := sc.(*net.TCPConn).File()
	sc.Close()
	if err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Dup(int(f.Fd()))
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	return client, fd
}

func accept(t *testing.T, l *Listener) *Conn {
	t.Helper()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() { c, err := l.Accept(); ch <- res{c, err} }()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r.c.(*Conn)
	case <-time.After(5 * time.Second):
		t.Fatal("no connection handed over")
	}
	return nil
}

func TestHandOverSocket(t *testing.T) {
	l, path, _ := listen(t, Config{})
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o660 || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("socket file %v, %v: want a socket of mode 0660", fi, err)
	}
	client, fd := tcpPair(t)
	if err := Send(path, []int{fd}, boaUpgrade, time.Second); err != nil {
		t.Fatal(err)
	}
	unix.Close(fd) // as the CGI exits: the daemon has its own
	c := accept(t, l)
	defer c.Close()
	if c.RemoteAddr().String() != "127.0.0.1:40123" {
		t.Errorf("RemoteAddr %v, want the client's from REMOTE_ADDR", c.RemoteAddr())
	}
	if !strings.HasPrefix(string(c.Handed().Head), "GET /chat%20room?a=1&b HTTP/1.1\r\n") {
		t.Errorf("head %q", c.Handed().Head)
	}
	// Both directions are the client's.
	if _, err := c.Write([]byte("to client")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 9)
	if _, err := io.ReadFull(client, buf); err != nil || string(buf) != "to client" {
		t.Fatalf("client read %q, %v", buf, err)
	}
	client.Write([]byte("to daemon"))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "to daemon" {
		t.Fatalf("daemon read %q, %v", buf, err)
	}
}

// TestHandOverPipes is lighttpd's way: the CGI's stdin and stdout.
func TestHandOverPipes(t *testing.T) {
	l, path, _ := listen(t, Config{})
	var in, out [2]int // in: web server -> daemon; out: daemon -> web server
	if err := unix.Pipe2(in[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	if err := unix.Pipe2(out[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	server := os.NewFile(uintptr(in[1]), "to cgi")
	fromDaemon := os.NewFile(uintptr(out[0]), "from cgi")
	defer server.Close()
	defer fromDaemon.Close()
	if err := Send(path, []int{in[0], out[1]}, boaUpgrade, time.Second); err != nil {
		t.Fatal(err)
	}
	unix.Close(in[0])
	unix.Close(out[1])
	c := accept(t, l)
	server.Write([]byte("ping\n"))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "ping\n" {
		t.Fatalf("daemon read %q, %v", line, err)
	}
	if rc, err := c.WriteSyscallConn(); err != nil || rc == nil {
		t.Errorf("WriteSyscallConn: %v", err)
	}
	c.Write([]byte("pong\n"))
	c.Close()
	b, _ := io.ReadAll(fromDaemon)
	if string(b) != "pong\n" {
		t.Fatalf("web server read %q", b)
	}
}

func TestHandOverRefused(t *testing.T) {
	regular := func(t *testing.T) int {
		f, err := os.CreateTemp(t.TempDir(), "file")
		if err != nil {
			t.Fatal(err)
		}
		fd, _ := unix.Dup(int(f.Fd()))
		f.Close()
		return fd
	}
	bad := append([]string{"HTTP_X=a\x01"}, boaUpgrade...) // fine for Encode: control chars are the parser's
	_ = bad
	for _, c := range []struct {
		name    string
		fds     func(t *testing.T) ([]int, net.Conn)
		environ []string
		want    string // in the refusal and the log
		to400   bool   // the client gets a 400
	}{
		{"not a socket", func(t *testing.T) ([]int, net.Conn) { return []int{regular(t)}, nil }, boaUpgrade,
			"not a socket (a regular file)", false},
		{"three descriptors", func(t *testing.T) ([]int, net.Conn) {
			return []int{regular(t), regular(t), regular(t)}, nil
		}, boaUpgrade, "3 descriptors", false},
		{"no remote address", func(t *testing.T) ([]int, net.Conn) {
			cl, fd := tcpPair(t)
			return []int{fd}, cl
		}, []string{"REQUEST_METHOD=GET", "HTTP_UPGRADE=websocket"}, "REMOTE_ADDR is missing", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, path, lb := listen(t, Config{})
			fds, client := c.fds(t)
			err := Send(path, fds, c.environ, time.Second)
			for _, fd := range fds {
				unix.Close(fd)
			}
			var ref *Refused
			if !errors.As(err, &ref) || !ref.Taken || !strings.Contains(ref.Reason, c.want) {
				t.Fatalf("Send: %v, want a refusal saying %q", err, c.want)
			}
			if !strings.Contains(lb.String(), c.want) {
				t.Errorf("log %q does not say %q", lb, c.want)
			}
			if client != nil {
				client.SetReadDeadline(time.Now().Add(2 * time.Second))
				b, _ := io.ReadAll(client)
				if !strings.HasPrefix(string(b), "HTTP/1.1 400 Bad Request\r\n") || !strings.Contains(string(b), c.want) {
					t.Errorf("the client got %q, want a 400 saying %q", b, c.want)
				}
			}
		})
	}
}

func TestHandOverNotAllowed(t *testing.T) {
	_, path, lb := listen(t, Config{Allow: func(uid, gid uint32) bool { return false }})
	client, fd := tcpPair(t)
	err := Send(path, []int{fd}, boaUpgrade, time.Second)
	unix.Close(fd)
	var ref *Refused
	if !errors.As(err, &ref) || ref.Taken || !strings.Contains(ref.Reason, "may not hand over") {
		t.Fatalf("Send: %v, want a refusal that did not take the connection", err)
	}
	if !strings.Contains(lb.String(), "not allowed") {
		t.Errorf("log %q", lb)
	}
	// The daemon never had the connection: nothing was written to it.
	client.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, _ := client.Read(make([]byte, 1)); n != 0 {
		t.Error("the daemon wrote to a connection it refused")
	}
}

func TestSendNoDaemon(t *testing.T) {
	path := filepath.Join(t.TempDir(), "none.sock")
	if err := Send(path, []int{1}, boaUpgrade, time.Second); !errors.Is(err, ErrNoDaemon) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Send: %v, want ErrNoDaemon naming %s", err, path)
	}
	// A daemon that takes the connection but never answers.
	ln, err := net.Listen("unixpacket", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	start := time.Now()
	if err := Send(path, []int{1}, boaUpgrade, 200*time.Millisecond); !errors.Is(err, ErrNoDaemon) {
		t.Fatalf("Send: %v, want ErrNoDaemon", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Send waited %v past its timeout", d)
	}
}

func TestListenStaleAndLive(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "h.sock")
	// A stale socket: bound, then its owner gone without removing it.
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	l, err := Listen(path, Config{})
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	defer l.Close()
	if _, err := Listen(path, Config{}); err == nil || !strings.Contains(err.Error(), "is serving") {
		t.Fatalf("Listen over a live socket: %v, want a refusal", err)
	}
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o600)
	if _, err := Listen(file, Config{}); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("Listen over a file: %v", err)
	}
	l.Close()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Close left the socket file: %v", err)
	}
}

// TestListenSparesOtherSockets checks Listen removes only a socket no one
// listens on: a live socket of another kind (a stream socket some other
// daemon serves, named by mistake) is not stale and stays.
func TestListenSparesOtherSockets(t *testing.T) {
	for _, network := range []string{"unix", "unixgram"} {
		t.Run(network, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "other.sock")
			if network == "unix" {
				ln, err := net.Listen(network, path)
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
			} else {
				pc, err := net.ListenPacket(network, path)
				if err != nil {
					t.Fatal(err)
				}
				defer pc.Close()
			}
			l, err := Listen(path, Config{})
			if err == nil {
				l.Close()
				t.Fatalf("Listen over a live %s socket: took its path", network)
			}
			if c, err := net.Dial(network, path); err != nil {
				t.Fatalf("the other daemon's socket is gone: %v", err)
			} else {
				c.Close()
			}
		})
	}
}

// TestListenPrivately: the socket comes to its path with its mode set
// (it is made elsewhere and renamed), Addr names the path, no temporary
// directory is left, and Close removes the file only while it is still
// this listener's.
func TestListenPrivately(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "h.sock")
	l, err := Listen(path, Config{Mode: 0o600})
	if err != nil {
		t.Fatal(err)
	}
	if l.Addr().String() != path {
		t.Errorf("Addr %v, want %s", l.Addr(), path)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || ents[0].Name() != "h.sock" {
		t.Errorf("the directory holds %v, want the socket alone", ents)
	}
	if fi, err := os.Lstat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket %v, %v", fi, err)
	}
	// Another daemon's socket at the path since: Close leaves it.
	other := filepath.Join(dir, "other.sock")
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: other, Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := os.Rename(other, path); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Errorf("Close removed a socket that was not its own: %v", err)
	}
}
