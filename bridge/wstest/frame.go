package wstest

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// WebSocket opcodes (RFC 6455 5.2).
const (
	OpContinuation byte = 0x0
	OpText         byte = 0x1
	OpBinary       byte = 0x2
	OpClose        byte = 0x8
	OpPing         byte = 0x9
	OpPong         byte = 0xA
)

// Close codes the tests meet most.
const (
	CloseNormal   = 1000
	CloseNoStatus = 1005 // what a close frame with no code stands for
)

// Frame is one frame: as a test wants it on the wire, well formed or broken
// on purpose, or as the server sent it. The zero value of every field is
// what a well-behaved client sends, bar Fin.
type Frame struct {
	Fin      bool
	RSV      byte // the three RSV bits, in the low bits
	Op       byte // any 4-bit opcode, reserved ones included
	Unmasked bool // no mask: wrong in a client's frame, right in a server's
	Payload  []byte
	// Length is the payload length the header announces; 0 stands for
	// len(Payload). Only Payload is sent. Frames read leave it 0.
	Length int64
}

// CloseCode returns a close frame's code, or 1005 for none.
func (f Frame) CloseCode() int { return CloseCode(f.Payload) }

// CloseReason returns a close frame's reason.
func (f Frame) CloseReason() string { return CloseReason(f.Payload) }

// CloseCode returns the code of a close frame's payload p, or 1005 for none.
func CloseCode(p []byte) int {
	if len(p) < 2 {
		return CloseNoStatus
	}
	return int(binary.BigEndian.Uint16(p))
}

// CloseReason returns the reason of a close frame's payload p.
func CloseReason(p []byte) string {
	if len(p) < 2 {
		return ""
	}
	return string(p[2:])
}

// ClosePayload is the payload of a close frame with code and reason.
func ClosePayload(code int, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...)
}

// mask is the masking key of every frame written: fixed, so that a failing
// test replays byte for byte and a frame can be built once and sent many
// times, and with no zero byte, so that a server that forgot to unmask sees
// garbage.
var mask = [4]byte{0x37, 0xFA, 0x21, 0x3D}

// AppendFrame appends the bytes of f to dst.
func AppendFrame(dst []byte, f Frame) []byte {
	b0 := f.Op&0x0F | (f.RSV&7)<<4
	if f.Fin {
		b0 |= 0x80
	}
	var b1 byte
	if !f.Unmasked {
		b1 = 0x80
	}
	n := f.Length
	if n == 0 {
		n = int64(len(f.Payload))
	}
	switch {
	case n < 126:
		dst = append(dst, b0, b1|byte(n))
	case n <= 0xFFFF:
		dst = binary.BigEndian.AppendUint16(append(dst, b0, b1|126), uint16(n))
	default:
		dst = binary.BigEndian.AppendUint64(append(dst, b0, b1|127), uint64(n))
	}
	if f.Unmasked {
		return append(dst, f.Payload...)
	}
	dst = append(dst, mask[:]...)
	start := len(dst)
	dst = append(dst, f.Payload...)
	maskBytes(dst[start:], mask)
	return dst
}

// maskBytes XORs b with key in place, key[0] on b[0]. It works a word at a
// time: tests mask messages of many megabytes under the race detector.
func maskBytes(b []byte, key [4]byte) {
	k := uint64(binary.LittleEndian.Uint32(key[:]))
	k |= k << 32
	for len(b) >= 8 {
		binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k)
		b = b[8:]
	}
	for i := range b {
		b[i] ^= key[i%4]
	}
}

// Header is a frame header as it is on the wire.
type Header struct {
	Fin    bool
	RSV    byte // the three RSV bits, in the low bits
	Op     byte
	Masked bool
	Mask   [4]byte
	Length int64
}

// MaxHeaderSize is the size of the longest frame header.
const MaxHeaderSize = 14

var (
	// ErrShortHeader is ParseHeader's answer to bytes that stop inside a
	// header: more must be read.
	ErrShortHeader = errors.New("frame header cut short")
	// ErrLength is ParseHeader's answer to a 64-bit length with the top
	// bit set, which RFC 6455 forbids.
	ErrLength = errors.New("frame length with the top bit set")
)

// ParseHeader parses the frame header at the start of b, in place, and
// returns it with its size. It allocates nothing.
func ParseHeader(b []byte) (h Header, size int, err error) {
	if len(b) < 2 {
		return h, 0, ErrShortHeader
	}
	h.Fin, h.RSV, h.Op, h.Masked = b[0]&0x80 != 0, b[0]>>4&7, b[0]&0x0F, b[1]&0x80 != 0
	size = 2
	switch n := b[1] & 0x7F; n {
	case 126:
		size += 2
	case 127:
		size += 8
	default:
		h.Length = int64(n)
	}
	if h.Masked {
		size += 4
	}
	if len(b) < size {
		return h, 0, ErrShortHeader
	}
	switch size - 2 - 4*btoi(h.Masked) {
	case 2:
		h.Length = int64(binary.BigEndian.Uint16(b[2:]))
	case 8:
		n := binary.BigEndian.Uint64(b[2:])
		if n>>63 != 0 {
			return h, 0, fmt.Errorf("%w: %#x", ErrLength, n)
		}
		h.Length = int64(n)
	}
	if h.Masked {
		copy(h.Mask[:], b[size-4:size])
	}
	return h, size, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
