package framing

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// MaxRecord is the largest payload one len32 record can carry: 2^30-1
// bytes, the header's 30 length bits. Longer messages take several records.
const MaxRecord = 1<<30 - 1

// Header bits of the len32 framing; see the package documentation.
const (
	len32Text = 1 << 31 // the message is text
	len32More = 1 << 30 // the message continues in the next record
)

// Errors of the len32 Decoder. They come wrapped with detail; test them
// with errors.Is.
var (
	// ErrTruncated: the stream ended inside a message (mid-header,
	// mid-payload, or after a record with the continuation bit set): the
	// child exited or closed stdout mid-message.
	ErrTruncated = errors.New("framing: stream ended inside a message")
	// ErrInvalidUTF8: a text message's payload is not valid UTF-8.
	ErrInvalidUTF8 = errors.New("framing: text message is not valid UTF-8")
	// ErrKindChange: a continuation record's text bit differs from that of
	// the record that opened the message.
	ErrKindChange = errors.New("framing: message changes kind between records")
)

// NewLen32Decoder returns a Decoder for the len32 framing: a fresh
// *Len32Decoder.
func NewLen32Decoder() Decoder { return new(Len32Decoder) }

// Len32Decoder is the Decoder of the len32 framing: each record is a piece,
// First when it opens a message, Final when its continuation bit is clear.
//
// A record wholly in buf goes out as one piece. A record that is not waits
// for more data unless buf is full: then the payload bytes present go out
// as a non-final piece, and the rest of the record follows as further
// pieces, so records (and messages) of any size stream through a small
// buffer. Empty records that neither open nor end a message give no piece.
//
// Text messages are checked as they stream, code points may be split
// anywhere, even across records: the first byte that cannot be part of
// valid UTF-8, or a message that ends mid code point, stops the stream with
// ErrInvalidUTF8 before that piece goes out. Other errors: ErrKindChange,
// ErrTruncated. At a truncation the open message still gets its Final piece
// (the payload bytes that did arrive), returned along with the error; for a
// text message cut inside a code point that piece leaves the text
// incomplete, so the caller should fail the connection rather than rely on
// it.
//
// The zero value is ready to use. A Len32Decoder is used by one goroutine at
// a time.
type Len32Decoder struct {
	v     UTF8 // of the open text message
	kind  Kind
	open  bool    // a message has pieces out and no Final yet
	inRec bool    // a record's header is consumed, its payload not all
	more  bool    // that record's continuation bit
	rem   int     // that record's payload bytes not consumed
	hdr   [4]byte // a header cut short by a tiny full buffer
	nh    int
	err   error
}

// Decode implements Decoder.
func (d *Len32Decoder) Decode(dst []Piece, buf []byte, full, eof bool) ([]Piece, int, error) {
	if d.err != nil {
		return dst, 0, d.err
	}
	n := 0
	var err error
	for len(dst) < cap(dst) && err == nil {
		rest := buf[n:]
		if d.inRec {
			if len(rest) >= d.rem {
				if dst, err = d.put(dst, rest[:d.rem], !d.more); err == nil {
					n += d.rem
					d.inRec = false
				}
				continue
			}
			if eof {
				dst, err = d.truncate(dst, rest, fmt.Sprintf("%d bytes short of a record's end", d.rem-len(rest)))
				n = len(buf)
				break
			}
			if !full || n > 0 || len(rest) == 0 {
				break // the caller can read more
			}
			if dst, err = d.put(dst, rest, false); err == nil {
				d.rem -= len(rest)
				n = len(buf)
			}
			break
		}

		// At a record boundary.
		if d.nh > 0 || len(rest) < 4 {
			// A header cut short: wait for the rest, or keep its bytes in
			// d when the buffer is too small to hold a header at all.
			if d.nh > 0 || full && !eof && n == 0 && len(rest) > 0 {
				c := copy(d.hdr[d.nh:], rest)
				d.nh += c
				n += c
				if d.nh == 4 {
					d.nh = 0
					err = d.begin(binary.BigEndian.Uint32(d.hdr[:]))
					continue
				}
			}
			if eof {
				switch got := d.nh + len(buf) - n; {
				case got > 0:
					dst, err = d.truncate(dst, nil, fmt.Sprintf("in a record header, after %d of its 4 bytes", got))
				case d.open:
					dst, err = d.truncate(dst, nil, "after a record with the continuation bit set")
				}
				n = len(buf)
			}
			break
		}
		h := binary.BigEndian.Uint32(rest)
		size := int(h & MaxRecord)
		if 4+size <= len(rest) || eof {
			if err = d.begin(h); err == nil {
				n += 4
			}
			continue
		}
		if !full || n > 0 {
			break
		}
		// A full buffer that does not hold the whole record: stream it.
		if err = d.begin(h); err == nil {
			if dst, err = d.put(dst, rest[4:], false); err == nil {
				d.rem -= len(rest) - 4
				n = len(buf)
			}
		}
		break
	}
	return dst, n, err
}

// begin starts the record whose header is h.
func (d *Len32Decoder) begin(h uint32) error {
	k := Binary
	if h&len32Text != 0 {
		k = Text
	}
	if d.open && k != d.kind {
		return d.fail(fmt.Errorf("%w: a %s record continues a %s message", ErrKindChange, k, d.kind))
	}
	if !d.open {
		d.kind = k
		d.v.Reset()
	}
	d.inRec = true
	d.more = h&len32More != 0
	d.rem = int(h & MaxRecord)
	return nil
}

// put appends a piece of the current record, checking text as it goes.
func (d *Len32Decoder) put(dst []Piece, data []byte, final bool) ([]Piece, error) {
	if d.kind == Text {
		what := ""
		switch {
		case !d.v.Write(data):
			what = "holds a byte sequence that is not UTF-8"
		case final && !d.v.Done():
			what = "ends inside a code point"
		}
		if what != "" {
			return dst, d.invalid(what)
		}
	}
	if len(data) > 0 || final || !d.open {
		dst = append(dst, Piece{Data: data, Kind: d.kind, First: !d.open, Final: final})
	}
	d.open = !final
	return dst, nil
}

// truncate ends the stream: it closes the open message, if any, with a
// Final piece carrying data, the payload bytes that did arrive, and
// returns ErrTruncated with detail. Invalid text in data is reported as
// ErrInvalidUTF8 instead, since it came first.
func (d *Len32Decoder) truncate(dst []Piece, data []byte, detail string) ([]Piece, error) {
	if d.open || d.inRec {
		if d.kind == Text && !d.v.Write(data) {
			return dst, d.invalid("holds a byte sequence that is not UTF-8")
		}
		dst = append(dst, Piece{Data: data, Kind: d.kind, First: !d.open, Final: true})
		d.open, d.inRec = false, false
	}
	return dst, d.fail(fmt.Errorf("%w: %s", ErrTruncated, detail))
}

// invalid fails with ErrInvalidUTF8.
func (d *Len32Decoder) invalid(what string) error {
	return d.fail(fmt.Errorf("%w: a text message %s", ErrInvalidUTF8, what))
}

// fail makes err sticky and returns it.
func (d *Len32Decoder) fail(err error) error {
	d.err = err
	return err
}

// Len32Encoder is the Encoder of the len32 framing: each piece becomes one
// record, its header carrying the text bit for Text pieces and the
// continuation bit for non-final ones, so a fragmented WebSocket message
// reaches the child as it arrives, without being assembled.
//
// A piece's data must not exceed MaxRecord bytes: AppendPrefix panics if it
// does. The bridge's read buffers are far smaller.
type Len32Encoder struct{}

// AppendPrefix appends p's 4-byte record header to dst.
func (Len32Encoder) AppendPrefix(dst []byte, p Piece) []byte {
	return binary.BigEndian.AppendUint32(dst, len32Header(len(p.Data), p.Kind, p.Final))
}

// Suffix returns nothing: a record ends where its length says.
func (Len32Encoder) Suffix(p Piece) []byte { return nil }

// len32Header returns the header of a record of n payload bytes.
func len32Header(n int, k Kind, final bool) uint32 {
	if n < 0 || n > MaxRecord {
		panic(fmt.Sprintf("framing: len32 record of %d bytes, over MaxRecord", n))
	}
	h := uint32(n)
	if k == Text {
		h |= len32Text
	}
	if !final {
		h |= len32More
	}
	return h
}
