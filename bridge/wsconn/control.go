package wsconn

import (
	"time"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"
)

// startPings pings the client once it has been silent for PingInterval,
// and again every PingInterval while it stays silent but for its pongs,
// and marks it late when a ping goes unanswered for PingTimeout; wake then
// gets the reader to notice, wherever it is waiting. A timer, not a read
// deadline, so a parked reader is watched too. Bytes left unread while
// the reader waits on a child that does not read its stdin keep a client
// from being late, but not from being pinged.
func (c *Conn) startPings(wake func()) {
	d := c.cfg.PingInterval
	if d <= 0 {
		return
	}
	c.lastIn.Store(time.Now().UnixNano())
	// Owned by tick: the timer runs one tick at a time, since each
	// tick's last act is the Reset that schedules the next.
	var lastPing, unanswered int64 // UnixNano; 0: none
	tick := func() {
		if c.closeSent.Load() {
			return
		}
		now := time.Now().UnixNano()
		heard := c.lastIn.Load()
		if unanswered != 0 && heard >= unanswered {
			unanswered = 0 // something came after the ping
		}
		if unanswered != 0 && now-unanswered >= int64(c.cfg.PingTimeout) {
			if c.pollNow(unix.POLLIN)&unix.POLLIN == 0 {
				c.pingLate.Store(true)
				_ = c.conn.SetReadDeadline(time.Now()) // a blocked reader
				wake()                                 // a parked one
				return
			}
			// Bytes wait unread, behind a child that does not read
			// its stdin, and the answer may be among them: not late.
			// The pings go on all the same, and one that reaches a
			// client that has closed its socket gets the connection
			// reset, which Gone sees.
			unanswered = 0
		}
		due := max(heard, lastPing) + int64(d) // D of silence, ours included
		if now >= due {
			// Never wait for the write lock: a writer stuck on a
			// client that reads nothing holds it, and that client
			// must be found late too.
			c.pingWant.Store(true)
			c.controlAfterUnlock()
			lastPing = now
			if unanswered == 0 {
				unanswered = now
			}
			due = now + int64(d)
		}
		next := due
		if unanswered != 0 {
			next = min(next, unanswered+int64(c.cfg.PingTimeout))
		}
		c.pinger.Reset(time.Duration(max(next-now, int64(time.Millisecond))))
	}
	c.pinger = time.AfterFunc(d, tick)
}

// pong answers a ping without ever waiting for the write lock: the input
// pump must keep feeding the child while the output pump is blocked on a
// slow client. RFC 6455 5.5.3 allows answering only the latest ping.
func (c *Conn) pong(p []byte) {
	c.pongMu.Lock()
	if c.pongBuf == nil {
		c.pongBuf = new([125]byte) // most connections are never pinged
	}
	c.pongLen = copy(c.pongBuf[:], p)
	c.pongMu.Unlock()
	c.pongWant.Store(true)
	c.controlAfterUnlock()
}

// controlAfterUnlock sends a wanted pong or ping if the write lock is
// free. Whoever holds the lock when one is wanted sends it before or
// right after unlocking, so none is forgotten.
func (c *Conn) controlAfterUnlock() {
	if (c.pongWant.Load() || c.pingWant.Load()) && c.wmu.TryLock() {
		c.flushControlLocked()
		c.wmu.Unlock()
	}
}

func (c *Conn) flushControlLocked() {
	if c.pongWant.Swap(false) {
		var p [125]byte
		c.pongMu.Lock()
		n := copy(p[:], c.pongBuf[:c.pongLen])
		c.pongMu.Unlock()
		hdr := appendHeader(make([]byte, 0, 2), ws.OpPong, true, n)
		_ = c.writeLocked([][]byte{hdr, p[:n]})
	}
	if c.pingWant.Swap(false) {
		_ = c.writeLocked([][]byte{appendHeader(make([]byte, 0, 2), ws.OpPing, true, 0)})
	}
}
