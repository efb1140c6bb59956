package framing

import (
	"fmt"
	"testing"
	"unsafe"
)

// msg is a whole message, reassembled from its pieces, with the mux
// connection it is for (0 for the other framings).
type msg struct {
	Kind Kind
	Data string
	Conn uint32
}

func (m msg) String() string {
	if m.Conn != 0 {
		return fmt.Sprintf("%s #%d %q", m.Kind, m.Conn, m.Data)
	}
	return fmt.Sprintf("%s %q", m.Kind, m.Data)
}

func txt(s string) msg { return msg{Kind: Text, Data: s} }
func bin(s string) msg { return msg{Kind: Binary, Data: s} }

// setup is how pump feeds a Decoder, the way the bridge does: a buffer of
// buf bytes, refilled by reads of at most read bytes, and a dst of
// capacity dst.
type setup struct{ buf, read, dst int }

func (s setup) String() string { return fmt.Sprintf("buf=%d,read=%d,dst=%d", s.buf, s.read, s.dst) }

// whole is the setup that hands a Decoder all of stream at once.
func whole(stream []byte) setup {
	return setup{buf: len(stream) + 1, read: len(stream) + 1, dst: 2*len(stream) + 4}
}

// setups returns the setups tests run a stream through: every buffer size
// from 1 to past the stream's length (so pieces split at every byte
// boundary), with whole and one-byte reads and small and large dst.
func setups(stream []byte) []setup {
	var ss []setup
	for b := 1; b <= len(stream)+1; b++ {
		ss = append(ss, setup{b, b, 1}, setup{b, b, 64}, setup{b, 1, 3})
	}
	return ss
}

// pump runs d over stream as set up by s and returns the whole messages it
// produced and the error that stopped it, if any. It fails t when d breaks
// the Decoder contract: consuming more than it was given, reallocating
// dst, pieces that alias neither buf nor the package's static slices (nor
// a MuxDecoder's own), First and Final out of order, a message changing
// kind or connection, empty pieces in the middle of a message, or no
// progress with a full buffer or at eof.
// The message left open at an error is not returned.
func pump(t testing.TB, d Decoder, stream []byte, s setup) ([]msg, error) {
	t.Helper()
	buf := make([]byte, s.buf)
	dst := make([]Piece, 0, s.dst)
	have := 0
	var (
		msgs []msg
		cur  []byte
		kind Kind
		conn uint32
		open bool
		own  []byte // storage of d's own that pieces may alias
	)
	if md, ok := d.(*MuxDecoder); ok {
		own = md.small[:]
	}
	limit := 50 * (len(stream) + 10)
	for iter := 0; ; iter++ {
		if iter > limit {
			t.Fatalf("%v: no end after %d calls", s, iter)
		}
		r := min(s.read, len(buf)-have, len(stream))
		copy(buf[have:], stream[:r])
		have += r
		stream = stream[r:]
		eof, full := len(stream) == 0, have == len(buf)

		pieces, n, err := d.Decode(dst, buf[:have], full, eof)
		if n < 0 || n > have {
			t.Fatalf("%v: consumed %d of %d bytes", s, n, have)
		}
		if cap(pieces) != cap(dst) || len(pieces) > 0 && &pieces[0] != &dst[:1][0] {
			t.Fatalf("%v: Decode reallocated dst", s)
		}
		if eof && err == nil && n < have && len(pieces) < cap(dst) {
			t.Fatalf("%v: at eof, left %d of %d bytes with room in dst", s, have-n, have)
		}
		for _, p := range pieces {
			checkAlias(t, s, p.Data, buf[:have], own)
			switch {
			case p.First == open:
				t.Fatalf("%v: piece %+v: First is %t with a message open=%t", s, p, p.First, open)
			case open && p.Kind != kind:
				t.Fatalf("%v: piece %+v continues a %s message", s, p, kind)
			case open && p.Conn != conn:
				t.Fatalf("%v: piece %+v continues a message for connection %d", s, p, conn)
			case !p.First && !p.Final && len(p.Data) == 0:
				t.Fatalf("%v: empty piece in the middle of a message", s)
			}
			if p.First {
				kind, conn, cur = p.Kind, p.Conn, cur[:0]
			}
			cur = append(cur, p.Data...)
			open = !p.Final
			if p.Final {
				msgs = append(msgs, msg{kind, string(cur), conn})
			}
		}
		if err != nil {
			return msgs, err
		}
		copy(buf, buf[n:have])
		have -= n
		if eof && have == 0 && len(pieces) == 0 {
			if open {
				t.Fatalf("%v: stream ended with a message open", s)
			}
			return msgs, nil
		}
		if n == 0 && len(pieces) == 0 && (full || eof) {
			t.Fatalf("%v: no progress with %d bytes, full=%t eof=%t", s, have, full, eof)
		}
	}
}

// checkAlias fails t unless data lies within buf, within one of the
// package's static slices, or within own, the decoder's storage.
func checkAlias(t testing.TB, s setup, data, buf, own []byte) {
	t.Helper()
	if len(data) == 0 {
		return
	}
	if !within(data, buf) && !within(data, replacement) && !within(data, byteTable[:]) && !within(data, own) {
		t.Fatalf("%v: piece data %q aliases neither buf nor a static slice", s, data)
	}
}

func within(p, outer []byte) bool {
	if len(outer) == 0 {
		return false
	}
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(outer)))
	at := uintptr(unsafe.Pointer(unsafe.SliceData(p)))
	return at >= lo && at+uintptr(len(p)) <= lo+uintptr(len(outer))
}

// whatwg decodes p as the WHATWG Encoding Standard's UTF-8 decoder does,
// following the standard's algorithm step by step (on purpose not sharing
// code with the package), and returns the text with the number of U+FFFD
// it substituted.
func whatwg(p []byte) (string, int) {
	var out []byte
	subs := 0
	var needed, seen int
	lower, upper := byte(0x80), byte(0xBF)
	start := 0
	for i := 0; i < len(p); {
		b := p[i]
		if needed == 0 {
			switch {
			case b <= 0x7F:
				out = append(out, b)
			case 0xC2 <= b && b <= 0xDF:
				needed = 1
			case 0xE0 <= b && b <= 0xEF:
				if b == 0xE0 {
					lower = 0xA0
				}
				if b == 0xED {
					upper = 0x9F
				}
				needed = 2
			case 0xF0 <= b && b <= 0xF4:
				if b == 0xF0 {
					lower = 0x90
				}
				if b == 0xF4 {
					upper = 0x8F
				}
				needed = 3
			default:
				out = append(out, "\uFFFD"...)
				subs++
			}
			start = i
			i++
			continue
		}
		if b < lower || b > upper {
			needed, seen, lower, upper = 0, 0, 0x80, 0xBF
			out = append(out, "\uFFFD"...)
			subs++
			continue // b is processed again
		}
		lower, upper = 0x80, 0xBF
		seen++
		i++
		if seen == needed {
			out = append(out, p[start:i]...)
			needed, seen = 0, 0
		}
	}
	if needed > 0 {
		out = append(out, "\uFFFD"...)
		subs++
	}
	return string(out), subs
}

func TestWHATWGReference(t *testing.T) {
	// Unicode 15, section 3.9, table 3-8 (U+FFFD for ill-formed sequences).
	got, n := whatwg([]byte("\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64"))
	if want := "a\uFFFD\uFFFD\uFFFDb\uFFFDc\uFFFD\uFFFDd"; got != want || n != 6 {
		t.Fatalf("whatwg = %q, %d; want %q, 6", got, n, want)
	}
}
