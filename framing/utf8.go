package framing

import (
	"encoding/binary"
	"unicode/utf8"
)

// UTF8 validates UTF-8 text that arrives in pieces, such as the fragments
// of a WebSocket text message spread over several reads. A code point may
// be split anywhere between pieces.
//
// It fails fast: Write reports false on the first byte after which no
// continuation could make the stream valid (a bad lead byte, an overlong
// form, a surrogate, a code point above U+10FFFF), not at the end of the
// message. Done then says whether the stream also ended on a code point
// boundary.
//
// The zero value is ready to use. A UTF8 never allocates and keeps no
// reference to the bytes it is given. It is used by one goroutine at a time.
type UTF8 struct {
	need   uint8 // continuation bytes still due for the current code point
	lo, hi byte  // range the next continuation byte must fall in
	bad    bool  // the stream is invalid; sticky until Reset
}

// Write feeds p to the validator. It returns false if the stream so far,
// p included, is not a prefix of any valid UTF-8 text; once false, it stays
// false until Reset.
func (v *UTF8) Write(p []byte) bool {
	if v.bad {
		return false
	}
	for v.need > 0 && len(p) > 0 {
		if !v.step(p[0]) {
			return false
		}
		p = p[1:]
	}
	// The bulk goes to utf8.Valid; only a sequence cut short at the end of
	// p needs the byte-wise state machine.
	body, tail := splitTail(p)
	if !utf8.Valid(body) {
		v.bad = true
		return false
	}
	for _, b := range tail {
		if !v.step(b) {
			return false
		}
	}
	return true
}

// Done reports whether everything written is valid UTF-8 that ends on a
// code point boundary: a text message may end here.
func (v *UTF8) Done() bool { return !v.bad && v.need == 0 }

// Reset makes v ready for a new stream.
func (v *UTF8) Reset() { *v = UTF8{} }

// step feeds one byte to the state machine.
func (v *UTF8) step(b byte) bool {
	if v.need == 0 {
		if b < utf8.RuneSelf {
			return true
		}
		need, lo, hi := lead(b)
		if need == 0 {
			v.bad = true
			return false
		}
		v.need, v.lo, v.hi = need, lo, hi
		return true
	}
	if b < v.lo || b > v.hi {
		v.bad = true
		return false
	}
	v.need--
	v.lo, v.hi = 0x80, 0xBF
	return true
}

// lead returns how many continuation bytes follow the lead byte b of a
// multi-byte sequence, and the range the first of them must fall in
// (Unicode table 3-7: the narrow ranges rule out overlong forms,
// surrogates and code points above U+10FFFF). need is 0 when b cannot lead
// a multi-byte sequence: ASCII, a continuation byte, C0, C1, F5..FF.
func lead(b byte) (need uint8, lo, hi byte) {
	switch {
	case b < 0xC2:
		return 0, 0, 0
	case b < 0xE0:
		return 1, 0x80, 0xBF
	case b == 0xE0:
		return 2, 0xA0, 0xBF
	case b == 0xED:
		return 2, 0x80, 0x9F
	case b < 0xF0:
		return 2, 0x80, 0xBF
	case b == 0xF0:
		return 3, 0x90, 0xBF
	case b < 0xF4:
		return 3, 0x80, 0xBF
	case b == 0xF4:
		return 3, 0x80, 0x8F
	}
	return 0, 0, 0
}

// splitTail splits p before its last sequence when p cuts that sequence
// short: tail is then a valid lead byte and fewer continuation bytes than
// it announces (at most 3 bytes; their ranges are not checked). Otherwise
// tail is empty.
func splitTail(p []byte) (body, tail []byte) {
	for i := len(p) - 1; i >= 0 && i >= len(p)-3; i-- {
		b := p[i]
		if b&0xC0 == 0x80 {
			continue // continuation byte: the lead is further back
		}
		if need, _, _ := lead(b); len(p)-i <= int(need) {
			return p[:i], p[i:]
		}
		break
	}
	return p, nil
}

// seqStatus classifies the sequence at the start of a byte slice.
type seqStatus uint8

const (
	seqValid   seqStatus = iota // one whole, valid code point
	seqInvalid                  // a maximal invalid subpart, worth one U+FFFD
	seqShort                    // a valid start that the slice cuts short
)

// seq returns the length and status of the sequence that starts p, which
// must not be empty. An invalid sequence is cut as the WHATWG Encoding
// Standard (and Unicode's "best practice" for U+FFFD) does: the lead byte
// and the continuation bytes it accepted before the first byte out of
// range; that byte starts the next sequence.
func seq(p []byte) (int, seqStatus) {
	if p[0] < utf8.RuneSelf {
		return 1, seqValid
	}
	need, lo, hi := lead(p[0])
	if need == 0 {
		return 1, seqInvalid
	}
	k := 1
	for ; need > 0; need-- {
		if k == len(p) {
			return k, seqShort
		}
		if b := p[k]; b < lo || b > hi {
			return k, seqInvalid
		}
		k++
		lo, hi = 0x80, 0xBF
	}
	return k, seqValid
}

// validPrefix returns the length of the longest prefix of p that is valid
// UTF-8 ending on a code point boundary. It is fast when p is valid but for
// a sequence cut short at its end.
func validPrefix(p []byte) int {
	if body, _ := splitTail(p); utf8.Valid(body) {
		return len(body)
	}
	return scanValid(p)
}

// scanValid is validPrefix without the fast path: its cost is the length
// of the prefix, which keeps repeated calls over one buffer linear.
func scanValid(p []byte) int {
	i := 0
	for i < len(p) {
		if p[i] < utf8.RuneSelf {
			i++
			for i+8 <= len(p) && binary.LittleEndian.Uint64(p[i:])&0x8080808080808080 == 0 {
				i += 8 // eight ASCII bytes
			}
			continue
		}
		k, st := seq(p[i:])
		if st != seqValid {
			break
		}
		i += k
	}
	return i
}
