package bridge

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wsbridge/wsbridge/bridge/wstest"
	"github.com/wsbridge/wsbridge/procs/proctest"
)

// The tests of the process_* and session_* files run one program the way
// the daemon does with a command line (runProgram), and look at its
// children, which in-process are children of the test process.

// program is a Server with one endpoint at every path, as "wsbridge
// PROGRAM" serves, and its log.
type program struct {
	srv  *Server
	addr string
	port string
	log  *testLog
	stop func() error
}

// runProgram serves ep at every path with opts on a loopback port until
// the test ends, with the daemon's defaults for what the daemon sets
// (--passenv PATH,LD_LIBRARY_PATH, a SERVER_SOFTWARE of wsbridge/VERSION).
func runProgram(t *testing.T, opts Options, ep Endpoint) *program {
	t.Helper()
	if ep.PassEnv == nil {
		ep.PassEnv = []string{"PATH", "LD_LIBRARY_PATH"}
	}
	opts.Endpoints = []Endpoint{ep}
	opts.ServerSoftware = "wsbridge/test"
	s := serveStoppable(t, opts)
	p := &program{srv: s.srv, addr: s.addr, log: s.log}
	_, p.port, _ = net.SplitHostPort(p.addr)
	// stop ends Serve as the daemon's first SIGTERM does, and returns
	// what Serve returned.
	p.stop = func() error { return s.stop(t, 30*time.Second) }
	return p
}

// dial upgrades a connection to path, closed when the test ends.
func (p *program) dial(t *testing.T, path string) *wstest.Conn {
	t.Helper()
	return wstest.MustDial(t, p.addr, wstest.Options{Path: path})
}

// access waits for the access lines of n sessions.
func (p *program) access(t *testing.T, n int) []map[string]string {
	t.Helper()
	return p.log.WaitRecords(t, "session", n, 15*time.Second)
}

// children lists the running children this program's Server started:
// the test process's children whose environment has its SERVER_PORT
// (other tests' servers fork children of the test process too).
func (p *program) children() []proctest.Stat {
	var out []proctest.Stat
	for _, st := range proctest.ChildrenOf(os.Getpid()) {
		env, err := os.ReadFile("/proc/" + strconv.Itoa(st.PID) + "/environ")
		if err == nil && bytes.Contains(env, []byte("\x00SERVER_PORT="+p.port+"\x00")) {
			out = append(out, st)
		}
	}
	return out
}

// waitChildren polls until the program has exactly n children.
func (p *program) waitChildren(t *testing.T, n int, timeout time.Duration) []proctest.Stat {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		kids := p.children()
		if len(kids) == n {
			return kids
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d children after %v, want %d: %+v", len(kids), timeout, n, kids)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// readMsg reads one whole message within 20s, answering pings.
func readMsg(t testing.TB, c *wstest.Conn) (byte, []byte) {
	t.Helper()
	op, data, closed, err := c.ReadMessage(20 * time.Second)
	if errors.Is(err, wstest.ErrClosed) {
		t.Fatalf("read: closed with %d %q", closed.CloseCode(), closed.CloseReason())
	}
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return op, data
}

// readText reads one message and fails the test unless it is text.
func readText(t testing.TB, c *wstest.Conn) string {
	t.Helper()
	op, data := readMsg(t, c)
	if op != wstest.OpText {
		t.Fatalf("got a message of opcode %#x %q, want text", op, data)
	}
	return string(data)
}

// untilClose reads until the server closes and returns the close frame's
// code and reason, and the messages that came first.
func untilClose(t testing.TB, c *wstest.Conn) (code int, reason string, msgs []string) {
	t.Helper()
	for {
		_, data, closed, err := c.ReadMessage(30 * time.Second)
		if err == nil {
			msgs = append(msgs, string(data))
			continue
		}
		if !errors.Is(err, wstest.ErrClosed) {
			t.Fatalf("connection ended without a close frame: %v (messages before: %q)", err, msgs)
		}
		return closed.CloseCode(), closed.CloseReason(), msgs
	}
}

// payload returns message i of a pipelined run: its size and content
// depend on i, so a lost, reordered or cut message shows.
func payload(i, size int, textual bool) []byte {
	p := make([]byte, size)
	for j := range p {
		if textual {
			p[j] = byte('a' + (i+j)%26)
		} else {
			p[j] = byte(i*7 + j)
		}
	}
	return p
}

// sender writes binary messages of size bytes, up to total, on its own
// goroutine, and counts what it has written. It ends with its first
// failed write: closing the connection stops it.
type sender struct {
	sent atomic.Int64
	done chan error
}

func startSender(c *wstest.Conn, size, total int) *sender {
	s := &sender{done: make(chan error, 1)}
	msg := bytes.Repeat([]byte("z"), size)
	go func() {
		for s.sent.Load() < int64(total) {
			if err := c.WriteMessage(wstest.OpBinary, msg, 0); err != nil {
				s.done <- err
				return
			}
			s.sent.Add(int64(size))
		}
		s.done <- nil
	}()
	return s
}

// waitStalled waits until the sender has finished or made no progress for
// quiet, and reports whether it stalled (is still blocked) and how much
// it sent.
func (s *sender) waitStalled(t testing.TB, quiet, timeout time.Duration) (stalled bool, sent int64) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last, since := s.sent.Load(), time.Now()
	for time.Now().Before(deadline) {
		select {
		case err := <-s.done:
			s.done <- err
			return false, s.sent.Load()
		case <-time.After(10 * time.Millisecond):
		}
		if now := s.sent.Load(); now != last {
			last, since = now, time.Now()
		} else if time.Since(since) >= quiet {
			return true, now
		}
	}
	t.Fatalf("sender neither finished nor stalled in %v", timeout)
	return false, 0
}

// fillStdin connects to a program running "testchild noread" and sends
// until the child's stdin, the bridge and the socket buffers are full
// and the client's writes stall. The child is killed by PID when the test
// ends, so a server stuck on it can still be stopped; the connection is
// closed then, which ends the sender.
func fillStdin(t *testing.T, p *program) (*wstest.Conn, proctest.Stat) {
	t.Helper()
	c := p.dial(t, "/")
	child := p.waitChildren(t, 1, 5*time.Second)[0]
	t.Cleanup(func() {
		if !child.Gone() {
			_ = unix.Kill(child.PID, unix.SIGKILL)
		}
	})
	s := startSender(c, 32<<10, 32<<20)
	stalled, sent := s.waitStalled(t, 300*time.Millisecond, 15*time.Second)
	if !stalled || sent <= 1<<20 {
		t.Fatalf("client sent %d bytes, stalled=%v: want > 1 MiB, then stalled", sent, stalled)
	}
	t.Logf("client sent %d KiB, then its writes stalled", sent>>10)
	return c, child
}

// readFloodLines reads the lines of "testchild flood" and checks each.
func readFloodLines(t testing.TB, c *wstest.Conn, lines, size int) {
	t.Helper()
	for i := 1; i <= lines; i++ {
		got := readText(t, c)
		prefix := strconv.Itoa(i) + " "
		if len(got) != size || !strings.HasPrefix(got, prefix) {
			t.Fatalf("line %d: %.40q... (%d bytes), want %q... (%d bytes)", i, got, len(got), prefix, size)
		}
	}
}

// waitFile waits up to d for file to hold want.
func waitFile(t *testing.T, file, want string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		b, _ := os.ReadFile(file)
		if strings.Contains(string(b), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s holds %.120q after %v, want %q", file, b, d, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// readUntilPing reads frames, dropping data, until a ping arrives.
func readUntilPing(c *wstest.Conn, timeout time.Duration) (wstest.Frame, error) {
	deadline := time.Now().Add(timeout)
	for {
		f, err := c.ReadFrame(time.Until(deadline))
		if err != nil {
			return f, err
		}
		switch f.Op {
		case wstest.OpPing:
			return f, nil
		case wstest.OpClose:
			return f, wstest.ErrClosed
		}
	}
}

// pipeSize returns the capacity of the pipe a child has as descriptor fd.
func pipeSize(t *testing.T, pid, fd int) int {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/fd/%d", pid, fd))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, err := unix.FcntlInt(f.Fd(), unix.F_GETPIPE_SZ, 0)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
