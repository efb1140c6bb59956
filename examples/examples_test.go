package examples

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

// Bounds of every wait on a child: generous for a loaded 2-core CI machine,
// short enough that a hung child fails the test instead of the whole run.
const (
	ioTimeout  = 10 * time.Second
	runTimeout = 30 * time.Second
	// buildTimeout bounds a step that compiles Go, such as a package
	// recipe's make install: only a hang must fail it. With an empty
	// build cache a tag set no other step uses (netgo, osusergo)
	// recompiles the standard library, 30 s and more on 2 CPUs.
	buildTimeout = 10 * time.Minute
)

// binDir holds what the tests build, shared by all tests of the run.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wsbridge-examples-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// inCI reports whether the tests run under CI, where a missing tool is a
// failure rather than a reason to skip.
func inCI() bool { v := os.Getenv("CI"); return v == "true" || v == "1" }

// requireTool returns the path of a program the test needs. When it is
// missing the test skips loudly, or fails under CI, naming the package to
// install.
func requireTool(t *testing.T, name, debianPackage string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	msg := fmt.Sprintf("%s not found: install it with `apt-get install %s` (or `make test-deps`)", name, debianPackage)
	if inCI() {
		t.Fatal(msg)
	}
	t.Skip("SKIPPING: " + msg)
	return ""
}

// builds memoizes build results for the run: each program is built once.
var builds = struct {
	sync.Mutex
	m map[string]buildResult
}{m: map[string]buildResult{}}

type buildResult struct {
	path string
	err  error
}

// build returns binDir/name, running cmd (which must write there) the first
// time; later calls return the first result.
func build(name string, cmd *exec.Cmd) (string, error) {
	builds.Lock()
	defer builds.Unlock()
	if r, ok := builds.m[name]; ok {
		return r.path, r.err
	}
	r := buildResult{path: filepath.Join(binDir, name)}
	if out, err := cmd.CombinedOutput(); err != nil {
		r.err = fmt.Errorf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
	}
	builds.m[name] = r
	return r.path, r.err
}

// buildC compiles examples/c/SRC.c strictly: a warning is a failure, so the
// examples stay clean for people who build with -Werror.
func buildC(t *testing.T, src string) string {
	t.Helper()
	cc := os.Getenv("CC")
	if cc == "" {
		cc = requireTool(t, "cc", "gcc")
	}
	out := filepath.Join(binDir, src)
	path, err := build(src, exec.Command(cc, "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-O2",
		"-o", out, filepath.Join("c", src+".c")))
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// buildGo builds a Go main package of the module into binDir/name.
func buildGo(name, pkg string) (string, error) {
	return build(name, exec.Command("go", "build", "-o", filepath.Join(binDir, name), pkg))
}

func greeter(t *testing.T) string {
	t.Helper()
	path, err := buildGo("greeter", "./go/greeter")
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// childEnv is the test's environment without the CGI variables wsbridge
// would set, so a child run over pipes sees what it sees when run by hand.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REMOTE_") && !strings.HasPrefix(kv, "SERVER_") {
			env = append(env, kv)
		}
	}
	return env
}

// lineChild is an example program run over pipes, driven a line at a time
// as wsbridge's line framing drives it. Every read and write has a deadline.
type lineChild struct {
	cmd    *exec.Cmd
	stdin  *os.File
	stdout *os.File
	out    *bufio.Reader
	stderr wstest.Buffer
	done   chan struct{} // closed when the process has been waited for
	err    error         // its exit, valid after done
}

func startLineChild(t *testing.T, argv ...string) *lineChild {
	t.Helper()
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &lineChild{stdin: inW, stdout: outR, out: bufio.NewReaderSize(outR, 1<<20), done: make(chan struct{})}
	c.cmd = exec.Command(argv[0], argv[1:]...)
	c.cmd.Env = childEnv()
	c.cmd.Stdin, c.cmd.Stdout, c.cmd.Stderr = inR, outW, &c.stderr
	c.cmd.WaitDelay = ioTimeout
	err = c.cmd.Start()
	inR.Close() // the child's ends: ours must go for EOF to reach either side
	outW.Close()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		c.stdin.Close()
		select {
		case <-c.done:
		case <-time.After(ioTimeout):
			c.cmd.Process.Kill()
			<-c.done
		}
		c.stdout.Close()
	})
	return c
}

func (c *lineChild) send(t *testing.T, line string) {
	t.Helper()
	c.stdin.SetWriteDeadline(time.Now().Add(ioTimeout))
	if _, err := io.WriteString(c.stdin, line+"\n"); err != nil {
		t.Fatalf("writing to %s: %v (stderr: %q)", c.cmd.Path, err, c.stderr.String())
	}
}

// next returns the child's next line, failing if none comes in time: a
// child that buffers its stdout fails here, not only at exit.
func (c *lineChild) next(t *testing.T) string {
	t.Helper()
	c.stdout.SetReadDeadline(time.Now().Add(ioTimeout))
	line, err := c.out.ReadString('\n')
	if err != nil {
		t.Fatalf("reading the answer of %s: %v (partial %q, stderr %q)", c.cmd.Path, err, line, c.stderr.String())
	}
	return strings.TrimSuffix(line, "\n")
}

func (c *lineChild) expect(t *testing.T, want string) {
	t.Helper()
	if got := c.next(t); got != want {
		t.Fatalf("got line %q, want %q", got, want)
	}
}

// finish closes stdin, as wsbridge does when the client leaves, and
// returns what the child printed after that. The child must exit 0.
func (c *lineChild) finish(t *testing.T) string {
	t.Helper()
	c.stdin.Close()
	c.stdout.SetReadDeadline(time.Now().Add(ioTimeout))
	rest, err := io.ReadAll(c.out)
	if err != nil {
		t.Fatalf("%s did not close stdout after stdin ended: %v", c.cmd.Path, err)
	}
	select {
	case <-c.done:
	case <-time.After(ioTimeout):
		t.Fatalf("%s still running %v after its stdin ended", c.cmd.Path, ioTimeout)
	}
	if c.err != nil {
		t.Fatalf("%s at end of input: %v, want exit 0 (stderr %q)", c.cmd.Path, c.err, c.stderr.String())
	}
	return string(rest)
}

// runChild runs argv with all of input on stdin and returns its output
// and exit code.
func runChild(t *testing.T, input []byte, argv ...string) (stdout, stderr []byte, code int) {
	t.Helper()
	return runChildEnv(t, nil, input, argv...)
}

// runChildEnv is runChild with env added to the child's environment.
func runChildEnv(t *testing.T, env []string, input []byte, argv ...string) (stdout, stderr []byte, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(childEnv(), env...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(input), &out, &errOut
	cmd.WaitDelay = ioTimeout
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("%s still running after %v (stderr %q)", argv[0], runTimeout, errOut.String())
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return out.Bytes(), errOut.Bytes(), code
}

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
