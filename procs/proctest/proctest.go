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
	"syscall"
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

// Named is a process a test's program recorded, with the name it gave.
type Named struct {
	Name string
	Stat
}

// WaitRecorded waits until the file at path, which a test's program
// appends "NAME PID" lines to, names first+n processes, and returns the n
// after the first; the test kills whatever is left of them when it ends.
// Each must be running, unless ended is true: they may have been ended
// already.
func WaitRecorded(t testing.TB, path string, first, n int, ended bool) []Named {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(b) > 0 && len(lines) >= first+n {
			var ns []Named
			for _, l := range lines[first : first+n] {
				name, p, _ := strings.Cut(l, " ")
				pid, err := strconv.Atoi(p)
				if err != nil {
					t.Fatalf("%s: %q", path, l)
				}
				st, ok := Read(pid)
				if !ok && !ended {
					t.Fatalf("%s %d is gone before the test began", name, pid)
				}
				if !ok {
					st = Stat{PID: pid, Start: ^uint64(0)} // no process starts then
				}
				e := Named{name, st}
				t.Cleanup(func() {
					if !e.Gone() {
						syscall.Kill(e.PID, syscall.SIGKILL)
					}
				})
				ns = append(ns, e)
			}
			return ns
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d processes recorded after 20s, want %d: %q", len(lines), first+n, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// WaitNamedGone fails unless every one of ns is gone (no /proc entry, not
// even a zombie) within timeout.
func WaitNamedGone(t testing.TB, timeout time.Duration, ns []Named) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var left []string
		for _, e := range ns {
			if !e.Gone() {
				st, _ := Read(e.PID)
				left = append(left, e.Name+" "+strconv.Itoa(e.PID)+" state "+string(st.State)+" ppid "+strconv.Itoa(st.PPID))
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still running %v after: %s", timeout, strings.Join(left, "; "))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
