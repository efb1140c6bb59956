package shared

import "time"

// Options tune a shared child. The zero value of each field is a sound
// default, noted beside it, which the server fills in before New.
type Options struct {
	// Lazy starts the child at the first connection rather than with
	// Serve.
	Lazy bool
	// KeepClients keeps clients connected while the child restarts; by
	// default they are closed with 1012 (service restart) and may
	// reconnect.
	KeepClients bool
	// Queue is how far a client may fall behind the fastest: while
	// every client has half of it or more waiting, the child's output is
	// not read (the child waits); a client more than Queue behind the
	// fastest, or that takes nothing for 5s while it holds the others
	// back, is slow. With the mux framing, a client with more than Queue
	// waiting is slow. 0: 256 KiB.
	Queue int
	// DropSlow drops whole messages for a slow client rather than
	// disconnecting it with 1013; it then no longer holds the child back
	// until it reads again.
	DropSlow bool
	// RestartDelay is the first wait before restarting a child that
	// exited; it doubles at each quick exit, up to 30 times it. 0: 100ms.
	RestartDelay time.Duration
}
