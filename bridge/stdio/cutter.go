package stdio

import (
	"errors"

	"github.com/wsbridge/wsbridge/framing"
)

// Cutter cuts what a child writes on stdout into message pieces. Its
// owner reads into Buf[End:] and calls Cut; a session's output pump and a
// shared child's fan-out both use it. Buf may be nil (pooled away) while
// it holds nothing.
type Cutter struct {
	Dec        framing.Decoder
	Buf        []byte
	start, End int   // Buf[start:End] is read but not yet cut
	EOF        bool  // stdout has ended: cut everything
	Err        error // the decoder's error; sticky
}

// Cut hands send every batch of pieces Buf holds and makes room for more.
// Pieces are valid only while send runs. It reports false when the output
// is malformed and must not be read further (Err says why; ErrTruncated,
// an end mid-message, is not malformed).
func (o *Cutter) Cut(send func([]framing.Piece)) bool {
	buf := o.Buf
	// Decode stops early when its batch is full, so go round until it
	// makes no progress.
	for o.Err == nil {
		full := o.start == 0 && o.End == len(buf)
		pieces := framing.GetPieces()
		pieces, used, err := o.Dec.Decode(pieces, buf[o.start:o.End], full, o.EOF)
		if errors.Is(err, framing.ErrTruncated) && len(pieces) > 0 {
			// The message was cut short: leave it unfinished, so the
			// client drops it at the close rather than take it for a
			// whole message.
			pieces[len(pieces)-1].Final = false
		}
		n := len(pieces)
		if n > 0 {
			send(pieces)
		}
		framing.PutPieces(pieces)
		o.start += used
		if err != nil {
			o.Err = err
		}
		if o.EOF {
			// At the end, Decode is called until it has nothing left:
			// it closes an open message with a last piece.
			if n == 0 {
				break
			}
			continue
		}
		if used == 0 || o.start == o.End {
			break
		}
	}
	if o.Err != nil && !errors.Is(o.Err, framing.ErrTruncated) {
		return false
	}
	switch {
	case o.start == o.End:
		o.start, o.End = 0, 0
	case o.start > 0:
		o.End = copy(buf, buf[o.start:o.End])
		o.start = 0
	}
	return true
}
