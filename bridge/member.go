package bridge

import (
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wsbridge/wsbridge/framing"
)

// member is one client of a shared child. Its input pump parks while the
// client is idle, like a session's; its output is a queue of blobs written
// from the fan-out while the socket takes them and by a drain goroutine
// while it does not. An idle member holds no goroutine and no buffer.
//
// Output has one writer at a time (writing): the fan-out, for as long as
// the socket takes everything without waiting, then a drain goroutine
// until the queue is empty. The writer holds the connection's write lock
// whenever the socket may hold part of a frame, and hands the lock over
// to the drain it starts, so nothing (a pong, a close) ever lands inside
// a frame. It yields the lock between frames.
type member struct {
	h      *hub
	wc     *wsConn
	id     uint32   // the id mux records carry; set by join
	sid    uint64   // the server's connection id, for logs
	env    []string // mux: the client's environment, for open records
	inRC   syscall.RawConn
	finish func(pid int, exit string)

	// announced is the generation (hub.gen) of the child that knows the
	// member: its messages go to that child only. Guarded by hub.mu.
	announced uint64

	asm assembler

	qmu       sync.Mutex
	q         []chunk // what waits to be written, in order
	queued    int     // bytes in q
	writing   bool    // a writer (the fan-out, or a drain) owns q's head and the socket
	dead      bool    // the member is leaving or its connection broke: queue nothing
	cut       bool    // cut off: the writer drops what it has not begun, then closes
	waiting   bool    // the writer is in a write that waits for the socket, the write lock held
	mid       bool    // the client is inside a message it has not all been queued
	dropped   int64   // messages dropped under DropSlow
	lastDrop  time.Time
	stalled   bool  // took nothing for stallLimit while holding the fan-out back: it no longer sets the pace
	written   int64 // bytes written from q, ever; the fan-out's stall check compares it with mark
	mark      int64
	closeCode CloseCode // a close to send once q is written; 0: none
	closeWhy  string
	closeBy   time.Time     // the write deadline of a close
	quit      chan struct{} // closed with the first close; made by waitQuit, for a write waiting for a child

	// live counts what still uses the connection: the input pump, the
	// writer while writing is set, a closer. Every increment happens
	// under qmu while dead is false, and the input pump's count is set
	// before the member is seen by anyone, so the count reaches zero,
	// and finish runs, once.
	live atomic.Int32
}

// chunk is a blob's bytes from off to end, queued for one member.
type chunk struct {
	b     *blob
	start int // where the chunk began: a frame's start
	off   int
	end   int
	begun bool // part of it is on the wire: the socket holds a frame's start
}

// cutToFrame ends the chunk with the frame that off is in, so that a
// frame begun on the wire is finished and nothing after it is sent.
func (c *chunk) cutToFrame() {
	for i := c.start; i < c.end; {
		if i == c.off {
			c.end = i // between frames: nothing more
			return
		}
		next := i + frameLen(c.b.buf[i:c.end])
		if next > c.off {
			c.end = next
			return
		}
		i = next
	}
}

// frameLen returns the length of the unmasked server frame at the start
// of p (see appendHeader), header included.
func frameLen(p []byte) int {
	n, hdr := int(p[1]&0x7f), 2
	switch n {
	case 126:
		n, hdr = int(binary.BigEndian.Uint16(p[2:])), 4
	case 127:
		n, hdr = int(binary.BigEndian.Uint64(p[2:])), 10
	}
	return hdr + n
}

// environ returns what the member's open record carries.
func (m *member) environ() []string { return m.env }

// prepare readies the member before join makes it visible to the fan-out
// and to shutdown: from then on a writer, a close or a ping may come.
func (m *member) prepare() {
	m.live.Store(1) // the input pump, started by join
	if m.h.srv.poller != nil {
		m.inRC = m.wc.rawConn()
	}
	m.wc.setParking(m.inRC != nil, m.wakeIn)
	m.wc.limitUnsent(notSentLimit())
}

// wakeIn runs a parked input pump now, for a close or a late ping.
func (m *member) wakeIn() {
	if m.inRC != nil && m.h.srv.poller.Unpark(m.inRC) {
		go m.pumpIn()
	}
}

func (m *member) pumpIn() {
	if err := m.h.srv.receive(m.wc, m.inRC, m.deliverIn, m.pumpIn); !errors.Is(err, errParked) {
		m.end(err)
	}
}

// deliverIn passes the client's messages to the child, each whole (see
// assembler), so no other member's message can come between its parts.
func (m *member) deliverIn(pieces []framing.Piece) error {
	for i := range pieces {
		pieces[i].Conn = m.id
	}
	if err := m.asm.feed(pieces, m.writeIn); err != nil {
		return m.overBudget(err)
	}
	return nil
}

// overBudget closes a client whose message does not fit in the
// endpoint's assembly budget with 1013 and says so in the log.
func (m *member) overBudget(err error) error {
	m.h.logf(slog.LevelWarn, "client message refused: assembly budget full", "id", m.sid,
		"held", m.asm.budget.held.Load(), "limit", m.asm.budget.limit)
	return m.wc.fail(CloseTryAgainLater, err)
}

// writeIn hands whole messages to the hub.
func (m *member) writeIn(whole []framing.Piece) { m.h.write(m, whole) }

// end runs once the client side has ended: the member leaves the hub (a
// mux child gets a close record with the client's code) and its queue is
// dropped.
func (m *member) end(err error) {
	code, reason := CloseAbnormal, ""
	var ce *CloseError
	if errors.As(err, &ce) {
		code, reason = ce.Code, ce.Reason
		if ce.Code == CloseAbnormal || !ce.Remote {
			code, reason = m.wc.closeInfo().Code, m.wc.closeInfo().Reason
		}
	}
	m.qmu.Lock()
	m.dead = true // a writer stops at once
	if !m.writing {
		m.dropQueueLocked()
	}
	m.qmu.Unlock()
	m.wc.Close(CloseGoingAway, "client went away")
	if m.inRC != nil {
		m.h.srv.poller.Forget(m.inRC)
	}
	m.h.leave(m, code, reason)
	m.h.wakePace()
	m.asm.release()
	m.done()
}

func (m *member) done() {
	if m.live.Add(-1) == 0 {
		m.finish(0, "")
	}
}

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
	if m.queued > 0 && m.queued+size > ref+m.h.ep.Shared.Queue {
		m.overflowLocked(b, from) // unlocks qmu
		return
	}
	b.refs.Add(1)
	m.q = append(m.q, chunk{b: b, start: from, off: from, end: len(b.buf)})
	m.queued += size
	m.mid = b.endsMid
	if from == 0 {
		m.wc.bytesOut.Add(b.payload)
	}
	if m.writing {
		m.qmu.Unlock()
		return
	}
	m.writing = true
	m.live.Add(1) // the writer's, given back when writing ends
	m.qmu.Unlock()
	if !m.wc.wmu.TryLock() {
		go m.drain(false) // a pong or a close is being written
		return
	}
	// Write now, without waiting: most sockets take it all.
	if m.writeQueued(false) && m.stopWriting() {
		m.wc.wmu.Unlock()
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
	if m.h.ep.Shared.DropSlow && !continuing {
		// Drop the blob: the member is then outside any message, and
		// skips a message the blob leaves open.
		m.mid = false
		m.dropped += int64(b.messages)
		dropped := m.dropped
		now := time.Now()
		log := now.Sub(m.lastDrop) > 10*time.Second
		if log {
			m.lastDrop = now
		}
		m.qmu.Unlock()
		if log {
			m.h.logf(slog.LevelInfo, "slow client: dropping messages (--drop-slow)", "id", m.sid, "queued", queued, "dropped", dropped)
		}
		return
	}
	why := "too slow: outgoing queue full"
	if continuing {
		why = "too slow: outgoing queue full inside a message"
	}
	// The writer drops what it has not begun and sends the close; the
	// client has the close timeout to take them. There is a writer: the
	// queue is not empty.
	m.cutLocked(CloseTryAgainLater, why)
	m.qmu.Unlock()
	m.h.logf(slog.LevelInfo, "slow client disconnected", "id", m.sid, "queued", queued, "limit", m.h.ep.Shared.Queue, "why", why)
}

// closeAfterQueued closes the member once what is queued for it is
// written; the first close wins. The client has the close timeout to take
// the rest and the close.
func (m *member) closeAfterQueued(code CloseCode, reason string) {
	m.qmu.Lock()
	if m.dead || m.closeCode != 0 {
		m.qmu.Unlock()
		return
	}
	m.closeLocked(code, reason)
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
func (m *member) closeNow(code CloseCode, reason string) {
	m.qmu.Lock()
	if m.dead {
		m.qmu.Unlock()
		return
	}
	if m.writing && m.closeCode == 0 {
		// The writer, maybe waiting for a client that reads nothing,
		// cuts the queue and sends the close (see cutLocked).
		m.cutLocked(code, reason)
		m.qmu.Unlock()
		return
	}
	m.live.Add(1)
	m.qmu.Unlock()
	go func() {
		defer m.done()
		m.wc.roomForClose(0)
		m.wc.Close(code, reason)
	}()
}

// closeLocked records the close to send after the queue, and bounds the
// time the client has to take them: a client that reads nothing would
// hold a writer for ever.
func (m *member) closeLocked(code CloseCode, reason string) {
	m.closeCode, m.closeWhy = code, reason
	m.closeBy = time.Now().Add(m.wc.cfg.CloseTimeout)
	if m.quit != nil {
		close(m.quit)
	}
	m.h.wakePace() // a member being closed sets the pace no more
	_ = m.wc.conn.SetWriteDeadline(m.closeBy)
}

// cutLocked cuts the member off with code: its writer finishes the frame
// on the wire, drops the rest of the queue and sends the close. A writer
// waiting for a socket that takes nothing is woken (a write deadline of
// now) so that it does so at once. qmu is held; there is a writer, as the
// queue is not empty.
func (m *member) cutLocked(code CloseCode, why string) {
	m.cut = true
	m.closeLocked(code, why)
	if m.waiting {
		// Only then: nobody else writes while it holds the write lock,
		// and the deadline is put back before anyone can.
		_ = m.wc.conn.SetWriteDeadline(time.Now())
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
	if len(m.q) > 0 || m.closeCode != 0 || m.wc.pongWant.Load() || m.wc.pingWant.Load() {
		return false
	}
	m.writing = false
	return true
}

// controlLater sends a pong or ping wanted while the fan-out held the
// write lock (whoever held it sends it), from a drain: the fan-out never
// waits for a socket.
func (m *member) controlLater() {
	if !m.wc.pongWant.Load() && !m.wc.pingWant.Load() {
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
		m.wc.wmu.Lock()
	}
	var code CloseCode
	var why string
	for {
		m.writeQueued(true)
		m.wc.flushControlLocked()
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
	m.wc.wmu.Unlock()
	if code != 0 {
		// Sent even when the connection broke: Close also wakes the
		// input pump, which ends the member.
		m.wc.Close(code, why)
	}
	m.wc.controlAfterUnlock()
}

// writeQueued writes the queue with the write lock held until it is empty
// (it reports true) or, unless wait, until the socket takes no more. With
// wait, it lets others have the write lock between frames. A dead
// member's queue is dropped; a cut one keeps only the chunk whose frame is
// on the wire.
func (m *member) writeQueued(wait bool) bool {
	bt := batchPool.Get().(*batch)
	defer batchPool.Put(bt)
	yielded := false
	for {
		m.qmu.Lock()
		if m.dead || m.wc.closeSent.Load() || m.wc.wbroken {
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
			_ = m.wc.conn.SetWriteDeadline(m.closeBy)
			m.wc.roomForClose(m.queued)
		}
		if len(m.q) == 0 {
			m.qmu.Unlock()
			return true
		}
		if wait && !m.q[0].begun && !yielded {
			// Between frames: a close or a pong waiting for the lock
			// goes now, rather than after the whole queue.
			m.qmu.Unlock()
			m.wc.wmu.Unlock()
			m.wc.controlAfterUnlock()
			m.wc.wmu.Lock()
			yielded = true
			continue
		}
		yielded = false
		iov := bt.iov[:0]
		for _, c := range m.q {
			if len(iov) == cap(iov) {
				break
			}
			iov = append(iov, c.b.buf[c.off:c.end])
		}
		m.waiting = wait
		m.qmu.Unlock()

		n, err := m.wc.writev(iov, wait)
		clear(iov)

		m.qmu.Lock()
		m.waiting = false
		m.consumeLocked(n)
		if errors.Is(err, os.ErrDeadlineExceeded) && m.cut {
			err = nil // woken by cutLocked: the loop's next turn cuts
		}
		if err != nil && !errors.Is(err, errWouldBlock) {
			m.wc.wbroken = true // the connection is broken, or the close timeout passed
			m.dead = true
		}
		m.qmu.Unlock()
		if errors.Is(err, errWouldBlock) {
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

// notSentLimit bounds the bytes a member's socket holds that TCP has not
// sent (TCP_NOTSENT_LOWAT) to net.core.wmem_max: SO_SNDBUF can ask for
// a buffer of twice that, which leaves a client cut off room for its
// close (see roomForClose). What waits for a slow client beyond it waits
// in its queue, where it can be dropped.
var notSentLimit = sync.OnceValue(func() int { return min(max(wmemMax(), 128<<10), 4<<20) })

// wmemMax returns net.core.wmem_max, or Linux's default.
func wmemMax() int {
	b, err := os.ReadFile("/proc/sys/net/core/wmem_max")
	if n, perr := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && perr == nil && n > 0 {
		return n
	}
	return 212992
}

// limitUnsent sets TCP_NOTSENT_LOWAT where the connection is TCP.
func (c *wsConn) limitUnsent(n int) {
	if c.pr.rc != nil {
		_ = c.pr.rc.Control(func(fd uintptr) {
			_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, n)
		})
	}
}

// roomForClose lets the socket take n more bytes and a close frame even
// while the client reads nothing: it lifts the unsent limit and, where
// the send buffer is small (a client slow from the start never let TCP
// grow it), grows it by what is needed. Bytes the socket holds already
// cannot be recalled; the client reads them first.
func (c *wsConn) roomForClose(n int) {
	if c.pr.rc == nil {
		return
	}
	_ = c.pr.rc.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, 0) // 0: the system's, no limit
		sndbuf, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF)
		if err != nil {
			return
		}
		queued, err := unix.IoctlGetInt(int(fd), unix.SIOCOUTQ)
		if err != nil {
			return
		}
		// The kernel counts buffers with their overhead: twice the bytes
		// is a safe guess. SO_SNDBUF doubles what it is given, up to
		// twice net.core.wmem_max, which notSentLimit leaves room in.
		if want := 2*(queued+n) + 4096; want > sndbuf {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF, min(want/2, wmemMax()))
		}
	})
}

// writev writes iov with writev(2), the write lock held. With wait it
// waits for room as often as needed until part is written (the write
// deadline applies) and returns what was; without, it never waits and
// returns errWouldBlock, with what the socket took, unless it took all.
func (c *wsConn) writev(iov [][]byte, wait bool) (int, error) {
	if c.pr.rc == nil {
		if !wait {
			return 0, errWouldBlock // no descriptor: the drain writes it
		}
		bufs := net.Buffers(iov)
		n, err := bufs.WriteTo(c.conn)
		return int(n), err
	}
	want := 0
	for _, b := range iov {
		want += len(b)
	}
	var n int
	var werr error
	err := c.pr.rc.Write(func(fd uintptr) bool {
		for {
			n, werr = unix.Writev(int(fd), iov)
			if werr != unix.EINTR {
				break
			}
		}
		return werr != unix.EAGAIN || !wait
	})
	switch {
	case err != nil:
		return 0, err
	case werr == unix.EAGAIN:
		return 0, errWouldBlock
	case werr != nil:
		return 0, werr
	case n < want && !wait:
		return n, errWouldBlock
	}
	return n, nil
}

// blob is one batch of the child's output framed as WebSocket frames,
// shared by every member it is queued for and given back to the pool
// when the last one has written it.
type blob struct {
	buf        []byte // pooled
	refs       atomic.Int32
	payload    int64 // message bytes, for the access log
	messages   int   // messages that start in it
	firstStart int   // offset of the first frame that starts a message; len(buf) if none
	startsMid  bool  // its first frame continues a message
	endsMid    bool  // its last frame leaves a message open
}

var blobPool = sync.Pool{New: func() any { return new(blob) }}

// newBlob frames pieces into a blob with one reference, the caller's.
func newBlob(pieces []framing.Piece) *blob {
	size := 0
	for _, p := range pieces {
		size += len(p.Data) + maxFrameHeader
	}
	b := blobPool.Get().(*blob)
	buf := getBuffer(size)[:0]
	b.payload, b.messages, b.firstStart = 0, 0, -1
	for _, p := range pieces {
		if p.First {
			b.messages++
			if b.firstStart < 0 {
				b.firstStart = len(buf)
			}
		}
		buf = wsFrames{}.AppendPrefix(buf, p)
		buf = append(buf, p.Data...)
		b.payload += int64(len(p.Data))
	}
	if b.firstStart < 0 {
		b.firstStart = len(buf)
	}
	b.buf = buf
	b.startsMid = len(pieces) > 0 && !pieces[0].First
	b.endsMid = len(pieces) > 0 && !pieces[len(pieces)-1].Final
	b.refs.Store(1)
	return b
}

// maxFrameHeader is the longest header of an unmasked server frame.
const maxFrameHeader = 10

func (b *blob) release() {
	if b.refs.Add(-1) == 0 {
		putBuffer(b.buf)
		b.buf = nil
		blobPool.Put(b)
	}
}
