package main

// Pinned memory: what clients can make the server hold without sending a
// whole message. Each client of a --shared child (which assembles every
// message whole) sends the first 1 MiB frame of a fragmented message and
// never finishes it; the server's resident memory is read with every
// client connected, then again once they have all left. wsbridge's
// --assembly-budget bounds the first figure: the clients past it are
// closed with 1013, and counted.

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

// pinnedPart is the unfinished message each client holds.
const pinnedPart = 1 << 20

func runPinned(ctx context.Context, b *bench, s *server) result {
	var res result
	o := b.opts
	before, err := settledRSS(ctx, s.pid, 300*time.Millisecond, o.settleMax)
	if err != nil {
		res.err = err
		return res
	}
	frame := wstest.AppendFrame(nil, wstest.Frame{Fin: true, Op: wstest.OpBinary, Payload: printable(pinnedPart)})
	frame[0] &^= 0x80 // not final: the message stays open
	conns, err := openConns(ctx, s.target(), o.pinnedConns, nil, nil)
	defer func() { closeAll(conns) }()
	if err != nil {
		res.err = fmt.Errorf("%d of %d clients connected: %w", len(conns), o.pinnedConns, err)
		return res
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, idleOpeners)
	for _, c := range conns {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			_ = c.Conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
			_, _ = c.Conn.Write(frame) // a client refused may see an error: it is counted below
		})
	}
	wg.Wait()
	held, err := settledRSS(ctx, s.pid, o.settleMin, o.settleMax)
	if err != nil {
		res.err = err
		return res
	}
	// A client the server refused has a close frame (or an EOF) to read.
	refused := 0
	for _, c := range conns {
		_ = c.Conn.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		if _, err := c.R.Peek(1); err == nil || !isTimeout(err) {
			refused++
		}
	}
	closeAll(conns)
	conns = nil
	left, err := settledRSS(ctx, s.pid, o.settleMin, o.settleMax)
	if err != nil {
		res.err = err
		return res
	}
	res.rssBefore, res.rssHeld, res.rssLeft = float64(before)/1024, float64(held)/1024, float64(left)/1024
	res.msgs = int64(o.pinnedConns - refused)
	res.errs = refused
	return res
}

func isTimeout(err error) bool {
	t, ok := err.(interface{ Timeout() bool })
	return ok && t.Timeout()
}
