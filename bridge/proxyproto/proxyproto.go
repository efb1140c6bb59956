// Package proxyproto reads the PROXY protocol header (HAProxy's, versions
// 1 and 2) that a proxy in front sends before anything else, to say which
// client it relays. Read reads exactly the header, never a byte past it:
// what follows stays in the connection for the HTTP reader.
//
// It is a leaf: it imports nothing of the project.
package proxyproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// Header is what a PROXY header says.
type Header struct {
	Version int // 1 or 2
	// Local says the header names no client: version 1's UNKNOWN,
	// version 2's LOCAL command (a proxy's own health check) or an
	// address family other than IPv4 and IPv6. The connection's own
	// addresses stand.
	Local        bool
	Source, Dest netip.AddrPort // the client and the address it connected to, unless Local
}

var (
	// ErrNoHeader: the connection does not begin with a PROXY header.
	ErrNoHeader = errors.New("no PROXY protocol header")
	// ErrMalformed: it begins like one, but is not one.
	ErrMalformed = errors.New("malformed PROXY protocol header")
	// ErrTooLarge: a header longer than this reader takes.
	ErrTooLarge = errors.New("PROXY protocol header too large")
)

const (
	// maxV1 is version 1's longest header, CRLF included (the spec's).
	maxV1 = 107
	// MaxV2 is the longest version 2 header read, its TLVs included:
	// far more than the addresses and the few TLVs a proxy adds.
	MaxV2 = 2048
)

var sigV2 = []byte("\r\n\r\n\x00\r\nQUIT\n")

// prefix is how much Read reads at once before it knows the version:
// no header of either version is shorter.
const prefix = 12

// Begins reports whether b, the first bytes of a connection, begins as a
// PROXY header of either version would (b may be shorter than one).
func Begins(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	v1 := []byte("PROXY ")
	n1, n2 := min(len(b), len(v1)), min(len(b), len(sigV2))
	return bytes.Equal(b[:n1], v1[:n1]) || bytes.Equal(b[:n2], sigV2[:n2])
}

// Read reads one PROXY header from r, and no more. A connection that
// begins otherwise gives ErrNoHeader (having lost up to 12 bytes).
func Read(r io.Reader) (Header, error) {
	var buf [MaxV2]byte
	if _, err := io.ReadFull(r, buf[:prefix]); err != nil {
		return Header{}, fmt.Errorf("reading a PROXY protocol header: %w", err)
	}
	switch {
	case bytes.Equal(buf[:prefix], sigV2):
		return readV2(r, buf[:])
	case bytes.HasPrefix(buf[:prefix], []byte("PROXY ")):
		// Byte by byte to the CRLF: a read past it would take the
		// request's bytes. A proxy sends the header whole, so these
		// reads find it in the socket's buffer.
		n := prefix
		for buf[n-1] != '\n' {
			if n == maxV1 {
				return Header{}, ErrTooLarge
			}
			if _, err := io.ReadFull(r, buf[n:n+1]); err != nil {
				return Header{}, fmt.Errorf("reading a PROXY protocol header: %w", err)
			}
			n++
		}
		return parseV1(buf[:n])
	}
	return Header{}, ErrNoHeader
}

// parseV1 parses a version 1 line, CRLF included.
func parseV1(b []byte) (Header, error) {
	line, ok := strings.CutSuffix(string(b), "\r\n")
	if !ok {
		return Header{}, ErrMalformed
	}
	h := Header{Version: 1}
	f := strings.Split(line, " ")
	if len(f) >= 2 && f[1] == "UNKNOWN" {
		// The rest, whatever it is, is to be ignored.
		h.Local = true
		return h, nil
	}
	if len(f) != 6 || f[0] != "PROXY" || f[1] != "TCP4" && f[1] != "TCP6" {
		return Header{}, ErrMalformed
	}
	src, err1 := netip.ParseAddr(f[2])
	dst, err2 := netip.ParseAddr(f[3])
	sp, ok1 := parsePort(f[4])
	dp, ok2 := parsePort(f[5])
	if err1 != nil || err2 != nil || !ok1 || !ok2 || src.Zone() != "" || dst.Zone() != "" {
		return Header{}, ErrMalformed
	}
	if want4 := f[1] == "TCP4"; src.Is4() != want4 || dst.Is4() != want4 {
		return Header{}, ErrMalformed
	}
	h.Source, h.Dest = netip.AddrPortFrom(src, sp), netip.AddrPortFrom(dst, dp)
	return h, nil
}

// parsePort parses a decimal port as the spec writes it: digits, no
// leading zero.
func parsePort(s string) (uint16, bool) {
	if s == "" || len(s) > 5 || s[0] == '0' && s != "0" || strings.Trim(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 16)
	return uint16(n), err == nil
}

// readV2 reads the rest of a version 2 header whose signature buf holds.
func readV2(r io.Reader, buf []byte) (Header, error) {
	if _, err := io.ReadFull(r, buf[prefix:16]); err != nil {
		return Header{}, fmt.Errorf("reading a PROXY protocol header: %w", err)
	}
	n := int(binary.BigEndian.Uint16(buf[14:16]))
	if 16+n > len(buf) {
		return Header{}, ErrTooLarge
	}
	if _, err := io.ReadFull(r, buf[16:16+n]); err != nil {
		return Header{}, fmt.Errorf("reading a PROXY protocol header: %w", err)
	}
	return parseV2(buf[:16+n])
}

// parseV2 parses a whole version 2 header.
func parseV2(b []byte) (Header, error) {
	h := Header{Version: 2}
	verCmd, famProto, body := b[12], b[13], b[16:]
	if verCmd>>4 != 2 {
		return Header{}, ErrMalformed
	}
	switch verCmd & 0xf {
	case 0: // LOCAL: the proxy's own connection; the address block is to be ignored
		h.Local = true
		return h, nil
	case 1: // PROXY
	default:
		return Header{}, ErrMalformed
	}
	fam, proto := famProto>>4, famProto&0xf
	if proto > 2 || fam > 3 {
		return Header{}, ErrMalformed
	}
	var size int
	switch fam {
	case 1:
		size = 12
	case 2:
		size = 36
	case 3:
		size = 216
	}
	if len(body) < size {
		return Header{}, ErrMalformed
	}
	if fam == 0 || fam == 3 {
		// UNSPEC, or a unix socket's: no IP client to name.
		h.Local = true
		return h, nil
	}
	if proto != 1 {
		return Header{}, ErrMalformed // a datagram's header on a stream
	}
	alen := (size - 4) / 2
	src, _ := netip.AddrFromSlice(body[:alen])
	dst, _ := netip.AddrFromSlice(body[alen : 2*alen])
	ports := body[2*alen:]
	h.Source = netip.AddrPortFrom(src, binary.BigEndian.Uint16(ports[0:2]))
	h.Dest = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(ports[2:4]))
	return h, nil
}
