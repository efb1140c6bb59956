package transport

import (
	"errors"
	"syscall"
	"time"

	"github.com/wsbridge/wsbridge/framing"
)

// Client is the remote side of a session, whatever carries it. A mode
// talks to its client only through this interface; the Server builds the
// client, hands it to the mode, and, once the mode is done with it, calls
// Finish and logs its Summary.
type Client interface {
	// Begin is called once, before Receive. park says Receive may return
	// ErrParked when the client is idle, for its caller to park the
	// client's Descriptor in the Poller; wake runs a parked reader at
	// once, for a close or a timeout it must see though the client sends
	// nothing. Begin starts the client's own timers (pings).
	Begin(park bool, wake func())

	// Descriptor returns the descriptor the Poller watches for the
	// client's input, or nil when it cannot park.
	Descriptor() syscall.RawConn

	// Receive reads the client's messages until the client side ends and
	// calls deliver with each batch of pieces, in order. Pieces are valid
	// only until deliver returns; deliver blocking is backpressure on the
	// client. Receive returns a *CloseError saying how the client side
	// ended, the error deliver returned, or ErrParked (see Begin). It is
	// called by one goroutine at a time, the mode's input pump.
	Receive(deliver func([]framing.Piece) error) error

	// Send sends pieces to the client, in order, in as few writes as the
	// transport allows, blocking while the client is slow. Data is only
	// borrowed for the call. Called by one goroutine at a time.
	Send(pieces []framing.Piece) error

	// Close starts ending the client side with a close code and a reason
	// for a person to read; the first call wins. It does not wait for the
	// client: Receive returns once the client has answered or the close
	// timeout has passed. Safe to call from any goroutine.
	Close(code CloseCode, reason string) error

	// Fail closes the client for err, a rule it broke or a message
	// refused, with the close ForError decides, and returns the
	// *CloseError that Receive's deliver returns to end the input.
	Fail(err error) error

	// Gone reports, without blocking, whether the client can no longer
	// take part: it hung up, left a ping unanswered, or its side is
	// closing. The input pump asks while it waits on a child that does
	// not read its stdin, since it cannot read the client meanwhile.
	Gone() bool

	// Closing reports whether the client side is ending (a close went
	// out, or a ping is late): its input must not park. Late reports
	// the second alone.
	Closing() bool
	Late() bool

	// Ended returns the close that ended the client side: the first sent
	// or received, or an abnormal closure when there was none.
	Ended() CloseError

	// Finish ends the connection once the mode is done with it, after
	// the closing handshake. Called once, by the Server.
	Finish()

	// Counts returns the message bytes received and sent, for the log.
	Counts() (in, out int64)
}

// ErrParked is Receive's answer when it has read everything there was and
// the client may park (see Client.Begin): it holds no buffer, and a later
// Receive call continues the stream.
var ErrParked = errors.New("nothing to read: parked")

// ErrClosed is a write's answer once the client side is closed or broken.
var ErrClosed = errors.New("connection closed")

// Framed is what the shared mode's fan-out needs of a client to write
// output framed once for every client of the same Wire: bytes queued per
// client and written without blocking the fan-out. The writer holds the
// write lock whenever the connection may hold part of a frame, so the
// transport's own frames (pongs, pings, the close) land between frames,
// never inside one. Methods named ...Locked need the write lock held.
type Framed interface {
	Client

	// Wire is how pieces are framed for this client.
	Wire() Wire

	TryLockWrite() bool
	LockWrite()
	UnlockWrite()

	// WriteLocked writes iov. With wait it waits for room (under the
	// write deadline) until part is written and returns what was;
	// without, it never waits and returns poll.ErrWouldBlock with what
	// was taken, unless all was.
	WriteLocked(iov [][]byte, wait bool) (int, error)

	// WritableLocked reports false once nothing more may be written: a
	// close went out or a write broke part-way; BreakLocked makes it so.
	WritableLocked() bool
	BreakLocked()

	// ControlWanted reports whether the transport has a frame of its own
	// waiting for the write lock; FlushControlLocked writes it, and
	// SendControl writes it if the lock is free.
	ControlWanted() bool
	FlushControlLocked()
	SendControl()

	// SetWriteDeadline bounds the writes; CloseTimeout is how long a
	// client has to take what is queued and the close.
	SetWriteDeadline(t time.Time) error
	CloseTimeout() time.Duration

	// LimitUnsent bounds what the connection holds unsent, so that what
	// waits for a slow client waits in its queue, where it can be
	// dropped; RoomForClose lifts the bound and makes room for queued
	// more bytes and a close, for a client cut off.
	LimitUnsent()
	RoomForClose(queued int)

	// CountOut adds to the bytes sent, for the log.
	CountOut(n int64)
}

// Wire frames pieces for one kind of transport. Clients with the same
// Wire share the framed bytes of a broadcast.
type Wire interface {
	// AppendFrame appends p, framed, to dst.
	AppendFrame(dst []byte, p framing.Piece) []byte
	// MaxOverhead is the most bytes AppendFrame adds to a piece's data.
	MaxOverhead() int
	// FrameLen returns the length of the frame at the start of b, which
	// holds at least its header.
	FrameLen(b []byte) int
}
