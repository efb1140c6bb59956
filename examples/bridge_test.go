package examples

import (
	"errors"
	"fmt"
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

// wsbridgeBinary builds the real wsbridge command once per run. While the
// bridge does not build, these tests skip (fail under CI, where the rest
// of the suite fails on it too).
func wsbridgeBinary(t *testing.T) string {
	t.Helper()
	path, err := buildGo("wsbridge", "github.com/wsbridge/wsbridge/cmd/wsbridge")
	if err != nil {
		if inCI() {
			t.Fatalf("building wsbridge: %v", err)
		}
		t.Skipf("SKIPPING: wsbridge does not build, so the examples cannot run behind it: %v", err)
	}
	return path
}

// bridgeProc is a running wsbridge listening on 127.0.0.1.
type bridgeProc struct {
	cmd    *exec.Cmd
	addr   string
	stderr wstest.Buffer // its log
	done   chan struct{}
	err    error // its exit, valid after done
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startBridge runs wsbridge with args on a free loopback port and returns
// once it accepts connections. Another process may take the port between
// freePort and wsbridge's bind, so a bind failure is retried on a new one.
func startBridge(t *testing.T, args ...string) *bridgeProc {
	t.Helper()
	bin := wsbridgeBinary(t)
	for attempt := 1; ; attempt++ {
		port := strconv.Itoa(freePort(t))
		argv := append([]string{bin, "--address=127.0.0.1", "--port=" + port}, args...)
		b, err := launchBridge(t, net.JoinHostPort("127.0.0.1", port), argv)
		if err == nil {
			return b
		}
		if !strings.Contains(b.stderr.String(), "address already in use") || attempt == 3 {
			t.Fatalf("starting %s: %v\nlog:\n%s", strings.Join(argv, " "), err, b.stderr.String())
		}
	}
}

// launchBridge runs argv, a wsbridge command line that listens on addr,
// and returns once it accepts connections; the test's cleanup stops it.
// On an error the process has exited and its log is in b.stderr.
func launchBridge(t *testing.T, addr string, argv []string) (b *bridgeProc, err error) {
	t.Helper()
	b = &bridgeProc{addr: addr, done: make(chan struct{})}
	b.cmd = exec.Command(argv[0], argv[1:]...)
	b.cmd.Stdout, b.cmd.Stderr = &b.stderr, &b.stderr
	b.cmd.WaitDelay = ioTimeout
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		b.err = b.cmd.Wait()
		close(b.done)
	}()
	if err := b.waitReady(); err != nil {
		return b, err
	}
	t.Cleanup(func() {
		// Only after a failure is it still running: SIGTERM first, so
		// it ends its children rather than orphan them.
		select {
		case <-b.done:
		default:
			b.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-b.done:
			case <-time.After(ioTimeout / 2):
				b.cmd.Process.Kill()
				<-b.done
			}
		}
		if t.Failed() {
			t.Logf("wsbridge log:\n%s", b.stderr.String())
		}
	})
	return b, nil
}

// waitReady polls until the bridge accepts a TCP connection.
func (b *bridgeProc) waitReady() error {
	deadline := time.Now().Add(ioTimeout)
	for {
		conn, err := net.DialTimeout("tcp", b.addr, time.Second)
		if err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-b.done:
			return fmt.Errorf("exited: %v", b.err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			b.cmd.Process.Kill()
			<-b.done
			return fmt.Errorf("not accepting connections on %s after %v: %v", b.addr, ioTimeout, err)
		}
	}
}

// stop sends SIGTERM to the bridge's PID and expects a clean exit.
func (b *bridgeProc) stop(t *testing.T) {
	t.Helper()
	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM to wsbridge (pid %d): %v", b.cmd.Process.Pid, err)
	}
	select {
	case <-b.done:
	case <-time.After(ioTimeout):
		t.Fatalf("wsbridge (pid %d) still running %v after SIGTERM", b.cmd.Process.Pid, ioTimeout)
	}
	if b.err != nil {
		var exit *exec.ExitError
		if errors.As(b.err, &exit) {
			t.Fatalf("wsbridge exited with status %d after SIGTERM, want 0", exit.ExitCode())
		}
		t.Fatal(b.err)
	}
}

// exchange is one message sent and the answer expected.
type exchange struct {
	op         byte
	send, want string
}

func TestBehindWsbridge(t *testing.T) {
	script, err := filepath.Abs(filepath.Join("sh", "count.sh"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		framing string
		command func(t *testing.T) []string
		welcome string // first message, sent before any input; "": none
		talk    []exchange
	}{
		{
			name:    "greeter",
			framing: "line",
			command: func(t *testing.T) []string { return []string{greeter(t), "-every=0"} },
			// REMOTE_ADDR comes from wsbridge.
			welcome: "hello 127.0.0.1: type a line and I answer it reversed and upper-cased",
			talk:    []exchange{{wstest.OpText, "hello", "#1 OLLEH"}},
		},
		{
			name:    "line-echo",
			framing: "line",
			command: func(t *testing.T) []string { return []string{buildC(t, "line-echo")} },
			talk:    []exchange{{wstest.OpText, "hello", "echo: hello"}},
		},
		{
			name:    "count.sh",
			framing: "line",
			command: func(t *testing.T) []string { return []string{script} },
			welcome: "count.sh ready: send lines, I count them",
			talk:    []exchange{{wstest.OpText, "a", "1: a"}, {wstest.OpText, "b", "2: b"}},
		},
		{
			name:    "len32-echo",
			framing: "len32",
			command: func(t *testing.T) []string { return []string{buildC(t, "len32-echo")} },
			welcome: "len32-echo ready: every message comes back as it went",
			talk: []exchange{
				{wstest.OpText, "héllo\nwörld", "héllo\nwörld"}, // one message, newline and all
				{wstest.OpBinary, "\x00\x01\xff\n", "\x00\x01\xff\n"},
			},
		},
		{
			name:    "raw-upper",
			framing: "raw",
			command: func(t *testing.T) []string { return []string{buildC(t, "raw-upper")} },
			// Each read of stdout is a binary message.
			talk: []exchange{{wstest.OpBinary, "hello\x00wörld", "HELLO\x00WöRLD"}, {wstest.OpBinary, "abc", "ABC"}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--framing=" + tc.framing}, tc.command(t)...)
			b := startBridge(t, args...)
			c := dial(t, b, "/")
			if tc.welcome != "" {
				c.ExpectMessage(t, wstest.OpText, tc.welcome)
			}
			for _, x := range tc.talk {
				if err := c.WriteFrame(true, x.op, []byte(x.send)); err != nil {
					t.Fatal(err)
				}
				c.ExpectMessage(t, x.op, x.want)
			}
			closeNormally(t, c)
			b.stop(t)
		})
	}
}

// dial opens a WebSocket to the bridge with no Origin header, as a program
// (not a browser) does, failing the test if it cannot.
func dial(t *testing.T, b *bridgeProc, target string) *wstest.Conn {
	t.Helper()
	return wstest.MustDial(t, b.addr, wstest.Options{Path: target, Timeout: ioTimeout})
}

// nextText returns the client's next message, which must be text.
func nextText(t *testing.T, c *wstest.Conn) string {
	t.Helper()
	op, msg, closed, err := c.ReadMessage(ioTimeout)
	if errors.Is(err, wstest.ErrClosed) {
		t.Fatalf("waiting for a message: closed with %d %q", closed.CloseCode(), closed.CloseReason())
	}
	if err != nil {
		t.Fatalf("waiting for a message: %v", err)
	}
	if op != wstest.OpText {
		t.Fatalf("got message op %#x %q, want a text message", op, msg)
	}
	return string(msg)
}

func say(t *testing.T, c *wstest.Conn, msg string) {
	t.Helper()
	if err := c.WriteFrame(true, wstest.OpText, []byte(msg)); err != nil {
		t.Fatalf("sending %q: %v", msg, err)
	}
}

// expectClosed expects the server to close c next, with code and reason.
func expectClosed(t *testing.T, c *wstest.Conn, code int, reason string) {
	t.Helper()
	f, err := c.AnswerClose(ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if f.CloseCode() != code || f.CloseReason() != reason {
		t.Fatalf("closed with %d %q, want %d %q", f.CloseCode(), f.CloseReason(), code, reason)
	}
}

// closeNormally closes c from the client's side and expects 1000 back.
func closeNormally(t *testing.T, c *wstest.Conn) {
	t.Helper()
	f, err := c.CloseHandshake(wstest.CloseNormal, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if f.CloseCode() != wstest.CloseNormal {
		t.Fatalf("server answered a normal close with %d, want 1000", f.CloseCode())
	}
}
