package framing

import (
	"bytes"
	"unicode/utf8"
)

// Static piece data. Their capacity is clipped so that an append by a
// careless caller copies instead of writing through them.
var (
	replacement = []byte("\uFFFD")[:3:3]
	newline     = []byte{'\n'}[:1:1]
	byteTable   = func() (t [256]byte) {
		for i := range t {
			t[i] = byte(i)
		}
		return t
	}()
)

// oneByte returns a static one-byte slice holding b.
func oneByte(b byte) []byte { return byteTable[b : int(b)+1 : int(b)+1] }

// NewLineDecoder returns a Decoder for the line framing: a fresh
// *LineDecoder.
func NewLineDecoder() Decoder { return new(LineDecoder) }

// LineDecoder is the Decoder of the line framing: each line the child
// writes becomes one message, its "\n" or "\r\n" stripped; a last line
// without a newline is delivered at eof. A "\r" not followed by "\n" is
// data, even at eof.
//
// A line that is valid UTF-8 is a Text message; a line that is not is a
// Binary message with its bytes unchanged, so nothing is lost and no text
// message ever carries invalid UTF-8.
//
// A line longer than the buffer is streamed: when buf is full and holds no
// newline, it goes out as a non-final piece and the line's end gives the
// Final piece. The kind is then chosen on the first piece alone: if that is
// not valid UTF-8 the whole message is Binary and later pieces are passed
// on unchecked; if it is, the message is Text and every maximal invalid
// subsequence in later pieces is replaced by U+FFFD (one per subsequence,
// as the WHATWG Encoding Standard does), counted by Replaced. To keep
// pieces exact, a full buf's trailing "\r" and a trailing code point cut
// short are left unconsumed for the next call, so "\r\n" and code points
// split across reads come out as if read at once. Only when buf is full
// and consists of nothing else (buffers under 5 bytes) are these bytes
// held in the decoder and later sent as static one-byte pieces.
//
// The zero value is ready to use. A LineDecoder is used by one goroutine at
// a time.
type LineDecoder struct {
	kind     Kind
	open     bool    // a message has pieces out and no Final yet
	cr       bool    // a '\r' that was all of a full buf: consumed, not sent
	held     [4]byte // bytes of a code point consumed but not sent (tiny buffers)
	nheld    uint8
	flush    bool // held bytes are decided: send them
	replaced int
}

// Replaced returns how many U+FFFD replacements d has made so far, over
// all messages. The bridge can compare it across calls to log a warning.
func (d *LineDecoder) Replaced() int { return d.replaced }

// Decode implements Decoder. It never returns an error: every byte stream
// is a valid sequence of lines.
func (d *LineDecoder) Decode(dst []Piece, buf []byte, full, eof bool) ([]Piece, int, error) {
	n := 0
	if d.cr || d.nheld > 0 {
		if dst, n = d.resolve(dst, buf, eof); d.cr || d.nheld > 0 {
			return dst, n, nil
		}
	}
	for len(dst) < cap(dst) {
		rest := buf[n:]
		var (
			m  int
			ok bool
		)
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, skip := rest[:i], 1
			if i > 0 && line[i-1] == '\r' {
				line, skip = line[:i-1], 2
			}
			dst, m, ok = d.emit(dst, line, true)
			n += m
			if !ok {
				break
			}
			n += skip
			continue
		}
		if eof {
			if len(rest) == 0 && !d.open {
				break
			}
			dst, m, _ = d.emit(dst, rest, true)
			n += m
			continue
		}
		if !full || n > 0 || len(rest) == 0 {
			break // the caller can read more
		}
		// A full buffer without a newline: stream it.
		seg := rest
		if seg[len(seg)-1] == '\r' {
			seg = seg[:len(seg)-1] // it may start a "\r\n"
		}
		dst, m, ok = d.emit(dst, seg, false)
		n += m
		if ok && n == 0 {
			// Nothing could go out: the buffer is too small to make
			// progress by leaving bytes unconsumed, so d keeps them.
			if len(seg) > 0 {
				d.nheld = uint8(copy(d.held[:], seg)) // a code point cut short
				n = len(seg)
			} else {
				d.cr = true
				n = 1
			}
		}
		break
	}
	return dst, n, nil
}

// emit appends pieces for seg, which is the rest of the current line when
// end is set, else a stretch of a line that goes on. It returns how much of
// seg it consumed, and false if dst filled first.
func (d *LineDecoder) emit(dst []Piece, seg []byte, end bool) ([]Piece, int, bool) {
	if !d.open {
		d.kind = Binary
		if end {
			if utf8.Valid(seg) {
				d.kind = Text
			}
			return d.put(dst, seg, true), len(seg), true
		}
		if i := validPrefix(seg); i == len(seg) || shortAt(seg, i) {
			d.kind = Text
		}
	}
	if d.kind == Binary {
		if len(seg) == 0 && !end {
			return dst, 0, true
		}
		return d.put(dst, seg, end), len(seg), true
	}
	return d.emitText(dst, seg, end)
}

// shortAt reports whether p[i:] is a valid code point that p cuts short.
func shortAt(p []byte, i int) bool {
	k, st := seq(p[i:])
	return st == seqShort && i+k == len(p)
}

// emitText is emit for a text message: valid runs of seg go out as they
// are, each maximal invalid subsequence as a U+FFFD piece. Unless end is
// set, a code point cut short at the end of seg is left unconsumed.
func (d *LineDecoder) emitText(dst []Piece, seg []byte, end bool) ([]Piece, int, bool) {
	m := 0
	i := validPrefix(seg) // seg[m:m+i] is valid
	for {
		rest := seg[m:]
		if i == len(rest) {
			if i == 0 && !end {
				return dst, m, true
			}
			if len(dst) == cap(dst) {
				return dst, m, false
			}
			return d.put(dst, rest, end), len(seg), true
		}
		if i > 0 {
			if len(dst) == cap(dst) {
				return dst, m, false
			}
			dst = d.put(dst, rest[:i], false)
			m += i
			rest = rest[i:]
		}
		k, st := seq(rest)
		if st == seqShort && !end {
			return dst, m, true // the next buffer completes or breaks it
		}
		if len(dst) == cap(dst) {
			return dst, m, false
		}
		m += k
		d.replaced++
		dst = d.put(dst, replacement, end && m == len(seg))
		if end && m == len(seg) {
			return dst, m, true
		}
		i = scanValid(seg[m:])
	}
}

// resolve sends or settles what a previous call could only hold in d (see
// Decode), consuming the first bytes of buf as needed.
func (d *LineDecoder) resolve(dst []Piece, buf []byte, eof bool) ([]Piece, int) {
	n := 0
	for len(dst) < cap(dst) {
		switch {
		case d.flush:
			dst = d.put(dst, oneByte(d.held[0]), false)
			copy(d.held[:], d.held[1:d.nheld])
			d.nheld--
			d.flush = d.nheld > 0
		case d.nheld > 0:
			var tmp [4]byte
			h := int(d.nheld)
			copy(tmp[:], d.held[:h])
			c := h + copy(tmp[h:], buf[n:])
			k, st := seq(tmp[:c])
			if st == seqShort {
				if !eof {
					// Still short, so buf[n:] was all of it.
					d.nheld = uint8(copy(d.held[h:], buf[n:]) + h)
					return dst, len(buf)
				}
				st = seqInvalid
			}
			n += copy(d.held[h:], tmp[h:k])
			d.nheld = uint8(k)
			switch {
			case st == seqValid:
				d.kind = Text
				d.flush = true
			case d.open: // a text message
				d.nheld = 0
				d.replaced++
				dst = d.put(dst, replacement, false)
			default: // the first bytes of the message are not UTF-8
				d.kind = Binary
				d.flush = true
			}
		case d.cr:
			if n == len(buf) && !eof {
				return dst, n
			}
			if !d.open {
				d.kind = Text
			}
			d.cr = false
			switch {
			case n == len(buf):
				dst = d.put(dst, oneByte('\r'), true)
			case buf[n] == '\n':
				n++
				dst = d.put(dst, nil, true)
			default:
				dst = d.put(dst, oneByte('\r'), false)
			}
		default:
			return dst, n
		}
	}
	return dst, n
}

// put appends a piece of the current message.
func (d *LineDecoder) put(dst []Piece, data []byte, final bool) []Piece {
	dst = append(dst, Piece{Data: data, Kind: d.kind, First: !d.open, Final: final})
	d.open = !final
	return dst
}

// LineEncoder is the Encoder of the line framing: a message's data followed
// by "\n" after its Final piece. Nothing is escaped: a message that holds
// "\n" reaches the child as several lines, and one ending in "\r" as a line
// ending in "\r\n". Binary messages are written the same way.
type LineEncoder struct{}

// AppendPrefix returns dst unchanged: lines have no prefix.
func (LineEncoder) AppendPrefix(dst []byte, p Piece) []byte { return dst }

// Suffix returns "\n" for a Final piece, else nothing.
func (LineEncoder) Suffix(p Piece) []byte {
	if p.Final {
		return newline
	}
	return nil
}
