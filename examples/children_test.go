package examples

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestGreeterAnswersEachLine(t *testing.T) {
	c := startLineChild(t, greeter(t), "-every=0")
	c.expect(t, "hello there: type a line and I answer it reversed and upper-cased")
	c.send(t, "hello")
	c.expect(t, "#1 OLLEH")
	c.send(t, "héllo wörld") // reversed by code points, not bytes
	c.expect(t, "#2 DLRÖW OLLÉH")
	c.send(t, "")
	c.expect(t, "#3 ")
	if rest := c.finish(t); rest != "" {
		t.Errorf("after stdin ended got %q, want nothing", rest)
	}
}

func TestGreeterStreamsClock(t *testing.T) {
	c := startLineChild(t, greeter(t), "-every=20ms")
	c.next(t) // welcome
	clock := regexp.MustCompile(`^clock \d\d:\d\d:\d\d$`)
	ticks := 0
	for ticks < 2 {
		if line := c.next(t); !clock.MatchString(line) {
			t.Fatalf("got %q, want a clock line", line)
		}
		ticks++
	}
	// An answer still comes between clock lines.
	c.send(t, "abc")
	for {
		line := c.next(t)
		if line == "#1 CBA" {
			break
		}
		if !clock.MatchString(line) {
			t.Fatalf("got %q, want #1 CBA or a clock line", line)
		}
	}
	c.finish(t)
}

func TestLineEcho(t *testing.T) {
	bin := buildC(t, "line-echo")
	t.Run("answers before input ends", func(t *testing.T) {
		c := startLineChild(t, bin)
		c.send(t, "hello")
		c.expect(t, "echo: hello")
		c.send(t, "")
		c.expect(t, "echo: ")
		long := strings.Repeat("0123456789abcdef", 8<<10) // 128 KiB: more than any stdio buffer
		c.send(t, long)
		c.expect(t, "echo: "+long)
		if rest := c.finish(t); rest != "" {
			t.Errorf("after stdin ended got %q, want nothing", rest)
		}
	})
	t.Run("last line without newline", func(t *testing.T) {
		out, errOut, code := runChild(t, []byte("a\nb"), bin)
		if want := "echo: a\necho: b\n"; string(out) != want || code != 0 {
			t.Errorf("got %q, exit %d (stderr %q); want %q, exit 0", out, code, errOut, want)
		}
	})
}

// shellRun is one way to run a POSIX sh script.
type shellRun struct {
	name string
	argv func(t *testing.T) []string // the command line; may skip the test
}

// shellRuns are the ways the shell examples are promised to run: through
// their #! line, as a user runs them (so the execute bit counts), and
// under BusyBox's sh, as on a small router or in a container.
func shellRuns(t *testing.T, script string) []shellRun {
	t.Helper()
	path, err := filepath.Abs(filepath.Join("sh", script))
	if err != nil {
		t.Fatal(err)
	}
	return []shellRun{
		{"direct", func(t *testing.T) []string { return []string{path} }},
		{"busybox", func(t *testing.T) []string {
			return []string{requireTool(t, "busybox", "busybox"), "sh", path}
		}},
	}
}

func TestCountSh(t *testing.T) {
	for _, sh := range shellRuns(t, "count.sh") {
		t.Run(sh.name, func(t *testing.T) {
			c := startLineChild(t, sh.argv(t)...)
			c.expect(t, "count.sh ready: send lines, I count them")
			for i, line := range []string{"a", `  b\c`, "%d %s", ""} {
				c.send(t, line)
				c.expect(t, fmt.Sprintf("%d: %s", i+1, line))
			}
			if rest, want := c.finish(t), "bye after 4 lines\n"; rest != want {
				t.Errorf("after stdin ended got %q, want %q", rest, want)
			}
		})
	}
}

// header is the len32 record header for n payload bytes.
func header(text, more bool, n int) []byte {
	h := uint32(n)
	if text {
		h |= 1 << 31
	}
	if more {
		h |= 1 << 30
	}
	return binary.BigEndian.AppendUint32(nil, h)
}

// rec is a whole len32 record.
func rec(text, more bool, payload string) []byte {
	return append(header(text, more, len(payload)), payload...)
}

func TestLen32Echo(t *testing.T) {
	bin := buildC(t, "len32-echo")
	welcome := rec(true, false, "len32-echo ready: every message comes back as it went")
	big := bytes.Repeat([]byte{0, 1, 2, 0xfe, 0xff, '\n'}, 512<<10) // 3 MiB: many partial reads and writes
	join := func(rs ...[]byte) []byte { return bytes.Join(rs, nil) }
	echoed := join(
		rec(true, false, "héllo"),
		rec(false, false, "\x00\x01\xff\n"),
		rec(true, false, ""),
		rec(true, true, "hel"), rec(true, false, "lo"),
		rec(false, false, strings.Repeat("x", 258)), // 0x102: a byte-swapped reading would wait for 33 MB
		append(header(false, false, len(big)), big...),
	)
	cases := []struct {
		name       string
		input      []byte
		wantOut    []byte
		wantCode   int
		wantStderr []string // lines of -v output and error messages
	}{
		{"no input", nil, welcome, 0, nil},
		{"records echo with kind and continuation", echoed, join(welcome, echoed), 0, []string{
			"len32-echo: text record, 6 bytes, final\n",
			"len32-echo: binary record, 4 bytes, final\n",
			"len32-echo: text record, 0 bytes, final\n",
			"len32-echo: text record, 3 bytes, more follows\n",
			"len32-echo: binary record, 258 bytes, final\n",
			"len32-echo: binary record, 3145728 bytes, final\n",
		}},
		{"ends inside a header", []byte{0, 0}, welcome, 1, []string{"ended inside a record header"}},
		{"largest length, ends inside payload", []byte("\xff\xff\xff\xffabc"),
			join(welcome, []byte("\xff\xff\xff\xffabc")), 1, []string{
				"len32-echo: text record, 1073741823 bytes, more follows\n",
				"stdin ended inside a record (1073741820 of 1073741823 payload bytes missing)",
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runChild(t, tc.input, bin, "-v")
			if !bytes.Equal(out, tc.wantOut) {
				t.Errorf("stdout: got %d bytes, want %d; first difference at byte %d", len(out), len(tc.wantOut), firstDiff(out, tc.wantOut))
			}
			if code != tc.wantCode {
				t.Errorf("exit %d, want %d (stderr %q)", code, tc.wantCode, errOut)
			}
			for _, s := range tc.wantStderr {
				if !bytes.Contains(errOut, []byte(s)) {
					t.Errorf("stderr %q lacks %q", errOut, s)
				}
			}
		})
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func TestRawUpper(t *testing.T) {
	bin := buildC(t, "raw-upper")
	t.Run("answers before input ends", func(t *testing.T) {
		c := startLineChild(t, bin)
		c.send(t, "hello, World 42")
		c.expect(t, "HELLO, WORLD 42")
		c.send(t, "héllo wörld") // bytes that are not ASCII letters pass unchanged
		c.expect(t, "HéLLO WöRLD")
		if rest := c.finish(t); rest != "" {
			t.Errorf("after stdin ended got %q, want nothing", rest)
		}
	})
	t.Run("any bytes, more than a pipe holds", func(t *testing.T) {
		in := bytes.Repeat([]byte("a\x00z\xff{`AZ\n"), 512<<10) // 4 MiB
		out, errOut, code := runChild(t, in, bin)
		want := bytes.Repeat([]byte("A\x00Z\xff{`AZ\n"), 512<<10)
		if !bytes.Equal(out, want) || code != 0 {
			t.Errorf("got %d bytes, exit %d (stderr %q); want %d bytes, exit 0; first difference at byte %d",
				len(out), code, errOut, len(want), firstDiff(out, want))
		}
	})
}

// sensorLine is the format of a reading, to the digit.
var sensorLine = regexp.MustCompile(`^\{"seq":(\d+),"t_ms":(\d+),"load":\d+\.\d\d,"temp_c":-?\d+\.\d\}$`)

// reading is a sensor line, decoded.
type reading struct {
	Seq   int64   `json:"seq"`
	TMS   int64   `json:"t_ms"`
	Load  float64 `json:"load"`
	TempC float64 `json:"temp_c"`
}

// parseReading checks line is a reading and decodes it.
func parseReading(t *testing.T, line string) reading {
	t.Helper()
	var r reading
	if !sensorLine.MatchString(line) {
		t.Fatalf("got %q, want a reading", line)
	}
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		t.Fatalf("%q: %v", line, err)
	}
	return r
}

func TestSensor(t *testing.T) {
	bin := buildC(t, "sensor")
	_, statErr := os.Stat("/sys/class/thermal/thermal_zone0/temp")
	simulated := statErr != nil

	t.Run("readings on schedule, then exit after -n", func(t *testing.T) {
		start := time.Now()
		c := startLineChild(t, bin, "-i", "40", "-n", "3")
		var rs []reading
		for range 3 {
			rs = append(rs, parseReading(t, c.next(t)))
		}
		for i, r := range rs {
			if r.Seq != int64(i+1) {
				t.Errorf("reading %d has seq %d", i+1, r.Seq)
			}
			if at := time.UnixMilli(r.TMS); at.Before(start.Add(-time.Second)) || at.After(time.Now().Add(time.Second)) {
				t.Errorf("reading %d at %v, not the current time (%v)", i+1, at, start)
			}
			if r.Load < 0 || simulated && (r.TempC < 40 || r.TempC > 45) {
				t.Errorf("reading %d: load %v, temp %v (simulated: %t)", i+1, r.Load, r.TempC, simulated)
			}
		}
		if gap := rs[2].TMS - rs[0].TMS; gap < 2*40-2 {
			t.Errorf("3 readings in %d ms at -i 40", gap)
		}
		// -n: the sensor stops by itself, stdin still open.
		c.stdout.SetReadDeadline(time.Now().Add(ioTimeout))
		if rest, err := io.ReadAll(c.out); err != nil || len(rest) != 0 {
			t.Fatalf("after 3 readings: %q, %v; want the end of stdout", rest, err)
		}
		<-c.done
		if c.err != nil {
			t.Fatalf("exit: %v (stderr %q)", c.err, c.stderr.String())
		}
	})

	t.Run("commands", func(t *testing.T) {
		c := startLineChild(t, bin, "-i", "600000") // 10 minutes: only a rate command brings reading 2
		if r := parseReading(t, c.next(t)); r.Seq != 1 {
			t.Fatalf("first reading has seq %d", r.Seq)
		}
		c.send(t, "rate 20")
		c.expect(t, `{"ack":"rate","ms":20}`)
		if r := parseReading(t, c.next(t)); r.Seq != 2 {
			t.Fatalf("reading after the rate command has seq %d", r.Seq)
		}
		// Readings keep coming between the answers.
		answer := func(want string) {
			t.Helper()
			for {
				line := c.next(t)
				if line == want {
					return
				}
				parseReading(t, line)
			}
		}
		c.send(t, "status")
		answer(`{"error":"unknown command"}`)
		c.send(t, "")
		answer(`{"error":"unknown command"}`)
		c.send(t, "rate 5\r") // CRLF from a client that sends it
		answer(`{"error":"rate takes milliseconds, 10 to 3600000"}`)
		c.send(t, "rate 600000")
		answer(`{"ack":"rate","ms":600000}`)
		rest := c.finish(t) // stdin ends: the sensor exits 0, at once
		for _, line := range strings.Split(strings.TrimSuffix(rest, "\n"), "\n") {
			if line != "" {
				parseReading(t, line)
			}
		}
	})

	t.Run("bad arguments", func(t *testing.T) {
		for _, args := range [][]string{{"-i", "0"}, {"-i", "fast"}, {"-n", "-1"}, {"-x"}} {
			_, errOut, code := runChild(t, nil, append([]string{bin}, args...)...)
			if code != 2 || !bytes.Contains(errOut, []byte("usage: sensor")) {
				t.Errorf("%v: exit %d, stderr %q; want 2 and the usage", args, code, errOut)
			}
		}
	})
}
