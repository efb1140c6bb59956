package bridge

import (
	"errors"
	"sync/atomic"

	"github.com/wsbridge/wsbridge/framing"
)

// assemblyBudget bounds the bytes every client of an endpoint together
// may hold in messages the shared and per-message CGI modes keep whole:
// messages still arriving, and (CGI) messages waiting for or being fed to
// a script. It counts the capacity of the pooled buffers they are in,
// which is what they pin. Safe for concurrent use.
type assemblyBudget struct {
	limit int64
	held  atomic.Int64
}

// errBudget is an assembler's answer when the endpoint's budget has no
// room for a message: the client is closed with 1013 (try again later).
var errBudget = errors.New("server busy: too many unfinished messages (--assembly-budget)")

// take reserves n bytes, or reports false and reserves nothing.
func (b *assemblyBudget) take(n int) bool {
	if b.held.Add(int64(n)) > b.limit {
		b.held.Add(-int64(n))
		return false
	}
	return true
}

func (b *assemblyBudget) give(n int) { b.held.Add(-int64(n)) }

// get returns a pooled buffer of length size charged to the budget, or
// nil when the budget has no room for it. Give it back with put.
func (b *assemblyBudget) get(size int) []byte {
	buf := getBuffer(size)
	if !b.take(cap(buf)) {
		putBuffer(buf)
		return nil
	}
	return buf
}

// put returns a buffer from get to the pool and its bytes to the budget.
func (b *assemblyBudget) put(buf []byte) {
	if buf != nil {
		b.give(cap(buf))
		putBuffer(buf)
	}
}

// assembler turns a client's pieces into whole messages, one piece each:
// a message that arrives in one frame and one read is passed on as it is,
// without a copy; one in several is copied together first, into a pooled
// buffer that grows by doubling up to max (the endpoint's MaxMessage) and
// is charged to the endpoint's budget while it is held. The shared and
// per-message CGI modes need messages whole. One goroutine (the input
// pump) uses it; release gives its buffer back when the client is gone.
type assembler struct {
	budget *assemblyBudget
	max    int64
	buf    []byte // pooled: the open message so far; nil between messages
	kind   framing.Kind
}

// feed calls emit with batches of whole messages, in order; pieces is
// compacted in place (each piece is read before its slot is reused), and
// what emit gets is valid only during the call. It returns errBudget, and
// has dropped the open message, when the budget has no room for it: no
// part of that message is ever emitted.
func (a *assembler) feed(pieces []framing.Piece, emit func([]framing.Piece)) error {
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
			a.release()
			return errBudget
		}
		a.buf = append(a.buf, p.Data...)
		if p.Final {
			whole = append(whole, framing.Piece{Data: a.buf, Kind: a.kind, Conn: p.Conn, First: true, Final: true})
			emit(whole)
			whole = whole[:0]
			a.release()
		}
	}
	if len(whole) > 0 {
		emit(whole)
	}
	return nil
}

// grow makes room for n more bytes in buf, or reports false when the
// budget has none.
func (a *assembler) grow(n int) bool {
	need := len(a.buf) + n
	if need <= cap(a.buf) {
		return true
	}
	size := max(need, 2*cap(a.buf))
	if a.max > 0 {
		size = max(need, min(size, int(a.max))) // Receive bounds a message by max
	}
	// The new buffer is charged for what it adds: the old one goes back
	// to the pool as soon as it is copied.
	nb := getBuffer(size)
	if !a.budget.take(cap(nb) - cap(a.buf)) {
		putBuffer(nb)
		return false
	}
	nb = append(nb[:0], a.buf...)
	putBuffer(a.buf)
	a.buf = nb
	return true
}

// release drops the open message, if any, giving its buffer back.
func (a *assembler) release() {
	a.budget.put(a.buf)
	a.buf = nil
}
