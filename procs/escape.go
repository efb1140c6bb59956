package procs

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Escapees are processes a child started, directly or not, that left its
// process group (setsid, setpgid, a daemon's double fork), so that the
// group signals of the ladder miss them. Each child's environment carries
// a marker, WSBRIDGE_CHILD=TOKEN-N (TOKEN random per daemon, N per child),
// which its descendants inherit, and Terminate notes the leader's
// descendants outside its group before it signals anything, while they
// still hang off the leader. After the group is gone, Terminate looks in
// /proc for both, and for their descendants, and ends them with the same
// ladder. What can still escape a session: a process that clears its
// environment and whose parent was gone before Terminate began (an
// env -i daemon that double-forks), and a process handed to something
// outside the daemon (systemd-run, at). EndAll and KillAll, for a daemon
// about to exit, also end every child of the daemon, which a subreaper's
// orphans are, and their descendants.
//
// A subreaper's Terminate reads the kernel's lists of children instead
// (see findEscapees), and falls back to a walk. The walk reads
// /proc/PID/stat of every process and /proc/PID/environ of the
// candidates: descendants of the daemon when it is a subreaper (an
// orphan can only come to us), every process otherwise; never members of
// a group whose leader is still running (that group's own ladder ends
// them). Concurrent scans are coalesced: one walk of /proc serves every
// Terminate waiting for one.

const markerKey = "WSBRIDGE_CHILD"

// markerToken tells this daemon's children from another daemon's.
var markerToken = sync.OnceValue(func() string {
	b := make([]byte, 8)
	rand.Read(b) // never fails on Linux
	return hex.EncodeToString(b)
})

var markerSeq atomic.Uint64

// newMarker returns the marker value of a new child.
func newMarker() string {
	return markerToken() + "-" + strconv.FormatUint(markerSeq.Add(1), 10)
}

// withMarker returns env without any marker of its own and with
// markerKey=marker last: getenv takes the first of duplicates.
func withMarker(env []string, marker string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if len(kv) > len(markerKey) && kv[:len(markerKey)] == markerKey && kv[len(markerKey)] == '=' {
			continue
		}
		out = append(out, kv)
	}
	return append(out, markerKey+"="+marker)
}

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

// descendsFrom reports whether pid's chain of parents reaches root.
func (t *procTable) descendsFrom(pid, root int) bool {
	for i := 0; i < len(t.byPID) && pid > 1; i++ {
		e, ok := t.byPID[pid]
		if !ok {
			return false
		}
		if e.ppid == root {
			return true
		}
		pid = e.ppid
	}
	return false
}

// match returns the live processes for which hit is true, and every live
// descendant of theirs, the daemon excluded.
func (t *procTable) match(hit func(*procEntry) bool) []procEntry {
	children := make(map[int][]*procEntry)
	for _, e := range t.byPID {
		children[e.ppid] = append(children[e.ppid], e)
	}
	seen := make(map[int]bool)
	var out []procEntry
	var add func(e *procEntry)
	add = func(e *procEntry) {
		if seen[e.pid] || e.pid == t.self {
			return
		}
		seen[e.pid] = true
		if !e.zombie {
			out = append(out, *e)
		}
		for _, c := range children[e.pid] {
			add(c)
		}
	}
	for _, e := range t.byPID {
		if hit(e) {
			add(e)
		}
	}
	return out
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

// endMatching ends the processes hit selects (and their descendants)
// with the ladder of what is left of a group: SIGTERM and SIGCONT, poll
// for up to grace+100ms, look again, SIGKILL, poll for up to 1s. Each
// look is a new walk, so processes they started meanwhile are found too.
// A process counts as gone once it is a zombie.
func endMatching(hit func(*procEntry) bool, grace time.Duration, find func(func(*procEntry) bool) ([]procEntry, error)) error {
	found, err := find(hit)
	if err != nil || len(found) == 0 {
		return err
	}
	signalAll(found, syscall.SIGTERM, syscall.SIGCONT)
	if pollGone(found, grace+groupWait) {
		if found, err = find(hit); err != nil || len(found) == 0 {
			return err
		}
	}
	for range 2 {
		signalAll(found, syscall.SIGKILL)
		pollGone(found, killWait)
		if found, err = find(hit); err != nil || len(found) == 0 {
			return err
		}
	}
	return fmt.Errorf("procs: %d processes that left the group still running %v after SIGKILL (PID %d first)", len(found), killWait, found[0].pid)
}

func find(hit func(*procEntry) bool) ([]procEntry, error) {
	t, err := snapshot()
	if err != nil {
		return nil, err
	}
	return t.match(hit), nil
}

// findEscapees returns the find of leader's Terminate, once its group
// is gone. A subreaper is the parent of any orphan, so what the session
// left is under the daemon, outside the subtrees of the other children
// still running: the kernel's lists of children give that at a cost of
// the daemon's threads and the escapees, where a walk of /proc reads
// every process on the machine (about 30ms with 1000 idle sessions). The
// leader is looked under even while it is registered (SIGKILL did not end
// it yet): what it started hangs off it. The walk remains for a daemon
// that is no subreaper or a kernel without the lists
// (CONFIG_PROC_CHILDREN).
func findEscapees(leader int) func(func(*procEntry) bool) ([]procEntry, error) {
	return func(hit func(*procEntry) bool) ([]procEntry, error) {
		adopts, running := theReaper.groups()
		if adopts {
			if t, ok := subtree(os.Getpid(), running, leader); ok {
				return t.match(hit), nil
			}
		}
		return find(hit)
	}
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

// signalAll signals each process that is still the one the walk saw. A
// PID reused between that check and the kill would be signalled: the
// window is one system call wide.
func signalAll(es []procEntry, sigs ...syscall.Signal) {
	for _, e := range es {
		if now, ok := readStat(e.pid); ok && now.start == e.start {
			for _, sig := range sigs {
				unix.Kill(e.pid, sig)
			}
		}
	}
}

// pollGone polls every groupPoll for up to d until each of es is gone,
// or a zombie that another process is to reap; ours the reaper takes, so
// that none is left when Terminate returns.
func pollGone(es []procEntry, d time.Duration) bool {
	deadline := time.Now().Add(d)
	self := os.Getpid()
	for {
		left := false
		for _, e := range es {
			if now, ok := readStat(e.pid); ok && now.start == e.start && (!now.zombie || now.ppid == self) {
				left = true
				break
			}
		}
		if !left {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(groupPoll)
	}
}

// noteEscapees records the descendants of the still running leader that
// are outside its group, for endEscapees: one that cleared its
// environment is found that way, as long as its parent is alive when
// Terminate begins.
func (p *Process) noteEscapees() {
	if p.marker == "" {
		return // a fake child of the tests
	}
	// The lists of children, where the kernel has them, read only the
	// leader's subtree; a walk reads every process on the machine.
	var found []procEntry
	if t, ok := subtree(p.PID, map[int]bool{p.PID: true}, 0); ok {
		for _, e := range t.byPID {
			if !e.zombie {
				found = append(found, *e)
			}
		}
	} else if t, err := snapshot(); err == nil {
		found = t.match(func(e *procEntry) bool { return e.pid == p.PID })
	} else {
		return
	}
	for _, e := range found {
		if e.pgid != p.PID {
			if p.escapees == nil {
				p.escapees = make(map[int]uint64)
			}
			p.escapees[e.pid] = e.start
		}
	}
}

// endEscapees ends what p's descendants left running outside its group:
// those carrying its marker, those noteEscapees saw, and their
// descendants.
func (p *Process) endEscapees(grace time.Duration) error {
	if p.marker == "" {
		return nil // a fake child of the tests
	}
	err := endMatching(func(e *procEntry) bool {
		if start, ok := p.escapees[e.pid]; ok && start == e.start {
			return true
		}
		return e.marker == p.marker
	}, grace, findEscapees(p.PID))
	if err != nil {
		return fmt.Errorf("procs: terminate %d: %w", p.PID, err)
	}
	return nil
}

// ours selects every process this daemon started, directly or not, that
// a walk can tell: its children (a subreaper's orphans are its children
// too) and any process carrying one of its markers.
func ours() func(*procEntry) bool {
	self := os.Getpid()
	prefix := markerToken() + "-"
	return func(e *procEntry) bool {
		return e.ppid == self || len(e.marker) > len(prefix) && e.marker[:len(prefix)] == prefix
	}
}

// EndAll ends every process the daemon started that is still running
// (see ours) with the ladder of what is left of a group, grace
// stretching its first wait. It is for a daemon about to exit, once its
// sessions have ended their children with Terminate: it reaches what
// they could not attribute, such as a process that cleared its
// environment after leaving its group.
func EndAll(grace time.Duration) error {
	if err := endMatching(ours(), grace, find); err != nil {
		return fmt.Errorf("procs: end all: %w", err)
	}
	return nil
}
