package bridge

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

// The per-connection rows of the fault matrix (issue 9): what a program
// sees of a message that never arrived whole.

// lineRecorders are programs that read stdin a line at a time, each in its
// language's usual way, and append every line they read to the file named
// by their last argument as "got:LINE|". A last line without newline is
// read too, at EOF, as these readers all do: exactly the fault.
var lineRecorders = []struct {
	name string
	args func(child, file string) []string // child: cmd/testchild
}{
	{"go bufio (fgets)", func(child, file string) []string { return []string{child, "lines", file} }},
	{"python for line in sys.stdin", func(_, file string) []string {
		return []string{"python3", "-c", `import sys
print("ready", flush=True)
with open(sys.argv[1], "a") as f:
    for line in sys.stdin:
        f.write("got:" + line.rstrip("\n") + "|\n")
        f.flush()
`, file}
	}},
	{"sh while read", func(_, file string) []string {
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
		// Announce more than the MaxMessage of 200000 allows.
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
	skipShort(t)
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	child := testChildPath(t)
	type program struct {
		name    string
		framing string
		args    func(child, file string) []string
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
						b := runProgram(t, Options{}, Endpoint{Command: p.args(child, file), Framing: p.framing, MaxMessage: 200000})
						c := b.dial(t, "/")
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
						b.log.WaitRecords(t, "session", 1, 20*time.Second)
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
	child := testChildPath(t)
	prefix := strings.Repeat("a", 100<<10)
	for _, f := range cutFaults {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			for _, streamed := range []bool{false, true} {
				file := filepath.Join(t.TempDir(), "records")
				b := runProgram(t, Options{}, Endpoint{Command: []string{child, "records", file}, Framing: "len32", MaxMessage: 200000})
				c := b.dial(t, "/")
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
				b.log.WaitRecords(t, "session", 1, 20*time.Second)
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
