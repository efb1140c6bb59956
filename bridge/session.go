package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
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

// session pipes one client to one child process. Its input pump runs on
// the goroutine that calls run; run starts the output pump and waits for it.
type session struct {
	id     uint64
	srv    *Server
	client Client
	proc   *procs.Process
	dec    framing.Decoder
	log    *slog.Logger
}

// sessionResult is what the access log says of a session.
type sessionResult struct {
	status  procs.Status
	closeBy error // how the client side ended
}

// run executes the session to its end: it starts the child, pumps both
// ways, and when either side ends, closes the other and cleans up the
// child's whole process group.
func (s *session) run(ctx context.Context, ep *endpoint, env []string) sessionResult {
	var res sessionResult
	dec, enc, err := framing.New(ep.framing)
	if err != nil {
		s.client.Close(CloseInternalError, "bad framing")
		res.closeBy = err
		return res
	}
	s.dec = dec
	log := s.log
	proc, err := procs.Start(procs.Spec{
		Path: ep.command[0],
		Args: ep.command,
		Env:  env,
		Dir:  ep.dir,
		Stderr: func(line []byte) {
			log.Warn("child stderr", "line", string(line))
		},
	})
	if err != nil {
		s.log.Error("cannot start child", "err", err)
		s.client.Close(CloseInternalError, "cannot start the program")
		res.closeBy = s.client.Receive(func([]framing.Piece) error { return nil })
		return res
	}
	s.proc = proc
	s.log = s.log.With("pid", proc.PID)
	stdin, err := newStdinWriter(proc.Stdin, enc)
	if err != nil {
		s.log.Error("child stdin", "err", err)
		_ = proc.Terminate(ep.grace)
		return res
	}

	outDone := make(chan sessionResult, 1)
	go func() { outDone <- s.pumpOut() }()
	stop := context.AfterFunc(ctx, func() {
		s.closeClient(CloseGoingAway, "server shutting down")
	})

	res.closeBy = s.pumpIn(stdin)
	stop()
	// Make sure the client side is closing, which also unblocks an output
	// pump stuck on a client that stopped reading. Usually a close frame
	// has gone out already and this does nothing.
	var ce *CloseError
	if errors.As(res.closeBy, &ce) {
		s.client.Close(CloseGoingAway, "client went away")
	} else {
		s.client.Close(CloseInternalError, "cannot write to the program")
	}
	if err := proc.Terminate(ep.grace); err != nil {
		s.log.Error("child did not end", "err", err)
	}
	res.status = (<-outDone).status
	return res
}

// closeClient closes the client side and wakes an input pump waiting on a
// full stdin: once the client side is closing, what it still sends is
// dropped, so nothing is worth waiting for.
func (s *session) closeClient(code CloseCode, reason string) {
	s.client.Close(code, reason)
	_ = s.proc.Stdin.SetWriteDeadline(time.Now())
}

// pumpIn moves the client's messages to the child's stdin until the client
// side ends. While the child does not read, the pump waits (backpressure:
// it stops reading the client), waking now and then to see whether the
// client is gone. When the child stops reading for good (closes stdin or
// exits), or the client is gone or closing, the client's messages are
// dropped with one log line; the child's exit ends the session through the
// output pump.
func (s *session) pumpIn(stdin *stdinWriter) error {
	stdinGone := false
	stdin.gone = s.client.Gone
	return s.client.Receive(func(pieces []framing.Piece) error {
		if stdinGone {
			return nil
		}
		err := stdin.write(pieces)
		switch {
		case err == nil:
		case isBrokenPipe(err):
			stdinGone = true
			s.log.Info("child stopped reading stdin; dropping client messages")
		case errors.Is(err, errClientGone):
			stdinGone = true
			s.log.Info("dropping client messages: the client left or is closing while the child does not read stdin")
			// Nothing will read the client's close frame while
			// Receive waits for one: make its wait short.
			s.client.Close(CloseGoingAway, "client went away")
		default:
			return err
		}
		return nil
	})
}

// pumpOut moves the child's stdout to the client until stdout closes, then
// waits for the child to exit and closes the client side with a code that
// says how it ended. A slow client makes Send block, which stops the pump
// reading stdout: the pipe fills and the child blocks. Nothing queues.
func (s *session) pumpOut() sessionResult {
	var res sessionResult
	proc := s.proc
	defer proc.Stdout.Close()
	pr := newPollReader(proc.Stdout, s.srv.opts.OutBuffer)
	var (
		buf        []byte
		start, end int
		sendErr    error // the client is gone: keep draining, send nothing
		decErr     error
		eof        bool
	)
	defer func() { putBuffer(buf) }()
	for !eof {
		n, err := pr.readAt(&buf, end)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				s.log.Error("reading child stdout", "err", err)
			}
			eof = true
		}
		end += n
		// Decode all the buffer holds; Decode stops early when its
		// batch is full, so go round until it makes no progress.
		for decErr == nil {
			full := start == 0 && end == len(buf)
			pieces := getPieces()
			pieces, used, err := s.dec.Decode(pieces, buf[start:end], full, eof)
			if errors.Is(err, framing.ErrTruncated) && len(pieces) > 0 {
				// The message was cut short: leave it unfinished, so
				// the client drops it at the close rather than take
				// it for a whole message.
				pieces[len(pieces)-1].Final = false
			}
			if len(pieces) > 0 && sendErr == nil {
				sendErr = s.client.Send(pieces)
			}
			putPieces(pieces)
			start += used
			if err != nil {
				decErr = err
			}
			if eof {
				// At the end, Decode is called until it has nothing
				// left: it closes an open message with a last piece.
				if len(pieces) == 0 {
					break
				}
				continue
			}
			if used == 0 || start == end {
				break
			}
		}
		if decErr != nil && !errors.Is(decErr, framing.ErrTruncated) {
			s.log.Error("child output is malformed", "err", decErr)
			break
		}
		switch {
		case start == end:
			start, end = 0, 0
		case start > 0:
			end = copy(buf, buf[start:end])
			start = 0
		}
	}
	if lr, ok := s.dec.(interface{ Replaced() int }); ok && lr.Replaced() > 0 {
		s.log.Warn("invalid UTF-8 in a long line replaced by U+FFFD", "count", lr.Replaced())
	}
	if decErr != nil && !eof {
		// Malformed output: the stream cannot be trusted any further.
		s.closeClient(CloseInternalError, "program output is malformed: "+decErr.Error())
		_ = proc.Terminate(s.srv.opts.CloseGrace)
	}
	<-proc.Done()
	res.status = proc.Status()
	code, reason := CloseNormal, ""
	switch {
	case decErr != nil:
		code, reason = CloseInternalError, fmt.Sprintf("program %s mid-message", res.status)
		if !errors.Is(decErr, framing.ErrTruncated) {
			reason = "program output is malformed"
		}
	case !res.status.Success():
		code, reason = CloseInternalError, "program "+res.status.String()
	}
	s.closeClient(code, reason)
	return res
}

// accessLine logs one line for a finished session: who closed it, with
// which code and why.
func (s *session) accessLine(remote string, began time.Time, res sessionResult, in, out int64, closed CloseError) {
	by := "server"
	if closed.Remote {
		by = "client"
	}
	attrs := []any{
		"id", s.id, "remote", remote,
		"duration", time.Since(began).Round(time.Millisecond),
		"in", in, "out", out,
		"close", closed.Code, "close_by", by,
	}
	if closed.Reason != "" {
		attrs = append(attrs, "reason", closed.Reason)
	}
	if s.proc != nil {
		attrs = append(attrs, "pid", s.proc.PID, "exit", res.status.String())
	}
	s.srv.log.Log(context.Background(), LevelAccess, "session", attrs...)
}
