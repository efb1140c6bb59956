package main

// The cross matrix (make test-cross): wsbridge and testchild built for the
// boards we ship to, run under Debian's qemu-user-static, and driven from
// the host over real loopback sockets. It is slow, so it runs only when
// WSBRIDGE_CROSS=1; make test skips it.
//
// Both programs run under qemu explicitly (qemu-ARCH-static BINARY ...):
// the bridge's command is "qemu-ARCH-static testchild MODE", so nothing
// depends on binfmt_misc handlers, which a container often lacks. Under
// qemu a program's PID is that of its qemu process, and qemu passes the
// signals it gets on to the program, so the checks on PIDs and signals
// read as they do natively.

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"github.com/wsbridge/wsbridge/procs/proctest"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

// crossEnv turns the matrix on.
const crossEnv = "WSBRIDGE_CROSS"

// crossTarget is one board's architecture and the qemu that runs it.
type crossTarget struct {
	name   string // a target of cross/build.sh
	goarch string
	goarm  string // arm only
	qemu   string
}

var crossTargets = []crossTarget{
	{name: "linux-arm-v5", goarch: "arm", goarm: "5", qemu: "/usr/bin/qemu-arm-static"},
	{name: "linux-arm-v7", goarch: "arm", goarm: "7", qemu: "/usr/bin/qemu-arm-static"},
	{name: "linux-arm64", goarch: "arm64", qemu: "/usr/bin/qemu-aarch64-static"},
	{name: "linux-mips-softfloat", goarch: "mips", qemu: "/usr/bin/qemu-mips-static"},
	{name: "linux-mipsle-softfloat", goarch: "mipsle", qemu: "/usr/bin/qemu-mipsel-static"},
	{name: "linux-riscv64", goarch: "riscv64", qemu: "/usr/bin/qemu-riscv64-static"},
}

// crossProgram builds the program pkg (a path from the repository root)
// for tg into dir as name, with more build tags if any, by cross/build.sh
// as make cross does: the matrix runs the binaries we ship. It returns the
// binary's path.
func crossProgram(t *testing.T, tg crossTarget, dir, pkg, name, tags string) string {
	t.Helper()
	cmd := exec.Command("sh", "cross/build.sh", "-o", dir, "--pkg", "./"+pkg, "--name", name, "--tags", tags, tg.name)
	crossRunBuild(t, tg, cmd, pkg)
	return filepath.Join(dir, tg.name, name)
}

// crossTest builds the test binary of the package pkg for tg into dir,
// with the tag cross/build.sh gives every program (nethttpomithttp2).
func crossTest(t *testing.T, tg crossTarget, dir, pkg string) string {
	t.Helper()
	out := filepath.Join(dir, tg.name, strings.ReplaceAll(pkg, "/", "-")+".test")
	cmd := exec.Command("go", "test", "-c", "-trimpath", "-tags", "nethttpomithttp2", "-o", out, "./"+pkg)
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+tg.goarch, "GOARM="+tg.goarm, "GOMIPS=softfloat", "CGO_ENABLED=0")
	crossRunBuild(t, tg, cmd, pkg)
	return out
}

func crossRunBuild(t *testing.T, tg crossTarget, cmd *exec.Cmd, pkg string) {
	t.Helper()
	cmd.Dir = "../.."
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s for %s: %v\n%s", pkg, tg.name, err, b)
	}
}

// bridgeUnits are the bridge's packages whose tests run on every target:
// those with code a 32-bit or big-endian board could get wrong (frame
// and request parsing, epoll and pipe calls, the fan-out's frames, the
// hand-over's control messages, the backend's chunk sizes), and the
// bridge itself, in -short (see skipShort).
var bridgeUnits = []string{"bridge", "bridge/wsconn", "bridge/http1", "bridge/poll", "bridge/stdio",
	"bridge/transport", "bridge/modes", "bridge/modes/shared", "bridge/handover", "bridge/backend"}

// unitSkips are tests of a bridge unit that qemu-user, not the target,
// fails. TestHandOverLeavesNoDescriptor: qemu receives the descriptors of
// a message into a control buffer larger than the program's and leaks
// those it cannot hand on (MSG_CTRUNC), where the kernel closes them
// (seen on arm v5 and riscv64: 5 more per hand-over of 20); the control
// messages' layout itself is checked by the other hand-over tests.
var unitSkips = map[string][]string{
	"bridge/handover": {"-test.skip=^TestHandOverLeavesNoDescriptor$"},
}

// TestCross runs every check on every target. Targets run two at a time
// (go test's -parallel defaults to GOMAXPROCS); each one's checks run in
// order, as a board would see them.
func TestCross(t *testing.T) {
	if os.Getenv(crossEnv) != "1" {
		t.Skipf("the qemu matrix is slow: run it with make test-cross (%s=1)", crossEnv)
	}
	for _, tg := range crossTargets {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			qemu := needTool(t, tg.qemu, "apt-get install -y qemu-user-static")
			dir := t.TempDir()
			start := time.Now()
			child := []string{qemu, crossProgram(t, tg, dir, "cmd/testchild", "testchild", "")}
			bridges := []struct {
				name string
				run  []string
			}{
				{"wsbridge", []string{qemu, crossProgram(t, tg, dir, "cmd/wsbridge", "wsbridge", "")}},
				{"wsbridge-minimal", []string{qemu, crossProgram(t, tg, dir, "cmd/wsbridge", "wsbridge-minimal", "wsbridge_minimal")}},
			}
			framingTest := crossTest(t, tg, dir, "framing")
			procsTest := crossTest(t, tg, dir, "procs")
			bridgeTests := map[string]string{}
			for _, pkg := range bridgeUnits {
				bridgeTests[pkg] = crossTest(t, tg, dir, pkg)
			}
			t.Logf("%s: built in %v", tg.name, time.Since(start).Round(time.Millisecond))

			for _, b := range bridges {
				t.Run(b.name, func(t *testing.T) {
					x := crossRun{bridge: b.run, child: child}
					t.Run("handshake", x.handshake)
					t.Run("echo line", x.echo(nil, "echo", wsText("hello"), wsText("héllo wörld ✓"), wsText("")))
					t.Run("echo raw", x.echoRaw)
					t.Run("echo len32", x.echo([]string{"--framing=len32"}, "cat", wsText("hello"), wsBinary([]byte{0, 1, 0xff}), wsText("two\nlines")))
					big := make([]byte, 1<<20)
					_, _ = rand.Read(big)
					t.Run("1MiB len32", x.echo([]string{"--framing=len32"}, "cat", wsBinary(big)))
					t.Run("1MiB line", x.echo(nil, "echo", wsText(strings.Repeat("0123456789abcdef", 1<<16))))
					t.Run("mux", x.mux)
					t.Run("shared broadcast", x.broadcast)
					t.Run("child killed on disconnect", x.childKilled)
					t.Run("SIGTERM", x.sigterm)
				})
			}
			// The packages' own tests: children they start (/bin/cat, a
			// host testchild) run natively; the package code is the
			// target's.
			t.Run("unit framing", unit(qemu, framingTest, "framing", nil, ""))
			for _, pkg := range bridgeUnits {
				t.Run("unit "+pkg, unit(qemu, bridgeTests[pkg], pkg, nil, "", unitSkips[pkg]...))
			}
			// TestStderrLines' parked cases assert that the stderr
			// reader found the pipe empty at least once, which takes a
			// child slower than the reader: here the child is native
			// and the reader emulated, so the child can write all
			// and exits before the first read (seen on arm64).
			t.Run("unit procs", unit(qemu, procsTest, "procs", nil, "",
				"-test.skip=^TestReapOrphans$|^TestStderrLines$/_parked$"))
			// TestReapOrphans re-executes its own binary, which the
			// kernel runs only where a binfmt_misc handler for the
			// target is registered: run its scenario under qemu here,
			// as the test would.
			t.Run("unit procs ReapOrphans", unit(qemu, procsTest, "procs",
				[]string{"PROCS_TEST_SCENARIO=reap-orphans"}, "--- PASS: TestReapOrphans",
				"-test.run=^TestReapOrphans$", "-test.v"))
		})
	}
}

// crossRun is one target's built programs, each with its emulator.
type crossRun struct {
	bridge []string // qemu, wsbridge
	child  []string // qemu, testchild
}

// start runs the target's bridge with flags, then the target's testchild
// in mode with args.
func (x crossRun) start(t *testing.T, flags []string, mode ...string) *bridgeProc {
	t.Helper()
	args := append(append(append([]string{}, flags...), x.child...), mode...)
	return startBridgeVia(t, x.bridge, nil, args...)
}

// handshake: a raw upgrade gets 101 with the right Sec-WebSocket-Accept.
func (x crossRun) handshake(t *testing.T) {
	b := x.start(t, nil, "echo")
	c := wstest.MustDialTCP(t, b.Addr, wstest.Options{})
	resp, err := c.Upgrade(wstest.Options{Path: "/"})
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %s, want 101", resp.Status)
	}
}

// echo returns a check: msgs sent one at a time through testchild mode
// behind a bridge with flags each come back as sent.
func (x crossRun) echo(flags []string, mode string, msgs ...wsMsg) func(t *testing.T) {
	return func(t *testing.T) {
		b := x.start(t, flags, mode)
		ctx := testCtx(t, 60*time.Second)
		c := dialWS(t, ctx, b.URL("/"), nil)
		for _, m := range msgs {
			typ := websocket.MessageText
			if m.Binary {
				typ = websocket.MessageBinary
			}
			if err := c.Write(ctx, typ, m.Data); err != nil {
				t.Fatalf("write %v: %v", m, err)
			}
			gotTyp, got := readWS(t, ctx, c)
			if gotTyp != typ || !bytes.Equal(got, m.Data) {
				t.Fatalf("got %v %d bytes %.40q, want %v %d bytes %.40q", gotTyp, len(got), got, typ, len(m.Data), m.Data)
			}
		}
		if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
			t.Fatalf("close: %v", err)
		}
	}
}

// echoRaw: with --binary the bytes come back in order, boundaries being
// the pipe's.
func (x crossRun) echoRaw(t *testing.T) {
	b := x.start(t, []string{"--binary"}, "cat")
	ctx := testCtx(t, 60*time.Second)
	c := dialWS(t, ctx, b.URL("/"), nil)
	want := make([]byte, 20000)
	_, _ = rand.Read(want)
	if err := c.Write(ctx, websocket.MessageBinary, want); err != nil {
		t.Fatal(err)
	}
	var got []byte
	for len(got) < len(want) {
		typ, data := readWS(t, ctx, c)
		if typ != websocket.MessageBinary {
			t.Fatalf("raw framing sent a %v message", typ)
		}
		got = append(got, data...)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes %x..., want %d bytes %x...", len(got), got[:16], len(want), want[:16])
	}
}

// mux: a shared mux child answers each client by its id, addresses
// another, and reaches everyone.
func (x crossRun) mux(t *testing.T) {
	b := x.start(t, []string{"--shared", "--framing=mux"}, "mux")
	ctx := testCtx(t, 60*time.Second)
	a := dialMux(t, ctx, b, "name=a")
	c := dialMux(t, ctx, b, "name=c")
	checkMuxAddressing(t, ctx, a, c, c, a, c)
}

// broadcast: two clients of one shared child get the same lines, in
// order.
func (x crossRun) broadcast(t *testing.T) {
	const lines, size = 100, 300
	b := x.start(t, []string{"--shared"}, "broadcast")
	ctx := testCtx(t, 60*time.Second)
	conns := dialJoined(t, ctx, b.URL("/"), 2)
	writeText(t, ctx, conns[0], fmt.Sprintf("go %d %d 2", lines, size))
	readFloodAll(t, ctx, conns, lines, size)
	writeText(t, ctx, conns[1], "end")
	expectNext(t, ctx, conns, "echo: end")
	if n := len(proctest.ChildrenOf(b.PID())); n != 1 {
		t.Errorf("%d children for 2 clients, want 1", n)
	}
}

// childKilled: when the client goes, its child (the qemu running
// testchild) is gone, not a zombie, even one that ignores SIGTERM.
func (x crossRun) childKilled(t *testing.T) {
	for _, mode := range []string{"sleep", "ignore-term"} {
		t.Run(mode, func(t *testing.T) {
			b := x.start(t, nil, mode)
			ctx := testCtx(t, 30*time.Second)
			c := dialWS(t, ctx, b.URL("/"), nil)
			if mode == "ignore-term" {
				if got := readText(t, ctx, c); got != "ready" {
					t.Fatalf("child said %q, want ready", got)
				}
			}
			child := proctest.WaitChildren(t, b.PID(), 1, 10*time.Second)[0]
			if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
				t.Fatal(err)
			}
			proctest.WaitGone(t, 10*time.Second, child)
		})
	}
}

// sigterm: the bridge exits 0 on SIGTERM, every client gets 1001 and no
// child is left.
func (x crossRun) sigterm(t *testing.T) {
	b := x.start(t, nil, "echo")
	ctx := testCtx(t, 30*time.Second)
	codes := make(chan error, 2)
	for range 2 {
		c := dialWS(t, ctx, b.URL("/"), nil)
		go func() { _, _, err := c.Read(ctx); codes <- err }()
	}
	kids := proctest.WaitChildren(t, b.PID(), 2, 10*time.Second)
	waitExeced(t, b.PID(), kids, 10*time.Second)
	b.Signal(syscall.SIGTERM)
	for range 2 {
		if err := <-codes; websocket.CloseStatus(err) != websocket.StatusGoingAway {
			t.Errorf("client got %v, want close 1001", err)
		}
	}
	if err := b.Wait(15 * time.Second); err != nil {
		t.Errorf("bridge exit: %v, want status 0", err)
	}
	proctest.WaitGone(t, 5*time.Second, kids...)
}

// unit returns a check running a package's cross-built test binary under
// qemu, in the package's directory, with -test.short, more variables in
// env and more flags in args. It passes if the binary exits 0 and its
// output has want in it.
//
// qemu-user 7.2 (Debian 12's) now and then deadlocks a child that a
// multi-threaded guest forks, between the fork and the exec: the guest's
// ForkExec then waits for it forever (seen in procs' TestManyChildren
// under qemu-arm v5, once in three runs of make test-cross). A real
// board has no such emulator, so a run that times out is tried once
// more, saying so; a hang of our own code hangs the second run too, and
// fails.
func unit(qemu, bin, pkg string, env []string, want string, args ...string) func(t *testing.T) {
	return func(t *testing.T) {
		for attempt := 1; ; attempt++ {
			out, err := runUnit(t, qemu, bin, pkg, env, args)
			if err == nil && strings.Contains(string(out), want) {
				return
			}
			if attempt == 1 && bytes.Contains(out, []byte("panic: test timed out")) {
				t.Logf("QEMU DEADLOCK? %s tests timed out under %s; trying once more. The first run's output:\n%s",
					pkg, filepath.Base(qemu), out)
				continue
			}
			t.Fatalf("%v, want exit 0 and %q in the output:\n%s", err, want, out)
		}
	}
}

// unitTimeouts bound a unit's run where 2 minutes would only wait out
// qemu's fork deadlock (see unit): procs forks most, and takes 13 to 20 s
// under qemu on a busy 2-CPU machine, so a run of 60 s is a deadlock,
// retried a minute sooner (a cold CI run hit it on 3 of 6 targets).
var unitTimeouts = map[string]string{"procs": "60s"}

// runUnit runs a cross-built test binary once. Whatever the run leaves
// behind (a deadlocked fork of the emulator holds our pipe) is killed, so
// neither this run nor the next waits on it.
func runUnit(t *testing.T, qemu, bin, pkg string, env []string, args []string) ([]byte, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	timeout := "2m"
	if tt, ok := unitTimeouts[pkg]; ok {
		timeout = tt
	}
	cmd := exec.CommandContext(ctx, qemu, append([]string{bin, "-test.count=1", "-test.short", "-test.timeout=" + timeout}, args...)...)
	cmd.Dir = filepath.Join("../..", pkg)
	// The packages' children are the host's: the kernel runs them.
	cmd.Env = append(append(os.Environ(), "WSBRIDGE_TESTCHILD="+childBin), env...)
	cmd.WaitDelay = 5 * time.Second
	if len(args) > 0 {
		t.Logf("%s tests run with %s", pkg, strings.Join(args, " "))
	}
	out, err := cmd.CombinedOutput()
	t.Logf("%s tests under %s: %v", pkg, filepath.Base(qemu), time.Since(start).Round(time.Millisecond))
	killRunning(bin)
	return out, err
}

// killRunning kills every process still running bin: under qemu-user a
// process runs the emulator with bin as its first argument, and a fork
// that never reached its exec does too.
func killRunning(bin string) {
	paths, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(b, []byte("\x00"+bin+"\x00")) {
			continue
		}
		var pid int
		if _, err := fmt.Sscanf(p, "/proc/%d/cmdline", &pid); err == nil && pid != os.Getpid() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// waitExeced waits until every process in kids, children of the bridge
// parent, has left the bridge's command line for its own: a child counted
// as soon as it is forked may not have reached its exec yet. qemu-user 7.2 can deadlock a fork of
// a multi-threaded guest before the exec (see unit), which leaves the
// bridge waiting in its ForkExec, a session half started: seen in the
// SIGTERM check under qemu-arm, where shutdown then has a session it
// cannot close until the fork is killed. No real board does that; the
// check is skipped, saying so, rather than failed for the emulator.
func waitExeced(t *testing.T, parent int, kids []proctest.Stat, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	own, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", parent))
	for _, k := range kids {
		for {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", k.PID))
			if err != nil || len(b) > 0 && !bytes.Equal(b, own) {
				break // exec'd (or gone: the check itself says what became of it)
			}
			if time.Now().After(deadline) {
				t.Skipf("QEMU DEADLOCK? child %d has not reached its exec after %v (its command line: %q): the emulator's fork deadlock, not the bridge's", k.PID, timeout, b)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}
