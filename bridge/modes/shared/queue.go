package shared

import (
	"errors"
	"log/slog"
	"os"
	"time"

	"github.com/wsbridge/wsbridge/bridge/poll"
	"github.com/wsbridge/wsbridge/bridge/transport"
)

// push queues blob b for the member and writes it if nobody is writing.
// It never blocks on the client: a member whose queue holds more than
// --queue beyond ref (what the fastest member has queued) is slow and
// loses whole messages (DropSlow) or is closed with 1013.
func (m *member) push(b *blob, ref int) {
	m.qmu.Lock()
	if m.dead || m.closeCode != 0 {
		m.qmu.Unlock()
		return
	}
	from := 0
	if b.startsMid && !m.mid {
		// The member joined, or lost messages, inside a message: skip
		// to the next one that starts here.
		from = b.firstStart
	}
	size := len(b.buf) - from
	if size == 0 {
		m.qmu.Unlock()
		return
	}
	if m.queued > 0 && m.queued+size > ref+m.h.opts.Queue {
		m.overflowLocked(b, from) // unlocks qmu
		return
	}
	b.refs.Add(1)
	m.q = append(m.q, chunk{b: b, start: from, off: from, end: len(b.buf)})
	m.queued += size
	m.mid = b.endsMid
	if from == 0 {
		m.c.CountOut(b.payload)
	}
	if m.writing {
		m.qmu.Unlock()
		return
	}
	m.writing = true
	m.live.Add(1) // the writer's, given back when writing ends
	m.qmu.Unlock()
	if !m.c.TryLockWrite() {
		go m.drain(false) // a pong or a close is being written
		return
	}
	// Write now, without waiting: most sockets take it all.
	if m.writeQueued(false) && m.stopWriting() {
		m.c.UnlockWrite()
		m.controlLater()
		m.done()
		return
	}
	// The socket is full, maybe part-way through a frame: the drain takes
	// over with the write lock held.
	go m.drain(true)
}

// overflowLocked handles blob b (from offset from) that does not fit in
// the queue: under DropSlow it is dropped, else the member is cut off
// with 1013. qmu is held, and unlocked on return.
func (m *member) overflowLocked(b *blob, from int) {
	queued := m.queued
	continuing := from == 0 && b.startsMid && m.mid
	if m.h.opts.DropSlow && !continuing {
		// Drop the blob: the member is then outside any message, and
		// skips a message the blob leaves open.
		m.mid = false
		m.dropped += int64(b.messages)
		m.h.slowDropped.Add(uint64(b.messages))
		dropped := m.dropped
		now := time.Now()
		log := now.Sub(time.Unix(0, m.lastDrop)) > 10*time.Second
		if log {
			m.lastDrop = now.UnixNano()
		}
		m.qmu.Unlock()
		if log {
			m.h.logf(slog.LevelInfo, "slow client: dropping messages (--drop-slow)", "id", m.sid, "queued", queued, "dropped", dropped)
		}
		return
	}
	c := transport.Slow(continuing, 0)
	m.h.slowCut.Add(1)
	// The writer drops what it has not begun and sends the close; the
	// client has the close timeout to take them. There is a writer: the
	// queue is not empty.
	m.cutLocked(c)
	m.qmu.Unlock()
	m.h.host.LogClose(c, m.h.who(), "id", m.sid, "queued", queued, "limit", m.h.opts.Queue, "why", c.Reason)
}

// closeAfterQueued closes the member once what is queued for it is
// written; the first close wins. The client has the close timeout to take
// the rest and the close.
func (m *member) closeAfterQueued(c transport.Close) {
	m.qmu.Lock()
	if m.dead || m.closeCode != 0 {
		m.qmu.Unlock()
		return
	}
	m.closeLocked(c)
	if m.writing {
		m.qmu.Unlock() // the writer sends it
		return
	}
	m.writing = true
	m.live.Add(1)
	m.qmu.Unlock()
	go m.drain(false)
}

// closeNow closes the member at once, without waiting on the caller's
// time: what is still queued is dropped, a frame begun on the wire is
// finished, and the close goes out even to a client that reads nothing
// now, as for a slow client cut off.
func (m *member) closeNow(c transport.Close) {
	m.qmu.Lock()
	if m.dead {
		m.qmu.Unlock()
		return
	}
	if m.writing && m.closeCode == 0 {
		// The writer, maybe waiting for a client that reads nothing,
		// cuts the queue and sends the close (see cutLocked).
		m.cutLocked(c)
		m.qmu.Unlock()
		return
	}
	m.live.Add(1)
	m.qmu.Unlock()
	go func() {
		defer m.done()
		m.c.RoomForClose(0)
		m.c.Close(c.Code, c.Reason)
	}()
}

// closeLocked records the close to send after the queue, and bounds the
// time the client has to take them: a client that reads nothing would
// hold a writer for ever.
func (m *member) closeLocked(c transport.Close) {
	m.closeCode, m.closeWhy = c.Code, c.Reason
	m.closeBy = time.Now().Add(m.c.CloseTimeout()).UnixNano()
	if m.quit != nil {
		close(m.quit)
	}
	m.h.wakePace() // a member being closed sets the pace no more
	_ = m.c.SetWriteDeadline(time.Unix(0, m.closeBy))
}

// cutLocked cuts the member off with code: its writer finishes the frame
// on the wire, drops the rest of the queue and sends the close. A writer
// waiting for a socket that takes nothing is woken (a write deadline of
// now) so that it does so at once. qmu is held; there is a writer, as the
// queue is not empty.
func (m *member) cutLocked(c transport.Close) {
	m.cut = true
	m.closeLocked(c)
	if m.waiting {
		// Only then: nobody else writes while it holds the write lock,
		// and the deadline is put back before anyone can.
		_ = m.c.SetWriteDeadline(time.Now())
	}
}

// waitQuit returns a channel closed when the member is closed, or nil if
// it is being closed already. Only members that wait hold one.
func (m *member) waitQuit() chan struct{} {
	m.qmu.Lock()
	defer m.qmu.Unlock()
	if m.dead || m.closeCode != 0 {
		return nil
	}
	if m.quit == nil {
		m.quit = make(chan struct{})
	}
	return m.quit
}

// closing reports whether the member is leaving or being closed.
func (m *member) closing() bool {
	m.qmu.Lock()
	defer m.qmu.Unlock()
	return m.dead || m.closeCode != 0
}

// stopWriting ends the writer's turn if nothing is left for it to do, and
// reports whether it did; else a drain must finish the work.
func (m *member) stopWriting() bool {
	m.qmu.Lock()
	defer m.qmu.Unlock()
	if len(m.q) > 0 || m.closeCode != 0 || m.c.ControlWanted() {
		return false
	}
	m.writing = false
	return true
}

// controlLater sends a pong or ping wanted while the fan-out held the
// write lock (whoever held it sends it), from a drain: the fan-out never
// waits for a socket.
func (m *member) controlLater() {
	if !m.c.ControlWanted() {
		return
	}
	m.qmu.Lock()
	if m.writing || m.dead {
		m.qmu.Unlock() // a writer sends it as it ends; or nobody reads it
		return
	}
	m.writing = true
	m.live.Add(1)
	m.qmu.Unlock()
	go m.drain(false)
}

// drain is the writer while the socket makes it wait: it writes the queue
// until it is empty, with the pongs and pings wanted meanwhile, then sends
// a pending close. locked says the write lock is handed over by its
// caller.
func (m *member) drain(locked bool) {
	defer m.done()
	if !locked {
		m.c.LockWrite()
	}
	var code transport.CloseCode
	var why string
	for {
		m.writeQueued(true)
		m.c.FlushControlLocked()
		m.qmu.Lock()
		if len(m.q) > 0 {
			m.qmu.Unlock() // more came meanwhile
			continue
		}
		code, why = m.closeCode, m.closeWhy
		if code != 0 {
			m.dead = true // nothing may follow the close
		}
		m.writing = false
		m.qmu.Unlock()
		break
	}
	m.c.UnlockWrite()
	if code != 0 {
		// Sent even when the connection broke: Close also wakes the
		// input pump, which ends the member.
		m.c.Close(code, why)
	}
	m.c.SendControl()
}

// writeQueued writes the queue with the write lock held until it is empty
// (it reports true) or, unless wait, until the socket takes no more. With
// wait, it lets others have the write lock between frames. A dead
// member's queue is dropped; a cut one keeps only the chunk whose frame is
// on the wire.
func (m *member) writeQueued(wait bool) bool {
	bt := poll.GetVectors()
	defer poll.PutVectors(bt)
	yielded := false
	for {
		m.qmu.Lock()
		if m.dead || !m.c.WritableLocked() {
			m.dead = true
			m.dropQueueLocked()
		}
		if m.cut {
			// Cut off: the client is to hear the close soon, behind as
			// little as can be. Only the frame begun on the wire is
			// finished, and the socket is given room for it and the
			// close even if the client reads nothing now.
			m.cut = false
			keep := 0
			if len(m.q) > 0 && m.q[0].begun {
				c := &m.q[0]
				end := c.end
				c.cutToFrame()
				m.queued -= end - c.end
				if c.off < c.end {
					keep = 1
				}
			}
			m.dropFromLocked(keep)
			_ = m.c.SetWriteDeadline(time.Unix(0, m.closeBy))
			m.c.RoomForClose(m.queued)
		}
		if len(m.q) == 0 {
			m.qmu.Unlock()
			return true
		}
		if wait && !m.q[0].begun && !yielded {
			// Between frames: a close or a pong waiting for the lock
			// goes now, rather than after the whole queue.
			m.qmu.Unlock()
			m.c.UnlockWrite()
			m.c.SendControl()
			m.c.LockWrite()
			yielded = true
			continue
		}
		yielded = false
		iov := bt.IOV[:0]
		for _, c := range m.q {
			if len(iov) == cap(iov) {
				break
			}
			iov = append(iov, c.b.buf[c.off:c.end])
		}
		m.waiting = wait
		m.qmu.Unlock()

		n, err := m.c.WriteLocked(iov, wait)
		clear(iov)

		m.qmu.Lock()
		m.waiting = false
		m.consumeLocked(n)
		if errors.Is(err, os.ErrDeadlineExceeded) && m.cut {
			err = nil // woken by cutLocked: the loop's next turn cuts
		}
		if err != nil && !errors.Is(err, poll.ErrWouldBlock) {
			m.c.BreakLocked() // the connection is broken, or the close timeout passed
			m.dead = true
		}
		m.qmu.Unlock()
		if errors.Is(err, poll.ErrWouldBlock) {
			return false // not waiting: the socket is full
		}
	}
}

// consumeLocked drops n written bytes from the front of the queue. A
// member that falls below the low-water mark may let the fan-out read
// on.
func (m *member) consumeLocked(n int) {
	if n > 0 {
		m.written += int64(n)
		m.stalled = false
		if m.queued >= m.h.lowWater() && m.queued-n < m.h.lowWater() {
			m.h.wakePace()
		}
	}
	m.queued -= n
	k := 0
	for k < len(m.q) && n > 0 {
		c := &m.q[k]
		left := c.end - c.off
		if n < left {
			c.off += n
			c.begun = true
			break
		}
		n -= left
		c.b.release()
		k++
	}
	m.trimLocked(k)
}

// dropQueueLocked forgets everything queued; only the writer, or anyone
// while nobody writes, may call it: the writer's vectors point into the
// blobs.
func (m *member) dropQueueLocked() { m.dropFromLocked(0) }

// dropFromLocked forgets the chunks from the keep-th on, as
// dropQueueLocked does.
func (m *member) dropFromLocked(keep int) {
	for _, c := range m.q[keep:] {
		m.queued -= c.end - c.off
		c.b.release()
	}
	clear(m.q[keep:])
	m.q = m.q[:keep]
	if keep == 0 && cap(m.q) > 16 {
		m.q = nil // an idle member holds little
	}
}

// trimLocked removes the first k chunks, and the queue's array once it is
// empty and large, so an idle member holds little.
func (m *member) trimLocked(k int) {
	rest := copy(m.q, m.q[k:])
	clear(m.q[rest:])
	m.q = m.q[:rest]
	if rest == 0 && cap(m.q) > 16 {
		m.q = nil
	}
}
