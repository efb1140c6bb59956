package framing

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Sizes of the mux framing; see the package documentation.
const (
	// MuxHeaderLen is the size of a mux record's header.
	MuxHeaderLen = 12
	// MaxMuxClose is the most payload bytes a close record carries: a
	// 2-byte code and up to 123 bytes of reason, as in a WebSocket close
	// frame.
	MaxMuxClose = 125
)

// Record kinds on the wire, byte 0 of a mux header.
const (
	muxOpen   = 1
	muxText   = 2
	muxBinary = 3
	muxClose  = 4
)

// ErrMuxRecord: a mux record is malformed: an unknown kind, reserved bits
// set, a length over MaxRecord, an open record from the child, or a close
// payload that is no WebSocket close payload. It comes wrapped with
// detail; test it with errors.Is. Text that is not UTF-8, in a text record
// or a close reason, is ErrInvalidUTF8 instead.
var ErrMuxRecord = errors.New("framing: malformed mux record")

// NewMuxDecoder returns a Decoder for the mux framing: a fresh *MuxDecoder.
func NewMuxDecoder() Decoder { return new(MuxDecoder) }

// MuxDecoder is the Decoder of the mux framing, for what the child writes:
// text, binary and close records, each one whole message for one
// connection, or for every connection when its id is 0. Every piece
// carries its record's connection id in Conn.
//
// A text or binary record wholly in buf goes out as one piece, First and
// Final. A record that is not waits for more data unless buf is full: then
// the payload bytes present go out as a First piece and the rest of the
// record follows as further pieces, the last one Final, so records of any
// size stream through a small buffer. Text is checked as it streams; the
// first byte that cannot be part of valid UTF-8, or a record that ends mid
// code point, stops the stream with ErrInvalidUTF8 before that piece goes
// out.
//
// A close record goes out whole, as one piece of Kind Close whose Data is
// the close payload (see ParseMuxClose), once it is checked: a code valid
// on the wire, a UTF-8 reason. It is at most 137 bytes, so it fits any
// bridge buffer; when a tiny full buffer cuts one, the decoder gathers it
// in its own storage, and the piece's Data is valid until the next call.
//
// Errors: ErrMuxRecord for a malformed header or close payload,
// ErrInvalidUTF8, and ErrTruncated when the stream ends inside a record.
// At a truncation a text or binary record still gets its Final piece (the
// payload bytes that did arrive), returned along with the error, as
// Len32Decoder does; a truncated close record gives no piece. Errors are
// sticky.
//
// The zero value is ready to use. A MuxDecoder is used by one goroutine at
// a time.
type MuxDecoder struct {
	v     UTF8   // of the text record streaming
	kind  Kind   // of the record whose header was read last
	conn  uint32 // its connection id
	size  int    // its payload length
	inRec bool   // a text or binary record's header is consumed, its payload not all
	open  bool   // that record has a piece out
	rem   int    // its payload bytes not consumed
	// A header, or a whole close record, cut up by a tiny full buffer.
	small [MuxHeaderLen + MaxMuxClose]byte
	ns    int // bytes held in small
	err   error
}

// Decode implements Decoder.
func (d *MuxDecoder) Decode(dst []Piece, buf []byte, full, eof bool) ([]Piece, int, error) {
	if d.err != nil {
		return dst, 0, d.err
	}
	n := 0
	var err error
	for len(dst) < cap(dst) && err == nil {
		rest := buf[n:]
		if d.inRec {
			if len(rest) >= d.rem {
				if dst, err = d.put(dst, rest[:d.rem], true); err == nil {
					n += d.rem
					d.inRec = false
				}
				continue
			}
			if eof {
				dst, err = d.truncate(dst, rest, fmt.Sprintf("%d bytes short of a record's end", d.rem-len(rest)))
				return dst, len(buf), err
			}
			if full && n == 0 && len(rest) > 0 {
				if dst, err = d.put(dst, rest, false); err == nil {
					d.rem -= len(rest)
					n = len(buf)
				}
			}
			return dst, n, err
		}

		if d.ns > 0 {
			// Gathering a header, or a close record, in d.small.
			want := MuxHeaderLen
			if d.ns >= MuxHeaderLen {
				want += d.size // the header is read: a close record
			}
			c := copy(d.small[d.ns:want], rest)
			d.ns += c
			n += c
			if d.ns < want {
				if eof {
					return dst, len(buf), d.truncated(d.ns)
				}
				return dst, n, nil
			}
			if want == MuxHeaderLen {
				if err = d.header(d.small[:MuxHeaderLen]); err != nil {
					break
				}
				if d.kind != Close {
					d.ns = 0
					d.begin()
					continue
				}
				if d.size > 0 {
					continue // gather the payload
				}
			}
			d.ns = 0
			dst, err = d.closed(dst, d.small[MuxHeaderLen:MuxHeaderLen+d.size])
			continue
		}

		// At a record boundary.
		if len(rest) < MuxHeaderLen {
			switch {
			case len(rest) == 0:
			case eof:
				return dst, len(buf), d.truncated(len(rest))
			case full && n == 0:
				// Too small a buffer to hold a header: keep its bytes.
				d.ns = copy(d.small[:], rest)
				n = len(buf)
			}
			return dst, n, nil
		}
		if err = d.header(rest[:MuxHeaderLen]); err != nil {
			break
		}
		total := MuxHeaderLen + d.size
		if d.kind == Close {
			if total <= len(rest) {
				if dst, err = d.closed(dst, rest[MuxHeaderLen:total]); err == nil {
					n += total
				}
				continue
			}
			if eof {
				return dst, len(buf), d.truncated(len(rest))
			}
			if full && n == 0 {
				d.ns = copy(d.small[:], rest)
				n = len(buf)
			}
			return dst, n, nil
		}
		if total <= len(rest) || eof {
			d.begin()
			n += MuxHeaderLen
			continue
		}
		if !full || n > 0 {
			return dst, n, nil // the caller can read more
		}
		// A full buffer that does not hold the whole record: stream it.
		d.begin()
		if dst, err = d.put(dst, rest[MuxHeaderLen:], false); err == nil {
			d.rem -= len(rest) - MuxHeaderLen
			n = len(buf)
		}
		return dst, n, err
	}
	return dst, n, err
}

// header reads and checks the record header h into d.
func (d *MuxDecoder) header(h []byte) error {
	switch h[0] {
	case muxText:
		d.kind = Text
	case muxBinary:
		d.kind = Binary
	case muxClose:
		d.kind = Close
	case muxOpen:
		return d.fail(fmt.Errorf("%w: an open record (kind 1) from the child: only the bridge sends those", ErrMuxRecord))
	default:
		return d.fail(fmt.Errorf("%w: unknown kind %d", ErrMuxRecord, h[0]))
	}
	if h[1]|h[2]|h[3] != 0 {
		return d.fail(fmt.Errorf("%w: reserved bytes 1-3 are %02x %02x %02x, not zero", ErrMuxRecord, h[1], h[2], h[3]))
	}
	d.conn = binary.BigEndian.Uint32(h[4:])
	size := binary.BigEndian.Uint32(h[8:])
	if size > MaxRecord {
		return d.fail(fmt.Errorf("%w: a payload of %d bytes, over MaxRecord", ErrMuxRecord, size))
	}
	if d.kind == Close {
		if err := closeSize(int(size)); err != nil {
			return d.fail(err)
		}
	}
	d.size = int(size)
	return nil
}

// begin starts the text or binary record whose header d holds.
func (d *MuxDecoder) begin() {
	d.inRec, d.open = true, false
	d.rem = d.size
	d.v.Reset()
}

// put appends a piece of the current record, checking text as it goes.
func (d *MuxDecoder) put(dst []Piece, data []byte, final bool) ([]Piece, error) {
	if d.kind == Text {
		what := ""
		switch {
		case !d.v.Write(data):
			what = "holds a byte sequence that is not UTF-8"
		case final && !d.v.Done():
			what = "ends inside a code point"
		}
		if what != "" {
			return dst, d.fail(fmt.Errorf("%w: a text record for connection %d %s", ErrInvalidUTF8, d.conn, what))
		}
	}
	if len(data) > 0 || final || !d.open {
		dst = append(dst, Piece{Data: data, Kind: d.kind, First: !d.open, Final: final, Conn: d.conn})
	}
	d.open = !final
	return dst, nil
}

// truncate ends the stream inside a text or binary record: it ends the
// record with a Final piece carrying data, the payload bytes that did
// arrive, and returns ErrTruncated with detail. Invalid text in data is
// reported as ErrInvalidUTF8 instead, since it came first.
func (d *MuxDecoder) truncate(dst []Piece, data []byte, detail string) ([]Piece, error) {
	if d.kind == Text && !d.v.Write(data) {
		return dst, d.fail(fmt.Errorf("%w: a text record for connection %d holds a byte sequence that is not UTF-8", ErrInvalidUTF8, d.conn))
	}
	dst = append(dst, Piece{Data: data, Kind: d.kind, First: !d.open, Final: true, Conn: d.conn})
	d.inRec, d.open = false, false
	return dst, d.fail(fmt.Errorf("%w: %s", ErrTruncated, detail))
}

// truncated fails with ErrTruncated for a stream that ended after got
// bytes of a header or of a close record.
func (d *MuxDecoder) truncated(got int) error {
	if got < MuxHeaderLen {
		return d.fail(fmt.Errorf("%w: in a record header, after %d of its %d bytes", ErrTruncated, got, MuxHeaderLen))
	}
	return d.fail(fmt.Errorf("%w: %d bytes short of a close record's end", ErrTruncated, MuxHeaderLen+d.size-got))
}

// closed checks the payload p of a whole close record and appends its
// piece.
func (d *MuxDecoder) closed(dst []Piece, p []byte) ([]Piece, error) {
	if len(p) >= 2 {
		if code := binary.BigEndian.Uint16(p); !CloseCodeOnWire(code) {
			return dst, d.fail(fmt.Errorf("%w: close code %d for connection %d is not valid on the wire", ErrMuxRecord, code, d.conn))
		}
	}
	if _, err := parseClose(p); err != nil {
		return dst, d.fail(err)
	}
	return append(dst, Piece{Data: p, Kind: Close, First: true, Final: true, Conn: d.conn}), nil
}

// fail makes err sticky and returns it.
func (d *MuxDecoder) fail(err error) error {
	d.err = err
	return err
}

// MuxEncoder is the Encoder of the mux framing: each piece becomes one
// record, its header carrying the piece's Kind (Open, Text, Binary or
// Close) and Conn, for the bridge to tell the child which client a message
// comes from.
//
// Every mux record is a whole message: the caller must hand AppendPrefix
// whole messages only (First and Final both set), assembling fragmented
// WebSocket messages first, and no more than MaxRecord bytes of data.
// AppendPrefix panics otherwise, since the child could not tell where the
// record ends. Open pieces carry an environment block (AppendMuxEnv),
// Close pieces a close payload (AppendMuxClose).
type MuxEncoder struct{}

// AppendPrefix appends the 12-byte header of the record that carries p.
func (MuxEncoder) AppendPrefix(dst []byte, p Piece) []byte {
	if !p.First || !p.Final {
		panic("framing: mux records are whole messages; got a fragment")
	}
	return AppendMuxHeader(dst, p.Kind, p.Conn, len(p.Data))
}

// Suffix returns nothing: a record ends where its length says.
func (MuxEncoder) Suffix(p Piece) []byte { return nil }

// AppendMuxHeader appends to dst the header of a mux record of kind k for
// connection conn with n payload bytes; the caller then writes exactly n
// bytes. It panics when n is over MaxRecord or k is not a Kind.
func AppendMuxHeader(dst []byte, k Kind, conn uint32, n int) []byte {
	var w byte
	switch k {
	case Open:
		w = muxOpen
	case Text:
		w = muxText
	case Binary:
		w = muxBinary
	case Close:
		w = muxClose
	default:
		panic(fmt.Sprintf("framing: mux record of %s", k))
	}
	if n < 0 || n > MaxRecord {
		panic(fmt.Sprintf("framing: mux record of %d bytes, over MaxRecord", n))
	}
	dst = append(dst, w, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, conn)
	return binary.BigEndian.AppendUint32(dst, uint32(n))
}

// AppendMuxEnv appends env, "NAME=value" entries, to dst as the payload of
// an open record: each entry followed by a NUL byte, as in
// /proc/PID/environ. An entry that holds a NUL byte is left out: no
// environment can carry one, and it would split the entry in two.
func AppendMuxEnv(dst []byte, env []string) []byte {
	for _, kv := range env {
		if strings.IndexByte(kv, 0) >= 0 {
			continue
		}
		dst = append(dst, kv...)
		dst = append(dst, 0)
	}
	return dst
}

// AppendMuxClose appends to dst the payload of a close record: code as 2
// bytes big-endian, then reason. Code 0 appends nothing, the empty payload
// that means no code. A reason longer than 123 bytes is cut there, at a
// code point boundary, to keep within MaxMuxClose. Any code is written,
// 1005 and 1006 included: the bridge tells the child 1006 when a client
// dropped without a close frame.
func AppendMuxClose(dst []byte, code uint16, reason string) []byte {
	if code == 0 {
		return dst
	}
	if len(reason) > MaxMuxClose-2 {
		cut := MaxMuxClose - 2
		for cut > 0 && reason[cut]&0xC0 == 0x80 {
			cut-- // reason[cut] continues a code point: drop all of it
		}
		reason = reason[:cut]
	}
	dst = binary.BigEndian.AppendUint16(dst, code)
	return append(dst, reason...)
}

// ParseMuxClose splits the payload of a close record into its code and
// reason. An empty payload has no code: code is 0 (the bridge closes the
// client with 1000 then). It fails with ErrMuxRecord for a payload of 1
// byte or more than MaxMuxClose, and with ErrInvalidUTF8 for a reason
// that is not UTF-8. It accepts any code: MuxDecoder has already refused
// the ones not valid on the wire from the child, and the bridge sends the
// child 1006 for a client that dropped.
func ParseMuxClose(p []byte) (code uint16, reason string, err error) {
	if code, err = parseClose(p); err != nil {
		return 0, "", err
	}
	if len(p) > 2 {
		reason = string(p[2:])
	}
	return code, reason, nil
}

// parseClose checks the close payload p and returns its code, 0 if empty.
func parseClose(p []byte) (uint16, error) {
	if err := closeSize(len(p)); err != nil {
		return 0, err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if !utf8.Valid(p[2:]) {
		return 0, fmt.Errorf("%w: a close reason %+q", ErrInvalidUTF8, p[2:])
	}
	return binary.BigEndian.Uint16(p), nil
}

// closeSize checks the length of a close payload.
func closeSize(n int) error {
	switch {
	case n == 1:
		return fmt.Errorf("%w: a close payload of 1 byte: a code takes 2", ErrMuxRecord)
	case n > MaxMuxClose:
		return fmt.Errorf("%w: a close payload of %d bytes, over %d", ErrMuxRecord, n, MaxMuxClose)
	}
	return nil
}

// CloseCodeOnWire reports whether a WebSocket close frame may carry code
// (RFC 6455 section 7.4): 1005, 1006 and 1015 are for reporting only, the
// rest of 1000-2999 is unassigned or reserved, and below 1000 is unused;
// 1012 to 1014 are registered with IANA after RFC 6455 and accepted. The
// bridge's WebSocket connection and a mux child's close records both
// follow it.
func CloseCodeOnWire(code uint16) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}
