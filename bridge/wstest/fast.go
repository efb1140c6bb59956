package wstest

import (
	"bytes"
	"errors"
)

// The benchmark's path: frames built once and written many to a syscall,
// headers parsed in place in the reader's buffer, payloads skipped. None
// of it allocates or touches deadlines: the caller sets its own.

// Frames is a run of identical masked frames built once: the first k of
// them are one slice, for one write.
type Frames struct {
	buf  []byte
	size int // bytes per frame
}

// NewFrames builds count final frames of type op carrying payload.
func NewFrames(op byte, payload []byte, count int) Frames {
	one := AppendFrame(nil, Frame{Fin: true, Op: op, Payload: payload})
	return Frames{buf: bytes.Repeat(one, count), size: len(one)}
}

// First returns the bytes of the first k frames.
func (f Frames) First(k int) []byte { return f.buf[:k*f.size] }

// ReadHeader reads one frame header, parsed in place in the reader's
// buffer.
func (c *Conn) ReadHeader() (Header, error) {
	b, err := c.R.Peek(2)
	if err != nil {
		return Header{}, err
	}
	h, size, err := ParseHeader(b)
	if errors.Is(err, ErrShortHeader) {
		// Peek returns what it can with the error that stopped it.
		b, err = c.R.Peek(headerSize(b))
		if err != nil {
			return Header{}, err
		}
		h, size, err = ParseHeader(b)
	}
	if err != nil {
		return Header{}, err
	}
	_, err = c.R.Discard(size)
	return h, err
}

// headerSize is the size of the header whose first two bytes are b.
func headerSize(b []byte) int {
	n := 2
	switch b[1] & 0x7F {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b[1]&0x80 != 0 {
		n += 4
	}
	return n
}

// SkipMessage reads one data message, which may come in fragments, and
// returns its payload length, without keeping it. When want is not nil
// and the message is one frame the reader's buffer can hold, its bytes
// must be want's, or it ends with ErrMismatch. Pings and pongs are
// skipped, unanswered; a close frame ends it with ErrClosed, and a masked
// frame with ErrMasked.
func (c *Conn) SkipMessage(want []byte) (int64, error) {
	var total int64
	for {
		h, err := c.ReadHeader()
		if err != nil {
			return total, err
		}
		if h.Masked {
			return total, ErrMasked
		}
		switch h.Op {
		case OpClose:
			return total, ErrClosed
		case OpPing, OpPong:
			if _, err := c.R.Discard(int(h.Length)); err != nil {
				return total, err
			}
			continue
		}
		if want != nil && h.Fin && total == 0 && h.Length <= int64(c.R.Size()) {
			p, err := c.R.Peek(int(h.Length))
			if err != nil {
				return total, err
			}
			if !bytes.Equal(p, want) {
				return total, ErrMismatch
			}
		}
		if _, err := c.R.Discard(int(h.Length)); err != nil {
			return total, err
		}
		total += h.Length
		if h.Fin {
			return total, nil
		}
	}
}
