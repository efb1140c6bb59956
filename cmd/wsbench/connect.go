package main

// Connection rate: a few workers each loop over a whole session: connect,
// handshake, one echo, closing handshake, and wait for the server to end
// the TCP connection. For a bridge that is also a child started and ended
// per cycle.

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

const (
	connWorkers = 4
	cycleLimit  = 5 * time.Second // one whole cycle, at most
)

func runConnRate(ctx context.Context, b *bench, s *server) result {
	return connRate(ctx, b, s.pid, s.target(), b.opts.duration)
}

// connRate runs the connect cycles against t for d after the warm-up,
// metering the server process pid.
func connRate(ctx context.Context, b *bench, pid int, t target, d time.Duration) result {
	var res result
	payload := printable(echoPayload)
	frame := wstest.AppendFrame(nil, wstest.Frame{Fin: true, Op: wstest.OpText, Payload: payload})
	var ok, failed, cycles atomic.Int64 // ok and failed while measuring; cycles always
	var lastErr atomic.Value
	run := newLoadRun(cycles.Load)
	for range connWorkers {
		run.spawn(func() {
			for {
				if run.phase.Load() == phaseStop {
					return
				}
				_, err := cycle(t, frame, payload)
				cycles.Add(1)
				// A cycle counts where it ends: cycles that began in the
				// warm-up make up for those the measurement cuts short,
				// which matters when a cycle takes a good part of it.
				if run.phase.Load() == phaseMeasure {
					if err == nil {
						ok.Add(1)
					} else {
						failed.Add(1)
					}
				}
				if err != nil {
					lastErr.Store(err)
					time.Sleep(10 * time.Millisecond) // no tight loop on a refusing server
				}
			}
		})
	}
	r, err := run.measureFor(ctx, b, pid, d)
	// Workers finish their cycle, each bounded by cycleLimit.
	run.stop(func() {})
	finish(&res, cycles.Load(), err)
	res.errs = int(failed.Load())
	if ok.Load() == 0 && res.err == nil && !res.stalled {
		res.err = fmt.Errorf("no connection completed: %v", lastErr.Load())
	}
	if r.elapsed > 0 {
		res.rate = float64(ok.Load()) / r.elapsed.Seconds()
	}
	if n := ok.Load(); n > 0 {
		res.cpuPerMsg = float64(r.daemon.Microseconds()) / float64(n)
		res.genPerMsg = float64(r.self.Microseconds()) / float64(n)
	}
	return res
}

// cycle is one whole session, bounded in time. It returns the time to
// the first echo: connect, handshake and one round trip.
func cycle(t target, frame, payload []byte) (time.Duration, error) {
	start := time.Now()
	deadline := start.Add(cycleLimit)
	c, err := t.dial(cycleLimit, 4<<10)
	if err != nil {
		return 0, err
	}
	_ = c.Conn.SetDeadline(deadline)
	if err := echo(c, frame, payload); err != nil {
		c.Conn.Close()
		return 0, err
	}
	firstEcho := time.Since(start)
	return firstEcho, closeConn(c, deadline)
}
