package process

import (
	"log/slog"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wsbridge/wsbridge/bridge/modes"
	"github.com/wsbridge/wsbridge/bridge/poll"
	"github.com/wsbridge/wsbridge/bridge/stdio"
	"github.com/wsbridge/wsbridge/bridge/transport"
	"github.com/wsbridge/wsbridge/framing"
	"github.com/wsbridge/wsbridge/procs"
)

// session pipes one client to one child process. It has two pumps, one per
// direction, and no goroutine of its own: a pump runs on a goroutine while
// data moves and parks in the server's poller while its side is idle, so an
// idle session holds no goroutine, stack or buffer. The session ends when
// both pumps have ended, on whichever goroutine ends last.
type session struct {
	id     uint64
	host   *modes.Host
	prog   *modes.Program
	client transport.Client
	proc   *procs.Process
	stdin  *stdio.Writer
	in     modes.Pump
	done   func(pid int, exit string) // runs once both pumps are done

	// Input pump state, owned by whichever goroutine runs it.
	stdinGone bool
	held      []byte       // an unfinished message held back from stdin (pooled; nil: none)
	heldKind  framing.Kind // held's kind

	// Output pump state, likewise.
	outRC    syscall.RawConn
	outR     poll.Reader
	out      stdio.Cutter
	sendErr  error // the client is gone: keep draining, send nothing
	outGrown bool  // stdout's pipe has been grown (see stdio.GrowPipe)
	outEmpty bool  // a read after the leader's exit found the pipe empty
	status   procs.Status

	outStop atomic.Bool  // stopOut: read nothing more, end
	live    atomic.Int32 // pumps still running

	// The leader's exit, which the reaper reports (see leaderExited):
	// from then on the output pump reads only what stdout held at the
	// exit, since a background job the program started may keep stdout
	// open, and even busy, for ever.
	reaped    atomic.Bool  // the leader has been reaped
	ready     atomic.Bool  // the pumps are set up: an exit can be acted on
	exitArmed atomic.Bool  // drainAfterExit has run
	exited    atomic.Bool  // drainEnd is set: the pump drains, then ends
	drainEnd  atomic.Int64 // outRead past which stdout is no longer the program's
	outRead   atomic.Int64 // bytes the output pump has read from stdout
}

// Serve pipes client c to a child of p started with env as its whole
// environment, and returns once the session runs: on the pumps'
// goroutines, calling done with the child's PID and how it exited once
// both pumps are done. id names the connection in logs. When the child
// cannot be started, the client is told, its answer awaited, and done
// called before Serve returns.
func Serve(h *modes.Host, p *modes.Program, c transport.Client, env []string, id uint64, done func(pid int, exit string)) {
	s := &session{id: id, host: h, prog: p, client: c, done: done}
	if !s.start(env) {
		// The client has its close frame; wait briefly for the answer.
		c.Begin(false, func() {})
		_ = c.Receive(func([]framing.Piece) error { return nil })
		s.end()
	}
}

// start starts the child and both pumps, then returns: the session runs on
// the pumps' goroutines and calls done when it is over. It reports false
// when the child could not be started (the client has been told).
func (s *session) start(env []string) bool {
	dec, enc, err := framing.New(s.prog.Framing)
	if err != nil {
		s.close(transport.CannotStart, "err", err)
		return false
	}
	s.out.Dec = dec
	// The stderr reader starts inside procs.Start and may deliver a line
	// before s.proc is set: it waits for that, so logf reads s.proc after
	// the write (the race detector found the read racing it).
	started := make(chan struct{})
	spec := s.host.Spec(s.prog, env, func(line []byte) {
		<-started
		s.logf(slog.LevelWarn, "child stderr", "line", string(line))
	})
	spec.OnExit = s.leaderExited
	proc, err := procs.Start(spec)
	s.proc = proc
	close(started)
	if err != nil {
		s.close(transport.CannotStart, "err", err)
		return false
	}
	if s.stdin, err = stdio.NewWriter(proc.Stdin, enc); err == nil {
		s.outRC, err = proc.Stdout.SyscallConn()
	}
	if err != nil {
		s.logf(slog.LevelError, "child pipes", "err", err)
		s.client.Close(transport.CannotStart.Code, transport.CannotStart.Reason)
		_ = proc.Terminate(s.prog.CloseGrace)
		_ = proc.Stdout.Close()
		return false
	}
	s.stdin.Gone = s.client.Gone
	s.outR = poll.NewReader(proc.Stdout, s.host.OutBuffer)
	if s.host.Poller == nil {
		s.outRC = nil
	}
	s.host.InitPump(&s.in, s.client, s)
	s.live.Store(2)
	s.host.Track(s)
	s.ready.Store(true)
	if s.reaped.Load() {
		s.drainAfterExit() // the leader was reaped before it could be
	}
	go s.pumpOut()
	go s.in.Run()
	return true
}

// CloseClient closes the client side and wakes an input pump waiting on
// a full stdin: once the client side is closing, what it still sends is
// dropped, so nothing is worth waiting for.
func (s *session) CloseClient(c transport.Close) {
	s.client.Close(c.Code, c.Reason)
	_ = s.proc.Stdin.SetWriteDeadline(time.Now())
}

// close closes the client side as c decides, and logs c's line, if any,
// with args.
func (s *session) close(c transport.Close, args ...any) {
	s.logClose(c, args...)
	s.client.Close(c.Code, c.Reason)
}

// logf logs for this session: every line says which connection and child.
func (s *session) logf(level slog.Level, msg string, args ...any) {
	s.host.Logf(level, msg, s.who(), args...)
}

func (s *session) logClose(c transport.Close, args ...any) {
	s.host.LogClose(c, s.who(), args...)
}

func (s *session) who() []any {
	pid := 0
	if s.proc != nil {
		pid = s.proc.PID
	}
	return []any{"id", s.id, "pid", pid}
}

// pumpDone ends the session once both pumps are done.
func (s *session) pumpDone() {
	if s.live.Add(-1) == 0 {
		s.host.Untrack(s)
		s.end()
	}
}

// end tells the server the session is over, with the child it had.
func (s *session) end() {
	pid, exit := 0, ""
	if s.proc != nil {
		pid, exit = s.proc.PID, s.status.String()
	}
	s.done(pid, exit)
}
