package bridge

import (
	"errors"
	"log/slog"
	"net"
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
type member struct {
	h      *hub
	wc     *wsConn
	id     uint32   // the id mux records carry; set by join
	sid    uint64   // the server's connection id, for logs
	env    []string // mux: the client's environment, for open records
	inRC   syscall.RawConn
	finish func(pid int, exit string)

	asm assembler

	qmu       sync.Mutex
	q         []chunk // what waits to be written, in order
	queued    int     // bytes in q
	writing   bool    // someone (the fan-out, or a drain) writes q now
	dead      bool    // the member is leaving or cut off: queue nothing
	mid       bool    // the client is inside a message it has not all been queued
	dropped   int64   // messages dropped under DropSlow
	lastDrop  time.Time
	closeCode CloseCode // a close to send once q is written; 0: none
	closeWhy  string

	// live counts what still uses the connection: the input pump, the
	// writer while writing is set, a closer. Every increment happens
	// under qmu while dead is false, or while the input pump's count is
	// surely held, so the count reaches zero, and finish runs, once.
	live atomic.Int32
}

// chunk is a blob's bytes from off on, queued for one member.
type chunk struct {
	b   *blob
	off int
}

// environ returns what the member's open record carries.
func (m *member) environ() []string { return m.env }

// start runs the member's input pump; join has registered it.
func (m *member) start() {
	if m.h.srv.poller != nil {
		m.inRC = m.wc.rawConn()
	}
	m.wc.setParking(m.inRC != nil, m.wakeIn)
	m.live.Store(1)
	go m.pumpIn()
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
	m.asm.feed(pieces, m.h.write)
	return nil
}

// assembler turns a client's pieces into whole messages, one piece each:
// a message that arrives in one frame and one read is passed on as it is,
// without a copy; one in several is copied together first (MaxMessage
// bounds it). The shared and per-message CGI modes need messages whole.
type assembler struct {
	buf  []byte // the open message so far; nil between messages
	kind framing.Kind
}

// feed calls emit with batches of whole messages, in order; pieces is
// compacted in place (each piece is read before its slot is reused), and
// what emit gets is valid only during the call.
func (a *assembler) feed(pieces []framing.Piece, emit func([]framing.Piece)) {
	whole := pieces[:0]
	for _, p := range pieces {
		if p.First && p.Final && a.buf == nil {
			whole = append(whole, p)
			continue
		}
		if p.First {
			a.kind = p.Kind
			a.buf = make([]byte, 0, len(p.Data))
		}
		a.buf = append(a.buf, p.Data...)
		if p.Final {
			whole = append(whole, framing.Piece{Data: a.buf, Kind: a.kind, Conn: p.Conn, First: true, Final: true})
			emit(whole)
			whole = whole[:0]
			a.buf = nil
		}
	}
	if len(whole) > 0 {
		emit(whole)
	}
}

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
	m.wc.Close(CloseGoingAway, "client went away")
	if m.inRC != nil {
		m.h.srv.poller.Forget(m.inRC)
	}
	m.h.leave(m, code, reason)
	m.asm = assembler{}
	m.qmu.Lock()
	m.dead = true
	if !m.writing {
		m.dropQueueLocked()
	}
	m.qmu.Unlock()
	m.done()
}

func (m *member) done() {
	if m.live.Add(-1) == 0 {
		m.finish(0, "")
	}
}

// push queues blob b for the member and writes it if nobody is writing.
// It never blocks on the client: a member whose queue is full is slow and
// loses whole messages (DropSlow) or is closed with 1013.
func (m *member) push(b *blob) {
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
	if m.queued > 0 && m.queued+size > m.h.ep.Shared.Queue {
		continuing := from == 0 && b.startsMid && m.mid
		if m.h.ep.Shared.DropSlow && !continuing {
			// Drop the blob: the member is then outside any message,
			// and skips a message the blob leaves open.
			m.mid = false
			m.dropped += int64(b.messages)
			now := time.Now()
			log := now.Sub(m.lastDrop) > 10*time.Second
			if log {
				m.lastDrop = now
			}
			dropped := m.dropped
			m.qmu.Unlock()
			if log {
				m.h.logf(slog.LevelInfo, "slow client: dropping messages (--drop-slow)", "id", m.sid, "queued", m.queued, "dropped", dropped)
			}
			return
		}
		queued := m.queued
		m.dead = true
		if !m.writing {
			m.dropQueueLocked()
		}
		m.live.Add(1) // the closer below; the input pump has not ended (dead was false)
		m.qmu.Unlock()
		why := "too slow: outgoing queue full"
		if continuing {
			why = "too slow: outgoing queue full inside a message"
		}
		m.h.logf(slog.LevelInfo, "slow client disconnected", "id", m.sid, "queued", queued, "limit", m.h.ep.Shared.Queue, "why", why)
		// Close waits for the write lock, which a blocked drain may
		// hold for a while: never on the fan-out's time.
		go func() {
			defer m.done()
			m.wc.Close(CloseTryAgainLater, why)
		}()
		return
	}
	b.refs.Add(1)
	m.q = append(m.q, chunk{b, from})
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
	m.live.Add(1) // the writer's, until writing is cleared
	m.qmu.Unlock()
	// Write now, without waiting: most sockets take it all.
	if m.wc.wmu.TryLock() {
		emptied := m.writeQueued(false)
		m.wc.wmu.Unlock()
		m.wc.controlAfterUnlock()
		if emptied {
			m.done()
			return
		}
	}
	go m.drain() // takes over the writer's count
}

// closeAfterQueued closes the member once what is queued for it is
// written; the first close wins.
func (m *member) closeAfterQueued(code CloseCode, reason string) {
	m.qmu.Lock()
	if m.dead || m.closeCode != 0 {
		m.qmu.Unlock()
		return
	}
	m.closeCode, m.closeWhy = code, reason
	if m.writing {
		m.qmu.Unlock() // the writer sends it
		return
	}
	m.writing = true
	m.live.Add(1) // the writer's, until writing is cleared
	m.qmu.Unlock()
	go m.drain()
}

// closeNow closes the member at once, dropping nothing queued (the close
// follows frames already written), without waiting on the caller's time:
// a writer blocked on a slow client may hold the write lock until the
// close's write deadline.
func (m *member) closeNow(code CloseCode, reason string) {
	m.qmu.Lock()
	if m.dead {
		m.qmu.Unlock()
		return
	}
	m.live.Add(1)
	m.qmu.Unlock()
	go func() {
		defer m.done()
		m.wc.Close(code, reason)
	}()
}

// drain writes the queue, waiting for the socket as needed, until it is
// empty; then sends a pending close. It holds the writer's count.
func (m *member) drain() {
	defer m.done()
	m.wc.wmu.Lock()
	m.writeQueued(true)
	m.wc.wmu.Unlock()
	m.wc.controlAfterUnlock()
}

// writeQueued writes the queue with the write lock held, until it is
// empty (it then clears writing and reports true) or, unless block, the
// socket takes no more. A close waiting for the queue goes out last.
func (m *member) writeQueued(block bool) bool {
	bt := batchPool.Get().(*batch)
	defer batchPool.Put(bt)
	for {
		m.qmu.Lock()
		if m.dead || m.wc.closeSent.Load() || m.wc.wbroken {
			m.dead = true
			m.dropQueueLocked()
		}
		if len(m.q) == 0 {
			code, why := m.closeCode, m.closeWhy
			send := code != 0 && !m.dead
			if send && !block {
				m.qmu.Unlock()
				return false // a close may wait for the socket: the drain sends it
			}
			if send {
				m.dead = true // nothing may follow the close
			}
			m.writing = false
			m.qmu.Unlock()
			if send {
				// sendClose takes the write lock itself.
				m.wc.wmu.Unlock()
				m.wc.Close(code, why)
				m.wc.wmu.Lock()
			}
			return true
		}
		iov := bt.iov[:0]
		for _, c := range m.q {
			if len(iov) == cap(iov) {
				break
			}
			iov = append(iov, c.b.buf[c.off:])
		}
		m.qmu.Unlock()

		var n int
		var err error
		if block {
			var n64 int64
			bufs := net.Buffers(iov)
			n64, err = bufs.WriteTo(m.wc.conn)
			n = int(n64)
		} else {
			n, err = m.wc.writevNow(iov)
		}
		clear(iov)

		m.qmu.Lock()
		m.consumeLocked(n)
		if err != nil && !errors.Is(err, errWouldBlock) {
			m.wc.wbroken = true // the connection is broken: nothing more fits
			m.dead = true
		}
		m.qmu.Unlock()
		if !block && err != nil && !m.dead {
			return false // the socket is full: a drain takes over
		}
	}
}

// consumeLocked drops n written bytes from the front of the queue.
func (m *member) consumeLocked(n int) {
	m.queued -= n
	k := 0
	for k < len(m.q) && n > 0 {
		c := &m.q[k]
		left := len(c.b.buf) - c.off
		if n < left {
			c.off += n
			break
		}
		n -= left
		c.b.release()
		k++
	}
	m.trimLocked(k)
}

// dropQueueLocked forgets everything queued; only the writer, or anyone
// while nobody writes, may call it.
func (m *member) dropQueueLocked() {
	for _, c := range m.q {
		c.b.release()
	}
	m.trimLocked(len(m.q))
	m.queued = 0
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

// writevNow writes iov with one writev(2) that does not wait: it returns
// what the socket took, and errWouldBlock when it took only part or
// nothing. The write lock is held.
func (c *wsConn) writevNow(iov [][]byte) (int, error) {
	if c.pr.rc == nil {
		return 0, errWouldBlock // no descriptor: the drain writes it
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
		return true // one try: never wait here
	})
	switch {
	case err != nil:
		return 0, err
	case werr == unix.EAGAIN:
		return 0, errWouldBlock
	case werr != nil:
		return 0, werr
	case n < want:
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
