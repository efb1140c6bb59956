package main

// The shared mode (wsbridge --shared): one child for every client. Two
// measurements, wsbridge only, since websocketd has no such mode: the
// memory an idle client costs when nothing but its connection is kept, and
// a broadcast to many clients, counted in messages delivered per second
// and in write system calls per client per message.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

var (
	// The idle clients send nothing, so cat never writes.
	vWsbridgeShared = &variant{name: "wsbridge --shared", column: colWsbridge, argv: func(b binaries, port int) []string {
		if b.wsbridge == "" {
			return []string{""}
		}
		return []string{b.wsbridge, "--port=" + strconv.Itoa(port), "--address=127.0.0.1", "--shared", "/bin/cat"}
	}}
	// A shared child that writes bursts of 64-byte lines on demand: this
	// program's hidden -broadcast-child mode.
	vWsbridgeBroadcast = &variant{name: "wsbridge --shared broadcast", column: colWsbridge, argv: func(b binaries, port int) []string {
		if b.wsbridge == "" {
			return []string{""}
		}
		return []string{b.wsbridge, "--port=" + strconv.Itoa(port), "--address=127.0.0.1", "--shared", b.self, "-broadcast-child"}
	}}
)

// broadcastPayload is the size of each broadcast message.
const broadcastPayload = 64

// broadcastChild is the shared child of the broadcast scenario: for each
// line "go N" on stdin it writes N lines of broadcastPayload bytes at once,
// as a sensor daemon with a backlog would; it exits at EOF.
func broadcastChild() error {
	in := bufio.NewScanner(os.Stdin)
	out := bufio.NewWriterSize(os.Stdout, 64<<10)
	line := printable(broadcastPayload)
	line = append(line, '\n')
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) != 2 || f[0] != "go" {
			continue
		}
		n, err := strconv.Atoi(f[1])
		if err != nil || n < 0 {
			continue
		}
		for range n {
			if _, err := out.Write(line); err != nil {
				return err
			}
		}
		if err := out.Flush(); err != nil {
			return err
		}
	}
	return in.Err()
}

// runIdleShared opens the shared-idle connections (a handshake each, no
// message: every message would reach every client) and reports the
// server's resident memory per connection.
func runIdleShared(ctx context.Context, b *bench, s *server) result {
	return idleRSS(ctx, b, s, b.opts.sharedConns, func(n int) ([]*wstest.Conn, error) { return openConns(ctx, s.target(), n, nil, nil) })
}

// runBroadcast connects the broadcast clients, then asks the child for
// bursts of broadcastRound messages, one after the other, for the
// measurement's duration; every client must receive every message.
func runBroadcast(ctx context.Context, b *bench, s *server) result {
	var res result
	o := b.opts
	conns, err := openConns(ctx, s.target(), o.broadcastClients, nil, nil)
	defer closeAll(conns)
	if err != nil {
		res.err = fmt.Errorf("%d of %d clients connected: %w", len(conns), o.broadcastClients, err)
		return res
	}
	var delivered atomic.Int64
	failed := make(chan error, 1)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for _, c := range conns {
		wg.Go(func() {
			for {
				_, err := c.SkipMessage(nil)
				if err != nil {
					select {
					case <-stop:
					default:
						select {
						case failed <- err:
						default:
						}
					}
					return
				}
				delivered.Add(1)
			}
		})
	}
	defer func() {
		close(stop)
		for _, c := range conns {
			_ = c.Conn.SetReadDeadline(time.Now())
		}
		wg.Wait()
		for _, c := range conns {
			_ = c.Conn.SetReadDeadline(time.Time{})
		}
	}()
	round := int64(o.broadcastRound)
	goFrame := wstest.AppendFrame(nil, wstest.Frame{Fin: true, Op: wstest.OpText, Payload: []byte("go " + strconv.FormatInt(round, 10))})
	burst := func() error {
		want := delivered.Load() + round*int64(len(conns))
		if _, err := conns[0].Conn.Write(goFrame); err != nil {
			return err
		}
		return waitFor(ctx, delivered.Load, want, o.stallAfter, failed)
	}
	// One warm-up burst, then measured bursts for the duration.
	if err := burst(); err != nil {
		res.err = fmt.Errorf("warm-up burst: %w", err)
		return res
	}
	w0, err := procWrites(s.pid)
	if err != nil {
		res.err = err
		return res
	}
	m, err := startMeter(s.pid, delivered.Load())
	if err != nil {
		res.err = err
		return res
	}
	end := time.Now().Add(o.duration)
	for time.Now().Before(end) {
		if err := burst(); err != nil {
			if errors.Is(err, errStalled) {
				res.stalled = true
				res.msgs = delivered.Load()
				return res
			}
			res.err = err
			return res
		}
	}
	r := m.read(delivered.Load())
	w1, err := procWrites(s.pid)
	if err != nil {
		res.err = err
		return res
	}
	res.msgs = r.n
	res.rate = r.perSec
	res.cpuPerMsg = r.daemonPer
	res.genPerMsg = r.selfPer
	if r.n > 0 {
		res.writesPer = float64(w1-w0) / float64(r.n)
	}
	return res
}

// waitFor waits until progress reaches want; it returns errStalled when
// progress has not moved for stallAfter, or the first error on failed.
func waitFor(ctx context.Context, progress func() int64, want int64, stallAfter time.Duration, failed <-chan error) error {
	if progress() >= want {
		return nil
	}
	return watchFor(ctx, progress, time.Millisecond, stallAfter, failed,
		func(n int64, _ time.Time) bool { return n >= want })
}
