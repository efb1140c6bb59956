package bridge

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/debug"
	"strconv"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/bridge/wstest"
	"github.com/wsbridge/wsbridge/procs/proctest"
)

// What streams through a child of its own, and what stops when a side
// stops reading.

// A message the client sends in fragments streams through to the child
// and comes back whole, its kind kept; a code point split between frames
// is fine.
func TestEchoFragmented(t *testing.T) {
	t.Parallel()
	child := testChildPath(t)
	long := bytes.Repeat([]byte("0123456789abcdef"), 5000) // 80000 bytes
	cases := []struct {
		name    string
		framing string
		args    []string
		op      byte
		parts   [][]byte
	}{
		{"line/text", "", []string{child, "echo"}, wstest.OpText, [][]byte{[]byte("hello w\xc3"), []byte("\xb6rld"), nil, []byte("!")}},
		{"len32/text", "len32", []string{child, "cat"}, wstest.OpText, [][]byte{[]byte("hello w\xc3"), []byte("\xb6rld"), []byte("!")}},
		{"len32/binary", "len32", []string{child, "cat"}, wstest.OpBinary, [][]byte{long, {0, '\n', 0xff}, long}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := runProgram(t, Options{}, Endpoint{Command: tc.args, Framing: tc.framing})
			c := p.dial(t, "/")
			// A frame per part, then an empty last one, as a streaming
			// writer sends a message it does not know the end of.
			var want []byte
			for i, part := range tc.parts {
				op := byte(wstest.OpContinuation)
				if i == 0 {
					op = tc.op
				}
				if err := c.WriteFrame(false, op, part); err != nil {
					t.Fatal(err)
				}
				want = append(want, part...)
			}
			if err := c.WriteFrame(true, wstest.OpContinuation, nil); err != nil {
				t.Fatal(err)
			}
			op, got := readMsg(t, c)
			if op != tc.op || !bytes.Equal(got, want) {
				t.Fatalf("got %#x of %d bytes %.40q, want %#x of %d bytes %.40q", op, len(got), got, tc.op, len(want), want)
			}
			if f, err := c.CloseHandshake(1000, 10*time.Second); err != nil || f.CloseCode() != 1000 {
				t.Fatalf("close answered with %d, %v", f.CloseCode(), err)
			}
		})
	}
}

// Many large messages pipelined both ways: the client writes without
// waiting for answers while another goroutine reads; everything comes
// back in order.
func TestPipelinedLargeMessages(t *testing.T) {
	child := testChildPath(t)
	cases := []struct {
		name    string
		framing string
		args    []string
		count   int
		size    func(i int) int
		textual bool
	}{
		{"len32/200x64KiB+", "len32", []string{child, "cat"}, 200, func(i int) int { return 64<<10 + i*101 }, false},
		{"line/100x100KiB", "", []string{child, "echo"}, 100, func(int) int { return 100 << 10 }, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := runProgram(t, Options{}, Endpoint{Command: tc.args, Framing: tc.framing})
			c := wstest.MustDial(t, p.addr, wstest.Options{Path: "/", ReadBuffer: 64 << 10})
			op := byte(wstest.OpBinary)
			if tc.textual {
				op = wstest.OpText
			}
			writeErr := make(chan error, 1)
			go func() {
				for i := range tc.count {
					if err := c.WriteMessage(op, payload(i, tc.size(i), tc.textual), 0); err != nil {
						writeErr <- fmt.Errorf("message %d: %w", i, err)
						return
					}
				}
				writeErr <- nil
			}()
			start := time.Now()
			total := 0
			for i := range tc.count {
				gotOp, got := readMsg(t, c)
				if want := payload(i, tc.size(i), tc.textual); gotOp != op || !bytes.Equal(got, want) {
					t.Fatalf("message %d: %#x of %d bytes, want %#x of %d bytes", i, gotOp, len(got), op, len(want))
				}
				total += len(got)
			}
			if err := <-writeErr; err != nil {
				t.Fatal(err)
			}
			t.Logf("%d messages, %.1f MiB each way in %v", tc.count, float64(total)/(1<<20), time.Since(start).Round(time.Millisecond))
			if f, err := c.CloseHandshake(1000, 10*time.Second); err != nil || f.CloseCode() != 1000 {
				t.Fatalf("close answered with %d, %v", f.CloseCode(), err)
			}
		})
	}
}

// peakRSS returns the test process's peak resident set in KiB since the
// last resetPeakRSS.
func peakRSS(t *testing.T) int64 { return proctest.StatusKB(t, os.Getpid(), "VmHWM") }

// resetPeakRSS gives memory freed by earlier tests back to the system
// and restarts the peak from what is resident now (clear_refs 5), so a
// peak measured after it is this test's.
func resetPeakRSS(t *testing.T) {
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Skipf("cannot reset the peak RSS: %v", err)
	}
}

// A 100 MiB message streams through without being assembled: the peak
// resident memory grows by far less than the message. In-process the
// client's memory counts too; it keeps at most a frame and its block.
func TestHugeMessageStreamed(t *testing.T) {
	const size = 100 << 20
	p := runProgram(t, Options{}, Endpoint{Command: []string{testChildPath(t), "cat"}, Framing: "len32", MaxMessage: -1})
	c := p.dial(t, "/")
	// One round trip first, so the session's buffers exist before the
	// baseline is taken.
	if err := c.WriteMessage(wstest.OpText, []byte("warm up"), 0); err != nil {
		t.Fatal(err)
	}
	if got := readText(t, c); got != "warm up" {
		t.Fatalf("got %q", got)
	}
	// The message repeats a random block whose length is prime to the
	// write size, so a lost or repeated piece shows.
	block := make([]byte, 1<<20+7)
	_, _ = rand.Read(block)
	at := func(off int64) int { return int(off % int64(len(block))) }
	resetPeakRSS(t)
	before := peakRSS(t)

	writeErr := make(chan error, 1)
	start := time.Now()
	go func() {
		// One chunk and one frame buffer, reused: the client's garbage
		// counts in the peak too.
		chunk, wire := make([]byte, 1<<20), make([]byte, 0, 1<<20+wstest.MaxHeaderSize)
		for off := int64(0); off < size; off += int64(len(chunk)) {
			for n := 0; n < len(chunk); {
				n += copy(chunk[n:], block[at(off+int64(n)):])
			}
			op := byte(wstest.OpContinuation)
			if off == 0 {
				op = wstest.OpBinary
			}
			wire = wstest.AppendFrame(wire[:0], wstest.Frame{Fin: off+int64(len(chunk)) >= size, Op: op, Payload: chunk})
			if _, err := c.Conn.Write(wire); err != nil {
				writeErr <- err
				return
			}
		}
		writeErr <- nil
	}()
	buf := make([]byte, 256<<10)
	var off int64
	_ = c.Conn.SetReadDeadline(time.Now().Add(90 * time.Second))
	for first := true; ; first = false {
		h, err := c.ReadHeader()
		if err != nil {
			t.Fatalf("reading at offset %d: %v", off, err)
		}
		if first && h.Op != wstest.OpBinary || !first && h.Op != wstest.OpContinuation {
			t.Fatalf("at offset %d: a frame of opcode %#x", off, h.Op)
		}
		for left := h.Length; left > 0; {
			n, err := io.ReadFull(c.R, buf[:min(int64(len(buf)), left)])
			if err != nil {
				t.Fatalf("reading at offset %d: %v", off, err)
			}
			left -= int64(n)
			for p := buf[:n]; len(p) > 0; {
				want := block[at(off):]
				k := min(len(p), len(want))
				if !bytes.Equal(p[:k], want[:k]) {
					t.Fatalf("message differs near offset %d", off)
				}
				p, off = p[k:], off+int64(k)
			}
		}
		if h.Fin {
			break
		}
	}
	_ = c.Conn.SetReadDeadline(time.Time{})
	if off != size {
		t.Fatalf("got %d bytes, want %d", off, size)
	}
	if err := <-writeErr; err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	after := peakRSS(t)
	growth := (after - before) << 10
	t.Logf("100 MiB echoed in %v; peak RSS %d KiB -> %d KiB (growth %.1f MiB)", elapsed.Round(time.Millisecond), before, after, float64(growth)/(1<<20))
	if growth > 40<<20 {
		t.Errorf("peak RSS grew by %.1f MiB for a 100 MiB message: it is being assembled", float64(growth)/(1<<20))
	}
	if f, err := c.CloseHandshake(1000, 10*time.Second); err != nil || f.CloseCode() != 1000 {
		t.Fatalf("close answered with %d, %v", f.CloseCode(), err)
	}
}

// A child that never reads stdin: the input side stalls, the rest of
// the session must not.
func TestStdinFull(t *testing.T) {
	skipShort(t)
	noread := Endpoint{Command: []string{testChildPath(t), "noread"}}
	// Its output still reaches the client.
	t.Run("output delivered", func(t *testing.T) {
		t.Parallel()
		c, _ := fillStdin(t, runProgram(t, Options{}, noread))
		if got := readText(t, c); got != "ready" {
			t.Fatalf("got %q, want ready", got)
		}
	})

	// A client that goes away ends the session and the child, even though
	// the server is blocked writing to the child's stdin.
	t.Run("client goes away", func(t *testing.T) {
		t.Parallel()
		p := runProgram(t, Options{}, noread)
		c, child := fillStdin(t, p)
		// With a reset: the client vanished. A FIN can queue behind data
		// the server's full receive window will not take, and then no
		// server can see it.
		if err := c.Conn.(*net.TCPConn).SetLinger(0); err != nil {
			t.Fatal(err)
		}
		c.Conn.Close()
		deadline := time.Now().Add(5 * time.Second)
		for !child.Gone() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if !child.Gone() {
			t.Fatalf("BUG: child %d still running 5s after its client disconnected: the server does not notice a client leaving while a write to the child's stdin is blocked", child.PID)
		}
		if rec := p.access(t, 1)[0]; rec["exit"] != "killed by signal 15 (terminated)" {
			t.Errorf("access line %v: want the child ended by SIGTERM", rec)
		}
	})

	// Shutdown (the daemon's SIGTERM) still works: the client gets 1001,
	// the child is ended, Serve returns nil.
	t.Run("shutdown", func(t *testing.T) {
		t.Parallel()
		p := runProgram(t, Options{}, noread)
		c, child := fillStdin(t, p)
		closed := make(chan wstest.Frame, 1)
		go func() {
			for {
				_, _, f, err := c.ReadMessage(30 * time.Second)
				if err != nil {
					closed <- f
					return
				}
			}
		}()
		stopped := make(chan error, 1)
		go func() { stopped <- p.stop() }()
		select {
		case err := <-stopped:
			if err != nil {
				t.Errorf("Serve: %v, want nil", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("BUG: Serve still running 5s after shutdown began, child alive=%v: shutdown waits for a write to a child's stdin that never drains", !child.Gone())
		}
		if f := <-closed; f.Op != wstest.OpClose || f.CloseCode() != 1001 {
			t.Errorf("client got %+v, want close 1001", f)
		}
		proctest.WaitGone(t, time.Second, child)
	})
}

// A child that floods stdout while the client floods stdin: the input
// side blocks (the child never reads), the output still all arrives.
func TestOutputFlowsWhileInputBlocked(t *testing.T) {
	skipShort(t)
	// 20 MB: the child is still writing, blocked on stdout, while the
	// client fills its stdin.
	const lines, size = 20000, 1000
	p := runProgram(t, Options{}, Endpoint{Command: []string{testChildPath(t), "flood", strconv.Itoa(lines), strconv.Itoa(size)}})
	c := p.dial(t, "/")
	s := startSender(c, 32<<10, 12<<20)
	stalled, sent := s.waitStalled(t, 300*time.Millisecond, 15*time.Second)
	if !stalled {
		t.Fatalf("the client sent all %d bytes: the child's stdin never filled", sent)
	}
	t.Logf("client sent %d KiB, then its writes stalled; now reading", sent>>10)
	readFloodLines(t, c, lines, size)
	code, reason, msgs := untilClose(t, c)
	if code != 1000 || len(msgs) != 0 {
		t.Fatalf("close %d %q after %d more messages, want 1000 at once", code, reason, len(msgs))
	}
}

// A client that stops reading stops the child: the pipe fills and the
// child blocks, the server holds no queue, and once the client reads
// again every line arrives in order.
func TestSlowClientBackpressure(t *testing.T) {
	skipShort(t)
	const lines, size = 30000, 1000 // 30 MB: more than every buffer on the way
	p := runProgram(t, Options{}, Endpoint{Command: []string{testChildPath(t), "flood", strconv.Itoa(lines), strconv.Itoa(size)}})
	debug.FreeOSMemory()
	rssBefore := proctest.StatusKB(t, os.Getpid(), "VmRSS")
	c := p.dial(t, "/")
	child := p.waitChildren(t, 1, 5*time.Second)[0]

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
	rss := proctest.StatusKB(t, os.Getpid(), "VmRSS")
	t.Logf("client paused: child blocked after writing %.1f MiB of %.1f MiB; RSS %d KiB -> %d KiB", float64(last)/(1<<20), float64(total)/(1<<20), rssBefore, rss)
	if last >= total || child.Gone() {
		t.Fatalf("child wrote everything (%d of %d bytes) while the client read nothing", last, total)
	}
	if growth := (rss - rssBefore) << 10; growth > 20<<20 {
		t.Errorf("RSS grew by %.1f MiB while the client was paused: output is queued", float64(growth)/(1<<20))
	}
	readFloodLines(t, c, lines, size)
	if code, reason, _ := untilClose(t, c); code != 1000 {
		t.Fatalf("close %d %q, want 1000", code, reason)
	}
}

// Pipes that carry a stream grow to 1 MiB so it moves in fewer system
// calls; pipes of interactive sessions keep Linux's 64 KiB, since the
// kernel caps pipe memory per user and would shrink new pipes past it.
func TestPipeGrowsOnlyForStreams(t *testing.T) {
	t.Parallel()
	chatty := runProgram(t, Options{}, Endpoint{Command: []string{testChildPath(t), "echo"}})
	c := chatty.dial(t, "/")
	for i := range 20 {
		if err := c.WriteMessage(wstest.OpText, fmt.Appendf(nil, "line %d", i), 0); err != nil {
			t.Fatal(err)
		}
		readText(t, c)
	}
	child := chatty.waitChildren(t, 1, 5*time.Second)[0]
	if in, out := pipeSize(t, child.PID, 0), pipeSize(t, child.PID, 1); in != 64<<10 || out != 64<<10 {
		t.Errorf("interactive session: stdin pipe %d, stdout pipe %d bytes; want both 65536", in, out)
	}

	// A stream with a backlog: the client holds off reading while 8 MiB
	// are in flight, so both pipes fill (a pipe the server keeps up with
	// has no reason to grow, and does not).
	streaming := runProgram(t, Options{}, Endpoint{Command: []string{testChildPath(t), "cat"}})
	s := wstest.MustDial(t, streaming.addr, wstest.Options{Path: "/", ReadBuffer: 64 << 10})
	big := bytes.Repeat([]byte("x"), 256<<10)
	const count = 32
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		for range count {
			if s.WriteMessage(wstest.OpText, big, 0) != nil {
				return
			}
		}
	}()
	time.Sleep(300 * time.Millisecond)
	got := 0
	for got < count*len(big) {
		_, data := readMsg(t, s)
		got += len(data)
	}
	<-wrote
	child = streaming.waitChildren(t, 1, 5*time.Second)[0]
	if in, out := pipeSize(t, child.PID, 0), pipeSize(t, child.PID, 1); in != 1<<20 || out != 1<<20 {
		t.Errorf("streaming session: stdin pipe %d, stdout pipe %d bytes; want both 1048576", in, out)
	}
}
