package shared

import (
	"github.com/wsbridge/wsbridge/bridge/transport"
	"github.com/wsbridge/wsbridge/framing"
)

// route sends one batch of pieces where it belongs: to every member, or
// with mux, to the members the records name.
func (h *Hub) route(pieces []framing.Piece) {
	if !h.mux {
		h.broadcast(pieces)
		return
	}
	for len(pieces) > 0 {
		// A run of pieces for the same connection becomes one blob.
		p := pieces[0]
		if p.Kind == framing.Close {
			code, reason, err := framing.ParseMuxClose(p.Data)
			if err != nil {
				code = 0
			}
			h.closeByChild(p.Conn, transport.ByChild(code, reason))
			pieces = pieces[1:]
			continue
		}
		n := 1
		for n < len(pieces) && pieces[n].Conn == p.Conn && pieces[n].Kind != framing.Close {
			n++
		}
		if p.Conn == 0 {
			h.broadcast(pieces[:n])
		} else {
			h.mu.Lock()
			m := h.members[p.Conn]
			h.mu.Unlock()
			if m != nil {
				b := newBlob(m.c.Wire(), pieces[:n])
				m.push(b, 0)
				b.release()
			}
		}
		pieces = pieces[n:]
	}
}

// closeByChild closes the member the child names, or every member for id
// 0, after what was sent to it before.
func (h *Hub) closeByChild(id uint32, c transport.Close) {
	if id == 0 {
		for _, m := range h.snapshot() {
			m.closeAfterQueued(c)
		}
		return
	}
	h.mu.Lock()
	m := h.members[id]
	h.mu.Unlock()
	if m != nil {
		m.closeAfterQueued(c)
	}
}

// broadcast sends pieces to every member: a member is slow when it is
// more than --queue behind the fastest as the batch was read (see pace).
// The batch is framed once for each Wire the members use (most often
// one) and the blob shared.
func (h *Hub) broadcast(pieces []framing.Piece) {
	ref := h.ref
	members := h.snapshot()
	if len(members) == 0 {
		return
	}
	var framed [2]*blob // a broadcast rarely meets more Wires than this
	blobs := framed[:0]
	for _, m := range members {
		var b *blob
		w := m.c.Wire()
		for _, fb := range blobs {
			if fb.wire == w {
				b = fb
				break
			}
		}
		if b == nil {
			b = newBlob(m.c.Wire(), pieces)
			blobs = append(blobs, b)
		}
		m.push(b, ref)
	}
	for _, b := range blobs {
		b.release()
	}
	clear(members) // hold no member past its life
}
