package modes

import (
	"sync/atomic"

	"github.com/wsbridge/wsbridge/bridge/poll"
	"github.com/wsbridge/wsbridge/bridge/transport"
	"github.com/wsbridge/wsbridge/framing"
)

// Budget bounds the bytes every client of an endpoint together
// may hold in messages the shared and per-message CGI modes keep whole:
// messages still arriving, and (CGI) messages waiting for or being fed to
// a script. It counts the capacity of the pooled buffers they are in,
// which is what they pin. Safe for concurrent use.
type Budget struct {
	Limit int64
	held  atomic.Int64
}

// take reserves n bytes, or reports false and reserves nothing.
func (b *Budget) take(n int) bool {
	if b.held.Add(int64(n)) > b.Limit {
		b.held.Add(-int64(n))
		return false
	}
	return true
}

func (b *Budget) give(n int) { b.held.Add(-int64(n)) }

// Held returns the bytes held now.
func (b *Budget) Held() int64 { return b.held.Load() }

// Get returns a pooled buffer of length size charged to the budget, or
// nil when the budget has no room for it. Give it back with Put.
func (b *Budget) Get(size int) []byte {
	buf := poll.Get(size)
	if !b.take(cap(buf)) {
		poll.Put(buf)
		return nil
	}
	return buf
}

// Put returns a buffer from Get to the pool and its bytes to the budget.
func (b *Budget) Put(buf []byte) {
	if buf != nil {
		b.give(cap(buf))
		poll.Put(buf)
	}
}

// Assembler turns a client's pieces into whole messages, one piece each:
// a message that arrives in one frame and one read is passed on as it is,
// without a copy; one in several is copied together first, into a pooled
// buffer that grows by doubling up to Max (the endpoint's MaxMessage) and
// is charged to the endpoint's budget while it is held. The shared and
// per-message CGI modes need messages whole. One goroutine (the input
// pump) uses it; Release gives its buffer back when the client is gone.
type Assembler struct {
	Budget *Budget
	Max    int64
	buf    []byte // pooled: the open message so far; nil between messages
	kind   framing.Kind
}

// Feed calls emit with batches of whole messages, in order; pieces is
// compacted in place (each piece is read before its slot is reused), and
// what emit gets is valid only during the call. It returns transport.ErrBudget, and
// has dropped the open message, when the budget has no room for it: no
// part of that message is ever emitted.
func (a *Assembler) Feed(pieces []framing.Piece, emit func([]framing.Piece)) error {
	whole := pieces[:0]
	for _, p := range pieces {
		if p.First && p.Final && a.buf == nil {
			whole = append(whole, p)
			continue
		}
		if p.First {
			a.kind = p.Kind
		}
		if !a.grow(len(p.Data)) {
			if len(whole) > 0 {
				emit(whole) // the messages before it were whole
			}
			a.Release()
			return transport.ErrBudget
		}
		a.buf = append(a.buf, p.Data...)
		if p.Final {
			whole = append(whole, framing.Piece{Data: a.buf, Kind: a.kind, Conn: p.Conn, First: true, Final: true})
			emit(whole)
			whole = whole[:0]
			a.Release()
		}
	}
	if len(whole) > 0 {
		emit(whole)
	}
	return nil
}

// grow makes room for n more bytes in buf, or reports false when the
// budget has none.
func (a *Assembler) grow(n int) bool {
	need := len(a.buf) + n
	if need <= cap(a.buf) {
		return true
	}
	size := max(need, 2*cap(a.buf))
	if a.Max > 0 {
		size = max(need, min(size, int(a.Max))) // Receive bounds a message by max
	}
	// The new buffer is charged for what it adds: the old one goes back
	// to the pool as soon as it is copied.
	nb := poll.Get(size)
	if !a.Budget.take(cap(nb) - cap(a.buf)) {
		poll.Put(nb)
		return false
	}
	nb = append(nb[:0], a.buf...)
	poll.Put(a.buf)
	a.buf = nb
	return true
}

// Release drops the open message, if any, giving its buffer back.
func (a *Assembler) Release() {
	a.Budget.Put(a.buf)
	a.buf = nil
}
