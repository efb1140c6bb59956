package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wsbridge/wsbridge/framing"
	"github.com/wsbridge/wsbridge/procs"
)

// Client is the remote side of a session: a WebSocket connection today, a
// fallback transport (HTTP streaming, long polling) later. The session
// feeds every kind of client to its child the same way.
type Client interface {
	// Receive reads the client's messages until the client side ends and
	// calls deliver with each batch of pieces, in order. Pieces are valid
	// only until deliver returns; deliver blocking is backpressure on the
	// client. Receive returns a *CloseError saying how the client side
	// ended. It is called once, by the session's input pump.
	Receive(deliver func([]framing.Piece) error) error

	// Send sends pieces to the client, in order, in as few writes as the
	// transport allows, blocking while the client is slow. Data is only
	// borrowed for the call. Called by the output pump only.
	Send(pieces []framing.Piece) error

	// Close starts ending the client side with a close code and a reason
	// for a person to read; the first call wins. It does not wait for the
	// client: Receive returns once the client has answered or the close
	// timeout has passed. Safe to call from any goroutine.
	Close(code CloseCode, reason string) error

	// Gone reports, without blocking, whether the client can no longer
	// take part: it hung up, left a ping unanswered, or its side is
	// closing. The input pump asks
	// while it waits on a child that does not read its stdin, since it
	// cannot read the client meanwhile. Safe to call from any goroutine.
	Gone() bool
}

// parkable is implemented by clients whose reads can park in the
// server's poller: their Receive returns errParked when idle, and the
// descriptor to watch is rawConn's.
type parkable interface {
	Client
	rawConn() syscall.RawConn // nil: cannot park
	setParking(park bool, wake func())
}

// session pipes one client to one child process. It has two pumps, one per
// direction, and no goroutine of its own: a pump runs on a goroutine while
// data moves and parks in the server's poller while its side is idle, so an
// idle session holds no goroutine, stack or buffer. The session ends when
// both pumps have ended, on whichever goroutine ends last.
type session struct {
	id     uint64
	srv    *Server
	client Client
	ep     *endpoint
	proc   *procs.Process
	stdin  *stdinWriter
	began  time.Time
	onEnd  func(*session) // runs once both pumps are done

	// Input pump state, owned by whichever goroutine runs it.
	inRC      syscall.RawConn // the client's descriptor, when it parks
	stdinGone bool
	held      []byte       // an unfinished message held back from stdin (pooled; nil: none)
	heldKind  framing.Kind // held's kind

	// Output pump state, likewise.
	outRC    syscall.RawConn
	outR     pollReader
	out      stdoutStream
	sendErr  error // the client is gone: keep draining, send nothing
	outGrown bool  // stdout's pipe has been grown (see growPipe)
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

// start starts the child and both pumps, then returns: the session runs on
// the pumps' goroutines and calls onEnd when it is over. It reports false
// when the child could not be started (the client has been told).
func (s *session) start(env []string) bool {
	dec, enc, err := framing.New(s.ep.Framing)
	if err != nil {
		s.client.Close(CloseInternalError, "bad framing")
		return false
	}
	s.out.dec = dec
	// The stderr reader starts inside procs.Start and may deliver a line
	// before s.proc is set: it waits for that, so logf reads s.proc after
	// the write (the race detector found the read racing it).
	started := make(chan struct{})
	spec := s.srv.childSpec(s.ep, env, func(line []byte) {
		<-started
		s.logf(slog.LevelWarn, "child stderr", "line", string(line))
	})
	spec.OnExit = s.leaderExited
	proc, err := procs.Start(spec)
	s.proc = proc
	close(started)
	if err != nil {
		s.logf(slog.LevelError, "cannot start child", "err", err)
		s.client.Close(CloseInternalError, "cannot start the program")
		return false
	}
	if s.stdin, err = newStdinWriter(proc.Stdin, enc); err == nil {
		s.outRC, err = proc.Stdout.SyscallConn()
	}
	if err != nil {
		s.logf(slog.LevelError, "child pipes", "err", err)
		s.client.Close(CloseInternalError, "cannot start the program")
		_ = proc.Terminate(s.ep.CloseGrace)
		_ = proc.Stdout.Close()
		return false
	}
	s.stdin.gone = s.client.Gone
	s.outR = newPollReader(proc.Stdout, s.srv.opts.OutBuffer)
	if s.srv.poller == nil {
		s.outRC = nil
	}
	if pc, ok := s.client.(parkable); ok {
		if s.srv.poller != nil {
			s.inRC = pc.rawConn()
		}
		pc.setParking(s.inRC != nil, s.wakeIn)
	}
	s.live.Store(2)
	s.srv.track(s)
	s.ready.Store(true)
	if s.reaped.Load() {
		s.drainAfterExit() // the leader was reaped before it could be
	}
	go s.pumpOut()
	go s.pumpIn()
	return true
}

// leaderExited is the child's procs.Spec.OnExit: it runs on the reaper's
// goroutine, maybe before start has the process, and must not block.
func (s *session) leaderExited() {
	s.reaped.Store(true)
	if s.ready.Load() {
		s.drainAfterExit()
	}
}

// drainAfterExit makes the output pump end once it has read what stdout
// holds now that the leader is gone: until the pipe is empty, or it has
// read as much as the pipe held at the exit (plus one read's worth, for a
// read in flight as it was measured). A pump blocked or parked is woken
// to look. It runs once, from start or the reaper, whichever sees both
// the exit and the pumps.
func (s *session) drainAfterExit() {
	if !s.exitArmed.CompareAndSwap(false, true) {
		return
	}
	// int64, not int: 1<<62 does not fit a 32-bit board's int.
	queued := int64(s.srv.opts.OutBuffer)
	if rc, err := s.proc.Stdout.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			if n, err := unix.IoctlGetInt(int(fd), unix.TIOCINQ); err == nil {
				queued += int64(n)
			} else {
				queued = 1 << 62 // unknown: read until the pipe is empty
			}
		})
	}
	s.drainEnd.Store(s.outRead.Load() + queued)
	s.exited.Store(true)
	_ = s.proc.Stdout.SetReadDeadline(time.Now()) // a pump blocked in a read
	s.wakeOut()
}

// closeClient closes the client side and wakes an input pump waiting on a
// full stdin: once the client side is closing, what it still sends is
// dropped, so nothing is worth waiting for.
func (s *session) closeClient(code CloseCode, reason string) {
	s.client.Close(code, reason)
	_ = s.proc.Stdin.SetWriteDeadline(time.Now())
}

// wakeIn runs a parked input pump now, for a close or a late ping that it
// must see even though the client sends nothing.
func (s *session) wakeIn() {
	if s.inRC != nil && s.srv.poller.Unpark(s.inRC) {
		go s.pumpIn()
	}
}

// pumpIn moves the client's messages to the child's stdin until the client
// side ends, parking while the client is idle. While the child does not
// read, the pump waits (backpressure: it stops reading the client), waking
// now and then to see whether the client is gone. When the child stops
// reading for good (closes stdin or exits), or the client is gone or
// closing, the client's messages are dropped with one log line; the
// child's exit ends the session through the output pump.
func (s *session) pumpIn() {
	if err := s.srv.receive(s.client, s.inRC, s.deliverIn, s.pumpIn); !errors.Is(err, errParked) {
		s.endIn(err)
	}
}

// receive runs one input pump's turn: it reads c until the client side
// ends and returns how it ended, or, once the client is idle, parks its
// descriptor rc (nil: never park) and returns errParked; resume then runs
// on a new goroutine when the client is readable again.
func (s *Server) receive(c Client, rc syscall.RawConn, deliver func([]framing.Piece) error, resume func()) error {
	for {
		err := c.Receive(deliver)
		if !errors.Is(err, errParked) {
			return err
		}
		if s.poller.Park(rc, resume) != nil {
			// Cannot park (out of epoll watches, say): wait in the
			// read from now on, as the output pump does.
			if wc, ok := c.(*wsConn); ok {
				wc.parkable = false
			}
			continue
		}
		// A close or late ping that came while parking found nothing
		// to wake: look again now.
		if closing(c) && s.poller.Unpark(rc) {
			continue
		}
		return errParked
	}
}

// closing reports whether the client side must not park: it is closing or
// a ping is late.
func closing(c Client) bool {
	wc, ok := c.(*wsConn)
	return ok && (wc.closeSent.Load() || wc.pingLate.Load())
}

// holdMax is the most of an unfinished message the input pump holds back
// from the child's stdin. A message that fits is written only once it has
// arrived whole and valid, so one that is cut or rejected never reaches
// the child; a longer one streams, and if it is cut the child is ended
// without reading EOF after it (see endCut). The buffer is pooled and held
// only while a client has such a message open: at most holdMax a session.
const holdMax = 64 << 10

// deliverIn writes the client's whole messages to stdin and holds back
// the start of an unfinished one, up to holdMax.
func (s *session) deliverIn(pieces []framing.Piece) error {
	if s.stdinGone {
		return nil
	}
	k := len(pieces)
	for k > 0 && !pieces[k-1].Final {
		k--
	}
	whole, tail := pieces[:k], pieces[k:]
	if len(whole) > 0 {
		if err := s.flushHeld(); err != nil {
			return err
		}
		if err := s.writeIn(whole); err != nil {
			return err
		}
	}
	if len(tail) == 0 {
		return nil
	}
	n := len(s.held)
	for _, p := range tail {
		n += len(p.Data)
	}
	if s.stdin.mid || n > holdMax {
		// Too long to hold, or streaming already: it goes as it comes.
		if err := s.flushHeld(); err != nil {
			return err
		}
		return s.writeIn(tail)
	}
	if s.held == nil {
		s.held = buffers.Get(0, holdMax)
		s.heldKind = tail[0].Kind
	}
	for _, p := range tail {
		s.held = append(s.held, p.Data...)
	}
	return nil
}

// flushHeld writes the held start of a message, if any, as its first
// piece, and gives the buffer back.
func (s *session) flushHeld() error {
	if s.held == nil {
		return nil
	}
	p := [1]framing.Piece{{Data: s.held, Kind: s.heldKind, First: true}}
	err := s.writeIn(p[:])
	s.dropHeld()
	return err
}

// dropHeld forgets the held start of a message.
func (s *session) dropHeld() {
	putBuffer(s.held)
	s.held = nil
}

// writeIn writes pieces to stdin, unless the child or the client is gone.
func (s *session) writeIn(pieces []framing.Piece) error {
	if s.stdinGone {
		return nil
	}
	err := s.stdin.write(pieces)
	switch {
	case err == nil:
	case isBrokenPipe(err):
		s.stdinGone = true
		s.stdin.mid = false // no reader is left to misread a cut message
		s.logf(slog.LevelInfo, "child stopped reading stdin; dropping client messages")
	case errors.Is(err, errClientGone):
		s.stdinGone = true
		s.logf(slog.LevelInfo, "dropping client messages: the client left or is closing while the child does not read stdin")
		// Nothing will read the client's close frame while Receive
		// waits for one: make its wait short.
		reason := "client went away"
		if late(s.client) {
			reason = errPingTimeout.Error()
		}
		s.client.Close(CloseGoingAway, reason)
	default:
		return err
	}
	return nil
}

// late reports whether c left a ping unanswered.
func late(c Client) bool {
	wc, ok := c.(*wsConn)
	return ok && wc.pingLate.Load()
}

// endIn runs once the client side has ended: it closes the client side
// (usually a close went out already and this does nothing; it also
// unblocks an output pump stuck on a client that stopped reading) and
// ends the child's whole process group. err is how Receive ended.
func (s *session) endIn(err error) {
	var ce *CloseError
	if errors.As(err, &ce) {
		s.client.Close(CloseGoingAway, "client went away")
	} else {
		s.client.Close(CloseInternalError, "cannot write to the program")
	}
	if s.inRC != nil {
		s.srv.poller.Forget(s.inRC)
	}
	s.dropHeld() // a message that never ended: the child never sees it
	end := s.proc.Terminate
	if s.stdin.mid && s.ep.Framing != "len32" {
		// A len32 record says how long it is: the child can tell a
		// cut one. Lines and raw bytes cannot.
		end = s.endCut
	}
	if err := end(s.ep.CloseGrace); err != nil {
		s.logf(slog.LevelError, "child did not end", "err", err)
	}
	s.stopOut()
	s.pumpDone()
}

// endCut ends the child's group while its stdin holds the start of a
// message that will never end: by the usual ladder (the child has the
// same 100ms + grace to act on the whole messages before it, then
// SIGTERM, then SIGKILL), but with stdin kept open, by a duplicate of our
// write end (the only one), until the group is gone, so no reader ever
// gets EOF after the cut part and takes it for a last line. Without a
// duplicate it kills the group before stdin closes.
func (s *session) endCut(grace time.Duration) error {
	dup := -1
	if rc, err := s.proc.Stdin.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			if d, err := unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0); err == nil {
				dup = d
			}
		})
	}
	s.logf(slog.LevelInfo, "a client message was cut after its start reached the program: ending it without EOF on stdin")
	if dup < 0 {
		_ = s.proc.Signal(syscall.SIGKILL)
	}
	err := s.proc.Terminate(grace)
	if dup >= 0 {
		unix.Close(dup)
	}
	return err
}

// stopOut ends the output pump once the client side has ended and the
// child's group is gone: a process outside the group (a daemon the child
// started) may hold stdout open for ever, and nothing more can reach the
// client anyway. The pump ends as at EOF, without reading further.
func (s *session) stopOut() {
	s.outStop.Store(true)
	_ = s.proc.Stdout.SetReadDeadline(time.Now()) // a pump blocked in a read
	s.wakeOut()
}

// wakeOut runs a parked output pump now, to see a stop or an exit.
func (s *session) wakeOut() {
	if s.srv.poller == nil {
		return
	}
	if rc, err := s.proc.Stdout.SyscallConn(); err == nil && s.srv.poller.Unpark(rc) {
		go s.pumpOut()
	}
}

// pipeDefault is Linux's default pipe capacity.
const pipeDefault = 64 << 10

// pumpOut moves the child's stdout to the client until stdout closes,
// parking while the child is silent; then it waits for the child to exit
// and closes the client side with a code that says how it ended. A slow
// client makes Send block, which stops the pump reading stdout: the pipe
// fills and the child blocks. Nothing queues.
func (s *session) pumpOut() {
	for !s.out.eof {
		var n int
		var err error
		if s.outStop.Load() {
			err = io.EOF // read nothing more: a daemon may keep stdout busy, too
		} else {
			// Once the leader is gone the pump never waits: an
			// empty pipe is the end.
			park := s.outRC != nil && s.out.end == 0 || s.exited.Load()
			n, err = s.outR.readAt(&s.out.buf, s.out.end, park)
			if n >= pipeDefault && !s.outGrown && s.outRC != nil {
				// A full pipe's worth in one read: a stream.
				s.outGrown = true
				_ = s.outRC.Control(growPipe)
			}
		}
		switch {
		case s.outStop.Load() && errors.Is(err, os.ErrDeadlineExceeded):
			err = io.EOF // a read stopOut cut short
		case s.exited.Load() && errors.Is(err, os.ErrDeadlineExceeded):
			// A read drainAfterExit cut short: read on, without waiting.
			_ = s.proc.Stdout.SetReadDeadline(time.Time{})
			continue
		case errors.Is(err, errWouldBlock) && s.exited.Load():
			// The leader is gone and the pipe is empty: what is left
			// holding stdout open is not the program. Empty in a read
			// that began after the exit was known, to be sure all the
			// leader wrote is read.
			if !s.outEmpty {
				s.outEmpty = true
				continue
			}
			err = io.EOF
		case errors.Is(err, errWouldBlock):
			if s.srv.poller.Park(s.outRC, s.pumpOut) == nil {
				// A stop or exit that came while parking found
				// nothing to wake: look again now.
				if (s.outStop.Load() || s.exited.Load()) && s.srv.poller.Unpark(s.outRC) {
					continue
				}
				return
			}
			s.outRC = nil // cannot park: block instead
			continue
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				s.logf(slog.LevelError, "reading child stdout", "err", err)
			}
			s.out.eof = true
		}
		s.out.end += n
		if n > 0 {
			s.outEmpty = false
		}
		if read := s.outRead.Add(int64(n)); n > 0 && s.exited.Load() && read >= s.drainEnd.Load() {
			s.out.eof = true // the rest is not the program's
		}
		if !s.decodeOut() {
			break
		}
	}
	putBuffer(s.out.buf)
	s.out.buf = nil
	s.endOut()
}

// decodeOut sends all the output buffer holds and makes room for more. It
// reports false when the output is malformed and must not be read further.
func (s *session) decodeOut() bool {
	ok := s.out.cut(func(pieces []framing.Piece) {
		if s.sendErr == nil {
			s.sendErr = s.client.Send(pieces)
		}
	})
	if !ok {
		s.logf(slog.LevelError, "child output is malformed", "err", s.out.err)
	}
	return ok
}

// endOut runs once stdout is done: it waits for the child to exit and
// closes the client side with a code that says how the child ended.
func (s *session) endOut() {
	proc := s.proc
	if lr, ok := s.out.dec.(interface{ Replaced() int }); ok && lr.Replaced() > 0 {
		s.logf(slog.LevelWarn, "invalid UTF-8 in a long line replaced by U+FFFD", "count", lr.Replaced())
	}
	if s.out.err != nil && !s.out.eof {
		// Malformed output: the stream cannot be trusted any further.
		s.closeClient(CloseInternalError, "program output is malformed: "+s.out.err.Error())
		_ = proc.Terminate(s.ep.CloseGrace)
	}
	if s.outRC != nil {
		s.srv.poller.Forget(s.outRC)
	}
	_ = proc.Stdout.Close()
	<-proc.Done()
	s.status = proc.Status()
	code, reason := CloseNormal, ""
	switch {
	case s.out.err != nil:
		code, reason = CloseInternalError, fmt.Sprintf("program %s mid-message", s.status)
		if !errors.Is(s.out.err, framing.ErrTruncated) {
			reason = "program output is malformed"
		}
	case !s.status.Success():
		code, reason = CloseInternalError, "program "+s.status.String()
	}
	s.closeClient(code, reason)
	s.pumpDone()
}

// logf logs for this session: every line says which connection and child.
// (A logger made With these attributes would be kept by every idle
// session; this allocates only when it logs.)
func (s *session) logf(level slog.Level, msg string, args ...any) {
	pid := 0
	if s.proc != nil {
		pid = s.proc.PID
	}
	s.srv.log.Log(context.Background(), level, msg, append([]any{"id", s.id, "pid", pid}, args...)...)
}

// pumpDone ends the session once both pumps are done.
func (s *session) pumpDone() {
	if s.live.Add(-1) == 0 {
		s.srv.untrack(s)
		s.onEnd(s)
	}
}
