package shared

import (
	"sync"
	"sync/atomic"

	"github.com/wsbridge/wsbridge/bridge/poll"
	"github.com/wsbridge/wsbridge/bridge/transport"
	"github.com/wsbridge/wsbridge/framing"
)

// blob is one batch of the child's output framed as WebSocket frames,
// shared by every member it is queued for and given back to the pool
// when the last one has written it.
type blob struct {
	wire       transport.Wire // how it is framed
	buf        []byte         // pooled
	refs       atomic.Int32
	payload    int64 // message bytes, for the access log
	messages   int   // messages that start in it
	firstStart int   // offset of the first frame that starts a message; len(buf) if none
	startsMid  bool  // its first frame continues a message
	endsMid    bool  // its last frame leaves a message open
}

var blobPool = sync.Pool{New: func() any { return new(blob) }}

// newBlob frames pieces for wire into a blob with one reference, the
// caller's.
func newBlob(wire transport.Wire, pieces []framing.Piece) *blob {
	size := 0
	for _, p := range pieces {
		size += len(p.Data) + wire.MaxOverhead()
	}
	b := blobPool.Get().(*blob)
	b.wire = wire
	buf := poll.Get(size)[:0]
	b.payload, b.messages, b.firstStart = 0, 0, -1
	for _, p := range pieces {
		if p.First {
			b.messages++
			if b.firstStart < 0 {
				b.firstStart = len(buf)
			}
		}
		buf = wire.AppendFrame(buf, p)
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

func (b *blob) release() {
	if b.refs.Add(-1) == 0 {
		poll.Put(b.buf)
		b.buf, b.wire = nil, nil
		blobPool.Put(b)
	}
}
