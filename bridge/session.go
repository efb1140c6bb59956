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
	// take part: it hung up, or its side is closing. The input pump asks
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

	// Output pump state, likewise.
	outRC    syscall.RawConn
	outR     pollReader
	out      stdoutStream
	sendErr  error // the client is gone: keep draining, send nothing
	outGrown bool  // stdout's pipe has been grown (see growPipe)
	status   procs.Status

	outStop atomic.Bool  // stopOut: read what stdout holds, then end
	live    atomic.Int32 // pumps still running
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
	proc, err := procs.Start(s.srv.childSpec(s.ep, env, func(line []byte) {
		<-started
		s.logf(slog.LevelWarn, "child stderr", "line", string(line))
	}))
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
	go s.pumpOut()
	go s.pumpIn()
	return true
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

func (s *session) deliverIn(pieces []framing.Piece) error {
	if s.stdinGone {
		return nil
	}
	err := s.stdin.write(pieces)
	switch {
	case err == nil:
	case isBrokenPipe(err):
		s.stdinGone = true
		s.logf(slog.LevelInfo, "child stopped reading stdin; dropping client messages")
	case errors.Is(err, errClientGone):
		s.stdinGone = true
		s.logf(slog.LevelInfo, "dropping client messages: the client left or is closing while the child does not read stdin")
		// Nothing will read the client's close frame while Receive
		// waits for one: make its wait short.
		s.client.Close(CloseGoingAway, "client went away")
	default:
		return err
	}
	return nil
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
	if err := s.proc.Terminate(s.ep.CloseGrace); err != nil {
		s.logf(slog.LevelError, "child did not end", "err", err)
	}
	s.stopOut()
	s.pumpDone()
}

// stopOut ends the output pump once the client side has ended and the
// child's group is gone: a process outside the group (a daemon the child
// started) may hold stdout open for ever, and nothing more can reach the
// client anyway. The pump ends as at EOF, without reading further.
func (s *session) stopOut() {
	s.outStop.Store(true)
	_ = s.proc.Stdout.SetReadDeadline(time.Now()) // a pump blocked in a read
	if s.srv.poller == nil {
		return
	}
	if rc, err := s.proc.Stdout.SyscallConn(); err == nil && s.srv.poller.Unpark(rc) {
		go s.pumpOut() // a parked one
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
			park := s.outRC != nil && s.out.end == 0
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
		case errors.Is(err, errWouldBlock):
			if s.srv.poller.Park(s.outRC, s.pumpOut) == nil {
				// A stop that came while parking found nothing to
				// wake: look again now.
				if s.outStop.Load() && s.srv.poller.Unpark(s.outRC) {
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
