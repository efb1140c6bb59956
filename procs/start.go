package procs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrNotFound is the error when a bare command name is in no directory of
// the PATH.
var ErrNotFound = errors.New("executable file not found in $PATH")

// Spec says what to start.
type Spec struct {
	// Path is the executable. A name without a slash is looked up in the
	// PATH of Env, or the daemon's PATH when Env has none; only absolute
	// PATH directories are searched. A relative path with a slash is
	// relative to Dir.
	Path string
	Args []string // argv, Args[0] included; empty means []string{Path}
	// Env is the child's environment, KEY=VALUE; nil means an empty one
	// (nothing of the daemon's environment leaks in). Start adds
	// WSBRIDGE_CHILD, the marker by which Terminate finds the processes
	// the child leaves outside its process group (replacing any in Env).
	Env []string
	Dir string // working directory; "" keeps the daemon's

	// Stderr, when set, is called with each line the child writes on
	// stderr (newline or CRLF stripped; lines longer than 4 KiB are split,
	// a last unterminated line is delivered at EOF), in order, from one
	// goroutine procs owns; line is valid only during the call. The
	// callback must not block for long (the child blocks once its stderr
	// pipe is full) and must not call Terminate. No call happens after
	// Terminate returns.
	// When nil the child's stderr is the daemon's.
	Stderr func(line []byte)

	// Parker, when set, lets the stderr reader park while the child is
	// silent instead of keeping a goroutine blocked in a read; Stderr is
	// then called from whichever goroutine resumes it, still one at a
	// time and in order.
	Parker Parker

	// OnExit, when set, is called once the leader has exited and been
	// reaped (Done is closed), on the reaper's goroutine with its lock
	// held, possibly before Start returns: it must return at once and
	// call nothing of procs. It tells a caller the leader is gone while
	// something else (a background job) may hold stdout open.
	OnExit func()
}

// Process is a started child, leader of its own process group (its PGID is
// its PID).
//
// Stdin and Stdout are the caller's to use and Stdout is the caller's to
// close; Terminate closes Stdin. Done, Status, Signal and Terminate are
// safe to call from any goroutine.
type Process struct {
	PID    int
	Stdin  *os.File // our end of the child's stdin; nonblocking, pollable (deadlines work)
	Stdout *os.File // our end of the child's stdout; nonblocking, pollable

	done   chan struct{} // closed by the reaper once the leader is reaped
	status Status        // written by the reaper before done is closed
	onExit func()        // Spec.OnExit

	stderr       *os.File      // read and closed by the stderr goroutine; nil without Spec.Stderr
	stderrDone   chan struct{} // closed when the stderr reader has finished
	stderrReader *stderrReader

	marker string // WSBRIDGE_CHILD in its environment: finds what it left outside its group
	swept  bool   // under termMu: Terminate ended everything found with marker
	// escapees, under termMu: PID to start time of the leader's
	// descendants outside its group when Terminate began.
	escapees map[int]uint64

	sys    *system
	termMu sync.Mutex  // serializes Terminate
	gone   atomic.Bool // the group is known empty: signal nothing (its ID may be reused)
}

// Start starts the child described by spec. The returned Process must be
// ended with Terminate (once the child has exited, a read of the
// daemon's lists of children in a subreaper, a walk of /proc otherwise:
// see BenchmarkTerminateAmongIdle) and its Stdout closed.
//
// The child gets the three descriptors and nothing else: the first Start
// marks every descriptor the daemon inherited close-on-exec.
func Start(spec Spec) (*Process, error) {
	p, err := start(spec, osSystem)
	if err != nil {
		return nil, fmt.Errorf("procs: start %q: %w", spec.Path, err)
	}
	return p, nil
}

func start(spec Spec, sys *system) (*Process, error) {
	argv0, err := lookPath(spec.Path, spec.Env, spec.Dir)
	if err != nil {
		return nil, err
	}
	args := spec.Args
	if len(args) == 0 {
		args = []string{spec.Path}
	}

	// fds to close when done: the child's ends always, ours on failure.
	var child, ours []int
	defer func() { closeFDs(child) }()
	fail := func(err error) (*Process, error) {
		closeFDs(ours)
		return nil, err
	}
	inR, inW, err := pipe()
	if err != nil {
		return fail(err)
	}
	child, ours = append(child, inR), append(ours, inW)
	outR, outW, err := pipe()
	if err != nil {
		return fail(err)
	}
	child, ours = append(child, outW), append(ours, outR)
	errFD := 2 // the daemon's stderr
	errR := -1
	if spec.Stderr != nil {
		var errW int
		errR, errW, err = pipe()
		if err != nil {
			return fail(err)
		}
		child, ours = append(child, errW), append(ours, errR)
		errFD = errW
	}

	// Our ends only: the child's stay blocking, as programs expect.
	for _, fd := range ours {
		if err := unix.SetNonblock(fd, true); err != nil {
			return fail(fmt.Errorf("set nonblocking: %w", err))
		}
	}

	p := &Process{done: make(chan struct{}), sys: sys, marker: newMarker(), onExit: spec.OnExit}
	attr := &syscall.ProcAttr{
		Dir:   spec.Dir,
		Env:   withMarker(spec.Env, p.marker),
		Files: []uintptr{uintptr(inR), uintptr(outW), uintptr(errFD)},
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	}
	if err := theReaper.fork(p, func() (int, error) { return sys.forkExec(argv0, args, attr) }); err != nil {
		return fail(err)
	}

	// Our ends are nonblocking, so os.NewFile registers them with the
	// poller. Never call Fd on them: it makes them blocking again.
	p.Stdin = os.NewFile(uintptr(inW), "child stdin")
	p.Stdout = os.NewFile(uintptr(outR), "child stdout")
	if spec.Stderr != nil {
		p.stderr = os.NewFile(uintptr(errR), "child stderr")
		p.stderrDone = make(chan struct{})
		r := &stderrReader{p: p, split: lineSplitter{emit: spec.Stderr}, parker: spec.Parker}
		p.stderrReader = r
		var err error
		if r.rc, err = p.stderr.SyscallConn(); err != nil {
			p.stderr.Close()
			close(p.stderrDone)
		} else {
			go r.run()
		}
	}
	return p, nil
}

// pipe returns a close-on-exec pipe, both ends blocking. Close-on-exec
// keeps a child from inheriting the pipes of children started at the same
// time; ForkExec clears it on the ends it installs as 0, 1 and 2.
func pipe() (r, w int, err error) {
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
		return -1, -1, fmt.Errorf("pipe2: %w", err)
	}
	return fds[0], fds[1], nil
}

func closeFDs(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// Done returns a channel closed once the leader has exited and been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Status is how the leader ended; the zero Status until Done is closed.
func (p *Process) Status() Status {
	select {
	case <-p.done:
		return p.status
	default:
		return Status{}
	}
}

// Signal sends sig to the child's whole process group. A group that is
// gone is not an error.
//
// Once the group is known to be empty (the leader was reaped with nobody
// left in its group, or Terminate returned nil) Signal does nothing, since
// the ID may be reused. Members that outlive the leader keep the ID taken;
// when the last of them goes, only Terminate notices: end every child with
// Terminate rather than signalling it long after.
func (p *Process) Signal(sig syscall.Signal) error {
	if p.gone.Load() {
		return nil
	}
	err := p.sys.kill(-p.PID, sig)
	if err == nil || errors.Is(err, unix.ESRCH) {
		return nil
	}
	return fmt.Errorf("procs: signal %v to process group %d: %w", sig, p.PID, err)
}

// LookPath returns the executable Start would run for spec, or why there is
// none, without starting anything: a daemon can check its programs before
// it serves.
func LookPath(spec Spec) (string, error) {
	path, err := lookPath(spec.Path, spec.Env, spec.Dir)
	if err != nil {
		// No package prefix: this is what a user is told at start.
		return "", fmt.Errorf("%q: %w", spec.Path, err)
	}
	return path, nil
}

// lookPath resolves file the way execvp would, with the PATH of env (the
// daemon's when env has none), skipping relative PATH entries so that the
// working directory never decides what runs.
func lookPath(file string, env []string, dir string) (string, error) {
	if file == "" {
		return "", unix.ENOENT
	}
	if strings.Contains(file, "/") {
		check := file
		if dir != "" && !filepath.IsAbs(file) {
			check = filepath.Join(dir, file) // execve runs after the chdir
		}
		if err := executable(check); err != nil {
			return "", err
		}
		return file, nil
	}
	path, ok := lookupEnv(env, "PATH")
	if !ok {
		path = os.Getenv("PATH")
	}
	for _, d := range filepath.SplitList(path) {
		if !filepath.IsAbs(d) {
			continue
		}
		if p := filepath.Join(d, file); executable(p) == nil {
			return p, nil
		}
	}
	return "", ErrNotFound
}

// executable reports why path cannot be executed, or nil.
func executable(path string) error {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return err
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
	case unix.S_IFDIR:
		return unix.EISDIR
	default:
		// execve(2) refuses any other file with EACCES, as execvp's
		// search skips it: say so before start, not at each client.
		return fmt.Errorf("not a regular file: %w", unix.EACCES)
	}
	return unix.Access(path, unix.X_OK)
}

// lookupEnv returns the last value of key in env, as getenv would see a
// deduplicated env.
func lookupEnv(env []string, key string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], key); ok && strings.HasPrefix(v, "=") {
			return v[1:], true
		}
	}
	return "", false
}

// closeOnExecInherited marks every descriptor above 2 close-on-exec, once,
// before the first child is started: descriptors the daemon inherited
// without the flag (from a shell, a supervisor, a test harness) would
// otherwise leak into every child. Go opens its own descriptors with
// O_CLOEXEC, so once is enough; os/exec's ExtraFiles still work, since the
// descriptors it installs in a child are dup2'ed.
func closeOnExecInherited() {
	// close_range(2) with CLOSE_RANGE_CLOEXEC is Linux 5.11; older kernels
	// (common on boards) take the /proc walk.
	if unix.CloseRange(3, ^uint(0)>>1, unix.CLOSE_RANGE_CLOEXEC) == nil {
		return
	}
	closeOnExecFromProc()
}

func closeOnExecFromProc() {
	des, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return // no /proc: nothing better to do without a descriptor limit walk
	}
	for _, de := range des {
		if fd, err := strconv.Atoi(de.Name()); err == nil && fd > 2 {
			syscall.CloseOnExec(fd)
		}
	}
}
