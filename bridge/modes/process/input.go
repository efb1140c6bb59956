package process

import (
	"errors"
	"log/slog"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wsbridge/wsbridge/bridge/poll"
	"github.com/wsbridge/wsbridge/bridge/stdio"
	"github.com/wsbridge/wsbridge/bridge/transport"
	"github.com/wsbridge/wsbridge/framing"
)

// holdMax is the most of an unfinished message the input pump holds back
// from the child's stdin. A message that fits is written only once it has
// arrived whole and valid, so one that is cut or rejected never reaches
// the child; a longer one streams, and if it is cut the child is ended
// without reading EOF after it (see endCut). The buffer is pooled and held
// only while a client has such a message open: at most holdMax a session.
const holdMax = 64 << 10

// DeliverIn writes the client's whole messages to stdin and holds back
// the start of an unfinished one, up to holdMax.
func (s *session) DeliverIn(pieces []framing.Piece) error {
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
	if s.stdin.Mid || n > holdMax {
		// Too long to hold, or streaming already: it goes as it comes.
		if err := s.flushHeld(); err != nil {
			return err
		}
		return s.writeIn(tail)
	}
	if s.held == nil {
		s.held = poll.GetCap(holdMax)
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
	poll.Put(s.held)
	s.held = nil
}

// writeIn writes pieces to stdin, unless the child or the client is gone.
func (s *session) writeIn(pieces []framing.Piece) error {
	if s.stdinGone {
		return nil
	}
	err := s.stdin.Write(pieces)
	switch {
	case err == nil:
	case stdio.IsBrokenPipe(err):
		s.stdinGone = true
		s.stdin.Mid = false // no reader is left to misread a cut message
		s.logf(slog.LevelInfo, "child stopped reading stdin; dropping client messages")
	case errors.Is(err, stdio.ErrClientGone):
		s.stdinGone = true
		// Nothing will read the client's close frame while Receive
		// waits for one: make its wait short.
		s.close(transport.GoneWhileBlocked(s.client.Late()))
	default:
		return err
	}
	return nil
}

// EndIn runs once the client side has ended: it closes the client side
// (usually a close went out already and this does nothing; it also
// unblocks an output pump stuck on a client that stopped reading) and
// ends the child's whole process group. err is how Receive ended.
func (s *session) EndIn(err error) {
	var ce *transport.CloseError
	if errors.As(err, &ce) {
		s.close(transport.ClientLeft)
	} else {
		s.close(transport.StdinFailed)
	}
	s.dropHeld() // a message that never ended: the child never sees it
	end := s.proc.Terminate
	if s.stdin.Mid && s.prog.Framing != framing.Len32 {
		// A len32 record says how long it is: the child can tell a
		// cut one. Lines and raw bytes cannot.
		end = s.endCut
	}
	if err := end(s.prog.CloseGrace); err != nil {
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
