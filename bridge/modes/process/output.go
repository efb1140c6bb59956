package process

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wsbridge/wsbridge/bridge/poll"
	"github.com/wsbridge/wsbridge/bridge/stdio"
	"github.com/wsbridge/wsbridge/bridge/transport"
	"github.com/wsbridge/wsbridge/framing"
)

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
	queued := int64(s.host.OutBuffer)
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
	if s.host.Poller == nil {
		return
	}
	if rc, err := s.proc.Stdout.SyscallConn(); err == nil && s.host.Poller.Unpark(rc) {
		go s.pumpOut()
	}
}

// pumpOut moves the child's stdout to the client until stdout closes,
// parking while the child is silent; then it waits for the child to exit
// and closes the client side with a code that says how it ended. A slow
// client makes Send block, which stops the pump reading stdout: the pipe
// fills and the child blocks. Nothing queues.
func (s *session) pumpOut() {
	for !s.out.EOF {
		var n int
		var err error
		if s.outStop.Load() {
			err = io.EOF // read nothing more: a daemon may keep stdout busy, too
		} else {
			// Once the leader is gone the pump never waits: an
			// empty pipe is the end.
			park := s.outRC != nil && s.out.End == 0 || s.exited.Load()
			n, err = s.outR.ReadAt(&s.out.Buf, s.out.End, park)
			if n >= stdio.PipeDefault && !s.outGrown && s.outRC != nil {
				// A full pipe's worth in one read: a stream.
				s.outGrown = true
				_ = s.outRC.Control(stdio.GrowPipe)
			}
		}
		switch {
		case s.outStop.Load() && errors.Is(err, os.ErrDeadlineExceeded):
			err = io.EOF // a read stopOut cut short
		case s.exited.Load() && errors.Is(err, os.ErrDeadlineExceeded):
			// A read drainAfterExit cut short: read on, without waiting.
			_ = s.proc.Stdout.SetReadDeadline(time.Time{})
			continue
		case errors.Is(err, poll.ErrWouldBlock) && s.exited.Load():
			// The leader is gone and the pipe is empty: what is left
			// holding stdout open is not the program. Empty in a read
			// that began after the exit was known, to be sure all the
			// leader wrote is read.
			if !s.outEmpty {
				s.outEmpty = true
				continue
			}
			err = io.EOF
		case errors.Is(err, poll.ErrWouldBlock):
			if s.host.Poller.Park(s.outRC, s.pumpOut) == nil {
				// A stop or exit that came while parking found
				// nothing to wake: look again now.
				if (s.outStop.Load() || s.exited.Load()) && s.host.Poller.Unpark(s.outRC) {
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
			s.out.EOF = true
		}
		s.out.End += n
		if n > 0 {
			s.outEmpty = false
		}
		if read := s.outRead.Add(int64(n)); n > 0 && s.exited.Load() && read >= s.drainEnd.Load() {
			s.out.EOF = true // the rest is not the program's
		}
		if !s.decodeOut() {
			break
		}
	}
	poll.Put(s.out.Buf)
	s.out.Buf = nil
	s.endOut()
}

// decodeOut sends all the output buffer holds and makes room for more. It
// reports false when the output is malformed and must not be read further.
func (s *session) decodeOut() bool {
	ok := s.out.Cut(func(pieces []framing.Piece) {
		if s.sendErr == nil {
			s.sendErr = s.client.Send(pieces)
		}
	})
	if !ok {
		s.logClose(transport.Malformed(s.out.Err), "err", s.out.Err)
	}
	return ok
}

// endOut runs once stdout is done: it waits for the child to exit and
// closes the client side with a code that says how the child ended.
func (s *session) endOut() {
	proc := s.proc
	if lr, ok := s.out.Dec.(interface{ Replaced() int }); ok && lr.Replaced() > 0 {
		s.logf(slog.LevelWarn, "invalid UTF-8 in a long line replaced by U+FFFD", "count", lr.Replaced())
	}
	if s.out.Err != nil && !s.out.EOF {
		// Malformed output: the stream cannot be trusted any further.
		s.CloseClient(transport.Malformed(s.out.Err))
		_ = proc.Terminate(s.prog.CloseGrace)
	}
	if s.outRC != nil {
		s.host.Poller.Forget(s.outRC)
	}
	_ = proc.Stdout.Close()
	<-proc.Done()
	s.status = proc.Status()
	s.CloseClient(transport.ChildExited(s.status, s.out.Err))
	s.pumpDone()
}
