package wsconn

import (
	"encoding/binary"
	"errors"

	"github.com/gobwas/ws"
)

// errFrameTooLong is a header announcing a payload length whose top bit is
// set: RFC 6455 5.2 says the most significant bit MUST be 0.
var errFrameTooLong = ws.ProtocolError("frame payload length has its most significant bit set")

// errIncomplete reports that b holds only part of a frame header.
var errIncomplete = errors.New("incomplete frame header")

// parseHeader decodes the frame header at the start of b without copying.
// It returns the header and its size in bytes, errIncomplete when b is too
// short to hold the whole header (read more and call again), or a protocol
// error. It is the byte-slice twin of ws.ReadHeader, for a reader that
// already holds the bytes in its own buffer.
func parseHeader(b []byte) (h ws.Header, n int, err error) {
	if len(b) < 2 {
		return h, 0, errIncomplete
	}
	h.Fin = b[0]&0x80 != 0
	h.Rsv = (b[0] & 0x70) >> 4
	h.OpCode = ws.OpCode(b[0] & 0x0f)
	h.Masked = b[1]&0x80 != 0
	n = 2
	switch l := b[1] & 0x7f; l {
	case 126:
		n += 2
	case 127:
		n += 8
	default:
		h.Length = int64(l)
	}
	if h.Masked {
		n += 4
	}
	if len(b) < n {
		return h, 0, errIncomplete
	}
	switch b[1] & 0x7f {
	case 126:
		h.Length = int64(binary.BigEndian.Uint16(b[2:4]))
	case 127:
		u := binary.BigEndian.Uint64(b[2:10])
		if u>>63 != 0 {
			return h, 0, errFrameTooLong
		}
		h.Length = int64(u)
	}
	if h.Masked {
		copy(h.Mask[:], b[n-4:n])
	}
	return h, n, nil
}

// appendHeader appends the header of an unmasked server frame to dst.
func appendHeader(dst []byte, op ws.OpCode, fin bool, length int) []byte {
	b0 := byte(op)
	if fin {
		b0 |= 0x80
	}
	switch {
	case length < 126:
		return append(dst, b0, byte(length))
	case length <= 0xffff:
		return append(dst, b0, 126, byte(length>>8), byte(length))
	default:
		dst = append(dst, b0, 127)
		return binary.BigEndian.AppendUint64(dst, uint64(length))
	}
}

// maxHeader is the longest header of an unmasked server frame.
const maxHeader = 10

// frameLen returns the length of the unmasked server frame at the start
// of p (see appendHeader), header included.
func frameLen(p []byte) int {
	n, hdr := int(p[1]&0x7f), 2
	switch n {
	case 126:
		n, hdr = int(binary.BigEndian.Uint16(p[2:])), 4
	case 127:
		n, hdr = int(binary.BigEndian.Uint64(p[2:])), 10
	}
	return hdr + n
}
