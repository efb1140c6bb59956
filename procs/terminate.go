package procs

import (
	"errors"
	"fmt"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// system is the seam for the OS calls whose failures tests need to fake
// (a group that never empties, a fork that fails). Start uses osSystem.
type system struct {
	forkExec func(argv0 string, argv []string, attr *syscall.ProcAttr) (int, error)
	kill     func(pid int, sig syscall.Signal) error
}

var osSystem = &system{
	forkExec: syscall.ForkExec,
	kill:     unix.Kill,
}

// The steps of the ladder; grace is added to each wait but the last.
const (
	stdinWait   = 100 * time.Millisecond // after closing stdin
	termWait    = 500 * time.Millisecond // after SIGTERM to the leader's group
	killWait    = time.Second            // after SIGKILL
	groupWait   = 100 * time.Millisecond // after SIGTERM to what is left of the group
	groupPoll   = 10 * time.Millisecond
	stderrDrain = 100 * time.Millisecond // for stderr EOF once the group is gone
)

// Terminate ends the child and its whole process group:
//
//  1. close Stdin, and wait up to grace+100ms for the leader to exit;
//  2. SIGTERM (and SIGCONT, for stopped members) to the group, wait up to
//     grace+500ms;
//  3. SIGKILL to the group, wait up to 1s;
//  4. once the leader is reaped, however it ended: while the group still
//     has members (zombies count until reaped), SIGTERM and SIGCONT them,
//     poll every 10ms for up to grace+100ms, then SIGKILL and poll for up
//     to 1s;
//  5. the same as 4 for the processes the child's descendants left
//     outside the group (setsid, setpgid, a double fork) and their own
//     descendants, found in /proc by the marker in their environment, or
//     as descendants of the leader when step 1 began (see EndAll for
//     what cannot be found either way).
//
// It then ends the stderr goroutine (waiting up to grace+100ms for EOF,
// which writers outside the group could hold back), so no Spec.Stderr call
// happens after it returns. Stdout is left to the caller.
//
// Terminate returns nil when the leader is reaped and the group is empty,
// an error otherwise. Members reparented to init stay in the group as
// zombies until init reaps them; an init that does not (some container
// and VM inits) makes Terminate fail after killing them, unless the daemon
// called ReapOrphans.
//
// Terminate is idempotent and safe to call concurrently (calls are
// serialized) and while the child exits on its own. Once the group is
// known to be empty (a Terminate returned nil, or the leader was reaped
// with nobody left in its group) it sends no signal, since the group's ID
// may belong to another group by then.
func (p *Process) Terminate(grace time.Duration) error {
	p.termMu.Lock()
	defer p.termMu.Unlock()
	select {
	case <-p.done:
	default:
		// What the leader started outside its group is reparented once
		// the leader is gone, which closing stdin may cause: note it
		// while it still hangs off the leader.
		if !p.swept {
			p.noteEscapees()
		}
	}
	if p.Stdin != nil {
		p.Stdin.Close() // may be closed already, by the caller or a first call
	}
	var err error
	if !p.gone.Load() {
		err = p.terminate(grace)
	}
	// Even a group found empty may have left processes outside it; they
	// may hold stderr, so they go before it is drained.
	if !p.swept {
		if serr := p.endEscapees(grace); serr != nil {
			err = errors.Join(err, serr)
		} else {
			p.swept = true
		}
	}
	p.stopStderr(grace)
	if err == nil {
		p.gone.Store(true)
	}
	return err
}

// terminate is the ladder, once Stdin is closed.
func (p *Process) terminate(grace time.Duration) error {
	if !p.wait(grace + stdinWait) {
		p.Signal(syscall.SIGTERM)
		p.Signal(syscall.SIGCONT)
		if !p.wait(grace + termWait) {
			p.Signal(syscall.SIGKILL)
			if !p.wait(killWait) {
				return fmt.Errorf("procs: terminate %d: still running %v after SIGKILL", p.PID, killWait)
			}
		}
	}
	if p.groupEmpty() {
		return nil
	}
	p.Signal(syscall.SIGTERM)
	p.Signal(syscall.SIGCONT)
	if p.pollEmpty(grace + groupWait) {
		return nil
	}
	p.Signal(syscall.SIGKILL)
	if p.pollEmpty(killWait) {
		return nil
	}
	return fmt.Errorf("procs: terminate %d: process group still has members %v after SIGKILL (zombies nobody reaps? see ReapOrphans)", p.PID, killWait)
}

// wait reports whether the leader was reaped within d.
func (p *Process) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-t.C:
		return false
	}
}

// groupEmpty reports whether the process group has no member left, zombie
// or not. A member we may not signal (EPERM) counts as present.
func (p *Process) groupEmpty() bool {
	return p.gone.Load() || p.sys.kill(-p.PID, 0) == unix.ESRCH
}

// pollEmpty polls groupEmpty every groupPoll for up to d.
func (p *Process) pollEmpty(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for !p.groupEmpty() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(groupPoll)
	}
	return true
}
