package procs

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// The process table escape.go works from: what /proc says of each
// process, read without allocating per process, and the subtree of a
// session's leader as the kernel's children lists give it.

// procEntry is what a scan knows of one process.
type procEntry struct {
	pid, ppid, pgid int
	start           uint64 // start time in clock ticks since boot: tells a reused PID apart
	zombie          bool
	marker          string // its WSBRIDGE_CHILD, when read
}

// parseStat parses /proc/PID/stat: "pid (comm) state ppid pgrp ...", where
// comm may hold anything, parentheses and spaces included.
func parseStat(b []byte) (procEntry, bool) {
	open := bytes.IndexByte(b, '(')
	close := bytes.LastIndexByte(b, ')')
	if open < 1 || close < open {
		return procEntry{}, false
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b[:open])))
	if err != nil || pid <= 0 {
		return procEntry{}, false
	}
	f := bytes.Fields(b[close+1:])
	if len(f) < 20 || len(f[0]) != 1 {
		return procEntry{}, false
	}
	e := procEntry{pid: pid, zombie: f[0][0] == 'Z' || f[0][0] == 'X'}
	var err1, err2, err3 error
	e.ppid, err1 = strconv.Atoi(string(f[1]))
	e.pgid, err2 = strconv.Atoi(string(f[2]))
	e.start, err3 = strconv.ParseUint(string(f[19]), 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return procEntry{}, false
	}
	return e, true
}

// markerIn returns the value of the first markerKey in environ, a
// /proc/PID/environ block (NUL-separated KEY=VALUE).
func markerIn(environ []byte) (string, bool) {
	key := []byte(markerKey + "=")
	for len(environ) > 0 {
		kv := environ
		if i := bytes.IndexByte(environ, 0); i >= 0 {
			kv, environ = environ[:i], environ[i+1:]
		} else {
			environ = nil
		}
		if v, ok := bytes.CutPrefix(kv, key); ok {
			return string(v), true
		}
	}
	return "", false
}

func readStat(pid int) (procEntry, bool) {
	var buf [512]byte // a stat line is about 300 bytes
	b, err := readProcFile(buf[:], pid, "stat")
	if err != nil {
		return procEntry{}, false
	}
	return parseStat(b)
}

// readProcFile reads /proc/PID/name into buf, growing it up to 1 MiB,
// and returns what it read. No os.File: a walk reads thousands of these.
func readProcFile(buf []byte, pid int, name string) ([]byte, error) {
	var path [32]byte
	p := append(strconv.AppendInt(append(path[:0], "/proc/"...), int64(pid), 10), '/')
	fd, err := unix.Open(string(append(p, name...)), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	n := 0
	for {
		if n == len(buf) {
			if len(buf) >= 1<<20 {
				return buf[:n], nil
			}
			buf = append(buf, make([]byte, len(buf))...)
		}
		m, err := unix.Read(fd, buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if m == 0 {
			return buf[:n], nil
		}
		n += m
	}
}

// procTable is one walk of /proc.
type procTable struct {
	byPID map[int]*procEntry
	self  int
}

// environBuf is scanProcs's buffer: walks are one at a time (snapshot).
var environBuf = make([]byte, 4096)

// scanProcs walks /proc once. Environments are read for the candidates
// (see the package comment); running lists the process groups whose
// leader is still running.
func scanProcs(adopts bool, running map[int]bool) (*procTable, error) {
	d, err := os.Open("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	t := &procTable{byPID: make(map[int]*procEntry, len(names)), self: os.Getpid()}
	for _, n := range names {
		pid, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		if e, ok := readStat(pid); ok {
			t.byPID[pid] = &e
		}
	}
	for pid, e := range t.byPID {
		if e.zombie || pid == t.self || running[e.pgid] || adopts && !t.descendsFrom(pid, t.self) {
			continue
		}
		b, err := readProcFile(environBuf, pid, "environ")
		if err == nil {
			e.marker, _ = markerIn(b)
		}
		if cap(b) > cap(environBuf) && cap(b) <= 64<<10 {
			environBuf = b[:cap(b)] // keep a larger buffer, not a huge one
		}
	}
	return t, nil
}

// scans coalesces concurrent walks of /proc: a caller waits for the next
// walk that starts after it asked, and the first caller to find none
// running makes the walks, for itself and for whoever asks meanwhile.
var scans struct {
	mu      sync.Mutex
	running bool
	next    *scanResult // what callers waiting for the next walk get
}

type scanResult struct {
	done  chan struct{}
	table *procTable
	err   error
}

// snapshot returns a walk of /proc that began after the call.
func snapshot() (*procTable, error) {
	scans.mu.Lock()
	if scans.next == nil {
		scans.next = &scanResult{done: make(chan struct{})}
	}
	mine := scans.next
	if scans.running {
		scans.mu.Unlock()
		<-mine.done
		return mine.table, mine.err
	}
	scans.running = true
	for scans.next != nil {
		r := scans.next
		scans.next = nil
		scans.mu.Unlock()
		adopts, running := theReaper.groups()
		r.table, r.err = scanProcs(adopts, running)
		close(r.done)
		scans.mu.Lock()
	}
	scans.running = false
	scans.mu.Unlock()
	return mine.table, mine.err
}

// subtree reads root's descendants, root excluded, from the kernel's
// lists of children (/proc/PID/task/TID/children), with the markers of
// those outside a running group; it skips the leaders of running groups
// (the daemon's children) but enter, and their subtrees, which their own
// ladders end. ok is false when the kernel has no such lists. Like a walk,
// it can miss a process forked while it reads: each ladder looks again.
func subtree(root int, running map[int]bool, enter int) (*procTable, bool) {
	var kids []int
	var ok bool
	if root == os.Getpid() && orphansToLeader() {
		// The daemon has a dozen threads, and every orphan is a child
		// of its main thread: one list, not one per thread. The
		// leader to enter may hang off any thread; it is read too.
		kids, ok = taskChildren(root, root, nil)
		if ok && enter > 0 {
			kids = append(kids, enter)
		}
	} else {
		kids, ok = childrenOf(root, nil)
	}
	if !ok {
		return nil, false
	}
	t := &procTable{byPID: make(map[int]*procEntry), self: os.Getpid()}
	var buf []byte
	for len(kids) > 0 {
		pid := kids[len(kids)-1]
		kids = kids[:len(kids)-1]
		if _, dup := t.byPID[pid]; dup || running[pid] && pid != enter {
			continue // a registered leader is a child of the daemon: skip it unread
		}
		e, ok := readStat(pid)
		if !ok {
			continue
		}
		if !e.zombie && !running[e.pgid] {
			if buf == nil {
				buf = make([]byte, 4096)
			}
			if b, err := readProcFile(buf, pid, "environ"); err == nil {
				e.marker, _ = markerIn(b)
				buf = b[:cap(b)]
			}
		}
		t.byPID[pid] = &e
		kids, _ = childrenOf(pid, kids)
	}
	return t, true
}

// childrenOf appends pid's children to out, from the lists of each of
// its threads. ok is false when pid is gone or the kernel has no lists.
func childrenOf(pid int, out []int) ([]int, bool) {
	tasks, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	if err != nil {
		return out, false
	}
	found := false
	for _, task := range tasks {
		tid, err := strconv.Atoi(task.Name())
		if err != nil {
			continue
		}
		var ok bool
		if out, ok = taskChildren(pid, tid, out); ok {
			found = true
		} // else the thread has exited, or no lists (found stays false)
	}
	return out, found
}

// taskChildren appends the children of thread tid of pid to out, from
// /proc/PID/task/TID/children.
func taskChildren(pid, tid int, out []int) ([]int, bool) {
	var buf [4096]byte
	b, err := readProcFile(buf[:], pid, "task/"+strconv.Itoa(tid)+"/children")
	if err != nil {
		return out, false
	}
	for _, f := range bytes.Fields(b) {
		if c, err := strconv.Atoi(string(f)); err == nil {
			out = append(out, c)
		}
	}
	return out, true
}

// orphansToLeader reports whether the kernel gives a subreaper's orphans
// to its main thread: since Linux 4.1 (find_alive_thread) an orphan goes
// to the first live thread of the reaper, its leader while it runs; older
// kernels gave it to whichever thread had forked its ancestor.
var orphansToLeader = sync.OnceValue(func() bool {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return false
	}
	return kernelAtLeast(unix.ByteSliceToString(u.Release[:]), 4, 1)
})

// kernelAtLeast reports whether a kernel release such as "6.1.0-18-amd64"
// is major.minor or later.
func kernelAtLeast(release string, major, minor int) bool {
	maj, rest, _ := strings.Cut(release, ".")
	m, err := strconv.Atoi(maj)
	if err != nil {
		return false
	}
	n := 0
	for _, c := range rest {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
	}
	return m > major || m == major && n >= minor
}
