// Package proctest reads what tests need of processes from /proc: a
// process's stat line (its parent, group and start time, which tells a
// reused PID apart), its children, whether it is gone, its memory and
// what it has written. For the tests of procs, bridge and cmd/wsbridge.
package proctest

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Stat is what a test needs of /proc/PID/stat.
type Stat struct {
	PID, PPID, PGID int
	State           byte   // R, S, Z, ...
	Start           uint64 // start time in clock ticks since boot: tells a reused PID apart
}

// Read reads /proc/pid/stat; ok is false when there is no such process.
func Read(pid int) (Stat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Stat{}, false
	}
	// The command name is in parentheses and may hold anything: split
	// after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return Stat{}, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return Stat{}, false
	}
	st := Stat{PID: pid, State: f[0][0]}
	st.PPID, _ = strconv.Atoi(f[1])
	st.PGID, _ = strconv.Atoi(f[2])
	st.Start, _ = strconv.ParseUint(f[19], 10, 64)
	return st, true
}

// MustStat reads a process that must exist.
func MustStat(t testing.TB, pid int) Stat {
	t.Helper()
	st, ok := Read(pid)
	if !ok {
		t.Fatalf("process %d does not exist", pid)
	}
	return st
}

// Gone reports whether the process p described is gone: no entry, or the
// PID now names another process. A zombie is not gone.
func (p Stat) Gone() bool {
	now, ok := Read(p.PID)
	return !ok || now.Start != p.Start
}

// WaitGone polls until every process in ps is gone, failing the test
// after timeout with the state of those left.
func WaitGone(t testing.TB, timeout time.Duration, ps ...Stat) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var left []string
		for _, p := range ps {
			if !p.Gone() {
				st, _ := Read(p.PID)
				left = append(left, strconv.Itoa(p.PID)+" state "+string(st.State)+" ppid "+strconv.Itoa(st.PPID))
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes still there after %v: %s", timeout, strings.Join(left, "; "))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ChildrenOf lists the processes whose parent is ppid, zombies included.
func ChildrenOf(ppid int) []Stat {
	ents, _ := os.ReadDir("/proc")
	var kids []Stat
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := Read(pid); ok && st.PPID == ppid {
			kids = append(kids, st)
		}
	}
	return kids
}

// WaitChildren polls until ppid has exactly n children and returns them.
func WaitChildren(t testing.TB, ppid, n int, timeout time.Duration) []Stat {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		kids := ChildrenOf(ppid)
		if len(kids) == n {
			return kids
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d has %d children after %v, want %d: %+v", ppid, len(kids), timeout, n, kids)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// StatusKB returns a "kB" field of /proc/pid/status, such as VmHWM
// (peak resident set) or VmRSS.
func StatusKB(t testing.TB, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("%s: %q: %v", field, line, err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// Written returns the bytes pid has written (wchar of /proc/pid/io).
func Written(t testing.TB, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "io"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "wchar:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	t.Fatalf("no wchar in /proc/%d/io", pid)
	return 0
}
