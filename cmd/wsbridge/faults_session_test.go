package main

// The per-connection rows of the fault matrix (issue 9): what a program
// sees of a message that never arrived whole, a program whose background
// job keeps stdout open, when pings go out, and when a session's slot and
// program go once its client is gone.

import (
	"errors"
	"github.com/wsbridge/wsbridge/procs/proctest"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

// lineRecorders are programs that read stdin a line at a time, each in its
// language's usual way, and append every line they read to the file named
// by their last argument as "got:LINE|". A last line without newline is
// read too, at EOF, as these readers all do: exactly the fault.
var lineRecorders = []struct {
	name string
	args func(file string) []string
}{
	{"go bufio (fgets)", func(file string) []string { return []string{childBin, "lines", file} }},
	{"python for line in sys.stdin", func(file string) []string {
		return []string{"python3", "-c", `import sys
print("ready", flush=True)
with open(sys.argv[1], "a") as f:
    for line in sys.stdin:
        f.write("got:" + line.rstrip("\n") + "|\n")
        f.flush()
`, file}
	}},
	{"sh while read", func(file string) []string {
		return []string{"/bin/sh", "-c", `echo ready
while IFS= read -r l || [ -n "$l" ]; do printf 'got:%s|\n' "$l" >> "$1"; done`, "sh", file}
	}},
}

// cutFault is a way for a client message not to arrive whole and valid:
// send writes the beginning of the message (head, with the rest, tail,
// never sent) and ends the connection its way; code is the close code the
// server must send, 0 when the client leaves without one.
type cutFault struct {
	name string
	send func(c *wstest.Conn, head, tail []byte) error
	code int
}

var cutFaults = []cutFault{
	{"TCP dropped mid-frame", func(c *wstest.Conn, head, tail []byte) error {
		whole := wstest.AppendFrame(nil, wstest.Frame{Fin: true, Op: wstest.OpText, Payload: append(append([]byte{}, head...), tail...)})
		if err := c.WriteChunks(whole[:len(whole)-len(tail)], 0, 0); err != nil {
			return err
		}
		return c.Conn.Close()
	}, 0},
	{"fragmented message never finished, then close", func(c *wstest.Conn, head, tail []byte) error {
		if err := c.WriteFrame(false, wstest.OpText, head); err != nil {
			return err
		}
		return c.WriteClose(1000, "")
	}, 1000},
	{"fragmented message never finished, then TCP drop", func(c *wstest.Conn, head, tail []byte) error {
		if err := c.WriteFrame(false, wstest.OpText, head); err != nil {
			return err
		}
		return c.Conn.Close()
	}, 0},
	{"1007 invalid UTF-8", func(c *wstest.Conn, head, tail []byte) error {
		if err := c.WriteFrame(false, wstest.OpText, head); err != nil {
			return err
		}
		return c.WriteFrame(true, wstest.OpContinuation, []byte("\xff"))
	}, 1007},
	{"1009 over --max-message", func(c *wstest.Conn, head, tail []byte) error {
		if err := c.WriteFrame(false, wstest.OpText, head); err != nil {
			return err
		}
		// Announce more than --max-message=200000 allows.
		return c.WriteChunks(wstest.AppendFrame(nil, wstest.Frame{Fin: true, Op: wstest.OpContinuation, Payload: tail, Length: 300000}), 0, 0)
	}, 1009},
	{"1002 new message inside a fragmented one", func(c *wstest.Conn, head, tail []byte) error {
		if err := c.WriteFrame(false, wstest.OpText, head); err != nil {
			return err
		}
		return c.WriteFrame(true, wstest.OpText, []byte("x"))
	}, 1002},
}

// TestCutMessageNeverReachesLineProgram: a message that was cut (TCP
// dropped, fragments never finished) or rejected (1007, 1009, 1002) must
// never reach a line-reading program as a line it would act on, neither a
// small one (held until whole) nor one that streamed past the read buffer
// (the program is ended without ever reading EOF after it). A whole
// message sent before the fault still arrives.
func TestCutMessageNeverReachesLineProgram(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	type program struct {
		name    string
		framing string
		args    func(string) []string
		nl      string // what ends a message's line in stdin
	}
	var programs []program
	for _, r := range lineRecorders {
		programs = append(programs, program{r.name, "line", r.args, ""})
	}
	// Under raw framing the messages carry their own newlines, and a
	// cut one must not reach the program followed by EOF either.
	programs = append(programs, program{"raw framing, go bufio", "raw", lineRecorders[0].args, "\n"})
	sizes := []struct {
		name   string
		prefix string
	}{
		{"small", ""},
		{"streamed", strings.Repeat("a", 100<<10)}, // past the 64 KiB read buffer
	}
	for _, p := range programs {
		t.Run(p.name, func(t *testing.T) {
			if p.name == lineRecorders[1].name {
				if _, err := exec.LookPath("python3"); err != nil {
					t.Skip("no python3 in PATH")
				}
			}
			t.Parallel()
			for _, size := range sizes {
				for _, f := range cutFaults {
					t.Run(size.name+"/"+f.name, func(t *testing.T) {
						file := filepath.Join(t.TempDir(), "lines")
						b := startBridge(t, append([]string{"--framing=" + p.framing, "--max-message=200000"}, p.args(file)...)...)
						c := wstest.MustDial(t, b.Addr, wstest.Options{Path: "/"})
						if _, data, _, err := c.ReadMessage(10 * time.Second); err != nil || strings.TrimSpace(string(data)) != "ready" {
							t.Fatalf("program did not start: %q, %v", data, err)
						}
						if err := c.WriteFrame(true, wstest.OpText, []byte("whole-1"+p.nl)); err != nil {
							t.Fatal(err)
						}
						// The program acts on it before the fault: a
						// busy machine must not make the ladder's
						// 100ms the test's subject.
						waitFile(t, file, "got:whole-1|", 10*time.Second)
						head := []byte(size.prefix + "rm -rf /tmp/x")
						if err := f.send(c, head, []byte("/y"+p.nl)); err != nil {
							t.Fatal(err)
						}
						if f.code != 0 {
							_, _, cf, err := c.ReadMessage(10 * time.Second)
							if !errors.Is(err, wstest.ErrClosed) || cf.CloseCode() != f.code {
								t.Errorf("got close %d (%v), want %d", cf.CloseCode(), err, f.code)
							}
							c.Conn.Close()
						}
						if !b.Log.WaitFor("msg=session", 20*time.Second) {
							t.Fatal("session did not end within 20s")
						}
						got, err := os.ReadFile(file)
						if err != nil {
							t.Fatal(err)
						}
						if want := "got:whole-1|\n"; string(got) != want {
							t.Errorf("the program read %.120q, want only %q", got, want)
						}
					})
				}
			}
		})
	}
}

// TestCutMessageLen32: what a len32 program sees of a message that was
// cut or rejected: a small one nothing at all; one that streamed, its
// records so far, the last marked as continued, then EOF. It never sees
// the message end, and can tell it did not.
func TestCutMessageLen32(t *testing.T) {
	prefix := strings.Repeat("a", 100<<10)
	for _, f := range cutFaults {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			for _, streamed := range []bool{false, true} {
				file := filepath.Join(t.TempDir(), "records")
				b := startBridge(t, "--framing=len32", "--max-message=200000", childBin, "records", file)
				c := wstest.MustDial(t, b.Addr, wstest.Options{Path: "/"})
				if _, data, _, err := c.ReadMessage(10 * time.Second); err != nil || string(data) != "ready" {
					t.Fatalf("program did not start: %q, %v", data, err)
				}
				if err := c.WriteFrame(true, wstest.OpText, []byte("whole-1")); err != nil {
					t.Fatal(err)
				}
				waitFile(t, file, "rec:whole-1|", 10*time.Second)
				head := "rm -rf /tmp/x"
				if streamed {
					head = prefix + head
				}
				if err := f.send(c, []byte(head), []byte("/y")); err != nil {
					t.Fatal(err)
				}
				if f.code != 0 {
					_, _, _, _ = c.ReadMessage(10 * time.Second)
				}
				c.Conn.Close()
				if !b.Log.WaitFor("msg=session", 20*time.Second) {
					t.Fatal("session did not end within 20s")
				}
				got, err := os.ReadFile(file)
				if err != nil {
					t.Fatal(err)
				}
				rest, ok := strings.CutPrefix(string(got), "rec:whole-1|")
				if !streamed {
					if !ok || rest != "eof|" {
						t.Errorf("small: the program read %.120q, want only whole-1, then EOF", got)
					}
					continue
				}
				// Records of the cut message, all marked as continued,
				// whose data is a prefix of what the client sent.
				var data strings.Builder
				for rest != "eof|" && rest != "short|" {
					rec, tail, found := strings.Cut(rest, "|")
					part, isMore := strings.CutPrefix(rec, "more:")
					if !ok || !found || !isMore {
						t.Fatalf("streamed: the program read %.200q, want whole-1, then continued records, then EOF", got)
					}
					data.WriteString(part)
					rest = tail
				}
				if !strings.HasPrefix(head, data.String()) || data.Len() == 0 {
					t.Errorf("streamed: the cut message's records hold %d bytes, not a start of what was sent", data.Len())
				}
				t.Logf("streamed: %d bytes in continued records, then %s", data.Len(), rest)
			}
		})
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

// TestProgramExitWithBackgroundJob: a program that exits while a job it
// started in the background keeps stdout open still ends the session: the
// client gets what was written, then close 1000, and the job is ended.
func TestProgramExitWithBackgroundJob(t *testing.T) {
	b := startBridge(t, "/bin/sh", "-c", "echo hi; sleep 300 & echo $!; exit 0")
	c := wstest.MustDial(t, b.Addr, wstest.Options{Path: "/"})
	var got []string
	for {
		_, data, cf, err := c.ReadMessage(15 * time.Second)
		if errors.Is(err, wstest.ErrClosed) {
			if cf.CloseCode() != 1000 {
				t.Errorf("close %d %q, want 1000", cf.CloseCode(), cf.CloseReason())
			}
			break
		}
		if err != nil {
			t.Fatalf("after %q: no close frame: %v", got, err)
		}
		got = append(got, string(data))
	}
	if len(got) != 2 || got[0] != "hi" {
		t.Fatalf("received %q, want hi and the job's PID", got)
	}
	pid, err := strconv.Atoi(got[1])
	if err != nil {
		t.Fatal(err)
	}
	if st, ok := proctest.Read(pid); ok {
		t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
		proctest.WaitGone(t, 15*time.Second, st)
	}
}

// TestPingAfterSilence: with --ping-interval=D a client silent for D gets
// a ping then (not up to 2D later), and every D after while it stays
// silent but for its pongs. The same timer serves every mode.
func TestPingAfterSilence(t *testing.T) {
	const d = 4 * time.Second
	modes := []struct {
		name string
		args func(t *testing.T) []string
	}{
		{"per connection", func(*testing.T) []string { return []string{childBin, "echo"} }},
		{"shared", func(*testing.T) []string { return []string{"--shared", childBin, "broadcast"} }},
		{"per-message CGI", func(t *testing.T) []string {
			script := writeScript(t, "cgi.sh", cgiScript)
			if err := os.Chmod(script, 0o755); err != nil {
				t.Fatal(err)
			}
			return []string{"--cgi-per-message", script}
		}},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			b := startBridge(t, append([]string{"--ping-interval=" + d.String()}, m.args(t)...)...)
			c := wstest.MustDial(t, b.Addr, wstest.Options{Path: "/"})
			// Half an interval into the session the client speaks: a
			// timer counting whole intervals from the start would see
			// it at D and wait for another D of silence.
			time.Sleep(d / 2)
			if err := c.WriteFrame(true, wstest.OpText, []byte("x")); err != nil {
				t.Fatal(err)
			}
			last := time.Now()
			for i := range 3 {
				f, err := readUntilPing(c, 3*d)
				if err != nil {
					t.Fatalf("ping %d: %v", i+1, err)
				}
				if e := time.Since(last); e < d-200*time.Millisecond || e > d+1500*time.Millisecond {
					t.Errorf("ping %d came %v after the client's last frame, want %v", i+1, e.Round(time.Millisecond), d)
				}
				if err := c.WriteFrame(true, wstest.OpPong, f.Payload); err != nil {
					t.Fatal(err)
				}
				last = time.Now()
			}
		})
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

// TestMaxForksSlotFreeWhenProgramGone: with --maxforks=1 a client that
// finished the close handshake but keeps its socket open does not hold
// the slot once its program is gone: a reconnect gets 101, not 429.
func TestMaxForksSlotFreeWhenProgramGone(t *testing.T) {
	b := startBridge(t, "--maxforks=1", childBin, "pid")
	c := wstest.MustDial(t, b.Addr, wstest.Options{Path: "/"})
	_, data, _, err := c.ReadMessage(10 * time.Second)
	m := regexp.MustCompile(`^pid (\d+) `).FindSubmatch(data)
	if err != nil || m == nil {
		t.Fatalf("pid line: %q, %v", data, err)
	}
	pid, _ := strconv.Atoi(string(m[1]))
	st, ok := proctest.Read(pid)
	if err := c.WriteClose(1000, ""); err != nil {
		t.Fatal(err)
	}
	if _, _, cf, err := c.ReadMessage(10 * time.Second); !errors.Is(err, wstest.ErrClosed) || cf.CloseCode() != 1000 {
		t.Fatalf("close answered with %d, %v", cf.CloseCode(), err)
	}
	// The client keeps its TCP socket open from here on.
	if ok {
		proctest.WaitGone(t, 10*time.Second, st)
	}
	// The slot goes with the program: allow a moment for the session's
	// bookkeeping, far less than the 2s close timeout it waited for.
	deadline := time.Now().Add(time.Second)
	for {
		c2 := wstest.MustDialTCP(t, b.Addr, wstest.Options{})
		resp, err := c2.Upgrade(wstest.Options{Path: "/"})
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == http.StatusSwitchingProtocols {
			break
		}
		c2.Conn.Close()
		if resp.StatusCode != http.StatusTooManyRequests || time.Now().After(deadline) {
			t.Fatalf("reconnect once the program is gone: %s, want 101", resp.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestClosedClientOfNonReadingProgram: a client whose bytes wait unread
// behind a program that never reads stdin is still pinged every
// --ping-interval (its answer may be among those bytes, so it is not
// dropped for it), and once it closes its socket the next ping gets the
// connection reset and the session ends, program included.
func TestClosedClientOfNonReadingProgram(t *testing.T) {
	// More than the pipe and both socket buffers hold, then the close:
	// the write blocks, and the close never reaches the bridge's reader.
	// (Made first: masking it takes a while under the race detector.)
	wire := wstest.AppendFrame(nil, wstest.Frame{Fin: true, Op: wstest.OpBinary, Payload: make([]byte, 32<<20)})
	wire = wstest.AppendFrame(wire, wstest.Frame{Fin: true, Op: wstest.OpClose, Payload: []byte{0x03, 0xe8}})
	b := startBridge(t, "--ping-interval=1s", "--ping-timeout=1s", "--max-message=0", childBin, "noread")
	c := wstest.MustDial(t, b.Addr, wstest.Options{Path: "/"})
	if _, data, _, err := c.ReadMessage(10 * time.Second); err != nil || string(data) != "ready" {
		t.Fatalf("program did not start: %q, %v", data, err)
	}
	written := make(chan error, 1)
	go func() {
		_ = c.Conn.SetWriteDeadline(time.Now().Add(time.Minute))
		_, err := c.Conn.Write(wire)
		written <- err
	}()
	for i := range 3 {
		if _, err := readUntilPing(c, 10*time.Second); err != nil {
			t.Fatalf("ping %d while the client's bytes wait unread: %v", i+1, err)
		}
	}
	c.Conn.Close() // what it had not sent stays queued in its kernel
	<-written
	if !b.Log.WaitFor("msg=session", 20*time.Second) {
		t.Error("session still open 20s after its client closed its socket")
	}
}
