package procs

import (
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Status is how a process ended.
type Status struct {
	Code   int            // exit code, when it exited; -1 when killed by a signal
	Signal syscall.Signal // the signal that killed it, or 0
}

// Success reports whether the process exited with code 0.
func (s Status) Success() bool { return s.Signal == 0 && s.Code == 0 }

// String reads "exit status 3" or "killed by signal 15 (terminated)".
func (s Status) String() string {
	if s.Signal != 0 {
		return "killed by signal " + strconv.Itoa(int(s.Signal)) + " (" + s.Signal.String() + ")"
	}
	return "exit status " + strconv.Itoa(s.Code)
}

func statusOf(ws unix.WaitStatus) Status {
	if ws.Signaled() {
		return Status{Code: -1, Signal: ws.Signal()}
	}
	return Status{Code: ws.ExitStatus()}
}

// reaper reaps the children of the whole process. Its goroutine runs while
// a child is registered, or for good once orphans is set; it is started by
// fork or ReapOrphans and stops itself, under mu, when nothing is left to
// wait for. mu is never held across a fork: a burst of slow forks (a large
// process on a small board, or qemu) must not keep exits from being
// reaped.
type reaper struct {
	mu      sync.Mutex
	procs   map[int]*Process // registered children by PID
	running bool             // a loop goroutine is running
	orphans bool             // ReapOrphans mode: wait4(-1), reap everything
	adopts  bool             // orphans are reparented to us: a subreaper, or PID 1
	sigc    chan os.Signal   // SIGCHLD, coalesced: one pending value means "scan"

	// In orphans mode wait4(-1) can reap a child of ours before fork has
	// registered it. While forks are in flight, unknown children's
	// statuses are kept in early for fork to claim; the rest are strays.
	forking int
	early   map[int]Status
	strays  uint64 // children reaped in orphans mode that were not ours
}

var theReaper reaper

// fork runs forkExec and registers p under the new child's PID. A child
// that exits before it is registered is not lost: in orphans mode its
// status waits in early; otherwise only registered PIDs are ever waited
// for, and fork checks the new one once itself, since its SIGCHLD may have
// been taken by a scan that did not know it yet.
func (r *reaper) fork(p *Process, forkExec func() (int, error)) error {
	r.mu.Lock()
	r.notify()
	r.forking++
	r.mu.Unlock()

	pid, err := forkExec()

	r.mu.Lock()
	defer r.mu.Unlock()
	r.forking--
	defer r.settleEarly()
	if err != nil {
		return err
	}
	p.PID = pid
	if s, ok := r.early[pid]; ok {
		delete(r.early, pid)
		p.reaped(s)
		return nil
	}
	r.procs[pid] = p
	if !r.orphans && !r.reapOne(pid, p) {
		return nil // reaped already
	}
	r.startLocked()
	return nil
}

// settleEarly counts as strays the early statuses no fork in flight can
// claim any more.
func (r *reaper) settleEarly() {
	if r.forking == 0 && len(r.early) > 0 {
		r.strays += uint64(len(r.early))
		clear(r.early)
	}
}

// notify subscribes to SIGCHLD before the first child exists, so that no
// exit goes unnoticed. The subscription is kept for the life of the
// process: between children the channel just holds one stale value.
// It also stops inherited descriptors from reaching children.
func (r *reaper) notify() {
	if r.sigc == nil {
		closeOnExecInherited()
		r.procs = make(map[int]*Process)
		r.early = make(map[int]Status)
		r.sigc = make(chan os.Signal, 1)
		signal.Notify(r.sigc, syscall.SIGCHLD)
	}
}

func (r *reaper) startLocked() {
	if !r.running {
		r.running = true
		go r.loop()
	}
}

// loop scans once at once (a child may have exited before the goroutine
// started), then on every SIGCHLD, until reap says to stop.
func (r *reaper) loop() {
	for r.reap() {
		<-r.sigc
	}
}

// reap reaps what has exited and reports whether the loop should go on.
func (r *reaper) reap() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.orphans {
		r.reapAny()
		return true
	}
	r.reapRegistered()
	if len(r.procs) == 0 {
		r.running = false
		return false
	}
	return true
}

// reapRegistered waits for each registered child by PID, touching no other
// child of the process. It costs one wait4 per registered child per
// SIGCHLD.
func (r *reaper) reapRegistered() {
	for pid, p := range r.procs {
		r.reapOne(pid, p)
	}
}

// reapOne reaps registered child pid if it has exited, and reports
// whether it is still registered.
func (r *reaper) reapOne(pid int, p *Process) bool {
	var ws unix.WaitStatus
	wpid, err := wait4(pid, &ws)
	switch {
	case err == unix.ECHILD:
		// Reaped by somebody else (a wait4(-1) outside procs): the
		// status is lost.
		p.exited(Status{Code: -1})
	case err != nil || wpid != pid:
		return true
	default:
		p.reaped(statusOf(ws))
	}
	delete(r.procs, pid)
	return false
}

// reapAny reaps every child that has exited, ours or reparented to us.
func (r *reaper) reapAny() {
	for {
		var ws unix.WaitStatus
		pid, err := wait4(-1, &ws)
		if err != nil || pid <= 0 {
			return // ECHILD: no children; 0: none has exited
		}
		switch p, ok := r.procs[pid]; {
		case ok:
			p.reaped(statusOf(ws))
			delete(r.procs, pid)
		case r.forking > 0:
			r.early[pid] = statusOf(ws) // maybe ours, not registered yet
		default:
			r.strays++
		}
	}
}

func wait4(pid int, ws *unix.WaitStatus) (int, error) {
	for {
		wpid, err := unix.Wait4(pid, ws, unix.WNOHANG, nil)
		if err != unix.EINTR {
			return wpid, err
		}
	}
}

// reaped records how the leader ended. When its group is empty too, it
// is marked gone at once: from now on its ID may be reused by another
// group, which Signal and Terminate must not touch.
func (p *Process) reaped(s Status) {
	if p.sys.kill(-p.PID, 0) == unix.ESRCH {
		p.gone.Store(true)
	}
	p.exited(s)
}

func (p *Process) exited(s Status) {
	p.status = s
	close(p.done)
	if p.onExit != nil {
		p.onExit()
	}
}

// ReapOrphans makes the daemon a child subreaper (PR_SET_CHILD_SUBREAPER,
// Linux 3.4) and switches the reaper to reaping every child that exits,
// ours or reparented to us, so that no zombie survives even when the
// daemon is PID 1 of a container. Call it once, early, from main; the
// reaper goroutine then runs for the life of the process.
//
// It is incompatible with os/exec (or anything else that waits for its own
// children) in the same process: the reaper takes their exit statuses.
//
// When the kernel refuses the subreaper flag the reaper still reaps every
// child, and the error is returned unless the daemon is PID 1 (which
// adopts orphans anyway).
func ReapOrphans() error {
	err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	r := &theReaper
	r.mu.Lock()
	r.notify()
	r.orphans = true
	r.adopts = err == nil || os.Getpid() == 1
	if r.running {
		// Make the running loop scan now, in the new mode.
		select {
		case r.sigc <- syscall.SIGCHLD:
		default:
		}
	}
	r.startLocked()
	r.mu.Unlock()
	if err != nil && os.Getpid() != 1 {
		return fmt.Errorf("procs: become child subreaper: %w", err)
	}
	return nil
}

// groups reports whether orphans come to us, and the process groups
// whose leader is still running, for a walk of /proc.
func (r *reaper) groups() (adopts bool, running map[int]bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	running = make(map[int]bool, len(r.procs))
	for pid := range r.procs {
		running[pid] = true
	}
	return r.adopts, running
}

// KillAll sends SIGKILL to the process group of every child not yet
// reaped, and then to every other process the daemon started that it can
// find (see EndAll), for a daemon that must exit at once (a second
// SIGTERM): without it, children in their own groups, and what they left
// outside them, would outlive the daemon. It waits for nothing but two
// walks of /proc (the second finds what the first one's processes started
// meanwhile); the caller is about to exit.
func KillAll() {
	theReaper.mu.Lock()
	for _, p := range theReaper.procs {
		p.Signal(syscall.SIGKILL)
	}
	theReaper.mu.Unlock()
	hit := ours()
	for range 2 {
		if found, err := find(hit); err == nil {
			signalAll(found, syscall.SIGKILL)
		}
	}
}
