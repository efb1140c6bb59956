package procs

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
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
