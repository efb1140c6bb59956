package bridge

import (
	"errors"

	"github.com/wsbridge/wsbridge/framing"
)

// stdoutStream cuts what a child writes on stdout into message pieces. Its
// owner reads into buf[end:] and calls cut; both a session's output pump
// and a shared child's fan-out use it. buf may be nil (pooled away) while
// it holds nothing.
type stdoutStream struct {
	dec        framing.Decoder
	buf        []byte
	start, end int   // buf[start:end] is read but not yet cut
	eof        bool  // stdout has ended: cut everything
	err        error // the decoder's error; sticky
}

// cut hands send every batch of pieces buf holds and makes room for more.
// Pieces are valid only while send runs. It reports false when the output
// is malformed and must not be read further (err says why; ErrTruncated,
// an end mid-message, is not malformed).
func (o *stdoutStream) cut(send func([]framing.Piece)) bool {
	buf := o.buf
	// Decode stops early when its batch is full, so go round until it
	// makes no progress.
	for o.err == nil {
		full := o.start == 0 && o.end == len(buf)
		pieces := getPieces()
		pieces, used, err := o.dec.Decode(pieces, buf[o.start:o.end], full, o.eof)
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
		putPieces(pieces)
		o.start += used
		if err != nil {
			o.err = err
		}
		if o.eof {
			// At the end, Decode is called until it has nothing left:
			// it closes an open message with a last piece.
			if n == 0 {
				break
			}
			continue
		}
		if used == 0 || o.start == o.end {
			break
		}
	}
	if o.err != nil && !errors.Is(o.err, framing.ErrTruncated) {
		return false
	}
	switch {
	case o.start == o.end:
		o.start, o.end = 0, 0
	case o.start > 0:
		o.end = copy(buf, buf[o.start:o.end])
		o.start = 0
	}
	return true
}
