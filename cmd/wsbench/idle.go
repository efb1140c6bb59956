package main

// Idle memory: how much resident memory the server holds per open, idle
// session. Every connection does one echo first, so its session (and, for
// a bridge, its child) is fully set up. Only the server process counts:
// the children's memory is theirs.

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

const idleOpeners = 8 // connections opened in parallel

func runIdle(ctx context.Context, b *bench, s *server) result {
	return idleRSS(ctx, b, s, b.opts.idleConns, func(n int) ([]*wstest.Conn, error) { return openIdle(ctx, s.target(), n) })
}

// idleRSS opens n connections with open and reports the server's resident
// memory per connection once it has settled, and its threads.
func idleRSS(ctx context.Context, b *bench, s *server, n int, open func(n int) ([]*wstest.Conn, error)) result {
	var res result
	o := b.opts
	before, err := settledRSS(ctx, s.pid, 300*time.Millisecond, o.settleMax)
	if err != nil {
		res.err = err
		return res
	}
	conns, err := open(n)
	defer closeAll(conns)
	res.msgs = int64(len(conns))
	if err != nil {
		res.err = fmt.Errorf("%d of %d connections open: %w", len(conns), n, err)
		return res
	}
	after, err := settledRSS(ctx, s.pid, o.settleMin, o.settleMax)
	if err != nil {
		res.err = err
		return res
	}
	th, err := threads(s.pid)
	if err != nil {
		res.err = err
		return res
	}
	res.kibPer = float64(after-before) / float64(len(conns))
	res.threads = float64(th)
	return res
}

// openIdle opens n connections to t that have each done one echo. It
// returns those it opened, and the first error.
func openIdle(ctx context.Context, t target, n int) ([]*wstest.Conn, error) {
	payload := printable(echoPayload)
	return openConns(ctx, t, n, wstest.AppendFrame(nil, wstest.Frame{Fin: true, Op: wstest.OpText, Payload: payload}), payload)
}

// openConns opens n connections to t, idleOpeners at a time; each
// echoes frame (whose payload is payload) once when frame is given. It
// returns those it opened, and the first error.
func openConns(ctx context.Context, t target, n int, frame, payload []byte) ([]*wstest.Conn, error) {
	var (
		mu       sync.Mutex
		conns    = make([]*wstest.Conn, 0, n)
		firstErr error
		wg       sync.WaitGroup
	)
	next := make(chan struct{}, n)
	for range n {
		next <- struct{}{}
	}
	close(next)
	for range idleOpeners {
		wg.Go(func() {
			for range next {
				if ctx.Err() != nil {
					return
				}
				c, err := t.dial(10*time.Second, 4<<10)
				if err == nil && frame != nil {
					_ = c.Conn.SetDeadline(time.Now().Add(10 * time.Second))
					if err = echo(c, frame, payload); err != nil {
						c.Conn.Close()
					}
					_ = c.Conn.SetDeadline(time.Time{})
				}
				mu.Lock()
				if err == nil {
					conns = append(conns, c)
				} else if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return conns, firstErr
}

// settledRSS samples a process's RSS every 100 ms, after waiting at least
// minWait, until it is stable (the last five samples within 1% or 64 KiB)
// or maxWait has passed, and returns the last sample.
func settledRSS(ctx context.Context, pid int, minWait, maxWait time.Duration) (int64, error) {
	start := time.Now()
	var samples []int64
	for {
		rss, err := rssKiB(pid)
		if err != nil {
			return 0, err
		}
		samples = append(samples, rss)
		if el := time.Since(start); el >= maxWait || el >= minWait && stable(samples) {
			return rss, nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func stable(samples []int64) bool {
	const window = 5
	if len(samples) < window {
		return false
	}
	lo, hi := samples[len(samples)-1], samples[len(samples)-1]
	for _, v := range samples[len(samples)-window:] {
		lo, hi = min(lo, v), max(hi, v)
	}
	return hi-lo <= 64 || float64(hi-lo) <= 0.01*float64(hi)
}
