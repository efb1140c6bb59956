package shared

import (
	"log/slog"
	"time"

	"github.com/wsbridge/wsbridge/bridge/transport"
	"github.com/wsbridge/wsbridge/procs"
)

// The pace of a broadcast is set by the fastest members: the fan-out
// reads the child's stdout only while some member that sets the pace has
// less than lowWater (half of --queue) queued, or no member sets it.
// While every one is behind, stdout is not read, its pipe fills and the
// child waits, as it does for the client of a session. A member that
// takes nothing for stallLimit while it holds the fan-out back no longer
// sets the pace (until it takes something): it is cut with 1013, or with
// DropSlow it loses whole messages like any member a whole --queue behind
// the fastest (see member.push). Members being closed never set the
// pace. With mux, where output is addressed, members do not set the pace:
// a member more than --queue behind is slow, as it always was.

// stallLimit is how long a member that takes nothing may hold the
// fan-out, and so the child, back.
const stallLimit = 5 * time.Second

func (h *Hub) lowWater() int { return h.opts.Queue / 2 }

// wakePace has a fan-out held back by its members look again.
func (h *Hub) wakePace() {
	select {
	case h.paceWake <- struct{}{}:
	default:
	}
}

// pace returns what the fastest member that sets the pace has queued
// (0: none sets it), and whether the fan-out may read on. Only the
// supervisor goroutine calls it.
func (h *Hub) pace() (ref int, ok bool) {
	if h.mux {
		return 0, true
	}
	ref, pacing := 0, false
	for _, m := range h.snapshot() {
		m.qmu.Lock()
		if !m.dead && m.closeCode == 0 && !m.stalled && (!pacing || m.queued < ref) {
			ref, pacing = m.queued, true
		}
		m.qmu.Unlock()
	}
	clear(h.snap)
	return ref, !pacing || ref < h.lowWater()
}

// waitPace holds the fan-out while every member that sets the pace is
// behind; it gives up once the child has exited or Serve ends (what
// stdout still holds is read then). Members that took nothing in a
// stallLimit of waiting stop setting the pace.
func (h *Hub) waitPace(proc *procs.Process) {
	var ok bool
	if h.ref, ok = h.pace(); ok {
		return
	}
	timer := time.NewTimer(stallLimit)
	defer timer.Stop()
	h.markProgress()
	for {
		select {
		case <-h.paceWake:
		case <-timer.C:
			h.stallIdle()
			h.markProgress()
			timer.Reset(stallLimit)
		case <-h.stop:
			return
		case <-proc.Done():
			return
		}
		if h.ref, ok = h.pace(); ok {
			return
		}
	}
}

// markProgress notes what each member has written so far.
func (h *Hub) markProgress() {
	for _, m := range h.snapshot() {
		m.qmu.Lock()
		m.mark = m.written
		m.qmu.Unlock()
	}
	clear(h.snap)
}

// stallIdle finds the members that wrote nothing since markProgress and
// still have something queued: they no longer set the pace, and are cut
// unless DropSlow.
func (h *Hub) stallIdle() {
	for _, m := range h.snapshot() {
		m.qmu.Lock()
		if m.dead || m.closeCode != 0 || m.stalled || m.written != m.mark || m.queued == 0 {
			m.qmu.Unlock()
			continue
		}
		m.stalled = true
		queued := m.queued
		if h.opts.DropSlow {
			m.qmu.Unlock()
			h.logf(slog.LevelInfo, "slow client took nothing; it no longer holds the program back (--drop-slow)", "id", m.sid, "queued", queued, "for", stallLimit)
			continue
		}
		// There is a writer: the queue is not empty.
		c := transport.Slow(false, stallLimit)
		h.slowCut.Add(1)
		m.cutLocked(c)
		m.qmu.Unlock()
		h.host.LogClose(c, h.who(), "id", m.sid, "queued", queued, "limit", h.opts.Queue, "why", c.Reason)
	}
	clear(h.snap)
}
