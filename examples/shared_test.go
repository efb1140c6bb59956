package examples

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

// The shared examples behind the real wsbridge --shared: one program,
// several WebSocket clients at once.

// childrenOf returns the PID and name of each child process of pid, read
// from /proc; nil where there is no /proc.
func childrenOf(t *testing.T, pid int) map[int]string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	kids := map[int]string{}
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // it exited meanwhile
		}
		// "PID (COMM) STATE PPID ...": COMM may hold spaces and parentheses.
		open, end := strings.IndexByte(string(stat), '('), strings.LastIndexByte(string(stat), ')')
		if open < 0 || end < open {
			t.Fatalf("/proc/%d/stat: %q", child, stat)
		}
		fields := strings.Fields(string(stat[end+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			kids[child] = string(stat[open+1 : end])
		}
	}
	return kids
}

// onlyChild checks the bridge has one child process, called name, and
// returns its PID; 0 where there is no /proc to look in.
func onlyChild(t *testing.T, b *bridgeProc, name string) int {
	t.Helper()
	kids := childrenOf(t, b.cmd.Process.Pid)
	if kids == nil {
		t.Log("no /proc: not checking wsbridge's child processes")
		return 0
	}
	for pid, got := range kids {
		if got == name && len(kids) == 1 {
			return pid
		}
	}
	t.Fatalf("wsbridge's child processes are %v, want one %s", kids, name)
	return 0
}

// sensorClient is a client of the shared sensor that checks each reading
// it gets comes right after the one before: none lost, none repeated.
type sensorClient struct {
	*wstest.Conn
	last int64 // seq of the last reading; 0: none yet
}

func (s *sensorClient) next(t *testing.T) string {
	t.Helper()
	line := nextText(t, s.Conn)
	if strings.HasPrefix(line, `{"seq":`) {
		r := parseReading(t, line)
		if s.last != 0 && r.Seq != s.last+1 {
			t.Fatalf("reading seq %d after seq %d", r.Seq, s.last)
		}
		s.last = r.Seq
	}
	return line
}

// align reads from whichever of a and b is behind until both are at the
// same reading, which must be the same line for both: one reading,
// broadcast.
func align(t *testing.T, a, b *sensorClient, lineA, lineB string) {
	t.Helper()
	for a.last < b.last {
		lineA = a.next(t)
	}
	for b.last < a.last {
		lineB = b.next(t)
	}
	if lineA != lineB {
		t.Fatalf("at seq %d the clients got different readings: %q and %q", a.last, lineA, lineB)
	}
}

func TestSensorShared(t *testing.T) {
	b := startBridge(t, "--shared", buildC(t, "sensor"), "-i", "50")
	ann := &sensorClient{Conn: dial(t, b, "/")}
	bob := &sensorClient{Conn: dial(t, b, "/")}
	align(t, ann, bob, ann.next(t), bob.next(t))
	for range 3 {
		if a, b := ann.next(t), bob.next(t); a != b {
			t.Fatalf("the clients got different readings: %q and %q", a, b)
		}
	}

	// A command from either client is answered to both, in the same place
	// among the readings: both see one stream.
	command := func(from *sensorClient, cmd, answer string, all ...*sensorClient) {
		t.Helper()
		say(t, from.Conn, cmd)
		var seen []string
		for line := ""; line != answer; {
			line = all[0].next(t)
			if line != answer && !strings.HasPrefix(line, `{"seq":`) {
				t.Fatalf("after %q got %q, want %q or a reading", cmd, line, answer)
			}
			seen = append(seen, line)
		}
		for _, c := range all[1:] {
			for i, want := range seen {
				if got := c.next(t); got != want {
					t.Fatalf("after %q, message %d: %q, but the first client got %q", cmd, i+1, got, want)
				}
			}
		}
	}
	command(ann, "rate 40", `{"ack":"rate","ms":40}`, ann, bob)
	command(bob, "status", `{"error":"unknown command"}`, ann, bob)

	sensor := onlyChild(t, b, "sensor")

	// A client leaving stops nothing; one connecting later joins the same
	// stream at a reading the others have not seen yet.
	closeNormally(t, ann.Conn)
	carl := &sensorClient{Conn: dial(t, b, "/")}
	first := carl.next(t)
	if carl.last <= bob.last {
		t.Fatalf("a client connecting after seq %d first got %q", bob.last, first)
	}
	align(t, bob, carl, bob.next(t), first)
	if now := onlyChild(t, b, "sensor"); now != sensor {
		t.Fatalf("the sensor was process %d, now %d: want it still running", sensor, now)
	}
	closeNormally(t, bob.Conn)
	closeNormally(t, carl.Conn)
	b.stop(t)
}

func TestMuxChatShared(t *testing.T) {
	b := startBridge(t, "--shared", "--framing=mux", buildC(t, "mux-chat"))
	// expectAll expects the same message next at each client.
	expectAll := func(want string, cs ...*wstest.Conn) {
		t.Helper()
		for _, c := range cs {
			c.ExpectMessage(t, wstest.OpText, want)
		}
	}
	// join connects nick as the online-th client, the others online already.
	join := func(nick string, online int, others ...*wstest.Conn) *wstest.Conn {
		t.Helper()
		c := dial(t, b, "/?nick="+nick)
		c.ExpectMessage(t, wstest.OpText, "welcome "+nick+", "+strconv.Itoa(online)+" online")
		expectAll("* "+nick+" joined", append(others, c)...)
		return c
	}

	ann := join("ann", 1)
	bob := join("bob", 2, ann)
	say(t, ann, "hi bob, héllo ✓")
	expectAll("ann: hi bob, héllo ✓", ann, bob)

	say(t, bob, "/who")
	bob.ExpectMessage(t, wstest.OpText, "online (2): ann, bob")
	// The answer went to bob alone: ann's next message is one sent after.
	say(t, ann, "anyone?")
	expectAll("ann: anyone?", ann, bob)

	// Turned away before joining: nobody hears of it.
	expectClosed(t, dial(t, b, "/?nick=ANN"), 4001, "nick taken")

	guest := dial(t, b, "/")
	welcome := nextText(t, guest)
	m := regexp.MustCompile(`^welcome (guest\d+), 3 online$`).FindStringSubmatch(welcome)
	if m == nil {
		t.Fatalf("a client without a nick got %q, want welcome guestN, 3 online", welcome)
	}
	expectAll("* "+m[1]+" joined", guest, ann, bob)
	if err := guest.WriteFrame(true, wstest.OpBinary, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, guest, 1003, "text only")
	expectAll("* "+m[1]+" left", ann, bob)

	// However a client leaves, the others hear of it.
	carl := join("carl", 3, ann, bob)
	closeNormally(t, carl)
	expectAll("* carl left", ann, bob)
	dave := join("dave", 3, ann, bob)
	dave.Conn.Close() // gone without a close frame
	expectAll("* dave left", ann, bob)
	say(t, bob, "/quit")
	expectClosed(t, bob, 1000, "bye")
	ann.ExpectMessage(t, wstest.OpText, "* bob left")

	say(t, ann, "/who")
	ann.ExpectMessage(t, wstest.OpText, "online (1): ann")
	closeNormally(t, ann)
	b.stop(t)

	// The chat's stderr is in wsbridge's log.
	log := b.stderr.String()
	for _, want := range []string{
		`mux-chat: ann \(connection \d+\) joined from 127\.0\.0\.1`,
		`mux-chat: carl \(connection \d+\) left, code 1000`,
		`mux-chat: dave \(connection \d+\) left, code 1006`,
	} {
		if !regexp.MustCompile(want).MatchString(log) {
			t.Errorf("wsbridge's log lacks %s:\n%s", want, log)
		}
	}
}
