package examples

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
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
