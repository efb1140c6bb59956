package main

// The harness shared by the tests that run the real wsbridge binary: it
// builds the binary and the Go test child once, starts a bridge on a free
// loopback port, and stops it by its PID.

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

var (
	bridgeBin string // the wsbridge binary under test
	childBin  string // cmd/testchild

	raceEnabled bool // set by race_test.go in race builds
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wsbridge-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bridgeBin = filepath.Join(dir, "wsbridge")
	childBin = filepath.Join(dir, "testchild")
	for pkg, out := range map[string]string{".": bridgeBin, "../testchild": childBin} {
		args := []string{"build", "-o", out}
		if raceEnabled && pkg == "." {
			// The binary the integration tests drive is race-checked
			// too when the tests are: its races are the ones that
			// matter. A race makes it exit 66 with the report in its
			// log, which the test that stops it prints.
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, pkg)...)
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n", pkg, err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// bridgeProc is a running wsbridge.
type bridgeProc struct {
	t    testing.TB
	cmd  *exec.Cmd
	Addr string // 127.0.0.1:PORT
	Log  *wstest.Buffer
	done chan struct{}
	err  error // Wait's result, once done is closed
}

// startBridge runs wsbridge with args (flags, then the command) on a free
// loopback port, waits until it accepts connections, and stops it when the
// test ends. The log is printed if the test failed.
func startBridge(t testing.TB, args ...string) *bridgeProc {
	t.Helper()
	return startBridgeEnv(t, nil, args...)
}

// startBridgeEnv is startBridge with extra KEY=VALUE variables in the
// bridge's environment.
func startBridgeEnv(t testing.TB, env []string, args ...string) *bridgeProc {
	t.Helper()
	return startBinary(t, bridgeBin, env, args...)
}

// startBinary is startBridgeEnv with another build of wsbridge, bin.
func startBinary(t testing.TB, bin string, env []string, args ...string) *bridgeProc {
	t.Helper()
	return startBridgeVia(t, []string{bin}, env, args...)
}

// startBridgeVia is startBinary for a bridge run as run[0] run[1:]...: an
// emulator and a cross-built wsbridge (see cross_test.go). PID and Signal
// then address run[0]'s process.
func startBridgeVia(t testing.TB, run, env []string, args ...string) *bridgeProc {
	t.Helper()
	for attempt := 0; ; attempt++ {
		port := freePort(t)
		b := &bridgeProc{t: t, Log: &wstest.Buffer{}, done: make(chan struct{}), Addr: fmt.Sprintf("127.0.0.1:%d", port)}
		full := append([]string{"--address=127.0.0.1", fmt.Sprintf("--port=%d", port), "--loglevel=debug"}, args...)
		b.cmd = exec.Command(run[0], append(run[1:len(run):len(run)], full...)...)
		b.cmd.Stdout, b.cmd.Stderr = b.Log, b.Log
		if env != nil {
			b.cmd.Env = append(os.Environ(), env...)
		}
		if err := b.cmd.Start(); err != nil {
			t.Fatalf("starting wsbridge: %v", err)
		}
		go func() { b.err = b.cmd.Wait(); close(b.done) }()
		if b.waitListening(10 * time.Second) {
			t.Cleanup(func() {
				b.Stop()
				if strings.Contains(b.Log.String(), "WARNING: DATA RACE") {
					t.Error("the race detector found a data race in wsbridge")
				}
				if t.Failed() {
					t.Logf("wsbridge %s log:\n%s", strings.Join(full, " "), b.Log.String())
				}
			})
			return b
		}
		b.Kill()
		if attempt < 3 && strings.Contains(b.Log.String(), "address already in use") {
			continue
		}
		t.Fatalf("wsbridge did not start listening:\n%s", b.Log.String())
	}
}

func (b *bridgeProc) waitListening(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-b.done:
			return false
		default:
		}
		if c, err := net.DialTimeout("tcp", b.Addr, 100*time.Millisecond); err == nil {
			c.Close()
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// URL returns the ws:// URL of path on this bridge.
func (b *bridgeProc) URL(path string) string { return "ws://" + b.Addr + path }

// PID is the bridge process's PID.
func (b *bridgeProc) PID() int { return b.cmd.Process.Pid }

// Signal sends sig to the bridge by its PID.
func (b *bridgeProc) Signal(sig syscall.Signal) {
	_ = syscall.Kill(b.cmd.Process.Pid, sig)
}

// Wait waits up to timeout for the bridge to exit and returns its exit
// error (nil for status 0); it fails the test on timeout.
func (b *bridgeProc) Wait(timeout time.Duration) error {
	b.t.Helper()
	select {
	case <-b.done: // checked first: with timeout 0 both cases would be ready
		return b.err
	default:
	}
	select {
	case <-b.done:
		return b.err
	case <-time.After(timeout):
		b.t.Fatalf("wsbridge still running after %v", timeout)
		return nil
	}
}

// Stop ends the bridge with SIGTERM, then SIGKILL after 10s.
func (b *bridgeProc) Stop() {
	select {
	case <-b.done:
		return
	default:
	}
	b.Signal(syscall.SIGTERM)
	select {
	case <-b.done:
	case <-time.After(10 * time.Second):
		b.Kill()
	}
}

// Kill ends the bridge at once.
func (b *bridgeProc) Kill() {
	_ = b.cmd.Process.Kill()
	<-b.done
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// needTool returns the path of a third-party program a test needs. Outside
// CI a missing one skips the test with a loud message naming the install
// command; under CI=true it fails the test.
func needTool(t testing.TB, path, install string) string {
	t.Helper()
	if _, err := os.Stat(path); err == nil {
		return path
	}
	msg := fmt.Sprintf("MISSING TOOL %s: install it with `%s` (or `make test-deps`)", path, install)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func TestHarnessStartsAndStops(t *testing.T) {
	b := startBridge(t, childBin, "echo")
	b.Signal(syscall.SIGTERM)
	if err := b.Wait(10 * time.Second); err != nil {
		t.Fatalf("wsbridge exit after SIGTERM: %v, want status 0\n%s", err, b.Log.String())
	}
}
