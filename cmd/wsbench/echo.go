package main

// Echo round trip: each connection sends one 64 B text message and waits
// for the reply before sending the next. It measures latency, and the
// message rate a strictly request-reply client sees.

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

const (
	echoConns   = 4
	echoPayload = 64
)

func runEcho(ctx context.Context, b *bench, s *server) result {
	conns, err := dialAll(s.target(), echoConns, 4<<10)
	if err != nil {
		return result{err: err}
	}
	return echoOn(ctx, b, s.pid, 0, conns, b.opts.duration)
}

// echoOn runs round trips on the open conns, each its own, for d after
// the warm-up, metering pid and, when not 0, relay; it closes them.
func echoOn(ctx context.Context, b *bench, pid, relay int, conns []*wstest.Conn, d time.Duration) result {
	var res result
	payload := printable(echoPayload)
	frame := wstest.AppendFrame(nil, wstest.Frame{Fin: true, Op: wstest.OpText, Payload: payload})
	hists := make([]histogram, len(conns))
	done := make([]atomic.Int64, len(conns)) // round trips, for the stall watch
	progress := func() int64 {
		var n int64
		for i := range done {
			n += done[i].Load()
		}
		return n
	}
	run := newLoadRun(progress)
	run.relay = relay
	for i, c := range conns {
		run.spawn(func() {
			h := &hists[i]
			for {
				ph := run.phase.Load()
				if ph == phaseStop {
					return
				}
				t := time.Now()
				if err := echo(c, frame, payload); err != nil {
					run.fail(err)
					return
				}
				d := time.Since(t)
				// A round trip counts if it began and ended while measuring.
				if ph == phaseMeasure && run.phase.Load() == phaseMeasure {
					h.add(d)
				}
				done[i].Add(1)
			}
		})
	}
	r, err := run.measureFor(ctx, b, pid, d)
	run.stop(func() { closeAll(conns) })
	var all histogram
	for i := range hists {
		all.merge(&hists[i])
	}
	finish(&res, progress(), err)
	if r.elapsed > 0 {
		res.rate = float64(all.n) / r.elapsed.Seconds()
	}
	res.p50, res.p99 = all.percentile(0.50), all.percentile(0.99)
	res.cpuPerMsg, res.genPerMsg, res.relayPer = r.daemonPer, r.selfPer, r.relayPer
	return res
}

// dialAll opens n connections to t, or none.
func dialAll(t target, n, readBuf int) ([]*wstest.Conn, error) {
	conns := make([]*wstest.Conn, 0, n)
	for range n {
		c, err := t.dial(5*time.Second, readBuf)
		if err != nil {
			closeAll(conns)
			return nil, err
		}
		conns = append(conns, c)
	}
	return conns, nil
}

// closeAll drops connections without a closing handshake: set at once, the
// deadline unblocks any goroutine still reading or writing.
func closeAll(conns []*wstest.Conn) {
	for _, c := range conns {
		_ = c.Conn.SetDeadline(time.Now())
		_ = c.Conn.Close()
	}
}
