package main

// Streaming: each connection keeps a window of messages in flight, a
// sender goroutine topping it up as a reader goroutine counts replies. The
// sender writes prebuilt masked frames, as many per syscall as the window
// has room for; the reader parses headers in place and skips payloads.
// That keeps the load generator's cost per message far below any server's.

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

const (
	streamConns  = 4
	streamWindow = 64 // messages in flight per connection
)

// lane is one streaming connection: its window accounting and the two
// goroutines that work it.
type lane struct {
	c       *wstest.Conn
	fr      wstest.Frames
	size    int64
	got     atomic.Int64 // replies read
	credits atomic.Int64 // replies not yet answered with a new message
	wake    chan struct{}
}

func runStream(ctx context.Context, b *bench, s *server, size int) result {
	conns, err := dialAll(s.target(), streamConns, 64<<10)
	if err != nil {
		return result{err: err}
	}
	op := wstest.OpText
	if s.v.binary {
		op = wstest.OpBinary
	}
	return streamOn(ctx, b, s.pid, 0, conns, op, size, b.opts.duration)
}

// streamOn streams size-byte messages on the open conns for d after the
// warm-up, metering pid and, when not 0, relay; it closes them.
func streamOn(ctx context.Context, b *bench, pid, relay int, conns []*wstest.Conn, op byte, size int, d time.Duration) result {
	var res result
	fr := wstest.NewFrames(op, printable(size), streamWindow) // shared, read-only
	lanes := make([]*lane, len(conns))
	for i, c := range conns {
		lanes[i] = &lane{c: c, fr: fr, size: int64(size), wake: make(chan struct{}, 1)}
	}
	progress := func() int64 {
		var n int64
		for _, l := range lanes {
			n += l.got.Load()
		}
		return n
	}
	run := newLoadRun(progress)
	run.relay = relay
	for _, l := range lanes {
		run.spawn(func() { l.send(run) })
		run.spawn(func() { l.read(run) })
	}
	r, err := run.measureFor(ctx, b, pid, d)
	run.stop(func() {
		for _, l := range lanes {
			select {
			case l.wake <- struct{}{}:
			default:
			}
		}
		closeAll(conns)
	})
	finish(&res, progress(), err)
	res.rate = r.perSec
	res.mbps = r.perSec * float64(size) / 1e6
	res.cpuPerMsg, res.genPerMsg, res.relayPer = r.daemonPer, r.selfPer, r.relayPer
	return res
}

// send fills the window, then writes one frame per reply read, batched:
// whatever the reader has credited since the last write goes in one write.
func (l *lane) send(run *loadRun) {
	if _, err := l.c.Conn.Write(l.fr.First(streamWindow)); err != nil {
		run.fail(fmt.Errorf("write: %w", err))
		return
	}
	for range l.wake {
		if run.phase.Load() == phaseStop {
			return
		}
		k := l.credits.Swap(0)
		if k == 0 {
			continue
		}
		if _, err := l.c.Conn.Write(l.fr.First(int(k))); err != nil {
			run.fail(fmt.Errorf("write: %w", err))
			return
		}
	}
}

// read counts replies and credits the sender, in batches: when a quarter
// of the window is back, or before the reader would block for more.
func (l *lane) read(run *loadRun) {
	var batch int64
	for {
		n, err := l.c.SkipMessage(nil)
		if err != nil {
			run.fail(fmt.Errorf("read: %w", err))
			return
		}
		if n != l.size {
			run.fail(fmt.Errorf("%w: %d bytes, want %d", wstest.ErrMismatch, n, l.size))
			return
		}
		batch++
		if batch >= streamWindow/4 || l.c.R.Buffered() == 0 {
			l.got.Add(batch)
			l.credits.Add(batch)
			batch = 0
			select {
			case l.wake <- struct{}{}:
			default:
			}
		}
	}
}
