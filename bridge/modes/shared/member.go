package shared

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/wsbridge/wsbridge/bridge/modes"
	"github.com/wsbridge/wsbridge/bridge/transport"
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
	h      *Hub
	c      transport.Framed
	in     modes.Pump
	id     uint32   // the id mux records carry; set by Join
	sid    uint64   // the server's connection id, for logs
	env    []string // mux: the client's environment, for open records
	finish func()

	// announced is the generation (hub.gen) of the child that knows the
	// member: its messages go to that child only. Guarded by hub.mu.
	announced uint64

	asm modes.Assembler

	qmu       sync.Mutex
	q         []chunk // what waits to be written, in order
	queued    int     // bytes in q
	writing   bool    // a writer (the fan-out, or a drain) owns q's head and the socket
	dead      bool    // the member is leaving or its connection broke: queue nothing
	cut       bool    // cut off: the writer drops what it has not begun, then closes
	waiting   bool    // the writer is in a write that waits for the socket, the write lock held
	mid       bool    // the client is inside a message it has not all been queued
	dropped   int64   // messages dropped under DropSlow
	lastDrop  int64   // UnixNano of the last drop logged
	stalled   bool    // took nothing for stallLimit while holding the fan-out back: it no longer sets the pace
	written   int64   // bytes written from q, ever; the fan-out's stall check compares it with mark
	mark      int64
	closeCode transport.CloseCode // a close to send once q is written; 0: none
	closeWhy  string
	closeBy   int64         // the write deadline of a close, UnixNano (an idle member holds less than a time.Time)
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
		next := i + c.b.wire.FrameLen(c.b.buf[i:c.end])
		if next > c.off {
			c.end = next
			return
		}
		i = next
	}
}

// environ returns what the member's open record carries.
func (m *member) environ() []string { return m.env }

// prepare readies the member before join makes it visible to the fan-out
// and to shutdown: from then on a writer, a close or a ping may come.
func (m *member) prepare() {
	m.live.Store(1) // the input pump, started by Join
	m.h.host.InitPump(&m.in, m.c, m)
	m.c.LimitUnsent()
}

// DeliverIn passes the client's messages to the child, each whole (see
// assembler), so no other member's message can come between its parts.
func (m *member) DeliverIn(pieces []framing.Piece) error {
	for i := range pieces {
		pieces[i].Conn = m.id
	}
	if err := m.asm.Feed(pieces, m.writeIn); err != nil {
		return m.overBudget(err)
	}
	return nil
}

// overBudget closes a client whose message does not fit in the
// endpoint's assembly budget with 1013 and says so in the log.
func (m *member) overBudget(err error) error {
	c := transport.ForError(err)
	m.h.host.LogClose(c, m.h.who(), "id", m.sid, "held", m.asm.Budget.Held(), "limit", m.asm.Budget.Limit)
	return m.c.Fail(err)
}

// writeIn hands whole messages to the hub.
func (m *member) writeIn(whole []framing.Piece) { m.h.write(m, whole) }

// EndIn runs once the client side has ended: the member leaves the hub (a
// mux child gets a close record with the client's code) and its queue is
// dropped.
func (m *member) EndIn(err error) {
	code, reason := transport.CloseAbnormal, ""
	var ce *transport.CloseError
	if errors.As(err, &ce) {
		code, reason = ce.Code, ce.Reason
		if ce.Code == transport.CloseAbnormal || !ce.Remote {
			ended := m.c.Ended()
			code, reason = ended.Code, ended.Reason
		}
	}
	m.qmu.Lock()
	m.dead = true // a writer stops at once
	if !m.writing {
		m.dropQueueLocked()
	}
	m.qmu.Unlock()
	m.c.Close(transport.ClientLeft.Code, transport.ClientLeft.Reason)
	m.h.leave(m, code, reason)
	m.h.wakePace()
	m.asm.Release()
	m.done()
}

func (m *member) done() {
	if m.live.Add(-1) == 0 {
		m.finish()
	}
}
