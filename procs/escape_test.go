package procs

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A grandchild that left the child's process group and session, the
// child still running or gone, ends with the child's Terminate: started
// directly with setsid, or by a double fork (reparented as its parent
// exits) and ignoring SIGTERM. Terminate returns once it is killed, so it
// must be dead (gone, or a zombie its new parent has not reaped yet) at
// once. TestReapOrphans runs it again as a subreaper, which escapees are
// reparented to.
func TestTerminateEndsEscapees(t *testing.T) { testEscapees(t) }

func testEscapees(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		leaderGone bool // the leader exits before Terminate
	}{
		// testchild detach starts it with an empty environment: only
		// its parent, the leader, tells it is the child's.
		{"setsid, cleared environment, leader running", []string{"detach"}, false},
		{"double fork, ignores SIGTERM", []string{"escape"}, false},
		{"double fork, ignores SIGTERM, leader gone", []string{"escape"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := mustStart(t, child(tt.args...))
			e := escapeePID(t, p)
			if tt.leaderGone {
				p.Stdin.Close()
				waitDone(t, p)
			}
			if err := p.Terminate(0); err != nil {
				t.Fatal(err)
			}
			if alive(e) {
				st, _ := readStat(e.pid)
				t.Errorf("grandchild %d (group %d, parent %d) outlives Terminate", e.pid, st.pgid, st.ppid)
			}
		})
	}
}

// escapeePID reads the "grandchild PID" line of testchild detach or
// escape, checks the grandchild has left the child's group, and kills it
// when the test ends if it is still there.
func escapeePID(t *testing.T, p *Process) procEntry {
	t.Helper()
	line := readLine(t, p)
	pid, err := strconv.Atoi(strings.TrimPrefix(line, "grandchild "))
	if err != nil {
		t.Fatalf("got %q", line)
	}
	e, ok := readStat(pid)
	if !ok || e.pgid == p.PID {
		t.Fatalf("grandchild %d: alive %v, group %d: want alive outside group %d", pid, ok, e.pgid, p.PID)
	}
	t.Cleanup(func() {
		if alive(e) {
			unix.Kill(e.pid, syscall.SIGKILL)
		}
	})
	return e
}

// alive reports whether the process e describes is still running: not
// gone, not a zombie, and its PID not reused.
func alive(e procEntry) bool {
	now, ok := readStat(e.pid)
	return ok && now.start == e.start && !now.zombie
}

// The marker is in the child's environment, replacing one the caller
// passed, and tells children apart.
func TestMarker(t *testing.T) {
	a, b := newMarker(), newMarker()
	if a == b || !strings.HasPrefix(a, markerToken()+"-") {
		t.Errorf("markers %q, %q", a, b)
	}
	env := withMarker([]string{"A=1", markerKey + "=forged", "B=2"}, a)
	if want := []string{"A=1", "B=2", markerKey + "=" + a}; !slices.Equal(env, want) {
		t.Errorf("env %q, want %q", env, want)
	}
	if m, ok := markerIn([]byte("A=1\x00" + markerKey + "=" + a + "\x00B=2\x00")); !ok || m != a {
		t.Errorf("markerIn: %q %v", m, ok)
	}
	// A child, not this process: under qemu-user (make test-cross) the
	// emulator makes up /proc/self/stat, with no process group; the
	// daemon reads other processes' files, which are the kernel's.
	p := mustStart(t, child("sleep"))
	c, ok := readStat(p.PID)
	if !ok || c.pid != p.PID || c.ppid != os.Getpid() || c.pgid != p.PID || c.start == 0 {
		t.Errorf("readStat(child %d): %+v %v, want its PID, this process as parent, its own group", p.PID, c, ok)
	}
	if m, _ := readProcFile(make([]byte, 4096), p.PID, "environ"); !strings.Contains(string(m), markerKey+"=") {
		t.Errorf("child's environment has no %s", markerKey)
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("1234 (sh) S 1 1234 1234 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 5555 1000 100 18446744073709551615\n"))
	f.Add([]byte("7 (a) b) (c) Z 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 9 0 0\n"))
	f.Add([]byte("(x) R"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, ok := parseStat(b)
		if ok && e.pid <= 0 {
			t.Errorf("parsed PID %d", e.pid)
		}
	})
}

func FuzzMarkerIn(f *testing.F) {
	f.Add([]byte("A=1\x00WSBRIDGE_CHILD=ab-1\x00"))
	f.Add([]byte("WSBRIDGE_CHILD="))
	f.Add([]byte("\x00\x00XWSBRIDGE_CHILD=no"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, ok := markerIn(b)
		if ok && strings.ContainsRune(m, 0) {
			t.Errorf("marker %q holds a NUL", m)
		}
		if ok != slices.ContainsFunc(strings.Split(string(b), "\x00"), func(kv string) bool {
			return strings.HasPrefix(kv, markerKey+"=")
		}) {
			t.Errorf("markerIn(%q) = %v", b, ok)
		}
	})
}

// A process that cleared its environment is not found by its session's
// Terminate, but EndAll ends it: in a subreaper, an orphan is the
// daemon's child. Run from the ReapOrphans scenario.
func endAllScenario(t *testing.T) {
	p := mustStart(t, child("escape", "unmarked"))
	e := escapeePID(t, p)
	deadline := time.Now().Add(10 * time.Second)
	for now, _ := readStat(e.pid); now.ppid != os.Getpid(); now, _ = readStat(e.pid) {
		if time.Now().After(deadline) {
			t.Fatalf("escapee %d not reparented to us (parent %d)", e.pid, now.ppid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := p.Terminate(0); err != nil {
		t.Fatal(err)
	}
	if !alive(e) {
		t.Fatalf("escapee %d without a marker ended by Terminate: the test needs one that is not", e.pid)
	}
	if err := EndAll(0); err != nil {
		t.Fatal(err)
	}
	if alive(e) {
		t.Errorf("escapee %d outlives EndAll", e.pid)
	}
}

func TestKernelAtLeast(t *testing.T) {
	for _, tc := range []struct {
		release string
		want    bool
	}{
		{"6.1.0-18-amd64", true},
		{"4.1.52", true},
		{"4.14.221", true},
		{"4.0.9", false},
		{"3.18.140-openwrt", false},
		{"2.6.36", false},
		{"5", true},
		{"", false},
		{"x.y", false},
	} {
		if got := kernelAtLeast(tc.release, 4, 1); got != tc.want {
			t.Errorf("kernelAtLeast(%q, 4, 1) = %v, want %v", tc.release, got, tc.want)
		}
	}
}
