package procs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestReapOrphans runs in a process of its own, a re-executed test binary,
// because ReapOrphans changes the whole process for good (and would take
// the children of os/exec in the rest of the tests).
func TestReapOrphans(t *testing.T) {
	switch os.Getenv(scenarioEnv) {
	case "reap-orphans":
		reapOrphansScenario(t)
		return
	case "":
	default:
		t.Skip("in another scenario")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestReapOrphans$", "-test.v", "-test.timeout=60s")
	cmd.Env = append(os.Environ(), scenarioEnv+"=reap-orphans", testChildEnv+"="+testChild)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("scenario: %v\n%s", err, out)
	}
	switch {
	case strings.Contains(string(out), "--- SKIP: TestReapOrphans"):
		t.Skipf("scenario skipped:\n%s", out)
	case !strings.Contains(string(out), "--- PASS: TestReapOrphans"):
		t.Fatalf("scenario did not run:\n%s", out)
	}
	t.Logf("scenario:\n%s", out)
}

// reapOrphansScenario runs with the process a subreaper reaping
// everything: an orphaned grandchild must be killed and reaped by us,
// leaving not a single zombie.
func reapOrphansScenario(t *testing.T) {
	// qemu-user (7.2 at least) and kernels before 3.4 refuse the flag;
	// the reaper must still take our own children.
	subreaper := ReapOrphans()
	if err := ReapOrphans(); fmt.Sprint(err) != fmt.Sprint(subreaper) {
		t.Fatalf("second call: %v, first %v", err, subreaper)
	}
	strays := func() uint64 {
		theReaper.mu.Lock()
		defer theReaper.mu.Unlock()
		return theReaper.strays
	}

	t.Run("own children are still dispatched", func(t *testing.T) {
		p := mustStart(t, child("exit", "3"))
		if s := waitDone(t, p); s.Code != 3 {
			t.Errorf("status %v, want exit status 3", s)
		}
	})
	t.Run("child reaped before it is registered", func(t *testing.T) {
		before := strays()
		sys := &system{kill: osSystem.kill, forkExec: func(argv0 string, argv []string, attr *syscall.ProcAttr) (int, error) {
			pid, err := syscall.ForkExec(argv0, argv, attr)
			if err != nil {
				return pid, err
			}
			// Hold the registration back until wait4(-1) has taken it.
			until(t, func() bool {
				theReaper.mu.Lock()
				defer theReaper.mu.Unlock()
				_, ok := theReaper.early[pid]
				return ok
			})
			return pid, nil
		}}
		p := startWith(t, child("exit", "6"), sys)
		select {
		case <-p.Done():
		default:
			t.Fatal("not done when registered")
		}
		if s := p.Status(); s.Code != 6 {
			t.Errorf("status %v, want exit status 6", s)
		}
		if n := strays() - before; n != 0 {
			t.Errorf("%d strays counted", n)
		}
	})
	if subreaper != nil {
		t.Skipf("cannot test orphans without a subreaper: %v", subreaper)
	}
	tests := []struct {
		name       string
		killLeader bool // SIGKILL the leader alone first, orphaning the grandchild
		want       Status
	}{
		{"leader exits at stdin EOF", false, Status{}},
		{"leader killed alone", true, Status{Code: -1, Signal: syscall.SIGKILL}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustStart(t, child("grandchild"))
			gpid := grandchildPID(t, p)
			if tt.killLeader {
				if err := unix.Kill(p.PID, syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				waitDone(t, p)
				deadline := time.Now().Add(10 * time.Second)
				for ppid(gpid) != os.Getpid() {
					if time.Now().After(deadline) {
						t.Fatalf("grandchild %d not reparented to us (parent %d)", gpid, ppid(gpid))
					}
					time.Sleep(10 * time.Millisecond)
				}
			} else {
				p.Stdin.Close()
				waitDone(t, p)
			}
			before := strays()
			if err := p.Terminate(0); err != nil {
				t.Fatal(err)
			}
			if s := p.Status(); s != tt.want {
				t.Errorf("leader: %v, want %v", s, tt.want)
			}
			assertGone(t, gpid, p.PID)
			if after := strays(); after != before+1 {
				t.Errorf("reaped %d strays, want 1", after-before)
			}
		})
	}

	t.Run("escapees", testEscapees)
	t.Run("EndAll ends what cleared its environment", endAllScenario)

	// Not a single child left, zombie or alive.
	var ws unix.WaitStatus
	if pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil); !errors.Is(err, unix.ECHILD) {
		t.Errorf("wait4(-1) = %d, %v; want ECHILD", pid, err)
	}
	if kids := children(); kids != "" {
		t.Errorf("children left: %s", kids)
	}
}

// ppid returns the parent of pid, or 0.
func ppid(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	n, _ := strconv.Atoi(fields[1])
	return n
}

// children lists our children from /proc (empty where the kernel lacks
// /proc/PID/task/TID/children).
func children() string {
	files, _ := filepath.Glob("/proc/self/task/*/children")
	var all []string
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if s := strings.TrimSpace(string(b)); s != "" {
			all = append(all, s)
		}
	}
	return strings.Join(all, " ")
}

// Many children at once, with stderr goroutines: no descriptor and no
// goroutine outlives them.
func TestManyChildren(t *testing.T) {
	const n = 200
	fds := countFDs(t)
	goroutines := runtime.NumGoroutine()
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := pingChild(i); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got := countFDs(t); got != fds {
		t.Errorf("%d descriptors open, %d before", got, fds)
	}
	if got, ok := settledGoroutines(goroutines); !ok {
		t.Errorf("%d goroutines, %d before", got, goroutines)
	}
}

func pingChild(i int) error {
	spec := child("cat")
	spec.Stderr = func([]byte) {}
	p, err := Start(spec)
	if err != nil {
		return err
	}
	defer p.Stdout.Close()
	msg := fmt.Sprintf("ping %d\n", i)
	if _, err := io.WriteString(p.Stdin, msg); err != nil {
		p.Terminate(0)
		return err
	}
	got := make([]byte, len(msg))
	p.Stdout.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err = io.ReadFull(p.Stdout, got)
	// cat exits at stdin EOF: a long grace only matters on a slow machine.
	if terr := p.Terminate(10 * time.Second); err == nil {
		err = terr
	}
	if err == nil && string(got) != msg {
		err = fmt.Errorf("got %q, want %q", got, msg)
	}
	if s := p.Status(); err == nil && !s.Success() {
		err = fmt.Errorf("child %d: %v", p.PID, s)
	}
	return err
}

func countFDs(t *testing.T) int {
	t.Helper()
	des, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(des)
}

// A child that exits, and whose SIGCHLD the reaper takes, before it is
// registered is reaped all the same.
func TestExitBeforeRegistered(t *testing.T) {
	mustStart(t, child("sleep")) // keeps the reaper running, taking SIGCHLDs
	sys := &system{kill: osSystem.kill, forkExec: func(argv0 string, argv []string, attr *syscall.ProcAttr) (int, error) {
		pid, err := syscall.ForkExec(argv0, argv, attr)
		if err != nil {
			return pid, err
		}
		until(t, func() bool { return waitable(pid) })
		until(t, func() bool { return len(theReaper.sigc) == 0 })
		return pid, nil
	}}
	p := startWith(t, child("exit", "5"), sys)
	select {
	case <-p.Done():
	default:
		t.Fatal("not reaped when registered")
	}
	if s := p.Status(); s.Code != 5 {
		t.Errorf("status %v, want exit status 5", s)
	}
}

// startWith is mustStart through a fake system.
func startWith(t *testing.T, spec Spec, sys *system) *Process {
	t.Helper()
	p, err := start(spec, sys)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Terminate(0)
		p.Stdout.Close()
	})
	return p
}

// until polls cond every millisecond for up to 10s.
func until(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
	}
}

// waitable reports whether child pid has exited and can be reaped, without
// reaping it. (A 'Z' in /proc is not enough: a leader whose other threads
// are still exiting shows it too.)
func waitable(pid int) bool {
	var info unix.Siginfo
	err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
	return err == nil && info.Signo == int32(syscall.SIGCHLD)
}
