package bridge

// Helpers of the shared mode's tests (shared_*_test.go) and the escape
// tests (escape_test.go): a Server whose shutdown the test decides, as
// SIGTERM decides the daemon's, and clients of testchild broadcast and
// testchild mux over bridge/wstest.

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/bridge/wstest"
	"github.com/wsbridge/wsbridge/procs/proctest"
)

// runShared serves ep (its Mode set to ModeShared) at every path.
func runShared(t *testing.T, ep Endpoint) *stoppable {
	t.Helper()
	ep.Mode = ModeShared
	return serveStoppable(t, Options{Endpoints: []Endpoint{ep}})
}

// testChildCmd is the command line of cmd/testchild in mode args[0].
func testChildCmd(t *testing.T, args ...string) []string {
	t.Helper()
	return append([]string{testChildPath(t)}, args...)
}

// hubChild waits for the shared child of path and returns it.
func (s *stoppable) hubChild(t *testing.T, path string) proctest.Stat {
	t.Helper()
	ep, _, _ := s.srv.routes.find(path)
	var pid int
	waitFor(t, "the shared child", func() bool { pid = ep.hub.PID(); return pid != 0 })
	return proctest.MustStat(t, pid)
}

// access waits for the access records of n sessions.
func (s *stoppable) access(t *testing.T, n int) []map[string]string {
	t.Helper()
	return s.log.WaitRecords(t, "session", n, 15*time.Second)
}

// floodLine is line i of testchild's "go N SIZE" (and flood).
func floodLine(i, size int) string {
	b := []byte(strconv.Itoa(i) + " ")
	for c := 0; len(b) < size; c++ {
		b = append(b, byte('a'+c%26))
	}
	return string(b[:size])
}

// floodNumber returns the number of a flood line, checking the rest of it.
func floodNumber(msg string, size int) (int, bool) {
	n, err := strconv.Atoi(strings.SplitN(msg, " ", 2)[0])
	return n, err == nil && n > 0 && msg == floodLine(n, size)
}

// member is a client of a shared child; id is its id with the mux
// framing.
type member struct {
	*wstest.Conn
	id string
}

// readTimeout bounds each read of a member: a guard against a hang on a
// busy machine, not a speed assertion.
const readTimeout = 60 * time.Second

// dialMember opens a WebSocket to path (with its query).
func dialMember(t testing.TB, addr, path string) *member {
	t.Helper()
	return &member{Conn: wstest.MustDial(t, addr, wstest.Options{Path: path})}
}

// say sends one text message.
func (m *member) say(t testing.TB, msg string) {
	t.Helper()
	if err := m.WriteMessage(wstest.OpText, []byte(msg), 0); err != nil {
		t.Fatalf("write %q: %v", msg, err)
	}
}

// next reads one whole message.
func (m *member) next(t testing.TB) (byte, string) {
	t.Helper()
	op, data, cf, err := m.ReadMessage(readTimeout)
	if errors.Is(err, wstest.ErrClosed) {
		t.Fatalf("read: closed with %d %q", cf.CloseCode(), cf.CloseReason())
	}
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return op, string(data)
}

// text reads one message and fails the test unless it is text.
func (m *member) text(t testing.TB) string {
	t.Helper()
	op, msg := m.next(t)
	if op != wstest.OpText {
		t.Fatalf("got a message of opcode %#x %q, want text", op, msg)
	}
	return msg
}

// skipStarted reads one text message, skipping the "started PID" line a
// child writes as it starts: it reaches whoever is connected then.
func (m *member) skipStarted(t testing.TB) string {
	t.Helper()
	for {
		if msg := m.text(t); !strings.HasPrefix(msg, "started ") {
			return msg
		}
	}
}

// closed reads until the server closes, answers its close as most clients
// do, and returns the code and reason; messages that arrive first are
// returned too.
func (m *member) closed(t testing.TB) (code int, reason string, msgs []string) {
	t.Helper()
	for {
		_, data, cf, err := m.ReadMessage(readTimeout)
		if err == nil {
			msgs = append(msgs, string(data))
			continue
		}
		if !errors.Is(err, wstest.ErrClosed) {
			t.Fatalf("connection ended without a close frame: %v (messages before: %q)", err, msgs)
		}
		_ = m.WriteClose(cf.CloseCode(), "")
		m.Conn.Conn.Close()
		return cf.CloseCode(), cf.CloseReason(), msgs
	}
}

// dialJoined dials n clients of a broadcast child, each of which sends
// "join" (the child counts them before a "go ... AFTER" floods), at most
// 50 dials at a time.
func dialJoined(t testing.TB, addr string, n int) []*member {
	t.Helper()
	conns := make([]*member, n)
	errs := make([]error, n)
	sem := make(chan struct{}, 50)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			c, err := wstest.Dial(addr, wstest.Options{Path: "/", Timeout: time.Minute})
			if err != nil {
				errs[i] = err
				return
			}
			conns[i] = &member{Conn: c}
			errs[i] = c.WriteMessage(wstest.OpText, []byte("join"), 0)
		})
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				c.Conn.Conn.Close()
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("dialling %d clients: %v", n, err)
	}
	return conns
}

// slowDial opens a WebSocket connection whose receive buffer is as small
// as the kernel allows, sends "join", and then reads only when the test
// says: a client that stops reading.
func slowDial(t testing.TB, addr string) *wstest.Conn {
	t.Helper()
	c := wstest.MustDial(t, addr, wstest.Options{Path: "/", RcvBuf: 2048, ReadBuffer: 512, Timeout: 5 * time.Second})
	if err := c.WriteFrame(true, wstest.OpText, []byte("join")); err != nil {
		t.Fatal(err)
	}
	return c
}

// readFloodAll reads flood lines 1..lines in order on every client; a
// "started" line first is skipped. It fails the test with the first
// client's error.
func readFloodAll(t testing.TB, conns []*member, lines, size int) {
	t.Helper()
	errs := make([]error, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			for n := 1; n <= lines; n++ {
				_, data, _, err := c.ReadMessage(readTimeout)
				if err != nil {
					errs[i] = fmt.Errorf("client %d: line %d: %w", i, n, err)
					return
				}
				msg := string(data)
				if n == 1 && strings.HasPrefix(msg, "started ") {
					n--
					continue
				}
				if msg != floodLine(n, size) {
					errs[i] = fmt.Errorf("client %d: got %.30q (%d bytes), want line %d", i, msg, len(msg), n)
					return
				}
			}
		})
	}
	wg.Wait()
	var failed []error
	for _, err := range errs {
		if err != nil {
			failed = append(failed, err)
		}
	}
	if len(failed) > 0 {
		t.Fatalf("%d of %d clients did not get every line in order; first: %v", len(failed), len(conns), failed[0])
	}
}

// expectNext reads the next message on every client and checks it.
func expectNext(t testing.TB, conns []*member, want string) {
	t.Helper()
	for i, c := range conns {
		if got := c.text(t); got != want {
			t.Fatalf("client %d: got %.40q, want %q", i, got, want)
		}
	}
}

// errorsOnly is a testing.TB for another goroutine than the test's: its
// Fatal marks the test failed and ends the goroutine, which the test's own
// goroutine then notices with Failed.
type errorsOnly struct{ testing.TB }

func (e *errorsOnly) Fatalf(format string, args ...any) {
	e.TB.Errorf(format, args...)
	runtime.Goexit()
}

func (e *errorsOnly) Fatal(args ...any) {
	e.TB.Error(args...)
	runtime.Goexit()
}

// slowRun floods a broadcast child's clients, one of which never reads
// until the test says: good clients, a raw slow one, and the server
// (Queue 64 KiB, with o's other options). The good clients read in the
// background; goodDone waits for them and fails the test unless every one
// got every line in order.
func slowRun(t *testing.T, o SharedOptions) (s *stoppable, good []*member, slow *wstest.Conn, goodDone func()) {
	t.Helper()
	const goodClients, lines, size = 3, 3000, 1000 // 3 MB: more than the socket buffers and the queue
	o.Queue = 64 << 10
	s = runShared(t, Endpoint{Command: testChildCmd(t, "broadcast"), Shared: o})
	slow = slowDial(t, s.addr)
	good = dialJoined(t, s.addr, goodClients)
	good[0].say(t, fmt.Sprintf("go %d %d %d", lines, size, goodClients+1))
	// A slow client slows nobody: the others get every line.
	read := make(chan struct{})
	var tb testing.TB = &errorsOnly{TB: t}
	go func() {
		defer close(read)
		readFloodAll(tb, good, lines, size)
	}()
	t.Cleanup(func() { <-read })
	return s, good, slow, func() {
		t.Helper()
		<-read
		if tb.Failed() {
			t.FailNow()
		}
	}
}

// stuckClients dials n clients that never read, floods every client of
// a broadcast child until their sockets and queues are full, and returns
// them with a client that reads. The server runs DropSlow, so the stuck
// clients stay connected, each with output it cannot write.
func stuckClients(t *testing.T, s *stoppable, n int) ([]*wstest.Conn, *member) {
	t.Helper()
	const lines, size = 3000, 1000
	stuck := make([]*wstest.Conn, n)
	for i := range stuck {
		stuck[i] = slowDial(t, s.addr)
	}
	good := dialJoined(t, s.addr, 1)
	good[0].say(t, fmt.Sprintf("go %d %d %d", lines, size, n+1))
	readFloodAll(t, good, lines, size)
	s.log.WaitRecords(t, "slow client: dropping messages (--drop-slow)", n, 10*time.Second)
	return stuck, good[0]
}

// dropSlow64K are the shared options of the stuck-client tests.
var dropSlow64K = SharedOptions{DropSlow: true, Queue: 64 << 10}

// startedPIDs reads the PIDs testchild broadcast appended to file, waiting
// up to timeout for at least n.
func startedPIDs(t *testing.T, file string, n int, timeout time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		b, _ := os.ReadFile(file)
		pids := strings.Fields(string(b))
		if len(pids) >= n {
			return pids
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d starts of the child after %v, want %d", len(pids), timeout, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// dialMux connects to testchild mux and reads its greeting.
func dialMux(t *testing.T, addr, query string) *member {
	t.Helper()
	m := dialMember(t, addr, "/?"+query)
	hello := strings.Fields(m.skipStarted(t))
	if len(hello) != 4 || hello[0] != "hello" || hello[2] != "127.0.0.1" || hello[3] != query {
		t.Fatalf("greeting %q, want hello ID 127.0.0.1 %s", hello, query)
	}
	m.id = hello[1]
	return m
}

// checkMuxAddressing has testchild's mux child answer a by its id, send
// from a to c by c's id, echo c's binary, and broadcast what from sends
// to every one of all, who must have had nothing else meanwhile.
func checkMuxAddressing(t *testing.T, a, c, from *member, all ...*member) {
	t.Helper()
	a.say(t, "hi")
	if got, want := a.text(t), "echo "+a.id+": hi"; got != want {
		t.Fatalf("a got %q, want %q", got, want)
	}
	a.say(t, "to:"+c.id+":psst")
	if got := c.text(t); got != "psst" {
		t.Fatalf("c got %q, want psst", got)
	}
	if err := c.WriteMessage(wstest.OpBinary, []byte{0, 1, 0xff}, 0); err != nil {
		t.Fatal(err)
	}
	if op, got := c.next(t); op != wstest.OpBinary || got != "\x00\x01\xff" {
		t.Fatalf("c got opcode %#x %q, want its binary back", op, got)
	}
	// Only the sender got those: everyone's next message is the broadcast.
	from.say(t, "all:news")
	for _, m := range all {
		if got := m.text(t); got != "news" {
			t.Fatalf("client %s got %q, want news", m.id, got)
		}
	}
}
