package main

// What every load scenario shares: its result, the phases of a run
// (warm-up, measurement, stop), the meter that takes CPU snapshots at the
// edges of the measurement, and the watch that ends a run that has stalled
// instead of hanging with it.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// result is one measurement of one server. Fields a scenario does not
// measure stay zero.
type result struct {
	rate      float64 // messages or connections per second
	mbps      float64 // payload MB (10^6 B) per second
	p50, p99  float64 // round trip, µs
	cpuPerMsg float64 // the server's CPU per message, µs
	relayPer  float64 // the relaying web server's CPU per message, µs (handover's session)
	genPerMsg float64 // the load generator's CPU per message, µs
	kibPer    float64 // the server's RSS per idle connection, KiB
	threads   float64 // the server's threads at the idle connections
	writesPer float64 // the server's write system calls per message delivered

	rssBefore, rssHeld, rssLeft float64 // pinned: the server's RSS in MiB before, with the clients holding, after they left

	// session is the hand-over scenario's running session: rate and CPU
	// streaming on one connection, p50 and p99 of round trips on another;
	// nil when it did not run.
	session *result

	msgs    int64 // messages that made it, over the whole run
	stalled bool  // progress stopped: the run was cut short
	errs    int   // failed cycles that did not end the run (connection rate)
	err     error // the run failed
}

// Phases of a load run, read by the load goroutines.
const (
	phaseWarmup = iota
	phaseMeasure
	phaseStop
)

// meter snapshots the server's CPU, the load generator's CPU and a
// progress count at the start of the measurement.
type meter struct {
	pid         int
	start       time.Time
	cpu0, self0 time.Duration
	n0          int64
	relay       int // a second process metered beside pid; 0: none
	relay0      time.Duration
}

func startMeter(pid int, n int64) (meter, error) {
	cpu, err := procCPU(pid)
	return meter{pid: pid, start: time.Now(), cpu0: cpu, self0: selfCPU(), n0: n}, err
}

// reading is what happened between startMeter and read.
type reading struct {
	elapsed       time.Duration
	daemon, self  time.Duration // CPU used
	n             int64         // progress made
	perSec        float64       // n per second
	daemonPer     float64       // µs of server CPU per unit of progress
	selfPer       float64       // µs of load generator CPU per unit
	relayPer      float64       // µs of the relay's CPU per unit
	daemonReadErr error         // or the relay's
}

func (m meter) read(n int64) reading {
	r := reading{elapsed: time.Since(m.start), self: selfCPU() - m.self0, n: n - m.n0}
	cpu, err := procCPU(m.pid)
	r.daemon, r.daemonReadErr = cpu-m.cpu0, err
	var relay time.Duration
	if m.relay != 0 {
		cpu, err := procCPU(m.relay)
		relay = cpu - m.relay0
		if r.daemonReadErr == nil {
			r.daemonReadErr = err
		}
	}
	if r.elapsed > 0 {
		r.perSec = float64(r.n) / r.elapsed.Seconds()
	}
	if r.n > 0 {
		r.daemonPer = float64(r.daemon.Microseconds()) / float64(r.n)
		r.selfPer = float64(r.self.Microseconds()) / float64(r.n)
		r.relayPer = float64(relay.Microseconds()) / float64(r.n)
	}
	return r
}

// errStalled ends a run whose progress count stopped moving.
var errStalled = errors.New("stalled")

// watch waits until the time is up, returning nil; or returns errStalled
// when progress has not moved for stallAfter, the first error a load
// goroutine reports on failed, or the context's error.
func watch(ctx context.Context, progress func() int64, until time.Time, stallAfter time.Duration, failed <-chan error) error {
	return watchFor(ctx, progress, 20*time.Millisecond, stallAfter, failed,
		func(_ int64, now time.Time) bool { return !now.Before(until) })
}

// watchFor looks at progress every tick until done says so, returning
// nil; or returns errStalled when progress has not moved for stallAfter,
// the first error on failed, or the context's error.
func watchFor(ctx context.Context, progress func() int64, tick, stallAfter time.Duration, failed <-chan error, done func(n int64, now time.Time) bool) error {
	t := time.NewTicker(tick)
	defer t.Stop()
	last, lastMove := progress(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-failed:
			return err
		case now := <-t.C:
			if n := progress(); n != last {
				last, lastMove = n, now
			} else if now.Sub(lastMove) >= stallAfter {
				return errStalled
			}
			if done(last, now) {
				return nil
			}
		}
	}
}

// loadRun drives one scenario's load goroutines through warm-up and
// measurement and stops them, whatever happens.
type loadRun struct {
	// relay, when not 0, is a process metered beside the server: the web
	// server that relays a handed-over session's bytes (lighttpd).
	relay    int
	phase    atomic.Int32
	failed   chan error // first errors of load goroutines
	progress func() int64
	wg       sync.WaitGroup
}

func newLoadRun(progress func() int64) *loadRun {
	return &loadRun{failed: make(chan error, 1), progress: progress}
}

// spawn runs fn as a load goroutine owned by the run.
func (l *loadRun) spawn(fn func()) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		fn()
	}()
}

// fail reports a load goroutine's error unless the run is stopping, when
// errors are how goroutines are unblocked.
func (l *loadRun) fail(err error) {
	if l.phase.Load() == phaseStop {
		return
	}
	select {
	case l.failed <- err:
	default:
	}
}

// measureFor warms up, then measures for d; it returns the meter's
// reading and the run's outcome: nil, errStalled or a failure. It does not
// stop the load; call stop after.
func (l *loadRun) measureFor(ctx context.Context, b *bench, pid int, d time.Duration) (reading, error) {
	o := b.opts
	if err := watch(ctx, l.progress, time.Now().Add(o.warmup), o.stallAfter, l.failed); err != nil {
		return reading{n: l.progress()}, err
	}
	m, err := startMeter(pid, l.progress())
	if err != nil {
		return reading{}, fmt.Errorf("reading the server's CPU: %w", err)
	}
	if l.relay != 0 {
		m.relay = l.relay
		if m.relay0, err = procCPU(l.relay); err != nil {
			return reading{}, fmt.Errorf("reading the relay's CPU: %w", err)
		}
	}
	l.phase.Store(phaseMeasure)
	err = watch(ctx, l.progress, time.Now().Add(d), o.stallAfter, l.failed)
	r := m.read(l.progress())
	if err == nil && r.daemonReadErr != nil {
		err = fmt.Errorf("reading the server's CPU: %w", r.daemonReadErr)
	}
	// No progress at all while measuring is a stall, even when the time
	// ran out before stallAfter did (-quick: both 1 s): not a figure of 0.
	if err == nil && r.n == 0 {
		err = errStalled
	}
	return r, err
}

// stop tells the load goroutines to end, unblocks them with unblock (which
// sets deadlines on their connections) and waits for them.
func (l *loadRun) stop(unblock func()) {
	l.phase.Store(phaseStop)
	unblock()
	l.wg.Wait()
}

// finish turns a run's outcome into the result's status fields.
func finish(res *result, total int64, err error) {
	res.msgs = total
	switch {
	case errors.Is(err, errStalled):
		res.stalled = true
	case err != nil:
		res.err = err
	}
}
