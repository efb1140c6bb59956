package procs

import (
	"flag"
	"fmt"
	"github.com/wsbridge/wsbridge/cmd/testchild/childbin"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Environment of the test binary:
//
//	WSBRIDGE_TESTCHILD     a prebuilt cmd/testchild to use instead of
//	                       building one (for runs without a Go toolchain,
//	                       such as a cross-built test binary under qemu).
//	PROCS_TEST_SCENARIO    set when the binary is re-executed to run one
//	                       scenario in a process of its own (see
//	                       runScenario); no build, no leak check.
const (
	testChildEnv = childbin.Env
	scenarioEnv  = "PROCS_TEST_SCENARIO"
)

// testChild is the path of the built cmd/testchild.
var testChild string

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	flag.Parse()
	if flagSet("test.fuzzworker") || flagSet("test.list") {
		return m.Run() // fuzz targets need no child; workers restart often
	}
	if os.Getenv(scenarioEnv) != "" {
		testChild = os.Getenv(testChildEnv)
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "procs-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if testChild, err = childbin.Build(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}

	// Warm up before counting goroutines: the first Start subscribes to
	// SIGCHLD, which starts os/signal's goroutine for good.
	if err := warmUp(); err != nil {
		fmt.Fprintln(os.Stderr, "warm up:", err)
		return 1
	}
	before, _ := settledGoroutines(0)
	code := m.Run()
	if after, ok := settledGoroutines(before); !ok && code == 0 {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		fmt.Fprintf(os.Stderr, "goroutine leak: %d before, %d after\n%s\n", before, after, buf)
		return 1
	}
	return code
}

func flagSet(name string) bool {
	f := flag.Lookup(name)
	return f != nil && f.Value.String() != "" && f.Value.String() != "false"
}

func warmUp() error {
	p, err := Start(Spec{Path: testChild, Args: []string{"testchild", "exit", "0"}})
	if err != nil {
		return err
	}
	p.Stdout.Close()
	return p.Terminate(0)
}

// settledGoroutines waits up to 5s for the number of goroutines to come
// down to max (0: just to stop changing) and returns it, and whether it
// did.
func settledGoroutines(max int) (int, bool) {
	n := runtime.NumGoroutine()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		m := runtime.NumGoroutine()
		if max > 0 && m <= max || max == 0 && m == n && !reaperRunning() {
			return m, true
		}
		n = m
	}
	return n, max == 0
}

func reaperRunning() bool {
	theReaper.mu.Lock()
	defer theReaper.mu.Unlock()
	return theReaper.running
}

// child returns a Spec running testchild with args.
func child(args ...string) Spec {
	return Spec{Path: testChild, Args: append([]string{"testchild"}, args...)}
}

// mustStart starts spec and registers a cleanup that terminates it and
// closes Stdout.
func mustStart(t testing.TB, spec Spec) *Process {
	t.Helper()
	p, err := Start(spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Terminate(0)
		p.Stdout.Close()
	})
	return p
}

// readLine reads one line from the child's stdout, without its newline,
// failing after 10s.
func readLine(t testing.TB, p *Process) string {
	t.Helper()
	var b []byte
	one := make([]byte, 1)
	p.Stdout.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer p.Stdout.SetReadDeadline(time.Time{})
	for {
		n, err := p.Stdout.Read(one)
		if n == 1 {
			if one[0] == '\n' {
				return string(b)
			}
			b = append(b, one[0])
			continue
		}
		if err != nil {
			t.Fatalf("reading a line from the child: %v (got %q)", err, b)
		}
	}
}

// waitDone waits up to 10s for p to be reaped.
func waitDone(t testing.TB, p *Process) Status {
	t.Helper()
	select {
	case <-p.Done():
		return p.Status()
	case <-time.After(10 * time.Second):
		t.Fatal("child not reaped after 10s")
		return Status{}
	}
}

// procState returns the state letter and process group of pid from
// /proc/PID/stat, or ok false when there is no such process.
func procState(pid int) (state byte, pgrp int, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, false
	}
	// pid (comm) state ppid pgrp ...; comm may hold spaces and parens.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 3 {
		return 0, 0, false
	}
	fmt.Sscan(fields[2], &pgrp)
	return fields[0][0], pgrp, true
}

// assertGone fails unless pid is gone for good: no such process, or a new
// one that reuses the PID outside group pgid. A zombie fails.
func assertGone(t testing.TB, pid, pgid int) {
	t.Helper()
	if state, pgrp, ok := procState(pid); ok && pgrp == pgid {
		t.Errorf("process %d of group %d survives in state %c", pid, pgid, state)
	}
}
