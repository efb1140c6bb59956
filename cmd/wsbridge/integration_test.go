package main

// Integration tests: the real wsbridge binary, real children (cmd/testchild),
// real loopback sockets, and clients that share no code with the server.
// Each test asserts what a user of the bridge would notice. Heavy tests
// (large transfers, many connections) run serially; the rest in parallel.

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"github.com/wsbridge/wsbridge/procs/proctest"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/sys/unix"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

// testCtx is a context bounded by timeout and the test's end.
func testCtx(t testing.TB, timeout time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return ctx
}

// 1. Round trips in every framing, with every client.
func TestEchoRoundTrips(t *testing.T) {
	big := make([]byte, 20000) // a frame with a 16-bit length; hex-encoded it still fits in one argv string
	_, _ = rand.Read(big)
	cases := []struct {
		name string
		args []string
		send []wsMsg
		raw  bool // boundaries are the pipe's: compare the bytes only
	}{
		{
			name: "line",
			args: []string{childBin, "echo"},
			send: []wsMsg{wsText("hello"), wsText("héllo wörld ✓"), wsText(""), wsText(strings.Repeat("x", 1000))},
		},
		{
			name: "raw",
			args: []string{"--binary", childBin, "cat"},
			send: []wsMsg{wsBinary([]byte{0, 1, 2, 0xff, '\n', 0}), wsBinary(big)},
			raw:  true,
		},
		{
			name: "len32",
			args: []string{"--framing=len32", childBin, "cat"},
			send: []wsMsg{wsText("hello"), wsBinary([]byte{0, 1, 0xff}), wsText(""), wsBinary(nil), wsText("two\nlines"), wsBinary(big)},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := startBridge(t, tc.args...)
			var want []byte
			for _, m := range tc.send {
				want = append(want, m.Data...)
			}
			plan := readPlan{"msgs", len(tc.send)}
			if tc.raw {
				plan = readPlan{"bytes", len(want)}
			}
			for _, cl := range wsClients {
				t.Run(cl.name, func(t *testing.T) {
					run := cl.run(t, b.URL("/"), plan, tc.send)
					if run.CloseCode != 1000 {
						t.Errorf("close code %d %q, want 1000", run.CloseCode, run.CloseReason)
					}
					if !tc.raw {
						if fmt.Sprint(run.Msgs) != fmt.Sprint(tc.send) {
							t.Errorf("received\n%v\nwant\n%v", run.Msgs, tc.send)
						}
						return
					}
					var got []byte
					for _, m := range run.Msgs {
						if !m.Binary {
							t.Errorf("raw framing sent a text message %q", m.Data)
						}
						got = append(got, m.Data...)
					}
					if !bytes.Equal(got, want) {
						t.Errorf("received %d bytes %x..., want %d bytes %x...", len(got), got[:min(16, len(got))], len(want), want[:16])
					}
				})
			}
			for _, rec := range b.Access(len(wsClients)) {
				if rec["close"] != "1000" || rec["exit"] != "exit status 0" {
					t.Errorf("access line %v: want close=1000 exit=\"exit status 0\"", rec)
				}
			}
		})
	}
}

// 1. A message the client sends in fragments streams through to the child
// and comes back whole, its kind kept; a code point split between frames
// is fine.
func TestEchoFragmented(t *testing.T) {
	t.Parallel()
	long := bytes.Repeat([]byte("0123456789abcdef"), 5000) // 80000 bytes
	cases := []struct {
		name  string
		args  []string
		typ   websocket.MessageType
		parts [][]byte
	}{
		{"line/text", []string{childBin, "echo"}, websocket.MessageText, [][]byte{[]byte("hello w\xc3"), []byte("\xb6rld"), nil, []byte("!")}},
		{"len32/text", []string{"--framing=len32", childBin, "cat"}, websocket.MessageText, [][]byte{[]byte("hello w\xc3"), []byte("\xb6rld"), []byte("!")}},
		{"len32/binary", []string{"--framing=len32", childBin, "cat"}, websocket.MessageBinary, [][]byte{long, {0, '\n', 0xff}, long}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := startBridge(t, tc.args...)
			ctx := testCtx(t, 20*time.Second)
			c := dialWS(t, ctx, b.URL("/"), nil)
			w, err := c.Writer(ctx, tc.typ)
			if err != nil {
				t.Fatal(err)
			}
			var want []byte
			for _, p := range tc.parts {
				if _, err := w.Write(p); err != nil { // coder/websocket writes one frame per Write
					t.Fatal(err)
				}
				want = append(want, p...)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			typ, got := readWS(t, ctx, c)
			if typ != tc.typ || !bytes.Equal(got, want) {
				t.Fatalf("got %v of %d bytes %.40q, want %v of %d bytes %.40q", typ, len(got), got, tc.typ, len(want), want)
			}
			if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
				t.Fatal(err)
			}
		})
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

// 2. Many large messages pipelined both ways: the client writes without
// waiting for answers while another goroutine reads; everything comes
// back in order.
func TestPipelinedLargeMessages(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		count   int
		size    func(i int) int
		textual bool
	}{
		{"len32/200x64KiB+", []string{"--framing=len32", childBin, "cat"}, 200, func(i int) int { return 64<<10 + i*101 }, false},
		{"line/100x100KiB", []string{childBin, "echo"}, 100, func(int) int { return 100 << 10 }, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := startBridge(t, tc.args...)
			ctx := testCtx(t, 60*time.Second)
			c := dialWS(t, ctx, b.URL("/"), nil)
			typ := websocket.MessageBinary
			if tc.textual {
				typ = websocket.MessageText
			}
			writeErr := make(chan error, 1)
			go func() {
				for i := range tc.count {
					if err := c.Write(ctx, typ, payload(i, tc.size(i), tc.textual)); err != nil {
						writeErr <- fmt.Errorf("message %d: %w", i, err)
						return
					}
				}
				writeErr <- nil
			}()
			start := time.Now()
			total := 0
			for i := range tc.count {
				gotTyp, got, err := c.Read(ctx)
				if err != nil {
					t.Fatalf("reading message %d: %v", i, err)
				}
				if want := payload(i, tc.size(i), tc.textual); gotTyp != typ || !bytes.Equal(got, want) {
					t.Fatalf("message %d: %v of %d bytes, want %v of %d bytes", i, gotTyp, len(got), typ, len(want))
				}
				total += len(got)
			}
			if err := <-writeErr; err != nil {
				t.Fatal(err)
			}
			t.Logf("%d messages, %.1f MiB each way in %v", tc.count, float64(total)/(1<<20), time.Since(start).Round(time.Millisecond))
			if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// 2. A 100 MiB message streams through without being assembled: the
// bridge's peak resident memory grows by far less than the message.
func TestHugeMessageStreamed(t *testing.T) {
	const size = 100 << 20
	b := startBridge(t, "--framing=len32", "--max-message=0", childBin, "cat")
	ctx := testCtx(t, 90*time.Second)
	c := dialWS(t, ctx, b.URL("/"), nil)
	// One round trip first, so the session's buffers exist before the
	// baseline is taken.
	if err := c.Write(ctx, websocket.MessageText, []byte("warm up")); err != nil {
		t.Fatal(err)
	}
	if got := readText(t, ctx, c); got != "warm up" {
		t.Fatalf("got %q", got)
	}
	before := proctest.StatusKB(t, b.PID(), "VmHWM")

	// The message repeats a random block whose length is prime to the
	// write size, so a lost or repeated piece shows.
	block := make([]byte, 1<<20+7)
	_, _ = rand.Read(block)
	at := func(off int64) int { return int(off % int64(len(block))) }
	writeErr := make(chan error, 1)
	start := time.Now()
	go func() {
		writeErr <- func() error {
			w, err := c.Writer(ctx, websocket.MessageBinary)
			if err != nil {
				return err
			}
			chunk := make([]byte, 1<<20)
			for off := int64(0); off < size; off += int64(len(chunk)) {
				for n := 0; n < len(chunk); {
					n += copy(chunk[n:], block[at(off+int64(n)):])
				}
				if _, err := w.Write(chunk); err != nil {
					return err
				}
			}
			return w.Close()
		}()
	}()
	typ, r, err := c.Reader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if typ != websocket.MessageBinary {
		t.Fatalf("got a %v message", typ)
	}
	buf := make([]byte, 256<<10)
	var off int64
	for {
		n, err := r.Read(buf)
		for p := buf[:n]; len(p) > 0; {
			want := block[at(off):]
			k := min(len(p), len(want))
			if !bytes.Equal(p[:k], want[:k]) {
				t.Fatalf("message differs near offset %d", off)
			}
			p, off = p[k:], off+int64(k)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("reading at offset %d: %v", off, err)
		}
	}
	if off != size {
		t.Fatalf("got %d bytes, want %d", off, size)
	}
	if err := <-writeErr; err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	after := proctest.StatusKB(t, b.PID(), "VmHWM")
	growth := (after - before) << 10
	t.Logf("100 MiB echoed in %v; bridge peak RSS %d KiB -> %d KiB (growth %.1f MiB)", elapsed.Round(time.Millisecond), before, after, float64(growth)/(1<<20))
	if growth > 40<<20 {
		t.Errorf("bridge peak RSS grew by %.1f MiB for a 100 MiB message: it is being assembled", float64(growth)/(1<<20))
	}
	if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
}

// sender writes binary messages of size bytes, up to total, on its own
// goroutine, until ctx ends, and counts what it has written.
type sender struct {
	sent atomic.Int64
	done chan error
}

func startSender(ctx context.Context, c *websocket.Conn, size, total int) *sender {
	s := &sender{done: make(chan error, 1)}
	msg := bytes.Repeat([]byte("z"), size)
	go func() {
		for s.sent.Load() < int64(total) {
			if err := c.Write(ctx, websocket.MessageBinary, msg); err != nil {
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

// fillStdin connects to a bridge running "testchild noread" and sends
// until the child's stdin, the bridge and the socket buffers are full
// and the client's writes stall. The child is killed by PID when the test
// ends, so a bridge stuck on it can still be stopped.
func fillStdin(t *testing.T, b *bridgeProc, ctx context.Context) (*websocket.Conn, proctest.Stat, context.CancelFunc) {
	t.Helper()
	return fillStdinWith(t, b, ctx, &websocket.DialOptions{})
}

func fillStdinWith(t *testing.T, b *bridgeProc, ctx context.Context, opts *websocket.DialOptions) (*websocket.Conn, proctest.Stat, context.CancelFunc) {
	t.Helper()
	c := dialWSWith(t, ctx, b.URL("/"), opts)
	child := proctest.WaitChildren(t, b.PID(), 1, 5*time.Second)[0]
	t.Cleanup(func() {
		if !child.Gone() {
			_ = syscall.Kill(child.PID, syscall.SIGKILL)
		}
	})
	wctx, stopWriting := context.WithCancel(ctx)
	t.Cleanup(stopWriting)
	s := startSender(wctx, c, 32<<10, 32<<20)
	stalled, sent := s.waitStalled(t, 300*time.Millisecond, 15*time.Second)
	if !stalled || sent <= 1<<20 {
		t.Fatalf("client sent %d bytes, stalled=%v: want > 1 MiB, then stalled", sent, stalled)
	}
	t.Logf("client sent %d KiB, then its writes stalled", sent>>10)
	return c, child, stopWriting
}

// 3. A child that never reads stdin: the input side stalls, the rest of
// the session must not.
func TestStdinFull(t *testing.T) {
	// Its output still reaches the client.
	t.Run("output delivered", func(t *testing.T) {
		t.Parallel()
		b := startBridge(t, childBin, "noread")
		ctx := testCtx(t, 30*time.Second)
		c, _, _ := fillStdin(t, b, ctx)
		if got := readText(t, ctx, c); got != "ready" {
			t.Fatalf("got %q, want ready", got)
		}
	})

	// A client that goes away ends the session and the child, even though
	// the bridge is blocked writing to the child's stdin.
	t.Run("client goes away", func(t *testing.T) {
		t.Parallel()
		b := startBridge(t, childBin, "noread")
		ctx := testCtx(t, 30*time.Second)
		c, child, stopWriting := fillStdinWith(t, b, ctx, &websocket.DialOptions{HTTPClient: resetOnClose})
		stopWriting() // coder/websocket drops the connection
		c.CloseNow()  // with a reset: the client vanished
		deadline := time.Now().Add(5 * time.Second)
		for !child.Gone() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if !child.Gone() {
			t.Fatalf("BUG: child %d still running 5s after its client disconnected: the bridge does not notice a client leaving while a write to the child's stdin is blocked", child.PID)
		}
		if rec := b.Access(1)[0]; rec["exit"] != "killed by signal 15 (terminated)" {
			t.Errorf("access line %v: want the child ended by SIGTERM", rec)
		}
	})

	// SIGTERM still shuts the bridge down: the client gets 1001, the child
	// is ended, the bridge exits 0.
	t.Run("shutdown", func(t *testing.T) {
		t.Parallel()
		b := startBridge(t, childBin, "noread")
		ctx := testCtx(t, 30*time.Second)
		c, child, _ := fillStdin(t, b, ctx)
		closed := make(chan error, 1)
		go func() {
			for {
				if _, _, err := c.Read(ctx); err != nil {
					closed <- err
					return
				}
			}
		}()
		b.Signal(syscall.SIGTERM)
		select {
		case <-b.done:
		case <-time.After(5 * time.Second):
			t.Fatalf("BUG: bridge still running 5s after SIGTERM, child alive=%v: shutdown waits for a write to a child's stdin that never drains", !child.Gone())
		}
		if err := b.Wait(0); err != nil {
			t.Errorf("bridge exit: %v, want status 0", err)
		}
		if err := <-closed; websocket.CloseStatus(err) != websocket.StatusGoingAway {
			t.Errorf("client got %v, want close 1001", err)
		}
		proctest.WaitGone(t, time.Second, child)
	})
}

// 3. A child that floods stdout while the client floods stdin: the input
// side blocks (the child never reads), the output still all arrives.
func TestOutputFlowsWhileInputBlocked(t *testing.T) {
	// 20 MB: the child is still writing, blocked on stdout, while the
	// client fills its stdin.
	const lines, size = 20000, 1000
	b := startBridge(t, childBin, "flood", strconv.Itoa(lines), strconv.Itoa(size))
	ctx := testCtx(t, 60*time.Second)
	c := dialWS(t, ctx, b.URL("/"), nil)
	s := startSender(ctx, c, 32<<10, 12<<20)
	stalled, sent := s.waitStalled(t, 300*time.Millisecond, 15*time.Second)
	if !stalled {
		t.Fatalf("the client sent all %d bytes: the child's stdin never filled", sent)
	}
	t.Logf("client sent %d KiB, then its writes stalled; now reading", sent>>10)
	readFloodLines(t, ctx, c, lines, size)
	code, reason, msgs := expectClose(t, ctx, c)
	if code != websocket.StatusNormalClosure || len(msgs) != 0 {
		t.Fatalf("close %d %q after %d more messages, want 1000 at once", code, reason, len(msgs))
	}
}

// readFloodLines reads the lines of "testchild flood" and checks each.
func readFloodLines(t testing.TB, ctx context.Context, c *websocket.Conn, lines, size int) {
	t.Helper()
	for i := 1; i <= lines; i++ {
		got := readText(t, ctx, c)
		prefix := strconv.Itoa(i) + " "
		if len(got) != size || !strings.HasPrefix(got, prefix) {
			t.Fatalf("line %d: %.40q... (%d bytes), want %q... (%d bytes)", i, got, len(got), prefix, size)
		}
	}
}

// 3. A client that stops reading stops the child: the pipe fills and the
// child blocks, the bridge holds no queue, and once the client reads
// again every line arrives in order.
func TestSlowClientBackpressure(t *testing.T) {
	const lines, size = 30000, 1000 // 30 MB: more than every buffer on the way
	b := startBridge(t, childBin, "flood", strconv.Itoa(lines), strconv.Itoa(size))
	ctx := testCtx(t, 60*time.Second)
	rssBefore := proctest.StatusKB(t, b.PID(), "VmRSS")
	c := dialWS(t, ctx, b.URL("/"), nil)
	child := proctest.WaitChildren(t, b.PID(), 1, 5*time.Second)[0]

	// Wait until the child has stopped writing: it is blocked on a full pipe.
	deadline := time.Now().Add(15 * time.Second)
	last, since := proctest.Written(t, child.PID), time.Now()
	for time.Since(since) < 300*time.Millisecond {
		if time.Now().After(deadline) {
			t.Fatalf("child kept writing for 15s with the client not reading (%d bytes)", last)
		}
		time.Sleep(20 * time.Millisecond)
		if now := proctest.Written(t, child.PID); now != last {
			last, since = now, time.Now()
		}
	}
	total := int64(lines * (size + 1))
	rss := proctest.StatusKB(t, b.PID(), "VmRSS")
	t.Logf("client paused: child blocked after writing %.1f MiB of %.1f MiB; bridge RSS %d KiB -> %d KiB", float64(last)/(1<<20), float64(total)/(1<<20), rssBefore, rss)
	if last >= total || child.Gone() {
		t.Fatalf("child wrote everything (%d of %d bytes) while the client read nothing", last, total)
	}
	if growth := (rss - rssBefore) << 10; growth > 20<<20 {
		t.Errorf("bridge RSS grew by %.1f MiB while the client was paused: output is queued", float64(growth)/(1<<20))
	}
	readFloodLines(t, ctx, c, lines, size)
	if code, reason, _ := expectClose(t, ctx, c); code != websocket.StatusNormalClosure {
		t.Fatalf("close %d %q, want 1000", code, reason)
	}
}

// 4. How the child's end reaches the client, with every client.
func TestChildExit(t *testing.T) {
	flood := make([]wsMsg, 1000)
	for i := range flood {
		flood[i] = wsText(fmt.Sprintf("%d %s", i+1, "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuv"[:100-len(strconv.Itoa(i+1))-1]))
	}
	cases := []struct {
		name   string
		args   []string
		want   []wsMsg
		code   int
		reason string  // a substring of the close reason
		or     []wsMsg // also accepted, noted in the output
	}{
		{"exit 0", []string{childBin, "exit", "0", "bye"}, []wsMsg{wsText("bye")}, 1000, "", nil},
		{"exit 3", []string{childBin, "exit", "3", "bye"}, []wsMsg{wsText("bye")}, 1011, "exit status 3", nil},
		// websocketd drops a last line without newline.
		{"partial line", []string{childBin, "partial", "no newline"}, []wsMsg{wsText("no newline")}, 1000, "", nil},
		// The 10 bytes of the cut record go out as an unfinished message,
		// which clients drop at the close: never taken for a whole one.
		{"len32 truncated", []string{"--framing=len32", childBin, "len32-truncated"}, nil, 1011, "mid-message", nil},
		// Everything written just before exit arrives before the close.
		{"flood then exit", []string{childBin, "flood", "1000", "100"}, flood, 1000, "", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := startBridge(t, tc.args...)
			for _, cl := range wsClients {
				t.Run(cl.name, func(t *testing.T) {
					run := cl.run(t, b.URL("/"), readPlan{mode: "wait"}, nil)
					if tc.or != nil && fmt.Sprint(run.Msgs) == fmt.Sprint(tc.or) {
						t.Logf("NOTE: received %v before the close", run.Msgs)
					} else if fmt.Sprint(run.Msgs) != fmt.Sprint(tc.want) {
						t.Errorf("received %d messages %.200v, want %d %.200v", len(run.Msgs), run.Msgs, len(tc.want), tc.want)
					}
					if run.CloseCode != tc.code || !strings.Contains(run.CloseReason, tc.reason) {
						t.Errorf("close %d %q, want %d with %q", run.CloseCode, run.CloseReason, tc.code, tc.reason)
					}
				})
			}
		})
	}
}

// 5. When the client goes away the child is ended by the ladder: stdin
// EOF, then SIGTERM, then SIGKILL; its whole process group goes with it.
func TestClientGoesAway(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		first   string        // what the child says first, if anything
		exit    string        // the access line's exit field
		atLeast time.Duration // the ladder's waits before that end
	}{
		{"stdin EOF", []string{childBin, "echo"}, "", "exit status 0", 0},
		{"SIGTERM", []string{childBin, "sleep"}, "", "killed by signal 15 (terminated)", 100 * time.Millisecond},
		{"SIGKILL", []string{childBin, "ignore-term"}, "ready", "killed by signal 9 (killed)", 600 * time.Millisecond},
		{"SIGKILL closems", []string{"--closems=300", childBin, "ignore-term"}, "ready", "killed by signal 9 (killed)", 1200 * time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := startBridge(t, tc.args...)
			ctx := testCtx(t, 20*time.Second)
			c := dialWS(t, ctx, b.URL("/"), nil)
			if tc.first != "" {
				if got := readText(t, ctx, c); got != tc.first {
					t.Fatalf("child said %q, want %q", got, tc.first)
				}
			}
			child := proctest.WaitChildren(t, b.PID(), 1, 5*time.Second)[0]
			start := time.Now()
			if err := c.Close(websocket.StatusNormalClosure, "bye"); err != nil {
				t.Fatal(err)
			}
			proctest.WaitGone(t, 10*time.Second, child)
			took := time.Since(start)
			t.Logf("child gone %v after the client closed", took.Round(time.Millisecond))
			if took < tc.atLeast {
				t.Errorf("child gone after %v, want at least %v", took, tc.atLeast)
			}
			rec := b.Access(1)[0]
			if rec["exit"] != tc.exit || rec["close"] != "1000" || rec["pid"] != strconv.Itoa(child.PID) {
				t.Errorf("access line %v: want exit=%q close=1000 pid=%d", rec, tc.exit, child.PID)
			}
		})
	}

	t.Run("grandchild", func(t *testing.T) {
		t.Parallel()
		b := startBridge(t, childBin, "grandchild")
		ctx := testCtx(t, 20*time.Second)
		c := dialWS(t, ctx, b.URL("/"), nil)
		var gcPID int
		if _, err := fmt.Sscanf(readText(t, ctx, c), "grandchild %d", &gcPID); err != nil {
			t.Fatal(err)
		}
		child := proctest.WaitChildren(t, b.PID(), 1, 5*time.Second)[0]
		gc := proctest.MustStat(t, gcPID)
		if gc.PGID != child.PID {
			t.Fatalf("grandchild pgid %d, want the child's group %d", gc.PGID, child.PID)
		}
		if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
			t.Fatal(err)
		}
		// Gone means no /proc entry: not running, not a zombie.
		proctest.WaitGone(t, 10*time.Second, child, gc)
	})

	// A daemon the child started in a session of its own keeps stdout and
	// stderr open once the child's group is gone: nothing more can reach
	// the client, so the session must end anyway and free its slot, and
	// the daemon ends with it (it is outside the group: the bridge finds
	// it as the child's descendant).
	t.Run("detached grandchild holds stdout", func(t *testing.T) {
		t.Parallel()
		b := startBridge(t, "--maxforks=1", childBin, "detach")
		ctx := testCtx(t, 30*time.Second)
		c := dialWS(t, ctx, b.URL("/"), nil)
		// Killed by the test too, should the bridge leave it.
		killLater := func(text string) proctest.Stat {
			var pid int
			if _, err := fmt.Sscanf(text, "grandchild %d", &pid); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
			return proctest.MustStat(t, pid)
		}
		gc := killLater(readText(t, ctx, c))
		child := proctest.WaitChildren(t, b.PID(), 1, 5*time.Second)[0]
		if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
			t.Fatal(err)
		}
		proctest.WaitGone(t, 10*time.Second, child, gc)
		if rec := b.Access(1)[0]; rec["close"] != "1000" || rec["pid"] != strconv.Itoa(child.PID) {
			t.Errorf("access line %v: want close=1000 pid=%d", rec, child.PID)
		}
		// The --maxforks slot is free again.
		c2 := dialWS(t, ctx, b.URL("/"), nil)
		killLater(readText(t, ctx, c2))
	})

	t.Run("own process group", func(t *testing.T) {
		t.Parallel()
		b := startBridge(t, childBin, "pid")
		ctx := testCtx(t, 20*time.Second)
		c := dialWS(t, ctx, b.URL("/"), nil)
		var pid, pgid int
		if _, err := fmt.Sscanf(readText(t, ctx, c), "pid %d pgid %d", &pid, &pgid); err != nil {
			t.Fatal(err)
		}
		bridgeGroup := proctest.MustStat(t, b.PID()).PGID
		if pgid != pid || pgid == bridgeGroup {
			t.Fatalf("child pid %d pgid %d (bridge's group %d): want a group of its own", pid, pgid, bridgeGroup)
		}
		if st := proctest.MustStat(t, pid); st.PPID != b.PID() {
			t.Fatalf("child's parent is %d, want the bridge %d", st.PPID, b.PID())
		}
	})
}

// 6. Protocol rules as a conforming client sees them.
func TestProtocol(t *testing.T) {
	t.Run("message too big", func(t *testing.T) {
		t.Parallel()
		b := startBridge(t, "--max-message=1000", childBin, "echo")
		ctx := testCtx(t, 20*time.Second)
		c := dialWS(t, ctx, b.URL("/"), nil)
		if err := c.Write(ctx, websocket.MessageText, []byte(strings.Repeat("a", 999))); err != nil {
			t.Fatal(err)
		}
		if got := readText(t, ctx, c); len(got) != 999 {
			t.Fatalf("a message under the limit came back as %d bytes", len(got))
		}
		if err := c.Write(ctx, websocket.MessageText, []byte(strings.Repeat("a", 2000))); err != nil {
			t.Fatal(err)
		}
		if code, reason, msgs := expectClose(t, ctx, c); code != websocket.StatusMessageTooBig || len(msgs) != 0 {
			t.Fatalf("close %d %q after %q, want 1009 and nothing echoed", code, reason, msgs)
		}
	})

	t.Run("invalid UTF-8 text", func(t *testing.T) {
		t.Parallel()
		b := startBridge(t, childBin, "echo")
		ctx := testCtx(t, 20*time.Second)
		c := dialWS(t, ctx, b.URL("/"), nil)
		if err := c.Write(ctx, websocket.MessageText, []byte("ok \xff\xfe")); err != nil {
			t.Fatal(err)
		}
		if code, reason, msgs := expectClose(t, ctx, c); code != websocket.StatusInvalidFramePayloadData || len(msgs) != 0 {
			t.Fatalf("close %d %q after %q, want 1007", code, reason, msgs)
		}
	})

	t.Run("child prints invalid UTF-8", func(t *testing.T) {
		t.Parallel()
		// "a\xffb\n", "ok\n", "\xc3\n" (a cut code point)
		b := startBridge(t, childBin, "bytes", "61ff620a6f6b0ac30a")
		for _, cl := range wsClients {
			t.Run(cl.name, func(t *testing.T) {
				run := cl.run(t, b.URL("/"), readPlan{mode: "wait"}, nil)
				want := []wsMsg{wsBinary([]byte("a\xffb")), wsText("ok"), wsBinary([]byte{0xc3})}
				if fmt.Sprint(run.Msgs) != fmt.Sprint(want) || run.CloseCode != 1000 {
					t.Fatalf("received %v, close %d; want %v, close 1000", run.Msgs, run.CloseCode, want)
				}
			})
		}
	})

	t.Run("ping answered", func(t *testing.T) {
		t.Parallel()
		b := startBridge(t, childBin, "echo")
		ctx := testCtx(t, 20*time.Second)
		c := dialWS(t, ctx, b.URL("/"), nil)
		msgs := make(chan string, 1)
		go func() { // coder/websocket reads pongs only while a Read runs
			_, data, err := c.Read(ctx)
			if err == nil {
				msgs <- string(data)
			}
			close(msgs)
		}()
		for range 3 {
			if err := c.Ping(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Write(ctx, websocket.MessageText, []byte("after pings")); err != nil {
			t.Fatal(err)
		}
		if got := <-msgs; got != "after pings" {
			t.Fatalf("got %q", got)
		}
	})

	t.Run("silent client dropped", func(t *testing.T) {
		t.Parallel()
		b := startBridge(t, "--ping-interval=200ms", "--ping-timeout=200ms", childBin, "echo")
		c := wstest.MustDial(t, b.Addr, wstest.Options{Path: "/"})
		start := time.Now()
		var ops []byte
		var last wstest.Frame
		for {
			f, err := c.ReadFrame(5 * time.Second)
			if err != nil {
				t.Fatalf("after frames %v: %v", ops, err)
			}
			ops = append(ops, f.Op)
			if f.Op == wstest.OpClose {
				last = f
				break
			}
		}
		took := time.Since(start)
		t.Logf("frames %v, closed %v after the upgrade: %d %q", ops, took.Round(time.Millisecond), last.CloseCode(), last.CloseReason())
		if ops[0] != wstest.OpPing || last.CloseCode() != 1001 || took < 400*time.Millisecond {
			t.Fatalf("frames %v, close %d after %v: want a ping, then close 1001 after ≥400ms", ops, last.CloseCode(), took)
		}
		c.ExpectEOF(t, 5*time.Second)
		if rec := b.Access(1)[0]; rec["close"] != "1001" {
			t.Errorf("access line %v: want close=1001", rec)
		}
		if !strings.Contains(b.Log.String(), "ping") {
			// Only close=1001 says so, as for a shutdown: noted, not a failure.
			t.Logf("NOTE: the log does not say the client was dropped for an unanswered ping")
		}
	})

	t.Run("answering client kept", func(t *testing.T) {
		t.Parallel()
		b := startBridge(t, "--ping-interval=200ms", "--ping-timeout=200ms", childBin, "echo")
		c := wstest.MustDial(t, b.Addr, wstest.Options{Path: "/"})
		start := time.Now()
		pings := 0
		for pings < 4 {
			f, err := c.ReadFrame(5 * time.Second)
			if err != nil {
				t.Fatalf("after %d pings: %v", pings, err)
			}
			if f.Op != wstest.OpPing {
				t.Fatalf("after %d pings: got opcode %d %q", pings, f.Op, f.Payload)
			}
			pings++
			if err := c.WriteFrame(true, wstest.OpPong, f.Payload); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("%d pings answered in %v", pings, time.Since(start).Round(time.Millisecond))
		if err := c.WriteFrame(true, wstest.OpText, []byte("still here")); err != nil {
			t.Fatal(err)
		}
		op, data, _, err := c.ReadMessage(5 * time.Second)
		if err != nil || op != wstest.OpText || string(data) != "still here" {
			t.Fatalf("got %d %q %v, want the echo", op, data, err)
		}
	})

	// A client that stopped reading and sending (a frozen tab, a
	// suspended laptop: its kernel keeps the connection open) has the
	// output pump blocked writing to it; the ping must not wait behind
	// that write, or the session and its child wait for ever.
	t.Run("client that reads nothing dropped", func(t *testing.T) {
		t.Parallel()
		b := startBridge(t, "--ping-interval=200ms", "--ping-timeout=200ms", childBin, "flood", "100000000", "100")
		c := wstest.MustDial(t, b.Addr, wstest.Options{Path: "/"})
		defer c.Conn.Close()
		child := proctest.WaitChildren(t, b.PID(), 1, 5*time.Second)[0]
		t.Cleanup(func() { syscall.Kill(child.PID, syscall.SIGKILL) })
		proctest.WaitGone(t, 10*time.Second, child)
		if rec := b.Access(1)[0]; rec["close"] != "1001" {
			t.Errorf("access line %v: want close=1001", rec)
		}
	})

	// While the child does not read, the bridge reads nothing from the
	// client either (backpressure), so the client's pong waits unread:
	// that is no reason to drop a client that answers.
	t.Run("answering client kept while the child is slow", func(t *testing.T) {
		t.Parallel()
		b := startBridge(t, "--ping-interval=200ms", "--ping-timeout=200ms", childBin, "slow-start", "1500")
		ctx := testCtx(t, 20*time.Second)
		c := dialWS(t, ctx, b.URL("/"), nil)
		const size, n = 32 << 10, 32 // far more than the pipe holds
		got := make(chan error, 1)
		go func() { // reading also answers the pings
			for i := 0; i < n; i++ {
				if _, data, err := c.Read(ctx); err != nil || len(data) != size {
					got <- fmt.Errorf("message %d: %d bytes, %v", i+1, len(data), err)
					return
				}
			}
			got <- nil
		}()
		s := startSender(ctx, c, size, size*n)
		if err := <-got; err != nil {
			t.Fatalf("echo: %v", err)
		}
		if err := <-s.done; err != nil {
			t.Fatal(err)
		}
	})
}

// 9. The child's CGI environment.
func TestEnvironment(t *testing.T) {
	t.Parallel()
	// env reads the child's environment: it sends END after connecting and
	// collects the lines the env child prints before echoing it.
	env := func(t *testing.T, b *bridgeProc, path string, headers ...string) (map[string]string, string) {
		t.Helper()
		c := wstest.MustDial(t, b.Addr, wstest.Options{Path: path, Header: headers})
		if err := c.WriteFrame(true, wstest.OpText, []byte("END")); err != nil {
			t.Fatal(err)
		}
		vars := map[string]string{}
		for {
			op, data, _, err := c.ReadMessage(5 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if op != wstest.OpText {
				t.Fatalf("binary message %q", data)
			}
			if string(data) == "END" {
				return vars, c.Conn.LocalAddr().String()
			}
			k, v, _ := strings.Cut(string(data), "=")
			vars[k] = v
		}
	}

	b := startBridgeEnv(t, []string{"SECRET=1", "FOO=bar"}, childBin, "env")
	_, port, _ := strings.Cut(b.Addr, ":")
	vars, local := env(t, b, "/some/path?x=1&y=%20",
		"X-Custom: hello", "X_Under: smuggled", "X.Dot: dotted", "X-Ctl: a\x01b\x7fc\td")
	_, localPort, _ := strings.Cut(local, ":")
	want := map[string]string{
		"REMOTE_ADDR":       "127.0.0.1",
		"REMOTE_PORT":       localPort,
		"SERVER_NAME":       "127.0.0.1",
		"SERVER_PORT":       port,
		"SERVER_PROTOCOL":   "HTTP/1.1",
		"REQUEST_METHOD":    "GET",
		"REQUEST_URI":       "/some/path?x=1&y=%20",
		"SCRIPT_NAME":       "/some/path",
		"PATH_INFO":         "",
		"QUERY_STRING":      "x=1&y=%20",
		"GATEWAY_INTERFACE": "CGI/1.1",
		"HTTP_HOST":         b.Addr,
		"HTTP_X_CUSTOM":     "hello",
		"HTTP_X_CTL":        "abc\td",
		"PATH":              os.Getenv("PATH"),
	}
	for k, v := range want {
		if got, ok := vars[k]; !ok || got != v {
			t.Errorf("%s=%q (set: %v), want %q", k, got, ok, v)
		}
	}
	if !strings.HasPrefix(vars["SERVER_SOFTWARE"], "wsbridge/") {
		t.Errorf("SERVER_SOFTWARE=%q, want wsbridge/...", vars["SERVER_SOFTWARE"])
	}
	for k, v := range vars {
		if k == "SECRET" || k == "FOO" || strings.Contains(k, "UNDER") || strings.Contains(k, "DOT") {
			t.Errorf("%s=%q leaked into the child's environment", k, v)
		}
	}
	vars2, _ := env(t, b, "/")
	if vars["UNIQUE_ID"] == "" || vars["UNIQUE_ID"] == vars2["UNIQUE_ID"] {
		t.Errorf("UNIQUE_ID %q then %q: want two different ids", vars["UNIQUE_ID"], vars2["UNIQUE_ID"])
	}

	// websocketd passes every request header, the handshake's too; a
	// browser can set no header but Sec-WebSocket-Protocol, so programs
	// read tokens from HTTP_SEC_WEBSOCKET_PROTOCOL.
	t.Run("handshake headers", func(t *testing.T) {
		vars, _ := env(t, b, "/", "Sec-WebSocket-Protocol: chat.v1, token.abc")
		for k, v := range map[string]string{
			"HTTP_UPGRADE":                "websocket",
			"HTTP_CONNECTION":             "Upgrade",
			"HTTP_SEC_WEBSOCKET_VERSION":  "13",
			"HTTP_SEC_WEBSOCKET_PROTOCOL": "chat.v1, token.abc",
		} {
			if got, ok := vars[k]; got != v {
				t.Errorf("BUG: %s=%q (set: %v), want %q: headers the upgrader consumes never reach the environment", k, got, ok, v)
			}
		}
		if vars["HTTP_SEC_WEBSOCKET_KEY"] == "" {
			t.Errorf("BUG: no HTTP_SEC_WEBSOCKET_KEY")
		}
	})

	t.Run("passenv", func(t *testing.T) {
		b := startBridgeEnv(t, []string{"SECRET=1", "FOO=bar"}, "--passenv=FOO", childBin, "env")
		vars, _ := env(t, b, "/")
		if vars["FOO"] != "bar" {
			t.Errorf("FOO=%q, want bar", vars["FOO"])
		}
		for _, k := range []string{"PATH", "SECRET"} {
			if v, ok := vars[k]; ok {
				t.Errorf("%s=%q passed without --passenv naming it", k, v)
			}
		}
	})
}

// 10. What the child writes on stderr is logged, tagged with the
// connection's id.
func TestStderrLogged(t *testing.T) {
	t.Parallel()
	b := startBridge(t, childBin, "stderr", "3")
	ctx := testCtx(t, 20*time.Second)
	for range 2 {
		c := dialWS(t, ctx, b.URL("/"), nil)
		if err := c.Write(ctx, websocket.MessageText, []byte("x")); err != nil {
			t.Fatal(err)
		}
		readText(t, ctx, c)
		if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
			t.Fatal(err)
		}
	}
	byID := map[string][]string{}
	for _, rec := range b.WaitRecords("child stderr", 6, 5*time.Second) {
		byID[rec["id"]] = append(byID[rec["id"]], rec["line"])
	}
	access := b.Access(2)
	for _, a := range access {
		if got := strings.Join(byID[a["id"]], ","); got != "err 1,err 2,err 3" {
			t.Errorf("stderr lines tagged id=%s: %q, want err 1..3", a["id"], got)
		}
	}
	if len(byID) != 2 {
		t.Errorf("stderr lines under ids %v, want the two sessions' ids", byID)
	}
}

// 11. SIGTERM closes every session with 1001, ends every child, and the
// bridge exits 0; a second signal while draining exits at once.
func TestShutdown(t *testing.T) {
	cases := []struct {
		name          string
		child         string
		first         string
		atLeast, most time.Duration
	}{
		{"echo children", "echo", "", 0, 5 * time.Second},
		// Children that ignore SIGTERM need the whole ladder (100ms +
		// 500ms, then SIGKILL); the three run theirs at the same time.
		{"ignore-term children", "ignore-term", "ready", 600 * time.Millisecond, 5 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := startBridge(t, childBin, tc.child)
			ctx := testCtx(t, 20*time.Second)
			type result struct {
				code websocket.StatusCode
				err  error
			}
			results := make(chan result, 3)
			for range 3 {
				c := dialWS(t, ctx, b.URL("/"), nil)
				if tc.first != "" {
					readText(t, ctx, c)
				}
				go func() {
					_, _, err := c.Read(ctx)
					results <- result{websocket.CloseStatus(err), err}
				}()
			}
			kids := proctest.WaitChildren(t, b.PID(), 3, 5*time.Second)
			start := time.Now()
			b.Signal(syscall.SIGTERM)
			for range 3 {
				if r := <-results; r.code != websocket.StatusGoingAway {
					t.Errorf("client got %v, want close 1001", r.err)
				}
			}
			if err := b.Wait(10 * time.Second); err != nil {
				t.Errorf("bridge exit: %v, want status 0", err)
			}
			took := time.Since(start)
			proctest.WaitGone(t, time.Second, kids...)
			t.Logf("bridge exited %v after SIGTERM with 3 sessions", took.Round(time.Millisecond))
			if took < tc.atLeast || took > tc.most {
				t.Errorf("shutdown took %v, want %v to %v", took, tc.atLeast, tc.most)
			}
		})
	}

	t.Run("second signal", func(t *testing.T) {
		t.Parallel()
		b := startBridge(t, "--closems=5000", childBin, "ignore-term")
		ctx := testCtx(t, 20*time.Second)
		c := dialWS(t, ctx, b.URL("/"), nil)
		readText(t, ctx, c)
		child := proctest.WaitChildren(t, b.PID(), 1, 5*time.Second)[0]
		t.Cleanup(func() {
			if !child.Gone() {
				syscall.Kill(child.PID, syscall.SIGKILL) // the bridge left it behind
			}
		})
		go c.Read(ctx) // answer the bridge's close
		b.Signal(syscall.SIGTERM)
		if !b.Log.WaitFor("shutting down", 5*time.Second) {
			t.Fatal("no shutdown log line")
		}
		start := time.Now()
		b.Signal(syscall.SIGTERM)
		err := b.Wait(5 * time.Second)
		took := time.Since(start)
		t.Logf("exit %v %v after the second signal", err, took.Round(time.Millisecond))
		var ee interface{ ExitCode() int }
		if !errors.As(err, &ee) || ee.ExitCode() == 0 {
			t.Errorf("bridge exit %v, want a non-zero status", err)
		}
		if took > 2*time.Second {
			t.Errorf("bridge took %v to exit after the second signal", took)
		}
		// The draining session's child ignores SIGTERM and the ladder was
		// stretched to 5s: exiting at once must not leave it running.
		deadline := time.Now().Add(2 * time.Second)
		for !child.Gone() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if !child.Gone() {
			st, _ := proctest.Read(child.PID)
			t.Errorf("BUG: child %d (ignore-term) still running after the bridge exited on the second signal (state %c, ppid %d)", child.PID, st.State, st.PPID)
		}
	})
}

// 13. One access line per connection with what an operator needs.
func TestAccessLog(t *testing.T) {
	t.Parallel()
	b := startBridge(t, childBin, "echo")
	type conn struct {
		remote string
		pid    int
		close  string
	}
	var conns []conn
	for i, polite := range []bool{true, false} {
		c := wstest.MustDial(t, b.Addr, wstest.Options{Path: "/"})
		for _, m := range []string{"hello", "hi"} {
			if err := c.WriteFrame(true, wstest.OpText, []byte(m)); err != nil {
				t.Fatal(err)
			}
			if _, data, _, err := c.ReadMessage(5 * time.Second); err != nil || string(data) != m {
				t.Fatalf("echo of %q: %q %v", m, data, err)
			}
		}
		kids := proctest.WaitChildren(t, b.PID(), 1, 5*time.Second)
		cc := conn{remote: c.Conn.LocalAddr().String(), pid: kids[0].PID, close: "1006"}
		if polite {
			cc.close = "1000"
			if err := c.WriteClose(1000, ""); err != nil {
				t.Fatal(err)
			}
			if f, err := c.ReadFrame(5 * time.Second); err != nil || f.Op != wstest.OpClose || f.CloseCode() != 1000 {
				t.Fatalf("close answered with %+v %v", f, err)
			}
			c.ExpectEOF(t, 5*time.Second)
		} else {
			c.Conn.Close() // gone without a close frame
		}
		conns = append(conns, cc)
		b.Access(i + 1)
	}
	recs := b.Access(2)
	if len(recs) != 2 {
		t.Fatalf("%d access lines, want 2", len(recs))
	}
	for i, rec := range recs {
		want := map[string]string{
			"level": "ACCESS", "id": strconv.Itoa(i + 1), "remote": conns[i].remote,
			"pid": strconv.Itoa(conns[i].pid), "in": "7", "out": "7",
			"close": conns[i].close, "exit": "exit status 0",
		}
		for k, v := range want {
			if rec[k] != v {
				t.Errorf("access line %d: %s=%q, want %q (line %v)", i+1, k, rec[k], v, rec)
			}
		}
		if d, err := time.ParseDuration(rec["duration"]); err != nil || d <= 0 {
			t.Errorf("access line %d: duration=%q", i+1, rec["duration"])
		}
	}
}

// 14. Many connections at once: each gets its own child and a round trip;
// afterwards no child of the bridge is left.
func TestManyConnections(t *testing.T) {
	const n = 200
	b := startBridge(t, childBin, "echo")
	ctx := testCtx(t, 90*time.Second)
	var (
		wg       sync.WaitGroup
		opened   sync.WaitGroup // all n connections open at once
		release  = make(chan struct{})
		failures atomic.Int64
		errOnce  sync.Once
		firstErr error
	)
	fail := func(err error) {
		failures.Add(1)
		errOnce.Do(func() { firstErr = err })
	}
	start := time.Now()
	opened.Add(n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			openedOnce := sync.OnceFunc(opened.Done)
			defer openedOnce()
			c, _, err := websocket.Dial(ctx, b.URL("/"), nil)
			if err != nil {
				fail(err)
				return
			}
			defer c.CloseNow()
			msg := fmt.Sprintf("hello %d", i)
			if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
				fail(err)
				return
			}
			if _, got, err := c.Read(ctx); err != nil || string(got) != msg {
				fail(fmt.Errorf("connection %d: got %q %v", i, got, err))
				return
			}
			openedOnce()
			<-release
			if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
				fail(err)
			}
		}()
	}
	opened.Wait()
	peak := len(proctest.ChildrenOf(b.PID()))
	close(release)
	wg.Wait()
	t.Logf("%d connections, %d children at the peak, in %v", n, peak, time.Since(start).Round(time.Millisecond))
	if failures.Load() > 0 {
		t.Fatalf("%d of %d connections failed; first: %v", failures.Load(), n, firstErr)
	}
	if peak != n {
		t.Errorf("%d children while %d connections were open", peak, n)
	}
	proctest.WaitChildren(t, b.PID(), 0, 20*time.Second)
	if recs := b.Access(n); len(recs) != n {
		t.Errorf("%d access lines, want %d", len(recs), n)
	}
}

// A connection that has not sent its request (a browser's preconnect) does
// not hold shutdown for the 10s handshake timeout.
func TestShutdownWithSilentConnection(t *testing.T) {
	t.Parallel()
	b := startBridge(t, childBin, "echo")
	c, err := net.Dial("tcp", b.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(100 * time.Millisecond) // let the bridge start reading its head
	began := time.Now()
	b.Signal(syscall.SIGTERM)
	if err := b.Wait(8 * time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v, want status 0", err)
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Fatalf("shutdown took %v with one silent connection: it waited for the handshake timeout", d.Round(time.Millisecond))
	}
	t.Logf("shutdown with a silent connection took %v", time.Since(began).Round(time.Millisecond))
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

// Pipes that carry a stream grow to 1 MiB so it moves in fewer system
// calls; pipes of interactive sessions keep Linux's 64 KiB, since the
// kernel caps pipe memory per user and would shrink new pipes past it.
func TestPipeGrowsOnlyForStreams(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 30*time.Second)

	chatty := startBridge(t, childBin, "echo")
	c := dialWS(t, ctx, chatty.URL("/"), nil)
	for i := range 20 {
		if err := c.Write(ctx, websocket.MessageText, fmt.Appendf(nil, "line %d", i)); err != nil {
			t.Fatal(err)
		}
		readText(t, ctx, c)
	}
	child := proctest.WaitChildren(t, chatty.PID(), 1, 5*time.Second)[0]
	if in, out := pipeSize(t, child.PID, 0), pipeSize(t, child.PID, 1); in != 64<<10 || out != 64<<10 {
		t.Errorf("interactive session: stdin pipe %d, stdout pipe %d bytes; want both 65536", in, out)
	}

	// A stream with a backlog: the client holds off reading while 8 MiB
	// are in flight, so both pipes fill (a pipe the bridge keeps up with
	// has no reason to grow, and does not).
	streaming := startBridge(t, childBin, "cat")
	s := dialWS(t, ctx, streaming.URL("/"), nil)
	big := bytes.Repeat([]byte("x"), 256<<10)
	const count = 32
	go func() {
		for range count {
			if s.Write(ctx, websocket.MessageText, big) != nil {
				return
			}
		}
	}()
	time.Sleep(300 * time.Millisecond)
	got := 0
	for got < count*len(big) {
		_, data := readWS(t, ctx, s)
		got += len(data)
	}
	child = proctest.WaitChildren(t, streaming.PID(), 1, 5*time.Second)[0]
	if in, out := pipeSize(t, child.PID, 0), pipeSize(t, child.PID, 1); in != 1<<20 || out != 1<<20 {
		t.Errorf("streaming session: stdin pipe %d, stdout pipe %d bytes; want both 1048576", in, out)
	}
}
