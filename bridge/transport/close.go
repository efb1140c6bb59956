package transport

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/wsbridge/wsbridge/framing"
)

// This file is where a client's end is decided: every way a session ends
// becomes a close code, a reason the client reads and, where the server
// has something to say, a log line, here and nowhere else.

// CloseCode is a WebSocket close status code (RFC 6455 section 7.4). A
// fallback transport maps it onto its own way of ending a stream.
type CloseCode uint16

// Close codes the bridge sends or reads.
const (
	CloseNormal          CloseCode = 1000
	CloseGoingAway       CloseCode = 1001
	CloseProtocolError   CloseCode = 1002
	CloseUnsupportedData CloseCode = 1003
	CloseNoStatus        CloseCode = 1005 // never sent: no code in the close frame
	CloseAbnormal        CloseCode = 1006 // never sent: no close frame at all
	CloseInvalidPayload  CloseCode = 1007
	ClosePolicyViolation CloseCode = 1008
	CloseMessageTooBig   CloseCode = 1009
	CloseInternalError   CloseCode = 1011
	CloseServiceRestart  CloseCode = 1012
	CloseTryAgainLater   CloseCode = 1013
)

// ValidOnWire reports whether a peer may send code in a close frame
// (framing's rule, which a mux child's close records follow too).
func (c CloseCode) ValidOnWire() bool { return framing.CloseCodeOnWire(uint16(c)) }

// CloseError says why a client side ended: the close code that was sent
// or received, its reason, and the cause behind it.
type CloseError struct {
	Code   CloseCode
	Reason string
	Remote bool  // the client sent the close frame (or went away)
	Err    error // the cause, when there is one beyond the code
}

func (e *CloseError) Error() string {
	who := "sent"
	if e.Remote {
		who = "received"
	}
	s := fmt.Sprintf("close %d %s", e.Code, who)
	if e.Reason != "" {
		s += fmt.Sprintf(" (%s)", e.Reason)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *CloseError) Unwrap() error { return e.Err }

// Close is a decision to end a client: the code and reason it gets and,
// when Log is not empty, the line the server logs at Level.
type Close struct {
	Code   CloseCode
	Reason string
	Log    string
	Level  slog.Level
}

// Errors behind the closes a transport decides as it reads.
var (
	ErrTooBig      = errors.New("message exceeds --max-message")
	ErrBadUTF8     = errors.New("text message is not valid UTF-8")
	ErrPingTimeout = errors.New("no answer to ping")
	// ErrBudget: the endpoint's assembly budget has no room for a
	// client's message.
	ErrBudget = errors.New("server busy: too many unfinished messages (--assembly-budget)")
)

// BadUTF8 is an error for text that is not UTF-8 (a close reason, say),
// worded as what, that closes like ErrBadUTF8.
func BadUTF8(what string) error { return kindError{what, ErrBadUTF8} }

// Internal is an error of the server's own, worded as what: it closes
// with 1011.
func Internal(what string) error { return kindError{what, errInternal} }

var errInternal = errors.New("internal error")

// kindError is an error with its own words that is of a kind ForError
// knows.
type kindError struct {
	msg  string
	kind error
}

func (e kindError) Error() string        { return e.msg }
func (e kindError) Is(target error) bool { return target == e.kind }

// ForError is the close for an error found in what a client sent (a
// broken protocol rule, a message too big, bad UTF-8, a ping left
// unanswered, a message over the assembly budget) or, from Internal, in
// the server. The reason is the error's text; any other error is a
// protocol error.
func ForError(err error) Close {
	c := Close{Code: CloseProtocolError, Reason: err.Error()}
	switch {
	case errors.Is(err, ErrTooBig):
		c.Code = CloseMessageTooBig
	case errors.Is(err, ErrBadUTF8):
		c.Code = CloseInvalidPayload
	case errors.Is(err, errInternal):
		c.Code = CloseInternalError
	case errors.Is(err, ErrPingTimeout):
		c.Code = CloseGoingAway
	case errors.Is(err, ErrBudget):
		c.Code, c.Log, c.Level = CloseTryAgainLater, "client message refused: assembly budget full", slog.LevelWarn
	}
	return c
}

// The closes of the server's life and of a client's leaving.
var (
	// Shutdown: Serve's context ended.
	Shutdown = Close{Code: CloseGoingAway, Reason: "server shutting down"}
	// Restart: a shared child exited and is restarted without
	// SharedOptions.KeepClients.
	Restart = Close{Code: CloseServiceRestart, Reason: "the program restarts; reconnect"}
	// ClientLeft: the client side ended; a close goes out if none did.
	ClientLeft = Close{Code: CloseGoingAway, Reason: "client went away"}
	// CannotStart: the program could not be started.
	CannotStart = Close{Code: CloseInternalError, Reason: "cannot start the program", Log: "cannot start child", Level: slog.LevelError}
	// StdinFailed: writing to the program failed for another reason than
	// its not reading.
	StdinFailed = Close{Code: CloseInternalError, Reason: "cannot write to the program"}
)

// GoneWhileBlocked is the close of a client found gone (or late, a ping
// unanswered) while the child does not read its stdin: nothing will read
// the client's close frame meanwhile, so its wait is made short.
func GoneWhileBlocked(late bool) Close {
	c := Close{Code: CloseGoingAway, Reason: "client went away",
		Log: "dropping client messages: the client left or is closing while the child does not read stdin", Level: slog.LevelInfo}
	if late {
		c.Reason = ErrPingTimeout.Error()
	}
	return c
}

// Status is how a child ended, as procs.Status says it.
type Status interface {
	Success() bool
	String() string
}

// ChildExited is the close once a child's stdout is done and it has
// exited: 1000 for a clean exit, 1011 saying how it failed, or that its
// output was cut mid-message (decodeErr is framing.ErrTruncated) or
// malformed (any other decoder error).
func ChildExited(status Status, decodeErr error) Close {
	switch {
	case decodeErr != nil && errors.Is(decodeErr, framing.ErrTruncated):
		return Close{Code: CloseInternalError, Reason: fmt.Sprintf("program %s mid-message", status)}
	case decodeErr != nil:
		return Close{Code: CloseInternalError, Reason: "program output is malformed"}
	case !status.Success():
		return Close{Code: CloseInternalError, Reason: "program " + status.String()}
	}
	return Close{Code: CloseNormal}
}

// Malformed is the close of a client whose program wrote output its
// framing cannot decode: the stream cannot be trusted any further.
func Malformed(err error) Close {
	return Close{Code: CloseInternalError, Reason: "program output is malformed: " + err.Error(),
		Log: "child output is malformed", Level: slog.LevelError}
}

// Slow is the close of a shared child's client that cannot keep up: its
// queue overflowed (mid: inside a message), or it took nothing for
// stalled while it held the others back (stalled > 0).
func Slow(mid bool, stalled time.Duration) Close {
	c := Close{Code: CloseTryAgainLater, Reason: "too slow: outgoing queue full", Log: "slow client disconnected", Level: slog.LevelInfo}
	switch {
	case stalled > 0:
		c.Reason = "too slow: took nothing for " + stalled.String()
	case mid:
		c.Reason = "too slow: outgoing queue full inside a message"
	}
	return c
}

// ByChild is the close a mux child asks for in a close record; a code of
// 0 (none given) or one a close frame cannot carry becomes 1000.
func ByChild(code uint16, reason string) Close {
	c := CloseCode(code)
	if !c.ValidOnWire() {
		c = CloseNormal
	}
	return Close{Code: c, Reason: reason}
}
